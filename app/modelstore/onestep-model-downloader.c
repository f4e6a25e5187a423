/* onestep-model-downloader.c */
#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "onestep-file-hash.h"
#include "onestep-hub-client.h"
#include "onestep-main-context.h"
#include "onestep-model-downloader.h"
#include "onestep-modelstore-error.h"

#define PARTIAL_SUFFIX ".incomplete"
#define CHUNK_SIZE (256 * 1024)

struct _OnestepModelDownloader
{
  GObject               parent_instance;
  OnestepModelIndex    *index;
  OnestepTokenProvider *tokens;
  char                 *base_url;
  OnestepFreeSpaceFunc  free_space_func;
  gpointer              free_space_data;
  GDestroyNotify        free_space_destroy;
  GMutex                active_mutex;
  GHashTable           *active;  /* ids of the models being downloaded */
};

G_DEFINE_FINAL_TYPE (OnestepModelDownloader, onestep_model_downloader, G_TYPE_OBJECT)

enum {
  PROGRESS,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* One download, shared between the worker thread and the progress callbacks it
 * queues on the caller's main context. */
typedef struct {
  OnestepModelDownloader *self;
  OnestepCatalogModel    *model;
  char                   *model_dir;
  char                   *base_url;
  char                   *page_url;  /* where a gated licence is accepted, for messages */
  GMainContext           *context;
  GMutex                  mutex;    /* guards the counters below */
  guint64                 done;
  guint64                 total;
  gboolean                progress_queued;
} DownloadJob;

typedef struct {
  const OnestepCatalogFile *file;
  char                     *url;
  char                     *description;
  char                     *final_path;
  char                     *partial_path;
  char                     *expected_hash;
  guint64                   size;
  guint64                   size_on_disk;  /* the final file's or the .incomplete file's */
  gboolean                  in_place;
} FilePlan;

static gboolean
query_filesystem_free (const char  *directory,
                       guint64     *free_bytes,
                       gpointer     user_data,
                       GError     **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (directory);
  g_autoptr(GFileInfo) info = NULL;

  info = g_file_query_filesystem_info (file, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, error);
  if (info == NULL)
    return FALSE;
  /* Some file systems (network mounts) do not say; let the writes decide. */
  if (!g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE))
    *free_bytes = G_MAXUINT64;
  else
    *free_bytes = g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  return TRUE;
}

static void
download_job_clear (DownloadJob *job)
{
  g_clear_object (&job->self);
  g_clear_object (&job->model);
  g_clear_pointer (&job->model_dir, g_free);
  g_clear_pointer (&job->base_url, g_free);
  g_clear_pointer (&job->page_url, g_free);
  g_clear_pointer (&job->context, g_main_context_unref);
  g_mutex_clear (&job->mutex);
}

static void
download_job_unref (DownloadJob *job)
{
  g_atomic_rc_box_release_full (job, (GDestroyNotify) download_job_clear);
}

static void
file_plan_free (FilePlan *plan)
{
  g_free (plan->url);
  g_free (plan->description);
  g_free (plan->final_path);
  g_free (plan->partial_path);
  g_free (plan->expected_hash);
  g_free (plan);
}

static gboolean
emit_progress (gpointer data)
{
  DownloadJob *job = data;
  guint64 done, total;

  g_mutex_lock (&job->mutex);
  job->progress_queued = FALSE;
  done = job->done;
  total = job->total;
  g_mutex_unlock (&job->mutex);

  g_signal_emit (job->self, signals[PROGRESS], 0, job->model, done, total);
  return G_SOURCE_REMOVE;
}

/* Adds to the bytes done and queues one progress emission; emissions coalesce
 * while the main context is busy, so a fast transfer does not flood it. */
static void
report_progress (DownloadJob *job,
                 gint64       delta)
{
  gboolean queue;

  g_mutex_lock (&job->mutex);
  job->done = (guint64) ((gint64) job->done + delta);
  queue = !job->progress_queued;
  job->progress_queued = TRUE;
  g_mutex_unlock (&job->mutex);

  if (queue)
    onestep_main_context_post (job->context, "[onestep] download progress", emit_progress,
                               g_atomic_rc_box_acquire (job),
                               (GDestroyNotify) download_job_unref);
}

/* Where a file's bytes collect until they are verified and renamed into place. */
static char *
partial_path (const char               *model_dir,
              const OnestepCatalogFile *file)
{
  g_autofree char *final_path = g_build_filename (model_dir, file->local_path, NULL);

  return g_strconcat (final_path, PARTIAL_SUFFIX, NULL);
}

