/* onestep-cli-main.c: subcommand dispatch and shared helpers. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "modelstore-cli.h"
#include "onestep-cli.h"

static const OnestepCliCommand commands[] = {
  { "generate", onestep_cli_generate, "turn one image into a clip (PNG frames, MP4, WebM or GIF)" },
  { "check-golden", onestep_cli_check_golden, "compare the engine with a golden case" },
  { "info", onestep_cli_info, "validate and describe a model" },
  { "bench", onestep_cli_bench, "measure sgemm and UNet FLOP/s on this machine" },
  { "train", onestep_cli_train, "make a latent cache of clips and train on it (prepare|diffusion|osv)" },
  { "models", onestep_modelstore_cli_run, "list, download or import models (list|download NAME|import PATH)" },
};

void
onestep_cli_fail (const char *format,
                  ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "onestep-cli: %s\n", message);
}

gboolean
onestep_cli_parse_device (const char      *name,
                          onestep_device  *device,
                          GError         **error)
{
  if (name == NULL || g_str_equal (name, "auto"))
    *device = ONESTEP_DEVICE_AUTO;
  else if (g_str_equal (name, "cpu"))
    *device = ONESTEP_DEVICE_CPU;
  else if (g_str_equal (name, "cuda"))
    *device = ONESTEP_DEVICE_CUDA;
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--device %s: expected cpu, cuda or auto", name);
      return FALSE;
    }
  return TRUE;
}

gboolean
onestep_cli_parse_precision (const char         *name,
                             onestep_precision  *precision,
                             GError            **error)
{
  if (name == NULL || onestep_precision_from_name (name, precision))
    return TRUE;
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "--precision %s: expected auto, fp32, tf32, fp16 or bf16", name);
  return FALSE;
}

static void
print_usage (FILE                    *out,
             const OnestepCliCommand *commands,
             size_t                   n_commands,
             const char              *program,
             const char              *word)
{
  g_autofree char *lower = g_ascii_strdown (word, -1);
  int width = 0;
  for (size_t i = 0; i < n_commands; i++)
    width = MAX (width, (int) strlen (commands[i].name));
  fprintf (out, "Usage: %s %s [OPTIONS]\n\n%c%ss:\n", program, word, word[0], lower + 1);
  for (size_t i = 0; i < n_commands; i++)
    fprintf (out, "  %-*s %s\n", width + 2, commands[i].name, commands[i].summary);
  fprintf (out, "\nRun %s %s --help for %s %s's options.\n", program, word,
           strchr ("aeiou", lower[0]) ? "an" : "a", lower);
}

int
onestep_cli_dispatch (const OnestepCliCommand *commands,
                      size_t                   n_commands,
                      const char              *program,
                      const char              *word,
                      int                      argc,
                      char                   **argv)
{
  if (argc < 2)
    {
      print_usage (stderr, commands, n_commands, program, word);
      return 2;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      print_usage (stdout, commands, n_commands, program, word);
      return 0;
    }
  for (size_t i = 0; i < n_commands; i++)
    if (g_str_equal (argv[1], commands[i].name))
      return commands[i].run (argc - 1, argv + 1);

  g_autofree char *lower = g_ascii_strdown (word, -1);
  onestep_cli_fail ("unknown %s '%s'", lower, argv[1]);
  print_usage (stderr, commands, n_commands, program, word);
  return 2;
}

int
main (int    argc,
      char **argv)
{
  /* The user's language and character set for messages and sizes, but the C
   * numeric format so that --json and tables keep decimal points. */
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");
  return onestep_cli_dispatch (commands, G_N_ELEMENTS (commands), "onestep-cli", "COMMAND", argc,
                               argv);
}
