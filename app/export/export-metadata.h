/* export-metadata.h: generation settings as JSON for file metadata. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A JSON object of the string pairs in metadata, keys sorted; NULL if metadata is
 * NULL or empty. */
char *_onestep_export_metadata_to_json (GHashTable *metadata,
                                        gboolean    pretty);

G_END_DECLS
