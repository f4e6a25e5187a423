/* unet_denoiser.c: one sampler evaluation = one batched UNet call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "unet_denoiser.h"

void os_linspace(float start, float end, int n, float *out)
{
  if (n == 1) {
    out[0] = start;
    return;
  }
  /* PyTorch fills the first half from start and the second half from end. */
  float step = (end - start) / (float)(n - 1);
  int half = n / 2;
  for (int i = 0; i < n; i++)
    out[i] = i < half ? start + step * (float)i : end - step * (float)(n - 1 - i);
}

static size_t frame_size(const os_unet_denoiser *d, int channels)
{
  return (size_t)channels * d->h * d->w;
}

onestep_status os_unet_denoiser_init(os_unet_denoiser *d, onestep_error *error)
{
  size_t in_n = (size_t)d->B * d->F * frame_size(d, d->in_channels);
  size_t out_n = (size_t)d->B * d->F * frame_size(d, d->noisy_channels);
  d->sample_host = malloc(in_n * sizeof(float));
  d->out_host = malloc(out_n * sizeof(float));
  d->guidance = malloc((size_t)d->F * sizeof(float));
  d->sample_dev = d->be->ops->alloc(d->be, in_n * sizeof(float));
  d->out_dev = d->be->ops->alloc(d->be, out_n * sizeof(float));
  if (!d->sample_host || !d->out_host || !d->guidance || !d->sample_dev || !d->out_dev)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                        "out of memory for the UNet input and output (%zu floats)", in_n + out_n);
  return ONESTEP_OK;
}

void os_unet_denoiser_clear(os_unet_denoiser *d)
{
  free(d->sample_host);
  free(d->out_host);
  free(d->guidance);
  if (d->sample_dev)
    d->be->ops->free(d->be, d->sample_dev);
  if (d->out_dev)
    d->be->ops->free(d->be, d->out_dev);
  d->sample_host = d->out_host = d->guidance = d->sample_dev = d->out_dev = NULL;
}

static void tap(const os_unet_denoiser *d, const char *what, float *data, int ndim,
                const int64_t *shape)
{
  if (!d->request->tap)
    return;
  char name[64];
  snprintf(name, sizeof name, "unet.%d.%s", d->calls, what);
  d->request->tap(name, data, ndim, shape, d->request->user_data);
}

/* sample [B, F, in_channels, h, w] = concat(c_in x, image latents); the
 * unconditional half gets zero image latents. */
static void build_sample(os_unet_denoiser *d, const float *x, float sigma)
{
  float scale = sqrtf(sigma * sigma + 1.0f);
  size_t noisy = frame_size(d, d->noisy_channels), cond = frame_size(d, d->latent_channels);
  size_t per_frame = frame_size(d, d->in_channels);
  for (int b = 0; b < d->B; b++)
    for (int f = 0; f < d->F; f++) {
      float *dst = d->sample_host + ((size_t)b * d->F + f) * per_frame;
      const float *src = x + (size_t)f * noisy;
      for (size_t j = 0; j < noisy; j++)
        dst[j] = src[j] / scale;
      if (d->cfg && b == 0)
        memset(dst + noisy, 0, cond * sizeof(float));
      else
        memcpy(dst + noisy, d->image_latents, cond * sizeof(float));
    }
}

static void tap_inputs(os_unet_denoiser *d, float timestep)
{
  if (!d->request->tap)
    return;
  int64_t sample_shape[5] = {d->B, d->F, d->in_channels, d->h, d->w};
  int64_t t_shape[1] = {1};
  int64_t ehs_shape[3] = {d->B, 1, d->context_dim};
  int64_t ids_shape[2] = {d->B, 3};
  tap(d, "sample", d->sample_host, 5, sample_shape);
  tap(d, "timestep", &timestep, 1, t_shape);
  tap(d, "ehs", d->context_host, 3, ehs_shape);
  tap(d, "ids", d->added_time_ids, 2, ids_shape);
}

static onestep_status denoise(void *self, const float *x, float sigma, float *x0,
                              float *model_out, onestep_error *error)
{
  os_unet_denoiser *d = self;
  const onestep_request *req = d->request;
  if (req->abort && req->abort(req->user_data))
    return os_error_set(error, ONESTEP_ERR_ABORTED, "generation aborted");
  os_backend *be = d->be;
  size_t in_n = (size_t)d->B * d->F * frame_size(d, d->in_channels);
  size_t n = (size_t)d->F * frame_size(d, d->noisy_channels);
  float timestep = os_c_noise(sigma);

  build_sample(d, x, sigma);
  tap_inputs(d, timestep);
  be->ops->upload(be, d->sample_dev, d->sample_host, in_n * sizeof(float));
  be->ops->upload(be, d->context_dev, d->context_host,
                  (size_t)d->B * d->context_dim * sizeof(float));
  onestep_status status = os_unet_forward(d->unet, be, d->sample_dev, timestep, d->context_dev,
                                          d->added_time_ids, d->B, d->F, d->h, d->w, d->out_dev,
                                          error);
  if (status != ONESTEP_OK)
    return status;
  be->ops->download(be, d->out_host, d->out_dev, (size_t)d->B * n * sizeof(float));
  status = be->ops->sync(be, error);
  if (status != ONESTEP_OK)
    return status;
  if (req->tap) {
    int64_t out_shape[5] = {d->B, d->F, d->noisy_channels, d->h, d->w};
    tap(d, "out", d->out_host, 5, out_shape);
  }

  /* v = v_u + g_f (v_c - v_u), then x0 = c_out v + x / (sigma^2 + 1) as diffusers orders it. */
  size_t per_frame = frame_size(d, d->noisy_channels);
  float c_out = os_c_out(sigma), skip_div = sigma * sigma + 1.0f;
  for (int f = 0; f < d->F; f++)
    for (size_t j = 0; j < per_frame; j++) {
      size_t i = (size_t)f * per_frame + j;
      float v = d->out_host[i];
      if (d->cfg) {
        float v_cond = d->out_host[n + i];
        v = v + d->guidance[f] * (v_cond - v);
      }
      if (model_out)
        model_out[i] = v;
      x0[i] = v * c_out + x[i] / skip_div;
    }
  d->calls++;
  if (d->on_call)
    d->on_call(d->owner, d->calls, d->planned_calls, x0);
  return ONESTEP_OK;
}

os_denoiser os_unet_denoiser_wrap(os_unet_denoiser *d)
{
  os_denoiser denoiser = {denoise, d, (size_t)d->F * frame_size(d, d->noisy_channels)};
  return denoiser;
}
