/* onestep-cli-generate.c: `onestep-cli generate`, one image to a clip of frames. */
#include <json-glib/json-glib.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>

#include "export.h"
#include "onestep-cli.h"

#define UNSET INT_MIN
#define MAX_SIDE 16384

static volatile sig_atomic_t interrupted;

static void
on_interrupt (int signum)
{
  interrupted = 1;
}

static bool
should_abort (void *user_data)
{
  return interrupted != 0;
}

static void
print_progress (const onestep_progress *progress,
                void                   *user_data)
{
  if (progress->n_steps > 0)
    fprintf (stderr, "%3d%% %s %d/%d\n", (int) (progress->fraction * 100.0f),
             onestep_stage_name (progress->stage), progress->step, progress->n_steps);
  else
    fprintf (stderr, "%3d%% %s\n", (int) (progress->fraction * 100.0f),
             onestep_stage_name (progress->stage));
}

/* An option the user gave must be at least `min`. */
static gboolean
check_at_least (const char *option,
                int         value,
                int         min)
{
  if (value != UNSET && value < min)
    {
      onestep_cli_fail ("%s %d: must be at least %d", option, value, min);
      return FALSE;
    }
  return TRUE;
}

static void
print_json_summary (const onestep_clip              *clip,
                    const onestep_model_info        *info,
                    const onestep_request           *request,
                    const char                      *output,
                    double                           seconds_total)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  JsonObject *summary = json_object_new ();
  JsonObject *seconds = json_object_new ();
  JsonArray *sigmas = json_array_sized_new (clip->n_sigmas);
  g_autofree char *text = NULL;

  json_object_set_string_member (summary, "output", output);
  json_object_set_string_member (summary, "device", info->device_name);
  json_object_set_int_member (summary, "frames", clip->frames);
  json_object_set_int_member (summary, "width", clip->width);
  json_object_set_int_member (summary, "height", clip->height);
  json_object_set_int_member (summary, "steps", clip->steps);
  json_object_set_string_member (summary, "sampler", onestep_sampler_name (clip->sampler));
  json_object_set_int_member (summary, "seed", (gint64) request->seed);
  json_object_set_int_member (summary, "nfe", clip->nfe);
  for (int i = 0; i < clip->n_sigmas; i++)
    json_array_add_double_element (sigmas, clip->sigmas[i]);
  json_object_set_array_member (summary, "sigmas", sigmas);
  json_object_set_double_member (seconds, "clip", clip->seconds_clip);
  json_object_set_double_member (seconds, "encode", clip->seconds_encode);
  json_object_set_double_member (seconds, "denoise", clip->seconds_denoise);
  json_object_set_double_member (seconds, "decode", clip->seconds_decode);
  json_object_set_double_member (seconds, "total", seconds_total);
  json_object_set_object_member (summary, "seconds", seconds);
  json_object_set_int_member (summary, "peak_bytes", (gint64) clip->peak_bytes);
  json_node_take_object (root, summary);

  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  printf ("%s\n", text);
}

/* OUT in the format its extension names; the generation settings go into the
 * file's metadata. */
static gboolean
write_clip (const char             *output,
            OnestepExportFormat     format,
            const onestep_clip     *clip,
            const onestep_request  *request,
            const char             *model,
            const char             *unet_file,
            double                  crop_position,
            GError                **error)
{
  OnestepClipSettings settings = {
    .model = model,
    .unet_file = unet_file,
    .sampler = onestep_sampler_name (clip->sampler),
    .seed = request->seed,
    .steps = clip->steps,
    .frames = clip->frames,
    .width = clip->width,
    .height = clip->height,
    .fps = request->fps,
    .motion_bucket_id = request->motion_bucket_id,
    .noise_aug_strength = request->noise_aug_strength,
    .crop_position = crop_position,
  };
  OnestepExportOptions options;

  onestep_export_options_init (&options, format);
  options.fps = request->fps;
  options.settings = &settings;
  return onestep_export_write (output, clip->rgb, clip->frames, clip->width, clip->height,
                               &options, NULL, error);
}

