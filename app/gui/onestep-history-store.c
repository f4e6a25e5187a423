/* onestep-history-store.c
 *
 * An entry is saved into a hidden folder next to the others and renamed into
 * place once complete, so a full disk or a crash leaves no half entry: only a
 * hidden folder, which the next load removes.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "onestep-history-store.h"
#include "onestep-image.h"

#define ENTRY_FILE "entry.json"
#define SOURCE_FILE "source.png"
#define SAVING_PREFIX ".saving-"
#define ENTRY_VERSION 1

char *
onestep_history_store_dup_default_folder (void)
{
  return g_build_filename (g_get_user_data_dir (), "onestep", "history", NULL);
}

/* Names sort by time, so the newest entries are found without reading them. */
char *
onestep_history_store_new_entry_name (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *time = g_date_time_format (now, "%Y%m%d-%H%M%S");

  return g_strdup_printf ("%s-%06d-%08x", time, g_date_time_get_microsecond (now), g_random_int ());
}

void
onestep_history_entry_free (OnestepHistoryEntry *entry)
{
  g_free (entry->name);
  g_clear_object (&entry->result);
  g_free (entry);
}

static char *
frame_file_name (int frame)
{
  return g_strdup_printf ("frame-%04d.png", frame + 1);
}

/* Removes a folder and the files in it (entries hold no subfolders). */
static gboolean
remove_entry_folder (const char  *path,
                     GError     **error)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, error);
  const char *name;

  if (dir == NULL)
    return FALSE;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (path, name, NULL);

      if (g_unlink (file) != 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "%s: %s", file, g_strerror (saved_errno));
          return FALSE;
        }
    }

  if (g_rmdir (path) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "%s: %s", path, g_strerror (saved_errno));
      return FALSE;
    }

  return TRUE;
}

/* Saving */

typedef struct
{
  char          *folder;
  char          *entry_name;
  OnestepResult *result;
  GBytes        *source_rgb;  /* NULL when the result has no source image */
  int            source_width;
  int            source_height;
} SaveJob;

static void
save_job_free (SaveJob *job)
{
  g_free (job->folder);
  g_free (job->entry_name);
  g_object_unref (job->result);
  g_clear_pointer (&job->source_rgb, g_bytes_unref);
  g_free (job);
}

static gboolean
save_rgb_png (const guint8  *rgb,
              int            width,
              int            height,
              const char    *path,
              GError       **error)
{
  g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new_from_data (rgb, GDK_COLORSPACE_RGB, FALSE, 8, width, height,
                                                          width * 3, NULL, NULL);
  g_autofree char *png = NULL;
  gsize png_size;

  /* Written whole with g_file_set_contents(), which fails cleanly on a full disk. */
  return gdk_pixbuf_save_to_buffer (pixbuf, &png, &png_size, "png", error, NULL) &&
         g_file_set_contents (path, png, png_size, error);
}