static char *
file_url (const char               *base_url,
          const OnestepCatalogFile *file)
{
  g_autofree char *revision = g_uri_escape_string (file->revision, NULL, FALSE);
  g_autofree char *path = g_uri_escape_string (file->path, "/", FALSE);
  const char *separator = g_str_has_suffix (base_url, "/") ? "" : "/";

  return g_strconcat (base_url, separator, file->repository, "/resolve/", revision, "/", path, NULL);
}

static guint64
file_size_or_zero (const char *path)
{
  GStatBuf buf;

  if (g_stat (path, &buf) != 0)
    return 0;
  return (guint64) buf.st_size;
}

static OnestepHubRequest
hub_request (DownloadJob    *job,
             const FilePlan *plan,
             const char     *token)
{
  OnestepHubRequest request;

  request.url = plan->url;
  request.token = token;
  request.description = plan->description;
  request.page_url = job->page_url;
  return request;
}

/* Works out what each file needs: its URL, expected hash and size, how much of
 * it is on disk, and whether it is already in place (a final file exists only
 * after it was verified). */
static GPtrArray *
plan_files (DownloadJob   *job,
            SoupSession   *session,
            const char    *token,
            GCancellable  *cancellable,
            GError       **error)
{
  g_autoptr(GPtrArray) plans = g_ptr_array_new_with_free_func ((GDestroyNotify) file_plan_free);
  GPtrArray *files = onestep_catalog_model_get_files (job->model);

  for (guint i = 0; i < files->len; i++)
    {
      const OnestepCatalogFile *file = g_ptr_array_index (files, i);
      FilePlan *plan = g_new0 (FilePlan, 1);
      OnestepHubFileInfo info = { NULL, 0 };
      OnestepHubRequest request;

      g_ptr_array_add (plans, plan);
      plan->file = file;
      plan->url = file_url (job->base_url, file);
      plan->description = g_strdup_printf ("%s from %s", file->path, file->repository);
      plan->final_path = g_build_filename (job->model_dir, file->local_path, NULL);
      plan->partial_path = partial_path (job->model_dir, file);

      if (g_file_test (plan->final_path, G_FILE_TEST_IS_REGULAR))
        {
          plan->in_place = TRUE;
          plan->size = file_size_or_zero (plan->final_path);
          plan->size_on_disk = plan->size;
          continue;
        }

      request = hub_request (job, plan, token);
      if (!_onestep_hub_query_file (session, &request, &info, cancellable, error))
        return NULL;

      if (file->sha256 != NULL && info.hash != NULL && strlen (info.hash) == 64 &&
          !g_str_equal (info.hash, file->sha256))
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CHECKSUM,
                       "The hub now serves a different %s (sha256 %s) than the catalogue "
                       "lists (%s); not downloading it.",
                       plan->description, info.hash, file->sha256);
          _onestep_hub_file_info_clear (&info);
          return NULL;
        }
      plan->expected_hash = g_strdup (file->sha256 ? file->sha256 : info.hash);
      plan->size = info.size > 0 ? info.size : file->size;
      _onestep_hub_file_info_clear (&info);
      if (plan->expected_hash == NULL)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CHECKSUM,
                       "Neither the catalogue nor the hub gives a hash for %s, so it cannot "
                       "be verified; not downloading it.", plan->description);
          return NULL;
        }

      plan->size_on_disk = file_size_or_zero (plan->partial_path);
      if (plan->size_on_disk > plan->size)
        {
          g_unlink (plan->partial_path);
          plan->size_on_disk = 0;
        }
    }
  return g_steal_pointer (&plans);
}

static gboolean
check_free_space (DownloadJob  *job,
                  guint64       bytes_needed,
                  GError      **error)
{
  OnestepModelDownloader *self = job->self;
  guint64 free_bytes = 0;

  if (!self->free_space_func (job->model_dir, &free_bytes, self->free_space_data, error))
    return FALSE;
  if (free_bytes < bytes_needed)
    {
      g_autofree char *needed_text = g_format_size (bytes_needed);
      g_autofree char *free_text = g_format_size (free_bytes);

      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_NO_SPACE,
                   "Not enough disk space for %s in %s: it needs %s more, but only %s are free.",
                   onestep_catalog_model_get_name (job->model), job->model_dir,
                   needed_text, free_text);
      return FALSE;
    }
  return TRUE;
}