int
onestep_cli_generate (int    argc,
                      char **argv)
{
  g_autofree char *model = NULL, *output = NULL, *device_name = NULL, *seed_text = NULL;
  g_autofree char *precision_name = NULL;
  g_autofree char *sampler_name = NULL;
  int steps = UNSET, frames = UNSET, width = UNSET, height = UNSET, fps = UNSET;
  int motion = UNSET, threads = 0, decode_chunk = UNSET;
  double noise_aug = NAN, min_guidance = NAN, max_guidance = NAN;
  double crop_position = ONESTEP_CROP_CENTRE;
  gboolean json = FALSE;
  g_auto(GStrv) images = NULL;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Model folder (diffusers layout)", "PATH" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &output, "Output: .mp4, .webm, .gif, or no extension for a folder of PNG frames", "OUT" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "Sampling steps (default: the model's)", "N" },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed_text, "Noise seed (default 0)", "S" },
    { "frames", 0, 0, G_OPTION_ARG_INT, &frames, "Frames (default: the UNet's num_frames)", "F" },
    { "width", 0, 0, G_OPTION_ARG_INT, &width, "Width in pixels", "W" },
    { "height", 0, 0, G_OPTION_ARG_INT, &height, "Height in pixels", "H" },
    { "fps", 0, 0, G_OPTION_ARG_INT, &fps, "Frame rate conditioning (default 7)", "N" },
    { "motion-bucket", 0, 0, G_OPTION_ARG_INT, &motion, "Motion bucket id (default 127)", "M" },
    { "noise-aug", 0, 0, G_OPTION_ARG_DOUBLE, &noise_aug, "Noise augmentation (default 0.02)", "A" },
    { "crop-position", 0, 0, G_OPTION_ARG_DOUBLE, &crop_position,
      "Where the image is cropped to the clip's shape: 0 keeps its left or top edge, "
      "1 its right or bottom edge (default 0.5, the middle)", "P" },
    { "min-guidance", 0, 0, G_OPTION_ARG_DOUBLE, &min_guidance, "Guidance of the first frame", "G" },
    { "max-guidance", 0, 0, G_OPTION_ARG_DOUBLE, &max_guidance, "Guidance of the last frame", "G" },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &sampler_name, "euler, cm, tts or auto", "NAME" },
    { "decode-chunk", 0, 0, G_OPTION_ARG_INT, &decode_chunk, "Frames decoded together (default all)", "N" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu, cuda or auto (default)", "D" },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &precision_name,
      "GPU arithmetic: auto (fp16, default), fp32, tf32, fp16 or bf16", "P" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a one-line JSON summary on stdout", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images, NULL, "IMAGE" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- turn one image into a clip");
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) image_file = NULL;
  g_autoptr(GdkPixbuf) image = NULL;
  g_autoptr(GdkPixbuf) fitted = NULL;
  onestep_context_params params = onestep_context_default_params ();
  g_auto(OnestepCliModelOptions) model_options = { 0 };
  onestep_request request = onestep_request_default ();
  onestep_context *ctx;
  const onestep_model_info *info;
  onestep_clip *clip;
  onestep_error engine_error = { 0 };
  OnestepExportFormat format;
  gint64 started = g_get_monotonic_time ();
  gboolean written;
  guint64 seed = 0;

  g_option_context_add_main_entries (options, entries, NULL);
  g_option_context_add_group (options, onestep_cli_model_option_group (&model_options));
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (model == NULL || output == NULL || images == NULL || g_strv_length (images) != 1)
    {
      onestep_cli_fail ("generate needs --model PATH, --output OUT and exactly one IMAGE");
      return 2;
    }
  if (!check_at_least ("--steps", steps, 1) || !check_at_least ("--frames", frames, 1) ||
      !check_at_least ("--width", width, 1) || !check_at_least ("--height", height, 1) ||
      !check_at_least ("--fps", fps, 1) || !check_at_least ("--motion-bucket", motion, 0) ||
      !check_at_least ("--decode-chunk", decode_chunk, 1) || !check_at_least ("--threads", threads, 0))
    return 2;
  if (!(crop_position >= 0.0 && crop_position <= 1.0))
    {
      onestep_cli_fail ("--crop-position: expected a number from 0 to 1");
      return 2;
    }
  if ((width != UNSET && width > MAX_SIDE) || (height != UNSET && height > MAX_SIDE))
    {
      onestep_cli_fail ("--width/--height: at most %d pixels", MAX_SIDE);
      return 2;
    }
  if (seed_text != NULL && !g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXINT64, &seed, &error))
    {
      onestep_cli_fail ("--seed %s: %s", seed_text, error->message);
      return 2;
    }
  if (sampler_name != NULL && !onestep_sampler_from_name (sampler_name, &request.sampler))
    {
      onestep_cli_fail ("--sampler %s: expected euler, cm, tts or auto", sampler_name);
      return 2;
    }
  if (!onestep_cli_parse_device (device_name, &params.device, &error) ||
      !onestep_cli_parse_precision (precision_name, &params.precision, &error) ||
      !onestep_cli_model_options_apply (&model_options, &params, &error) ||
      !onestep_export_format_for_path (output, &format, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (g_file_test (output, G_FILE_TEST_EXISTS))
    {
      onestep_cli_fail ("output %s already exists; choose a new name", output);
      return 1;
    }

  image_file = g_file_new_for_path (images[0]);
  image = onestep_image_loader_load (image_file, NULL, &error);
  if (image == NULL)
    {
      onestep_cli_fail ("%s", error->message);
      return 1;
    }

  params.n_threads = threads;
  ctx = onestep_context_new (model, &params, &engine_error);
  if (ctx == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }
  info = onestep_context_get_info (ctx);
  fprintf (stderr, "model %s (%s) on %s\n", model, onestep_model_kind_name (info->kind),
           info->device_name);

  request.width = width != UNSET ? width : info->default_width;
  request.height = height != UNSET ? height : info->default_height;
  if (frames != UNSET)
    request.frames = frames;
  if (steps != UNSET)
    request.steps = steps;
  if (fps != UNSET)
    request.fps = fps;
  if (motion != UNSET)
    request.motion_bucket_id = motion;
  if (decode_chunk != UNSET)
    request.decode_chunk_size = decode_chunk;
  if (!isnan (noise_aug))
    request.noise_aug_strength = (float) noise_aug;
  if (!isnan (min_guidance))
    request.min_guidance = (float) min_guidance;
  if (!isnan (max_guidance))
    request.max_guidance = (float) max_guidance;
  request.seed = seed;
  request.progress = print_progress;
  request.abort = should_abort;

  fitted = onestep_image_loader_fit_at (image, request.width, request.height, crop_position);
  if (fitted == NULL)
    {
      onestep_cli_fail ("cannot scale %s to %dx%d: out of memory", images[0], request.width,
                        request.height);
      onestep_context_free (ctx);
      return 1;
    }

  signal (SIGINT, on_interrupt);
  {
    onestep_image view = onestep_cli_image_view (fitted);
    clip = onestep_generate (ctx, &view, &request, &engine_error);
  }
  signal (SIGINT, SIG_DFL);
  if (clip == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      onestep_context_free (ctx);
      return 1;
    }

  written = write_clip (output, format, clip, &request, model, model_options.unet_file, crop_position,
                        &error);
  if (!written)
    onestep_cli_fail ("%s", error->message);
  else
    {
      fprintf (stderr, "wrote %d frames of %dx%d to %s\n", clip->frames, clip->width,
               clip->height, output);
      if (json)
        print_json_summary (clip, info, &request, output,
                            (g_get_monotonic_time () - started) / 1e6);
    }
  onestep_clip_free (clip);
  onestep_context_free (ctx);
  return written ? 0 : 1;
}
