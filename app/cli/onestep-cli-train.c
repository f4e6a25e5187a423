/* onestep-cli-train.c: `onestep-cli train ACTION`, dispatch to the training actions. */
#include <stdio.h>

#include "onestep-cli.h"

static const struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} actions[] = {
  { "prepare", onestep_cli_train_prepare, "encode a folder of videos or frame folders into a latent cache" },
  { "diffusion", onestep_cli_train_diffusion, "train LoRA adapters and chosen tensors with SVD's denoising objective" },
  { "osv", onestep_cli_train_osv, "OSV's stage 1 (latent GAN pretraining) or 2 (adversarial consistency distillation)" },
};

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: onestep-cli train ACTION [OPTIONS]\n\nActions:\n");
  for (size_t i = 0; i < G_N_ELEMENTS (actions); i++)
    fprintf (out, "  %-10s %s\n", actions[i].name, actions[i].summary);
  fprintf (out, "\nRun onestep-cli train ACTION --help for an action's options.\n");
}

int
onestep_cli_train (int    argc,
                   char **argv)
{
  if (argc < 2)
    {
      print_usage (stderr);
      return 2;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      print_usage (stdout);
      return 0;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (actions); i++)
    if (g_str_equal (argv[1], actions[i].name))
      return actions[i].run (argc - 1, argv + 1);

  onestep_cli_fail ("unknown train action '%s'", argv[1]);
  print_usage (stderr);
  return 2;
}
