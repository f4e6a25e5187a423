/* export.c: checks the request, writes through a temporary name next to the target and
 * renames it when complete, removing it on failure or cancellation. */
#include "export.h"

#include "export-metadata.h"
#include "export-private.h"
#include "export-sequence.h"

#include <errno.h>
#include <fcntl.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_FPS 7
#define DEFAULT_QUALITY 80

void
onestep_export_options_init (OnestepExportOptions *options,
                             OnestepExportFormat   format)
{
  memset (options, 0, sizeof *options);
  options->format = format;
  options->fps = DEFAULT_FPS;
  options->loop_count = 0;
  options->quality = DEFAULT_QUALITY;
}

gboolean
onestep_export_format_for_path (const char           *path,
                                OnestepExportFormat  *format,
                                GError              **error)
{
  static const struct {
    const char *extension;
    OnestepExportFormat format;
  } known[] = {
    { ".mp4", ONESTEP_EXPORT_FORMAT_MP4 },
    { ".webm", ONESTEP_EXPORT_FORMAT_WEBM },
    { ".gif", ONESTEP_EXPORT_FORMAT_GIF },
  };
  g_autofree char *base = g_path_get_basename (path);
  const char *dot = strrchr (base, '.');

  /* A leading dot names a hidden file, not an extension. */
  if (dot == NULL || dot == base)
    {
      *format = ONESTEP_EXPORT_FORMAT_PNG_FOLDER;
      return TRUE;
    }

  for (guint i = 0; i < G_N_ELEMENTS (known); i++)
    if (g_ascii_strcasecmp (dot, known[i].extension) == 0)
      {
        *format = known[i].format;
        return TRUE;
      }

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               _("“%s”: unknown output format “%s”; use .mp4 (H.264), .webm (VP9), .gif, "
                 "or a name without an extension for a folder of PNG frames"),
               path, dot);
  return FALSE;
}

const char *
onestep_export_format_name (OnestepExportFormat format)
{
  switch (format)
    {
    case ONESTEP_EXPORT_FORMAT_MP4:
      return _("MP4 (H.264)");
    case ONESTEP_EXPORT_FORMAT_WEBM:
      return _("WebM (VP9)");
    case ONESTEP_EXPORT_FORMAT_GIF:
      return "GIF";
    case ONESTEP_EXPORT_FORMAT_PNG_FOLDER:
      return _("PNG frames");
    }
  g_return_val_if_reached (NULL);
}

static gboolean
png_writer_available (void)
{
  g_autoptr(GSList) formats = gdk_pixbuf_get_formats ();

  for (GSList *l = formats; l != NULL; l = l->next)
    {
      g_autofree char *name = gdk_pixbuf_format_get_name (l->data);

      if (g_str_equal (name, "png") && gdk_pixbuf_format_is_writable (l->data))
        return TRUE;
    }
  return FALSE;
}

gboolean
onestep_export_format_available (OnestepExportFormat format)
{
  if (format == ONESTEP_EXPORT_FORMAT_PNG_FOLDER)
    return png_writer_available ();
  return _onestep_export_video_available (format);
}

static gboolean
set_not_supported (GError              **error,
                   OnestepExportFormat   format)
{
  static const OnestepExportFormat fallbacks[] = {
    ONESTEP_EXPORT_FORMAT_WEBM, ONESTEP_EXPORT_FORMAT_GIF, ONESTEP_EXPORT_FORMAT_PNG_FOLDER,
  };

  for (guint i = 0; i < G_N_ELEMENTS (fallbacks); i++)
    if (fallbacks[i] != format && onestep_export_format_available (fallbacks[i]))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                     _("This system cannot write %s; export as %s instead"),
                     onestep_export_format_name (format),
                     onestep_export_format_name (fallbacks[i]));
        return FALSE;
      }

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               _("This system cannot write %s"), onestep_export_format_name (format));
  return FALSE;
}

static gboolean
check_request (const char                 *path,
               const guint8               *rgb,
               int                         frames,
               int                         width,
               int                         height,
               const OnestepExportOptions *options,
               GError                    **error)
{
  const char *problem = NULL;

  if (path == NULL || path[0] == '\0')
    problem = _("the output path is empty");
  else if (rgb == NULL || frames < 1)
    problem = _("there are no frames");
  else if (width < 1 || height < 1 || width > 16384 || height > 16384)
    problem = _("width and height must be between 1 and 16384");
  else if (options->fps < 1 || options->fps > 240)
    problem = _("fps must be between 1 and 240");
  else if (options->loop_count < 0)
    problem = _("loop_count must not be negative");
  else if (options->quality < 0 || options->quality > 100)
    problem = _("quality must be between 0 and 100");

  if (problem != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Cannot export “%s”: %s"), path ? path : "", problem);
      return FALSE;
    }
  return TRUE;
}

