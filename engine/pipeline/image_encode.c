/* image_encode.c: see image_encode.h. */
#include "image_encode.h"

#include <stdlib.h>

#include "clip_preprocess.h"
#include "error.h"

onestep_status
os_image_embed(onestep_context *ctx, const onestep_image *image, float *pixels, float *embeds,
               onestep_error *error)
{
  os_backend *be = ctx->be;
  const os_clip_config *cc = &ctx->src.config.clip;
  int S = cc->image_size, D = cc->projection_dim;
  size_t n_px = (size_t)3 * S * S;
  float *own = pixels ? NULL : malloc(n_px * sizeof(float));
  float *px = pixels ? pixels : own;
  float *px_dev = be->ops->alloc(be, n_px * sizeof(float));
  float *embeds_dev = be->ops->alloc(be, (size_t)D * sizeof(float));
  onestep_status status;
  if (!px || !px_dev || !embeds_dev) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the CLIP input");
    goto out;
  }
  status = os_clip_preprocess(image, S, &ctx->src.config.preprocess, px, ctx->host_threads, error);
  if (status != ONESTEP_OK)
    goto out;
  be->ops->upload(be, px_dev, px, n_px * sizeof(float));
  status = os_clip_forward(ctx->clip, be, px_dev, embeds_dev, error);
  if (status != ONESTEP_OK)
    goto out;
  be->ops->download(be, embeds, embeds_dev, (size_t)D * sizeof(float));
  status = be->ops->sync(be, error);
out:
  free(own);
  if (px_dev)
    be->ops->free(be, px_dev);
  if (embeds_dev)
    be->ops->free(be, embeds_dev);
  return status;
}

onestep_status
os_image_encode_latent(onestep_context *ctx, const float *x, int H, int W, float *mean, float *std,
                       onestep_error *error)
{
  os_backend *be = ctx->be;
  int r = os_vae_downscale(ctx->vae), lc = ctx->src.config.vae.latent_channels;
  size_t n_img = (size_t)3 * H * W, n_lat = (size_t)lc * (H / r) * (W / r);
  float *x_dev = be->ops->alloc(be, n_img * sizeof(float));
  float *mean_dev = be->ops->alloc(be, n_lat * sizeof(float));
  float *std_dev = be->ops->alloc(be, n_lat * sizeof(float));
  onestep_status status;
  if (!x_dev || !mean_dev || !std_dev) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                          "out of memory for the VAE encoder input");
    goto out;
  }
  be->ops->upload(be, x_dev, x, n_img * sizeof(float));
  status = os_vae_encode(ctx->vae, be, x_dev, H, W, mean_dev, std_dev, error);
  if (status != ONESTEP_OK)
    goto out;
  be->ops->download(be, mean, mean_dev, n_lat * sizeof(float));
  if (std)
    be->ops->download(be, std, std_dev, n_lat * sizeof(float));
  status = be->ops->sync(be, error);
out:
  if (x_dev)
    be->ops->free(be, x_dev);
  if (mean_dev)
    be->ops->free(be, mean_dev);
  if (std_dev)
    be->ops->free(be, std_dev);
  return status;
}
