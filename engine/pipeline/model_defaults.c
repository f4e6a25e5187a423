/* model_defaults.c: what a loaded model is and the generation defaults it implies. */
#include <stdio.h>

#include "pipeline_internal.h"

void os_fill_model_info(const os_model_source *src, int vae_downscale, onestep_model_info *info)
{
  const os_model_config *cfg = &src->config;
  info->kind = src->kind;
  info->grid_points = src->grid_points;
  info->default_steps = src->default_steps;
  info->default_sampler = src->default_sampler;
  info->default_min_guidance = src->default_min_guidance;
  info->default_max_guidance = src->default_max_guidance;
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
  info->unet_params = os_weights_param_count(src->unet);
  info->vae_params = os_weights_param_count(src->vae);
  info->clip_params = os_weights_param_count(src->clip);
  snprintf(info->weight_dtype, sizeof info->weight_dtype, "%s", os_weights_dtype_name(src->unet));
}
