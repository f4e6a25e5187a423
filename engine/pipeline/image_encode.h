/* image_encode.h: an image's two encodings, shared by generation (the
 * conditioning image) and training's data cache (every frame of a clip). */
#ifndef ONESTEP_IMAGE_ENCODE_H
#define ONESTEP_IMAGE_ENCODE_H

#include "pipeline_internal.h"

/* The CLIP image embedding (host [projection_dim]); pixels (host
 * [3, S, S], may be NULL) receives the tower's preprocessed input. */
onestep_status os_image_embed(onestep_context *ctx, const onestep_image *image, float *pixels,
                              float *embeds, onestep_error *error);

/* The VAE posterior of x (host [3, H, W] in [-1, 1]): mean and, when std is
 * not NULL, standard deviation (host [latent_channels, H/r, W/r], unscaled). */
onestep_status os_image_encode_latent(onestep_context *ctx, const float *x, int H, int W,
                                      float *mean, float *std, onestep_error *error);

#endif
