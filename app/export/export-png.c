/* export-png.c: a folder of numbered PNG frames; each frame carries the generation
 * settings as tEXt chunks and the folder a settings.json. */
#include "export-metadata.h"
#include "export-private.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>

/* gdk-pixbuf's "tEXt::key" save options, one per setting. */
static void
collect_text_options (const OnestepClipSettings *settings,
                      GPtrArray                 *keys,
                      GPtrArray                 *values)
{
  _onestep_export_settings_to_text (settings, keys, values);
  for (guint i = 0; i < keys->len; i++)
    {
      char *name = keys->pdata[i];

      keys->pdata[i] = g_strconcat ("tEXt::", name, NULL);
      g_free (name);
    }
}

static gboolean
write_frame (const OnestepExportJob *job,
             const char             *dir,
             int                     output_index,
             char                  **keys,
             char                  **values,
             GError                **error)
{
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  g_autofree char *name = g_strdup_printf ("frame-%04d.png", output_index + 1);
  g_autofree char *file = g_build_filename (dir, name, NULL);
  g_autoptr(GError) local_error = NULL;

  pixbuf = gdk_pixbuf_new_from_data (_onestep_export_job_frame (job, output_index),
                                     GDK_COLORSPACE_RGB, FALSE, 8, job->width, job->height,
                                     job->width * 3, NULL, NULL);
  if (!gdk_pixbuf_savev (pixbuf, file, "png", keys, values, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Could not write %s of “%s”: %s"), name, job->path, local_error->message);
      return FALSE;
    }
  return TRUE;
}

gboolean
_onestep_export_write_png_folder (const char             *dir,
                                  const OnestepExportJob *job,
                                  GCancellable           *cancellable,
                                  GError                **error)
{
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func (g_free);

  collect_text_options (job->options->settings, keys, values);
  g_ptr_array_add (keys, NULL);
  g_ptr_array_add (values, NULL);

  for (int i = 0; i < job->length; i++)
    if (!write_frame (job, dir, i, (char **) keys->pdata, (char **) values->pdata, error)
        || !_onestep_export_job_frame_done (job, i, cancellable, error))
      return FALSE;

  if (job->settings_json != NULL)
    {
      g_autofree char *file = g_build_filename (dir, "settings.json", NULL);
      g_autoptr(GError) local_error = NULL;

      if (!g_file_set_contents (file, job->settings_json, -1, &local_error))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       _("Could not write settings.json of “%s”: %s"),
                       job->path, local_error->message);
          return FALSE;
        }
    }
  return TRUE;
}