static void
set_write_error (GError        **error,
                 GError         *cause,
                 const FilePlan *plan)
{
  if (g_error_matches (cause, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
    g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_NO_SPACE,
                 "The disk is full: could not write %s. Free some space and start the "
                 "download again to resume.", plan->partial_path);
  else
    g_propagate_prefixed_error (error, g_error_copy (cause), "Could not write %s: ",
                                plan->partial_path);
}

/* Streams the rest of the file into its .incomplete file, which holds have
 * bytes. Returns the bytes it holds afterwards, or -1 on error. */
static gint64
transfer_file (DownloadJob    *job,
               SoupSession    *session,
               const FilePlan *plan,
               guint64         have,
               const char     *token,
               GCancellable   *cancellable,
               GError        **error)
{
  g_autoptr(GFile) partial = g_file_new_for_path (plan->partial_path);
  g_autoptr(GInputStream) input = NULL;
  g_autoptr(GFileOutputStream) output = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree guint8 *buffer = NULL;
  OnestepHubRequest request = hub_request (job, plan, token);
  guint64 body_offset = 0;
  gssize n;

  input = _onestep_hub_open_file (session, &request, have, &body_offset, cancellable, error);
  if (input == NULL)
    return -1;

  if (body_offset == 0 && have > 0)
    {
      /* The server sent the whole file again: start over. */
      report_progress (job, -(gint64) have);
      have = 0;
    }
  output = have > 0
    ? g_file_append_to (partial, G_FILE_CREATE_NONE, cancellable, &local_error)
    : g_file_replace (partial, NULL, FALSE, G_FILE_CREATE_NONE, cancellable, &local_error);
  if (output == NULL)
    {
      set_write_error (error, local_error, plan);
      return -1;
    }

  buffer = g_malloc (CHUNK_SIZE);
  while ((n = g_input_stream_read (input, buffer, CHUNK_SIZE, cancellable, &local_error)) > 0)
    {
      if (!g_output_stream_write_all (G_OUTPUT_STREAM (output), buffer, n, NULL, cancellable,
                                      &local_error))
        break;
      have += n;
      report_progress (job, n);
    }
  /* Close even after an error so the bytes received so far are kept for resuming. */
  g_output_stream_close (G_OUTPUT_STREAM (output), NULL, local_error ? NULL : &local_error);
  g_input_stream_close (input, NULL, NULL);

  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                   "The download of %s was stopped; downloading it again resumes it.",
                   onestep_catalog_model_get_name (job->model));
      return -1;
    }
  if (local_error != NULL && n > 0)
    {
      set_write_error (error, local_error, plan);
      return -1;
    }
  if (local_error != NULL || have < plan->size)
    {
      g_autofree char *have_text = g_format_size (have);
      g_autofree char *size_text = g_format_size (plan->size);

      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INTERRUPTED,
                   "The transfer of %s broke off after %s of %s%s%s. Start the download "
                   "again to resume where it stopped.",
                   plan->description, have_text, size_text,
                   local_error ? ": " : "", local_error ? local_error->message : "");
      return -1;
    }
  return (gint64) have;
}