static char *
entry_to_json (OnestepResult *result,
               gboolean       has_source)
{
  const OnestepParams *params = onestep_result_get_params (result);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, ENTRY_VERSION);
  json_builder_set_member_name (builder, "frames");
  json_builder_add_int_value (builder, onestep_result_get_n_frames (result));
  json_builder_set_member_name (builder, "width");
  json_builder_add_int_value (builder, onestep_result_get_width (result));
  json_builder_set_member_name (builder, "height");
  json_builder_add_int_value (builder, onestep_result_get_height (result));
  json_builder_set_member_name (builder, "sampler");
  json_builder_add_string_value (builder, onestep_sampler_name (onestep_result_get_sampler (result)));
  json_builder_set_member_name (builder, "nfe");
  json_builder_add_int_value (builder, onestep_result_get_nfe (result));
  json_builder_set_member_name (builder, "seconds");
  json_builder_add_double_value (builder, onestep_result_get_seconds (result));
  json_builder_set_member_name (builder, "source");
  if (has_source)
    json_builder_add_string_value (builder, SOURCE_FILE);
  else
    json_builder_add_null_value (builder);

  /* The settings as chosen in the window, restored with the clip. */
  json_builder_set_member_name (builder, "params");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "model_path");
  json_builder_add_string_value (builder, params->model_path);
  json_builder_set_member_name (builder, "unet_file");
  json_builder_add_string_value (builder, params->unet_file);
  json_builder_set_member_name (builder, "device");
  json_builder_add_int_value (builder, params->device);
  json_builder_set_member_name (builder, "precision");
  json_builder_add_int_value (builder, params->precision);
  json_builder_set_member_name (builder, "sampler");
  json_builder_add_string_value (builder, onestep_sampler_name (params->sampler));
  json_builder_set_member_name (builder, "steps");
  json_builder_add_int_value (builder, params->steps);
  json_builder_set_member_name (builder, "seed");
  json_builder_add_int_value (builder, params->seed);
  json_builder_set_member_name (builder, "frames");
  json_builder_add_int_value (builder, params->frames);
  json_builder_set_member_name (builder, "width");
  json_builder_add_int_value (builder, params->width);
  json_builder_set_member_name (builder, "height");
  json_builder_add_int_value (builder, params->height);
  json_builder_set_member_name (builder, "fps");
  json_builder_add_int_value (builder, params->fps);
  json_builder_set_member_name (builder, "motion_bucket_id");
  json_builder_add_int_value (builder, params->motion_bucket_id);
  json_builder_set_member_name (builder, "noise_aug_strength");
  json_builder_add_double_value (builder, params->noise_aug_strength);
  json_builder_set_member_name (builder, "crop_position");
  json_builder_add_double_value (builder, params->crop_position);
  json_builder_end_object (builder);

  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  return json_generator_to_data (generator, NULL);
}

static gboolean
save_entry (SaveJob       *job,
            const char    *saving,
            GError       **error)
{
  OnestepResult *result = job->result;
  int width = onestep_result_get_width (result);
  int height = onestep_result_get_height (result);
  const guint8 *frames = g_bytes_get_data (onestep_result_get_frames (result), NULL);
  g_autofree char *json = NULL;
  g_autofree char *entry_path = NULL;

  if (g_mkdir_with_parents (saving, 0700) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "%s: %s", saving, g_strerror (saved_errno));
      return FALSE;
    }

  for (int frame = 0; frame < onestep_result_get_n_frames (result); frame++)
    {
      g_autofree char *name = frame_file_name (frame);
      g_autofree char *path = g_build_filename (saving, name, NULL);

      if (!save_rgb_png (frames + (gsize)frame * width * height * 3, width, height, path, error))
        return FALSE;
    }

  if (job->source_rgb != NULL)
    {
      g_autofree char *path = g_build_filename (saving, SOURCE_FILE, NULL);

      if (!save_rgb_png (g_bytes_get_data (job->source_rgb, NULL), job->source_width,
                         job->source_height, path, error))
        return FALSE;
    }

  /* Last: an entry folder with its entry.json is a complete one. */
  json = entry_to_json (result, job->source_rgb != NULL);
  entry_path = g_build_filename (saving, ENTRY_FILE, NULL);
  return g_file_set_contents (entry_path, json, -1, error);
}

static void
save_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  SaveJob *job = task_data;
  g_autofree char *saving_name = g_strconcat (SAVING_PREFIX, job->entry_name, NULL);
  g_autofree char *saving = g_build_filename (job->folder, saving_name, NULL);
  g_autofree char *saved = g_build_filename (job->folder, job->entry_name, NULL);
  GError *error = NULL;

  if (save_entry (job, saving, &error) && g_rename (saving, saved) != 0)
    {
      int saved_errno = errno;

      g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "%s: %s", saved, g_strerror (saved_errno));
    }

  if (error != NULL)
    {
      /* Nothing partial stays behind; what cannot be removed now, the next load removes. */
      if (g_file_test (saving, G_FILE_TEST_IS_DIR))
        remove_entry_folder (saving, NULL);
      g_task_return_error (task, error);
      return;
    }

  g_task_return_boolean (task, TRUE);
}

