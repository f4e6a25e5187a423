/* sgm_names.h: Stability "sgm" tensor names <-> diffusers / transformers names
 * (checkpoints.md sections 3.4-3.6), in both directions.
 *
 * Names are given without their file prefix: the UNet after
 * "model.diffusion_model.", the VAE decoder after "first_stage_model.decoder.",
 * the encoder after "...encoder.encoder.", the CLIP tower after
 * "conditioner.embedders.0.open_clip.model.visual.". Diffusers names likewise
 * lack "decoder." / "encoder.". Each function returns false for a name that has
 * no counterpart. */
#ifndef ONESTEP_SGM_NAMES_H
#define ONESTEP_SGM_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef enum { OS_TO_DIFFUSERS, OS_TO_SGM } os_name_direction;

/* The UNet block layout needs layers_per_block, n_levels and up_has_attention. */
bool os_sgm_unet_name(const os_unet_config *cfg, os_name_direction dir, const char *in,
                      char *out, size_t cap);
bool os_sgm_vae_decoder_name(int n_levels, os_name_direction dir, const char *in, char *out,
                             size_t cap);
bool os_sgm_vae_encoder_name(os_name_direction dir, const char *in, char *out, size_t cap);
/* Plain renames only: the fused "transformer.resblocks.N.attn.in_proj_{weight,bias}"
 * and "proj" need a split / transpose and are handled by the loader. */
bool os_sgm_clip_name(os_name_direction dir, const char *in, char *out, size_t cap);

#endif