static gboolean
install_file (DownloadJob    *job,
              SoupSession    *session,
              const FilePlan *plan,
              const char     *token,
              GCancellable   *cancellable,
              GError        **error)
{
  g_autofree char *directory = g_path_get_dirname (plan->final_path);
  g_autofree char *actual = NULL;
  gint64 have = (gint64) file_size_or_zero (plan->partial_path);
  gboolean matches = FALSE;

  if (g_mkdir_with_parents (directory, 0755) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "Could not create %s: %s", directory, g_strerror (saved_errno));
      return FALSE;
    }

  if ((guint64) have < plan->size &&
      (have = transfer_file (job, session, plan, (guint64) have, token, cancellable, error)) < 0)
    return FALSE;

  if ((guint64) have == plan->size)
    {
      g_autoptr(GError) hash_error = NULL;

      if (_onestep_file_has_hash (plan->partial_path, plan->expected_hash, &actual,
                                  cancellable, &hash_error))
        matches = TRUE;
      else if (hash_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&hash_error));
          return FALSE;
        }
    }
  if (!matches)
    {
      g_unlink (plan->partial_path);
      report_progress (job, -have);
      if (actual == NULL)
        g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CHECKSUM,
                     "%s is %" G_GINT64_FORMAT " bytes, not the %" G_GUINT64_FORMAT
                     " the hub announced; the download was deleted.",
                     plan->description, have, plan->size);
      else
        g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CHECKSUM,
                     "%s is corrupt: it hashes to %s instead of %s. The download was deleted; "
                     "try again.", plan->description, actual, plan->expected_hash);
      return FALSE;
    }

  /* Same folder, so the rename is atomic: the model's file is either absent or whole. */
  if (g_rename (plan->partial_path, plan->final_path) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "Could not move %s into place: %s", plan->final_path, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

static OnestepInstalledModel *
run_download (DownloadJob   *job,
              GCancellable  *cancellable,
              GError       **error)
{
  OnestepModelDownloader *self = job->self;
  g_autoptr(SoupSession) session = _onestep_hub_session_new ();
  g_autoptr(GPtrArray) plans = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autofree char *token = NULL;
  g_autofree char *unet_file = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *unet_name;
  guint64 bytes_needed;

  /* Without a keyring most models still download; a gated one then fails
   * with a message asking for a token. */
  if (self->tokens != NULL &&
      !(token = onestep_token_provider_lookup_token (self->tokens, cancellable, &local_error)) &&
      local_error != NULL)
    g_debug ("No access token: %s", local_error->message);

  if (g_mkdir_with_parents (job->model_dir, 0755) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "Could not create the model folder %s: %s", job->model_dir,
                   g_strerror (saved_errno));
      return NULL;
    }

  if (!(plans = plan_files (job, session, token, cancellable, error)))
    return NULL;
  g_mutex_lock (&job->mutex);
  for (guint i = 0; i < plans->len; i++)
    {
      const FilePlan *plan = g_ptr_array_index (plans, i);

      job->total += plan->size;
      job->done += plan->size_on_disk;
    }
  bytes_needed = job->total - job->done;
  g_mutex_unlock (&job->mutex);
  if (!check_free_space (job, bytes_needed, error))
    return NULL;
  report_progress (job, 0);

  for (guint i = 0; i < plans->len; i++)
    {
      FilePlan *plan = g_ptr_array_index (plans, i);

      if (!plan->in_place && !install_file (job, session, plan, token, cancellable, error))
        return NULL;
    }

  unet_name = onestep_catalog_model_get_unet_file (job->model);
  if (unet_name != NULL)
    unet_file = g_build_filename (job->model_dir, unet_name, NULL);
  installed = onestep_installed_model_new (onestep_catalog_model_get_id (job->model),
                                           onestep_catalog_model_get_name (job->model),
                                           onestep_catalog_model_get_kind (job->model) == ONESTEP_CATALOG_KIND_FEATURE_NETWORK
                                             ? ONESTEP_INSTALLED_KIND_FEATURE_NETWORK
                                             : ONESTEP_INSTALLED_KIND_DIFFUSERS,
                                           ONESTEP_INSTALLED_SOURCE_DOWNLOAD,
                                           job->model_dir, unet_file, NULL);
  if (!onestep_model_index_add (self->index, installed, error))
    return NULL;
  return g_steal_pointer (&installed);
}

static void
download_worker (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  OnestepModelDownloader *self = source_object;
  DownloadJob *job = task_data;
  GError *error = NULL;
  OnestepInstalledModel *installed = run_download (job, cancellable, &error);

  g_mutex_lock (&self->active_mutex);
  g_hash_table_remove (self->active, onestep_catalog_model_get_id (job->model));
  g_mutex_unlock (&self->active_mutex);

  if (installed == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, installed, g_object_unref);
}