/* Writes result, with its source image, as the entry entry_name of folder. */
void
onestep_history_store_save_async (const char          *folder,
                                  const char          *entry_name,
                                  OnestepResult       *result,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GdkTexture *source = onestep_result_get_source (result);
  SaveJob *job;

  g_return_if_fail (folder != NULL && entry_name != NULL);
  g_return_if_fail (ONESTEP_IS_RESULT (result));

  job = g_new0 (SaveJob, 1);
  job->folder = g_strdup (folder);
  job->entry_name = g_strdup (entry_name);
  job->result = g_object_ref (result);
  /* Read here, in the main thread: a texture may live on the GPU. */
  if (source != NULL)
    {
      job->source_rgb = onestep_image_rgb_from_texture (source);
      job->source_width = gdk_texture_get_width (source);
      job->source_height = gdk_texture_get_height (source);
    }

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_history_store_save_async);
  g_task_set_task_data (task, job, (GDestroyNotify)save_job_free);
  g_task_run_in_thread (task, save_thread);
}

gboolean
onestep_history_store_save_finish (GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Loading */

static gboolean
read_int (JsonObject  *object,
          const char  *member,
          int          min,
          int          max,
          int         *value,
          GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);
  gint64 read;

  if (node == NULL || json_node_get_value_type (node) != G_TYPE_INT64 ||
      (read = json_node_get_int (node)) < min || read > max)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("“%s” is missing or out of range"), member);
      return FALSE;
    }

  *value = (int)read;
  return TRUE;
}

static gboolean
read_double (JsonObject  *object,
             const char  *member,
             double      *value,
             GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      (json_node_get_value_type (node) != G_TYPE_DOUBLE && json_node_get_value_type (node) != G_TYPE_INT64))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("“%s” is missing"), member);
      return FALSE;
    }

  *value = json_node_get_double (node);
  return TRUE;
}

static gboolean
read_sampler (JsonObject       *object,
              onestep_sampler  *sampler,
              GError          **error)
{
  const char *name = json_object_get_string_member_with_default (object, "sampler", "");

  if (!onestep_sampler_from_name (name, sampler))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("unknown sampler “%s”"), name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_params (JsonObject     *object,
             OnestepParams  *params,
             GError        **error)
{
  gint64 seed;
  int device;
  int precision;
  JsonNode *seed_node = json_object_get_member (object, "seed");

  params->model_path = g_strdup (json_object_get_string_member_with_default (object, "model_path", NULL));
  params->unet_file = g_strdup (json_object_get_string_member_with_default (object, "unet_file", NULL));
  if (!read_int (object, "device", ONESTEP_DEVICE_AUTO, ONESTEP_DEVICE_CUDA, &device, error) ||
      !read_int (object, "precision", ONESTEP_PRECISION_AUTO, ONESTEP_PRECISION_BF16, &precision, error) ||
      !read_sampler (object, &params->sampler, error) ||
      !read_int (object, "steps", 1, 1000, &params->steps, error) ||
      !read_int (object, "frames", 1, 1024, &params->frames, error) ||
      !read_int (object, "width", 0, 8192, &params->width, error) ||
      !read_int (object, "height", 0, 8192, &params->height, error) ||
      !read_int (object, "fps", 0, 1000, &params->fps, error) ||
      !read_int (object, "motion_bucket_id", 0, 1023, &params->motion_bucket_id, error) ||
      !read_double (object, "noise_aug_strength", &params->noise_aug_strength, error) ||
      !read_double (object, "crop_position", &params->crop_position, error))
    return FALSE;

  /* The seed is a guint32, beyond read_int()'s range. */
  if (seed_node == NULL || json_node_get_value_type (seed_node) != G_TYPE_INT64 ||
      (seed = json_node_get_int (seed_node)) < 0 || seed > G_MAXUINT32)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("“%s” is missing or out of range"), "seed");
      return FALSE;
    }

  params->seed = (guint32)seed;
  params->device = device;
  params->precision = precision;
  return TRUE;
}

