/* onestep-model-importer.h: adds models the user already has to the index after
 * the engine has opened them on the CPU (the check `onestep-cli info` makes):
 * a diffusers folder, a single-file checkpoint, a UNet file (AnimateLCM) with a
 * base model, or a LoRA with a base model. Files stay where they are. */
#pragma once

#include <gio/gio.h>

#include "onestep-installed-model.h"
#include "onestep-model-index.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_MODEL_IMPORTER (onestep_model_importer_get_type ())

G_DECLARE_FINAL_TYPE (OnestepModelImporter, onestep_model_importer, ONESTEP, MODEL_IMPORTER, GObject)

OnestepModelImporter  *onestep_model_importer_new          (OnestepModelIndex     *index);
/* A folder is a diffusers model; a file is a checkpoint, or a UNet when a base
 * is given. LoRA files must be asked for explicitly. */
OnestepInstalledKind   onestep_model_importer_guess_kind   (const char            *path,
                                                            const char            *base);
/* base: (nullable) an index id or a path, required for UNET and LORA.
 * id, name: (nullable) derived from the file name when NULL. */
void                   onestep_model_importer_import_async (OnestepModelImporter  *self,
                                                            const char            *path,
                                                            OnestepInstalledKind   kind,
                                                            const char            *base,
                                                            const char            *id,
                                                            const char            *name,
                                                            GCancellable          *cancellable,
                                                            GAsyncReadyCallback    callback,
                                                            gpointer               user_data);
/* Returns: (transfer full) the new index entry. */
OnestepInstalledModel *onestep_model_importer_import_finish (OnestepModelImporter  *self,
                                                            GAsyncResult          *result,
                                                            GError               **error);

G_END_DECLS
