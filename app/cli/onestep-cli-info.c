/* onestep-cli-info.c: `onestep-cli info`, validate a model and describe it. */
#include <stdio.h>

#include "onestep-cli.h"

int
onestep_cli_info (int    argc,
                  char **argv)
{
  g_autofree char *model = NULL, *device_name = NULL;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Model folder (diffusers layout)", "PATH" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu (default), cuda or auto", "D" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- validate and describe a model");
  g_autoptr(GError) error = NULL;
  onestep_context_params params = onestep_context_default_params ();
  g_auto(OnestepCliModelOptions) model_options = { 0 };
  onestep_error engine_error = { 0 };
  const onestep_model_info *info;
  onestep_context *ctx;

  g_option_context_add_main_entries (options, entries, NULL);
  g_option_context_add_group (options, onestep_cli_model_option_group (&model_options));
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (model == NULL || argc > 1)
    {
      onestep_cli_fail ("info needs --model PATH and nothing else");
      return 2;
    }
  params.device = ONESTEP_DEVICE_CPU;
  if ((device_name != NULL && !onestep_cli_parse_device (device_name, &params.device, &error)) ||
      !onestep_cli_model_options_apply (&model_options, &params, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }

  ctx = onestep_context_new (model, &params, &engine_error);
  if (ctx == NULL)
    {
      onestep_cli_fail ("%s: invalid model: %s", model, engine_error.message);
      return 1;
    }
  info = onestep_context_get_info (ctx);
  printf ("model: %s\n", model);
  printf ("kind: %s\n", onestep_model_kind_name (info->kind));
  printf ("device: %s\n", info->device_name);
  printf ("weights dtype: %s\n", info->weight_dtype);
  printf ("unet parameters: %" G_GINT64_FORMAT "\n", info->unet_params);
  printf ("vae parameters: %" G_GINT64_FORMAT "\n", info->vae_params);
  printf ("image_encoder parameters: %" G_GINT64_FORMAT "\n", info->clip_params);
  printf ("default frames: %d\n", info->default_frames);
  printf ("default size: %dx%d\n", info->default_width, info->default_height);
  printf ("default steps: %d\n", info->default_steps);
  printf ("default sampler: %s\n", onestep_sampler_name (info->default_sampler));
  printf ("default guidance: %g..%g\n", info->default_min_guidance, info->default_max_guidance);
  if (info->grid_points > 0)
    printf ("consistency grid: %d points\n", info->grid_points);
  onestep_context_free (ctx);
  return 0;
}