/* The RGB8 pixels of a PNG that must be width x height. */
static gboolean
load_rgb_png (const char  *path,
              int          width,
              int          height,
              guint8      *rgb,
              GError     **error)
{
  g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file (path, error);
  const guint8 *pixels;
  int stride;
  int channels;

  if (pixbuf == NULL)
    return FALSE;
  if (gdk_pixbuf_get_width (pixbuf) != width || gdk_pixbuf_get_height (pixbuf) != height ||
      gdk_pixbuf_get_bits_per_sample (pixbuf) != 8)
    {
      g_autofree char *name = g_path_get_basename (path);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("%s is not a %d × %d image"), name, width, height);
      return FALSE;
    }

  pixels = gdk_pixbuf_read_pixels (pixbuf);
  stride = gdk_pixbuf_get_rowstride (pixbuf);
  channels = gdk_pixbuf_get_n_channels (pixbuf);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      memcpy (rgb + ((gsize)y * width + x) * 3, pixels + (gsize)y * stride + (gsize)x * channels, 3);
  return TRUE;
}

static OnestepResult *
load_entry (const char  *path,
            GError     **error)
{
  g_autofree char *entry_path = g_build_filename (path, ENTRY_FILE, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(OnestepParams) params = onestep_params_new ();
  g_autoptr(GBytes) frames = NULL;
  g_autoptr(GdkPixbuf) source = NULL;
  OnestepResult *result;
  JsonObject *object;
  JsonNode *params_node;
  onestep_sampler sampler;
  const char *source_name;
  int version, n_frames, width, height, nfe;
  double seconds;
  guint8 *rgb;
  gsize frame_size;

  if (!json_parser_load_from_file (parser, entry_path, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("%s is not a JSON object"), ENTRY_FILE);
      return NULL;
    }

  object = json_node_get_object (json_parser_get_root (parser));
  params_node = json_object_get_member (object, "params");
  if (!read_int (object, "version", ENTRY_VERSION, ENTRY_VERSION, &version, error) ||
      !read_int (object, "frames", 1, 1024, &n_frames, error) ||
      !read_int (object, "width", 1, 8192, &width, error) ||
      !read_int (object, "height", 1, 8192, &height, error) ||
      !read_int (object, "nfe", 0, G_MAXINT, &nfe, error) ||
      !read_double (object, "seconds", &seconds, error) ||
      !read_sampler (object, &sampler, error))
    return NULL;
  if (params_node == NULL || !JSON_NODE_HOLDS_OBJECT (params_node))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("“%s” is missing"), "params");
      return NULL;
    }
  if (!read_params (json_node_get_object (params_node), params, error))
    return NULL;

  frame_size = (gsize)width * height * 3;
  rgb = g_try_malloc (frame_size * n_frames);
  if (rgb == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, _("not enough memory for its frames"));
      return NULL;
    }
  frames = g_bytes_new_take (rgb, frame_size * n_frames);
  for (int frame = 0; frame < n_frames; frame++)
    {
      g_autofree char *name = frame_file_name (frame);
      g_autofree char *frame_path = g_build_filename (path, name, NULL);

      if (!load_rgb_png (frame_path, width, height, rgb + frame * frame_size, error))
        return NULL;
    }

  source_name = json_object_get_string_member_with_default (object, "source", NULL);
  if (source_name != NULL)
    {
      g_autofree char *source_path = g_build_filename (path, SOURCE_FILE, NULL);

      source = gdk_pixbuf_new_from_file (source_path, error);
      if (source == NULL)
        return NULL;
    }

  result = onestep_result_new (frames, n_frames, width, height, params, sampler, nfe, seconds);
  if (source != NULL)
    {
      g_autoptr(GdkTexture) texture = gdk_texture_new_for_pixbuf (source);

      onestep_result_set_source (result, texture);
    }
  return result;
}

typedef struct
{
  GPtrArray *entries;
  GPtrArray *problems;
} LoadOutcome;

static void
load_outcome_free (LoadOutcome *outcome)
{
  g_clear_pointer (&outcome->entries, g_ptr_array_unref);
  g_clear_pointer (&outcome->problems, g_ptr_array_unref);
  g_free (outcome);
}

