/* onestep-model-manager.h: the window to get models: the catalogue's
 * downloads, imports, and the installed models.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-model-catalog.h"
#include "onestep-model-downloader.h"
#include "onestep-model-index.h"
#include "onestep-token-provider.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_MODEL_MANAGER (onestep_model_manager_get_type ())

G_DECLARE_FINAL_TYPE (OnestepModelManager, onestep_model_manager, ONESTEP, MODEL_MANAGER, AdwPreferencesWindow)

OnestepModelManager *onestep_model_manager_new             (GtkWindow              *parent,
                                                            OnestepModelCatalog    *catalog,
                                                            OnestepModelIndex      *index,
                                                            OnestepModelDownloader *downloader,
                                                            OnestepTokenProvider   *tokens);
void                 onestep_model_manager_download        (OnestepModelManager    *self,
                                                            const char             *id);
void                 onestep_model_manager_cancel_download (OnestepModelManager    *self,
                                                            const char             *id);
gboolean             onestep_model_manager_get_downloading (OnestepModelManager    *self,
                                                            const char             *id);
const char          *onestep_model_manager_get_status      (OnestepModelManager    *self,
                                                            const char             *id);
void                 onestep_model_manager_import          (OnestepModelManager    *self,
                                                            const char             *path);
gboolean             onestep_model_manager_get_importing   (OnestepModelManager    *self);
const char          *onestep_model_manager_get_import_status (OnestepModelManager  *self);

G_END_DECLS