gboolean
_onestep_export_job_frame_done (const OnestepExportJob *job,
                                int                     output_index,
                                GCancellable           *cancellable,
                                GError                **error)
{
  if (job->options->progress != NULL)
    job->options->progress (output_index + 1, job->length, job->options->progress_data);
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* A hidden name next to path, so that the final rename stays on one file system. */
static char *
temporary_template (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *name = g_strdup_printf (".%s.XXXXXX.part", base);

  return g_build_filename (dir, name, NULL);
}

static char *
create_temporary (const char          *path,
                  OnestepExportFormat  format,
                  GError             **error)
{
  g_autofree char *temporary = temporary_template (path);
  int saved_errno;

  if (format == ONESTEP_EXPORT_FORMAT_PNG_FOLDER)
    {
      if (g_mkdtemp_full (temporary, 0777) != NULL)
        return g_steal_pointer (&temporary);
    }
  else
    {
      int fd = g_mkstemp_full (temporary, O_RDWR | O_CLOEXEC, 0666);

      if (fd >= 0)
        {
          close (fd);
          return g_steal_pointer (&temporary);
        }
    }

  saved_errno = errno;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               _("Could not export “%s”: %s"), path, g_strerror (saved_errno));
  return NULL;
}

static void
remove_temporary (const char          *temporary,
                  OnestepExportFormat  format)
{
  if (format == ONESTEP_EXPORT_FORMAT_PNG_FOLDER)
    {
      g_autoptr(GDir) dir = g_dir_open (temporary, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *file = g_build_filename (temporary, name, NULL);

          g_unlink (file);
        }
      g_rmdir (temporary);
    }
  else
    {
      g_unlink (temporary);
    }
}

static gboolean
set_error_from_errno (GError     **error,
                      const char  *path)
{
  int saved_errno = errno;

  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               _("Could not save the export as “%s”: %s"), path, g_strerror (saved_errno));
  return FALSE;
}

/* A folder of PNG frames replaces the old folder, moved aside until the new one is in. */
static gboolean
replace_folder (const char  *temporary,
                const char  *path,
                GError     **error)
{
  g_autofree char *old = g_strconcat (temporary, ".old", NULL);

  if (g_rename (path, old) != 0)
    return set_error_from_errno (error, path);
  if (g_rename (temporary, path) != 0)
    {
      set_error_from_errno (error, path);
      g_rename (old, path);
      return FALSE;
    }
  remove_temporary (old, ONESTEP_EXPORT_FORMAT_PNG_FOLDER);
  return TRUE;
}

static gboolean
move_into_place (const char           *temporary,
                 const char           *path,
                 OnestepExportFormat   format,
                 gboolean              replace,
                 GError              **error)
{
  gboolean exists = g_file_test (path, G_FILE_TEST_EXISTS);

  if (exists && !replace)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   _("Could not save the export as “%s”: it already exists"), path);
      return FALSE;
    }
  if (exists && format == ONESTEP_EXPORT_FORMAT_PNG_FOLDER && g_file_test (path, G_FILE_TEST_IS_DIR))
    return replace_folder (temporary, path, error);
  if (g_rename (temporary, path) != 0)
    return set_error_from_errno (error, path);
  return TRUE;
}

gboolean
onestep_export_write (const char                 *path,
                      const guint8               *rgb,
                      int                         frames,
                      int                         width,
                      int                         height,
                      const OnestepExportOptions *options,
                      GCancellable               *cancellable,
                      GError                    **error)
{
  g_autofree int *sequence = NULL;
  g_autofree char *settings_json = NULL;
  g_autofree char *temporary = NULL;
  OnestepExportJob job = { 0 };
  gboolean is_video = options->format != ONESTEP_EXPORT_FORMAT_PNG_FOLDER;
  int repeats = 1;
  gboolean ok;

  g_return_val_if_fail (options != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_request (path, rgb, frames, width, height, options, error))
    return FALSE;
  if (!onestep_export_format_available (options->format))
    return set_not_supported (error, options->format);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  /* MP4 and WebM have no loop field: a count of plays is written out in full. */
  if (is_video && options->format != ONESTEP_EXPORT_FORMAT_GIF && options->loop_count > 1)
    repeats = options->loop_count;

  sequence = _onestep_export_sequence_new (frames, options->ping_pong, repeats, &job.length);
  settings_json = _onestep_export_settings_to_json (options->settings, !is_video);
  job.path = path;
  job.rgb = rgb;
  job.frames = frames;
  job.width = width;
  job.height = height;
  job.sequence = sequence;
  job.options = options;
  job.settings_json = settings_json;

  temporary = create_temporary (path, options->format, error);
  if (temporary == NULL)
    return FALSE;

  if (is_video)
    ok = _onestep_export_encode_video (temporary, &job, cancellable, error);
  else
    ok = _onestep_export_write_png_folder (temporary, &job, cancellable, error);
  ok = ok && move_into_place (temporary, path, options->format, options->replace, error);

  if (!ok)
    remove_temporary (temporary, options->format);
  return ok;
}
