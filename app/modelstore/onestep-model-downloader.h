/* onestep-model-downloader.h: fetches catalogue models from the Hugging Face hub
 * into the models folder: free space checked first, files resumed from
 * "<file>.incomplete" with Range requests, each verified against its sha256 (or
 * git sha1) before it is renamed into place, and the model added to the index.
 *
 * Cancelling a download keeps the .incomplete files, so cancelling is pausing:
 * downloading the same model again resumes. onestep_model_downloader_discard_partial()
 * deletes them (the UI's "Cancel"). */
#pragma once

#include <gio/gio.h>

#include "onestep-catalog-model.h"
#include "onestep-installed-model.h"
#include "onestep-model-index.h"
#include "onestep-token-provider.h"

G_BEGIN_DECLS

#define ONESTEP_MODEL_DOWNLOADER_DEFAULT_BASE_URL "https://huggingface.co"

/* Free bytes on the file system holding directory. Called from a worker thread. */
typedef gboolean (*OnestepFreeSpaceFunc) (const char  *directory,
                                          guint64     *free_bytes,
                                          gpointer     user_data,
                                          GError     **error);

#define ONESTEP_TYPE_MODEL_DOWNLOADER (onestep_model_downloader_get_type ())

G_DECLARE_FINAL_TYPE (OnestepModelDownloader, onestep_model_downloader, ONESTEP, MODEL_DOWNLOADER, GObject)

/* tokens: (nullable) where the token for gated repositories comes from.
 * Signal "progress" (OnestepCatalogModel *model, guint64 bytes_done,
 * guint64 bytes_total) is emitted in the thread-default main context of the
 * caller of download_async while a download runs. */
OnestepModelDownloader *onestep_model_downloader_new                 (OnestepModelIndex       *index,
                                                                      OnestepTokenProvider    *tokens);
/* The hub's address; tests point it at a loopback server. */
void                    onestep_model_downloader_set_base_url        (OnestepModelDownloader  *self,
                                                                      const char              *base_url);
const char             *onestep_model_downloader_get_base_url        (OnestepModelDownloader  *self);
/* Replaces the g_file_query_filesystem_info() check (tests simulate a full disk). */
void                    onestep_model_downloader_set_free_space_func (OnestepModelDownloader  *self,
                                                                      OnestepFreeSpaceFunc     func,
                                                                      gpointer                 user_data,
                                                                      GDestroyNotify           destroy);
/* Where the model's files go: <models folder>/<model id>. */
char                   *onestep_model_downloader_dup_model_dir       (OnestepModelDownloader  *self,
                                                                      OnestepCatalogModel     *model);
void                    onestep_model_downloader_download_async      (OnestepModelDownloader  *self,
                                                                      OnestepCatalogModel     *model,
                                                                      GCancellable            *cancellable,
                                                                      GAsyncReadyCallback      callback,
                                                                      gpointer                 user_data);
/* Returns: (transfer full) the index entry of the downloaded model. A model
 * already being downloaded fails with G_IO_ERROR_PENDING. */
OnestepInstalledModel  *onestep_model_downloader_download_finish     (OnestepModelDownloader  *self,
                                                                      GAsyncResult            *result,
                                                                      GError                 **error);
/* Whether a stopped download left .incomplete files to resume from. */
gboolean                onestep_model_downloader_has_partial         (OnestepModelDownloader  *self,
                                                                      OnestepCatalogModel     *model);
/* Deletes the .incomplete files a stopped download left. */
gboolean                onestep_model_downloader_discard_partial     (OnestepModelDownloader  *self,
                                                                      OnestepCatalogModel     *model,
                                                                      GError                 **error);

G_END_DECLS
