/* onestep-model-index.h: the user's models folder and its index (models.json),
 * listing the models downloaded into it and those imported from elsewhere.
 * Safe to use from several threads. */
#pragma once

#include <gio/gio.h>

#include "onestep-installed-model.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_MODEL_INDEX (onestep_model_index_get_type ())

G_DECLARE_FINAL_TYPE (OnestepModelIndex, onestep_model_index, ONESTEP, MODEL_INDEX, GObject)

/* $XDG_DATA_HOME/onestep/models (inside the Flatpak sandbox's data folder). */
char                  *onestep_model_index_dup_default_dir (void);
/* Reads models_dir/models.json; a missing file is an empty index. */
OnestepModelIndex     *onestep_model_index_new             (const char             *models_dir,
                                                            GError                **error);
const char            *onestep_model_index_get_models_dir  (OnestepModelIndex      *self);
/* Returns: (transfer container) element type OnestepInstalledModel */
GPtrArray             *onestep_model_index_dup_models      (OnestepModelIndex      *self);
/* The entries to offer for generating: image-to-video models only, no
 * feature networks. Returns: (transfer container) element type OnestepInstalledModel */
GPtrArray             *onestep_model_index_dup_image_to_video_models (OnestepModelIndex *self);
/* Returns: (transfer full) (nullable) */
OnestepInstalledModel *onestep_model_index_lookup          (OnestepModelIndex      *self,
                                                            const char             *id);
/* Adds or replaces the entry with the same id, then saves the index. */
gboolean               onestep_model_index_add             (OnestepModelIndex      *self,
                                                            OnestepInstalledModel  *model,
                                                            GError                **error);
/* Forgets an entry (files stay on disk), then saves the index. */
gboolean               onestep_model_index_remove          (OnestepModelIndex      *self,
                                                            const char             *id,
                                                            GError                **error);

G_END_DECLS
