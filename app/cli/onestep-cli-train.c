/* onestep-cli-train.c: `onestep-cli train ACTION`, dispatch to the training actions. */
#include "onestep-cli.h"

static const OnestepCliCommand actions[] = {
  { "prepare", onestep_cli_train_prepare, "encode a folder of videos or frame folders into a latent cache" },
  { "diffusion", onestep_cli_train_diffusion, "train LoRA adapters and chosen tensors with SVD's denoising objective" },
  { "osv", onestep_cli_train_osv, "OSV's stage 1 (latent GAN pretraining) or 2 (adversarial consistency distillation)" },
};

int
onestep_cli_train (int    argc,
                   char **argv)
{
  return onestep_cli_dispatch (actions, G_N_ELEMENTS (actions), "onestep-cli train", "ACTION",
                               argc, argv);
}
