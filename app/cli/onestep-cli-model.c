/* onestep-cli-model.c: the model options shared by generate and info:
 * a replacement UNet, LoRA files and the frame count of single files. */
#include <stdlib.h>
#include <string.h>

#include "onestep-cli.h"

GOptionGroup *
onestep_cli_model_option_group (OnestepCliModelOptions *options)
{
  const GOptionEntry entries[] = {
    { "unet", 0, 0, G_OPTION_ARG_FILENAME, &options->unet_file,
      "UNet-only safetensors replacing the model's UNet", "FILE" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &options->lora_args,
      "LoRA merged into the UNet (repeatable; SCALE defaults to 1)", "FILE[:SCALE]" },
    { "frames-hint", 0, 0, G_OPTION_ARG_INT, &options->frames_hint,
      "Frame count of a single-file checkpoint (default: from its name)", "N" },
    { NULL }
  };
  GOptionGroup *group = g_option_group_new ("model", "Model options:", "Show model options",
                                            NULL, NULL);

  g_option_group_add_entries (group, entries);
  return group;
}

/* "FILE:SCALE" when the text after the last colon is a number, else all FILE. */
static void
split_lora_argument (const char  *arg,
                     char       **file,
                     float       *scale)
{
  const char *colon = strrchr (arg, ':');
  char *end = NULL;
  double value = colon != NULL ? g_ascii_strtod (colon + 1, &end) : 0.0;

  if (colon != NULL && end != colon + 1 && *end == '\0')
    {
      *file = g_strndup (arg, colon - arg);
      *scale = (float) value;
    }
  else
    {
      *file = g_strdup (arg);
      *scale = 1.0f;
    }
}

gboolean
onestep_cli_model_options_apply (OnestepCliModelOptions  *options,
                                 onestep_context_params  *params,
                                 GError                 **error)
{
  guint n = options->lora_args != NULL ? g_strv_length (options->lora_args) : 0;

  if (options->frames_hint < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--frames-hint %d: must be at least 1", options->frames_hint);
      return FALSE;
    }
  options->lora_files = g_new0 (char *, n + 1);
  options->lora_scales = g_new0 (float, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    split_lora_argument (options->lora_args[i], &options->lora_files[i], &options->lora_scales[i]);

  params->unet_file = options->unet_file;
  params->lora_files = (const char *const *) options->lora_files;
  params->lora_scales = options->lora_scales;
  params->n_lora = (int) n;
  params->frames_hint = options->frames_hint;
  return TRUE;
}

void
onestep_cli_model_options_clear (OnestepCliModelOptions *options)
{
  g_clear_pointer (&options->unet_file, g_free);
  g_clear_pointer (&options->lora_args, g_strfreev);
  g_clear_pointer (&options->lora_files, g_strfreev);
  g_clear_pointer (&options->lora_scales, g_free);
}
