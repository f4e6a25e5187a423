/* preview_vae.c: the preview decoder of a given VAE, loaded from the cache or
 * fitted once on synthetic images (encode, decode, downsample, least squares). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "preview.h"

enum { FIT_IMAGES = 8, FIT_LATENT_SIZE = 32 };

void os_preview_synthetic_image(float *img, int H, int W, int index)
{
  /* Smooth gradients and stripes with a sharp-edged disc: colour, low and
   * high frequencies, different per index. */
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        double u = (double)x / W, v = (double)y / H;
        double value = 0.6 * sin(6.28 * ((index % 5 + 1) * u + c * 0.3) + 3 * v * (index % 3)) +
                       0.3 * (2 * v - 1) * (c == index % 3 ? 1 : -0.5);
        double dx = u - 0.3 - 0.1 * (index % 5), dy = v - 0.5;
        if (dx * dx + dy * dy < 0.04 * (1 + index % 2))
          value = 0.8 - 0.4 * c;
        img[((size_t)c * H + y) * W + x] = (float)fmax(-1.0, fmin(1.0, value));
      }
}

/* Encodes and decodes one synthetic image on the backend: latents in the
 * sampler's space (scaled) and the decoded frame, both on the host. */
static onestep_status round_trip(const os_vae *vae, float scaling, os_backend *be, int index,
                                 int H, int W, int latent_c, float *latents, float *frame,
                                 onestep_error *error)
{
  int f = os_vae_downscale(vae), h = H / f, w = W / f;
  size_t pix = (size_t)3 * H * W, lat = (size_t)latent_c * h * w;
  float *host = malloc(pix * sizeof *host);
  float *image_dev = be->ops->alloc(be, pix * sizeof(float));
  float *lat_dev = be->ops->alloc(be, lat * sizeof(float));
  float *frame_dev = be->ops->alloc(be, pix * sizeof(float));
  onestep_status status = ONESTEP_OK;
  if (!host || !image_dev || !lat_dev || !frame_dev) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "preview fit: out of memory");
    goto done;
  }
  os_preview_synthetic_image(host, H, W, index);
  be->ops->upload(be, image_dev, host, pix * sizeof(float));
  if ((status = os_vae_encode(vae, be, image_dev, H, W, lat_dev, NULL, error)) != ONESTEP_OK ||
      (status = os_vae_decode(vae, be, lat_dev, 1, h, w, frame_dev, error)) != ONESTEP_OK ||
      (status = be->ops->sync(be, error)) != ONESTEP_OK)
    goto done;
  be->ops->download(be, latents, lat_dev, lat * sizeof(float));
  be->ops->download(be, frame, frame_dev, pix * sizeof(float));
  for (size_t i = 0; i < lat; i++)
    latents[i] *= scaling;
done:
  free(host);
  if (image_dev)
    be->ops->free(be, image_dev);
  if (lat_dev)
    be->ops->free(be, lat_dev);
  if (frame_dev)
    be->ops->free(be, frame_dev);
  return status;
}

static onestep_status fit_on_synthetic(os_preview_decoder *pd, const os_vae *vae,
                                       const os_vae_config *cfg, os_backend *be, int scale,
                                       onestep_error *error)
{
  int f = os_vae_downscale(vae), C = cfg->latent_channels;
  int h = FIT_LATENT_SIZE, w = FIT_LATENT_SIZE, H = h * f, W = w * f;
  size_t lat = (size_t)C * h * w, pix = (size_t)3 * H * W, small = (size_t)3 * h * scale * w * scale;
  float *latents = malloc(FIT_IMAGES * lat * sizeof *latents);
  float *targets = malloc(FIT_IMAGES * small * sizeof *targets);
  float *frame = malloc(pix * sizeof *frame);
  onestep_status status = ONESTEP_OK;
  if (!latents || !targets || !frame)
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "preview fit: out of memory");
  for (int i = 0; i < FIT_IMAGES && status == ONESTEP_OK; i++) {
    status = round_trip(vae, cfg->scaling_factor, be, i, H, W, C, latents + i * lat, frame, error);
    if (status == ONESTEP_OK)
      os_preview_downsample(frame, 1, H, W, f / scale, targets + i * small);
  }
  if (status == ONESTEP_OK)
    status = os_preview_fit(pd, C, scale, OS_PREVIEW_KERNEL, latents, targets, FIT_IMAGES, h, w,
                            error);
  free(latents);
  free(targets);
  free(frame);
  return status;
}

onestep_status os_preview_for_vae(os_preview_decoder *pd, const os_vae *vae,
                                  const os_vae_config *cfg, os_backend *be, uint64_t vae_hash,
                                  const char *cache_dir, onestep_error *error)
{
  memset(pd, 0, sizeof *pd);
  int f = os_vae_downscale(vae);
  int scale = f < OS_PREVIEW_SCALE ? f : OS_PREVIEW_SCALE;
  if (f % scale != 0)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "preview decoder: the VAE's factor %d is not a multiple of %d", f, scale);
  char default_dir[4096];
  if (!cache_dir && os_preview_default_cache_dir(default_dir, sizeof default_dir, NULL) == ONESTEP_OK)
    cache_dir = default_dir;
  if (cache_dir && os_preview_load(pd, cache_dir, vae_hash, cfg->latent_channels, scale,
                                   OS_PREVIEW_KERNEL, NULL) == ONESTEP_OK)
    return ONESTEP_OK;
  onestep_status status = fit_on_synthetic(pd, vae, cfg, be, scale, error);
  /* The cache only saves time: a fit that cannot be saved is still used. */
  if (status == ONESTEP_OK && cache_dir)
    os_preview_save(pd, cache_dir, vae_hash, NULL);
  return status;
}
