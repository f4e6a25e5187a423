/* export-metadata.h: generation settings as JSON and as text for file metadata. */
#pragma once

#include "export.h"

G_BEGIN_DECLS

/* The settings as one JSON object with typed members (paths absolute, unet_file null
 * when NULL), keys sorted; NULL if settings is NULL. */
char *_onestep_export_settings_to_json (const OnestepClipSettings *settings,
                                        gboolean                   pretty);

/* Adds each member of the JSON object above that is not null to keys and values as text
 * (numbers written as in the JSON), e.g. for PNG tEXt chunks. */
void _onestep_export_settings_to_text (const OnestepClipSettings *settings,
                                       GPtrArray                 *keys,
                                       GPtrArray                 *values);

G_END_DECLS
