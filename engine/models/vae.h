/* vae.h: AutoencoderKLTemporalDecoder (image encoder + temporal decoder). */
#ifndef ONESTEP_VAE_H
#define ONESTEP_VAE_H

#include "backend.h"
#include "config.h"
#include "weights.h"

typedef struct os_vae os_vae;

os_vae *os_vae_bind(const os_vae_config *cfg, os_weight_set *ws);
void os_vae_free(os_vae *vae);

/* image [1, 3, H, W] in [-1, 1] -> posterior mean and std [1, latent, H/f, W/f]
 * (f = 2^(levels-1)); std may be NULL. All in backend memory. */
onestep_status os_vae_encode(const os_vae *vae, os_backend *be, const float *image, int H,
                             int W, float *mean, float *std, onestep_error *error);

/* latents [n, latent, h, w] (already divided by the scaling factor) -> frames
 * [n, 3, h*f, w*f] in about [-1, 1]; the n frames are decoded together
 * (temporal statistics and convolutions span them). */
onestep_status os_vae_decode(const os_vae *vae, os_backend *be, const float *latents, int n,
                             int h, int w, float *frames, onestep_error *error);

/* Spatial downscale factor between image and latents. */
int os_vae_downscale(const os_vae *vae);

#endif
