/* model_defaults.c: what a loaded model is and the generation defaults it implies. */
#include "pipeline_internal.h"

onestep_model_kind os_detect_model_kind(const os_model_config *cfg)
{
  /* A diffusers SVD folder is the base model; consistency-distilled
   * checkpoints are recognised here once their loader exists. */
  (void)cfg;
  return ONESTEP_MODEL_KIND_BASE_SVD;
}

void os_fill_model_defaults(const os_model_config *cfg, int vae_downscale,
                            onestep_model_info *info)
{
  info->kind = os_detect_model_kind(cfg);
  info->default_frames = cfg->unet.num_frames;
  if (cfg->unet.sample_size >= 64) {
    /* Full-size checkpoints: the pipeline's 1024x576. */
    info->default_width = 1024;
    info->default_height = 576;
  } else {
    /* Small test models: a 3:2 landscape latent grid half sample_size high
     * (tiny-a: 16x24 latents, 48x32 pixels, the size its golden case uses),
     * small enough to run in seconds on a CPU. */
    int latent_h = cfg->unet.sample_size >= 16 ? cfg->unet.sample_size / 2 : 8;
    info->default_height = latent_h * vae_downscale;
    info->default_width = (latent_h * 3 / 2) * vae_downscale;
  }
  info->default_steps = 25;
  info->default_sampler = ONESTEP_SAMPLER_EULER;
  info->default_min_guidance = 1.0f;
  info->default_max_guidance = 3.0f;
  info->grid_points = 0;
}