void
onestep_model_downloader_download_async (OnestepModelDownloader *self,
                                         OnestepCatalogModel    *model,
                                         GCancellable           *cancellable,
                                         GAsyncReadyCallback     callback,
                                         gpointer                user_data)
{
  g_autoptr(GTask) task = NULL;
  gboolean already_running;
  DownloadJob *job;

  g_return_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self));
  g_return_if_fail (ONESTEP_IS_CATALOG_MODEL (model));

  /* Two downloads of one model would write the same .incomplete files. */
  g_mutex_lock (&self->active_mutex);
  already_running = !g_hash_table_add (self->active, g_strdup (onestep_catalog_model_get_id (model)));
  g_mutex_unlock (&self->active_mutex);
  if (already_running)
    {
      g_task_report_new_error (self, callback, user_data, onestep_model_downloader_download_async,
                               G_IO_ERROR, G_IO_ERROR_PENDING, "%s is already being downloaded",
                               onestep_catalog_model_get_name (model));
      return;
    }

  job = g_atomic_rc_box_new0 (DownloadJob);
  job->self = g_object_ref (self);
  job->model = g_object_ref (model);
  job->model_dir = onestep_model_downloader_dup_model_dir (self, model);
  job->base_url = g_strdup (self->base_url);
  job->page_url = onestep_catalog_model_dup_page_url (model, self->base_url);
  job->context = g_main_context_ref_thread_default ();
  g_mutex_init (&job->mutex);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_model_downloader_download_async);
  g_task_set_task_data (task, job, (GDestroyNotify) download_job_unref);
  /* Report what really happened: a cancel that lands after the last byte
   * must not hide a completed download. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, download_worker);
}

OnestepInstalledModel *
onestep_model_downloader_download_finish (OnestepModelDownloader  *self,
                                          GAsyncResult            *result,
                                          GError                 **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

gboolean
onestep_model_downloader_discard_partial (OnestepModelDownloader  *self,
                                          OnestepCatalogModel     *model,
                                          GError                 **error)
{
  g_autofree char *model_dir = NULL;
  GPtrArray *files;

  g_return_val_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self), FALSE);
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (model), FALSE);

  model_dir = onestep_model_downloader_dup_model_dir (self, model);
  files = onestep_catalog_model_get_files (model);
  for (guint i = 0; i < files->len; i++)
    {
      g_autofree char *partial = partial_path (model_dir, g_ptr_array_index (files, i));

      if (g_unlink (partial) != 0 && errno != ENOENT)
        {
          int saved_errno = errno;

          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "Could not delete %s: %s", partial, g_strerror (saved_errno));
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
onestep_model_downloader_has_partial (OnestepModelDownloader *self,
                                      OnestepCatalogModel    *model)
{
  g_autofree char *model_dir = NULL;
  GPtrArray *files;

  g_return_val_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self), FALSE);
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (model), FALSE);

  model_dir = onestep_model_downloader_dup_model_dir (self, model);
  files = onestep_catalog_model_get_files (model);
  for (guint i = 0; i < files->len; i++)
    {
      g_autofree char *partial = partial_path (model_dir, g_ptr_array_index (files, i));

      if (g_file_test (partial, G_FILE_TEST_EXISTS))
        return TRUE;
    }
  return FALSE;
}

char *
onestep_model_downloader_dup_model_dir (OnestepModelDownloader *self,
                                        OnestepCatalogModel    *model)
{
  g_return_val_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self), NULL);
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (model), NULL);

  return g_build_filename (onestep_model_index_get_models_dir (self->index),
                           onestep_catalog_model_get_id (model), NULL);
}

void
onestep_model_downloader_set_base_url (OnestepModelDownloader *self,
                                       const char             *base_url)
{
  g_return_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self));
  g_return_if_fail (base_url != NULL);

  g_free (self->base_url);
  self->base_url = g_strdup (base_url);
}

const char *
onestep_model_downloader_get_base_url (OnestepModelDownloader *self)
{
  g_return_val_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self), NULL);
  return self->base_url;
}

void
onestep_model_downloader_set_free_space_func (OnestepModelDownloader *self,
                                              OnestepFreeSpaceFunc    func,
                                              gpointer                user_data,
                                              GDestroyNotify          destroy)
{
  g_return_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (self));

  if (self->free_space_destroy != NULL)
    self->free_space_destroy (self->free_space_data);
  self->free_space_func = func ? func : query_filesystem_free;
  self->free_space_data = func ? user_data : NULL;
  self->free_space_destroy = func ? destroy : NULL;
}

static void
onestep_model_downloader_finalize (GObject *object)
{
  OnestepModelDownloader *self = (OnestepModelDownloader *) object;

  if (self->free_space_destroy != NULL)
    self->free_space_destroy (self->free_space_data);
  g_clear_object (&self->index);
  g_clear_object (&self->tokens);
  g_clear_pointer (&self->base_url, g_free);
  g_clear_pointer (&self->active, g_hash_table_unref);
  g_mutex_clear (&self->active_mutex);

  G_OBJECT_CLASS (onestep_model_downloader_parent_class)->finalize (object);
}

static void
onestep_model_downloader_class_init (OnestepModelDownloaderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = onestep_model_downloader_finalize;

  signals[PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3,
                  ONESTEP_TYPE_CATALOG_MODEL, G_TYPE_UINT64, G_TYPE_UINT64);
}

static void
onestep_model_downloader_init (OnestepModelDownloader *self)
{
  self->base_url = g_strdup (ONESTEP_MODEL_DOWNLOADER_DEFAULT_BASE_URL);
  self->free_space_func = query_filesystem_free;
  self->active = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_mutex_init (&self->active_mutex);
}

OnestepModelDownloader *
onestep_model_downloader_new (OnestepModelIndex    *index,
                              OnestepTokenProvider *tokens)
{
  OnestepModelDownloader *self;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (index), NULL);
  g_return_val_if_fail (tokens == NULL || ONESTEP_IS_TOKEN_PROVIDER (tokens), NULL);

  self = g_object_new (ONESTEP_TYPE_MODEL_DOWNLOADER, NULL);
  self->index = g_object_ref (index);
  self->tokens = tokens ? g_object_ref (tokens) : NULL;
  return self;
}