static int
compare_names_newest_first (gconstpointer a,
                            gconstpointer b)
{
  return -g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

typedef struct
{
  char  *folder;
  guint  max_entries;
} LoadJob;

static void
load_job_free (LoadJob *job)
{
  g_free (job->folder);
  g_free (job);
}

static void
load_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  LoadJob *job = task_data;
  const char *folder = job->folder;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  LoadOutcome *outcome;
  GError *error = NULL;
  GDir *dir;
  const char *name;

  outcome = g_new0 (LoadOutcome, 1);
  outcome->entries = g_ptr_array_new_with_free_func ((GDestroyNotify)onestep_history_entry_free);
  outcome->problems = g_ptr_array_new_with_free_func (g_free);

  dir = g_dir_open (folder, 0, &error);
  if (dir == NULL)
    {
      /* No history yet. */
      if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_clear_error (&error);
          g_task_return_pointer (task, outcome, (GDestroyNotify)load_outcome_free);
        }
      else
        {
          load_outcome_free (outcome);
          g_task_return_error (task, error);
        }
      return;
    }

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (folder, name, NULL);

      if (!g_file_test (path, G_FILE_TEST_IS_DIR))
        continue;
      /* Left by a save that did not finish: incomplete by design. */
      if (g_str_has_prefix (name, SAVING_PREFIX))
        remove_entry_folder (path, NULL);
      else if (name[0] != '.')
        g_ptr_array_add (names, g_strdup (name));
    }
  g_dir_close (dir);

  g_ptr_array_sort (names, compare_names_newest_first);
  for (guint i = 0; i < names->len && outcome->entries->len < job->max_entries; i++)
    {
      const char *entry_name = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (folder, entry_name, NULL);
      g_autoptr(GError) entry_error = NULL;
      OnestepResult *result;

      if (g_cancellable_is_cancelled (cancellable))
        break;

      result = load_entry (path, &entry_error);
      if (result != NULL)
        {
          OnestepHistoryEntry *entry = g_new0 (OnestepHistoryEntry, 1);

          entry->name = g_strdup (entry_name);
          entry->result = result;
          g_ptr_array_add (outcome->entries, entry);
        }
      else
        {
          /* Translators: a history entry on disk that is skipped, and why */
          g_ptr_array_add (outcome->problems,
                           g_strdup_printf (_("The history entry “%s” could not be read and was skipped: %s"),
                                            path, entry_error->message));
        }
    }

  g_task_return_pointer (task, outcome, (GDestroyNotify)load_outcome_free);
}

void
onestep_history_store_load_async (const char          *folder,
                                  guint                max_entries,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  LoadJob *job;

  g_return_if_fail (folder != NULL);

  job = g_new0 (LoadJob, 1);
  job->folder = g_strdup (folder);
  job->max_entries = max_entries;
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_history_store_load_async);
  g_task_set_task_data (task, job, (GDestroyNotify)load_job_free);
  g_task_run_in_thread (task, load_thread);
}

GPtrArray *
onestep_history_store_load_finish (GAsyncResult  *result,
                                   GPtrArray    **problems,
                                   GError       **error)
{
  LoadOutcome *outcome;
  GPtrArray *entries;

  g_return_val_if_fail (G_IS_TASK (result), NULL);

  outcome = g_task_propagate_pointer (G_TASK (result), error);
  if (outcome == NULL)
    return NULL;

  entries = g_steal_pointer (&outcome->entries);
  if (problems != NULL)
    *problems = g_steal_pointer (&outcome->problems);
  load_outcome_free (outcome);
  return entries;
}

/* Deleting */

static void
delete_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  const char *path = task_data;
  GError *error = NULL;

  /* Still being saved: the save's end removes it. */
  if (!g_file_test (path, G_FILE_TEST_IS_DIR) || remove_entry_folder (path, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
onestep_history_store_delete_async (const char          *folder,
                                    const char          *entry_name,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (folder != NULL && entry_name != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_history_store_delete_async);
  g_task_set_task_data (task, g_build_filename (folder, entry_name, NULL), g_free);
  g_task_run_in_thread (task, delete_thread);
}

gboolean
onestep_history_store_delete_finish (GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
