/* onestep-cli-train-samples.c: sample clips of a training run's current
 * student from fixed validation images, so that a run can be watched. */
#include "onestep-cli-train-samples.h"

#include <glib/gstdio.h>

#include "export.h"
#include "onestep-image-loader.h"

/* MP4 where this system's FFmpeg has an H.264 encoder, else WebM, else GIF. */
static const char *
sample_extension (OnestepExportFormat *format)
{
  const struct { OnestepExportFormat format; const char *extension; } choices[] = {
    { ONESTEP_EXPORT_FORMAT_MP4, "mp4" }, { ONESTEP_EXPORT_FORMAT_WEBM, "webm" }, { ONESTEP_EXPORT_FORMAT_GIF, "gif" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (choices); i++)
    if (onestep_export_format_available (choices[i].format))
      {
        *format = choices[i].format;
        return choices[i].extension;
      }
  *format = ONESTEP_EXPORT_FORMAT_PNG_FOLDER;
  return NULL;
}

static gboolean
write_sample (onestep_context        *ctx,
              const char             *image_path,
              const onestep_request  *request,
              const char             *output,
              OnestepExportFormat     format,
              GError                **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (image_path);
  g_autoptr(GdkPixbuf) image = onestep_image_loader_load (file, NULL, error);
  g_autoptr(GdkPixbuf) fitted = NULL;
  onestep_error engine_error = { 0 };
  onestep_clip *clip;
  OnestepExportOptions options;
  gboolean written;

  if (image == NULL)
    return FALSE;
  fitted = onestep_image_loader_fit (image, request->width, request->height);
  if (fitted == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "out of memory scaling %s", image_path);
      return FALSE;
    }
  onestep_image view = onestep_cli_image_view (fitted);
  clip = onestep_generate (ctx, &view, request, &engine_error);
  if (clip == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", engine_error.message);
      return FALSE;
    }
  onestep_export_options_init (&options, format);
  options.fps = request->fps;
  written = onestep_export_write (output, clip->rgb, clip->frames, clip->width, clip->height,
                                  &options, NULL, error);
  onestep_clip_free (clip);
  return written;
}

gboolean
onestep_cli_train_write_samples (onestep_trainer                 *trainer,
                                 const char                      *run_dir,
                                 const char                      *model,
                                 const onestep_context_params    *context,
                                 char                           **images,
                                 onestep_sampler                  sampler,
                                 int                              steps,
                                 GError                         **error)
{
  g_autofree char *dir = g_build_filename (run_dir, "samples", NULL);
  g_autofree char *unet = g_build_filename (dir, ".student.safetensors", NULL);
  onestep_context_params params = *context;
  onestep_request request = onestep_request_default ();
  onestep_error engine_error = { 0 };
  OnestepExportFormat format;
  const char *extension = sample_extension (&format);
  onestep_context *ctx;
  gboolean ok = TRUE;
  float fps;

  if (extension == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "no video encoder for samples");
      return FALSE;
    }
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot create %s: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  /* The student as generate sees it: adapters merged, trained tensors in place. */
  if (onestep_trainer_export (trainer, NULL, unet, FALSE, &engine_error) != ONESTEP_OK)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", engine_error.message);
      return FALSE;
    }
  params.unet_file = unet;
  ctx = onestep_context_new (model, &params, &engine_error);
  g_remove (unet);
  if (ctx == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", engine_error.message);
      return FALSE;
    }
  onestep_trainer_clip_size (trainer, &request.frames, &request.width, &request.height, &fps);
  request.fps = (int) (fps + 0.5f);
  request.sampler = sampler;
  request.steps = steps;
  for (int i = 0; ok && images[i] != NULL; i++)
    {
      g_autofree char *name = g_path_get_basename (images[i]);
      char *dot = strrchr (name, '.');
      if (dot != NULL)
        *dot = '\0';
      g_autofree char *output = g_strdup_printf ("%s/step-%06" G_GINT64_FORMAT "-%s.%s", dir,
                                                 (gint64) onestep_trainer_step_count (trainer),
                                                 name, extension);
      ok = write_sample (ctx, images[i], &request, output, format, error);
    }
  onestep_context_free (ctx);
  return ok;
}
