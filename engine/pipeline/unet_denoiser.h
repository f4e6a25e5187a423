/* unet_denoiser.h: the SVD UNet as an os_denoiser: EDM v-prediction
 * preconditioning, image-latent concatenation and per-frame guidance. */
#ifndef ONESTEP_UNET_DENOISER_H
#define ONESTEP_UNET_DENOISER_H

#include "pipeline_internal.h"
#include "sampler.h"

typedef struct {
  os_backend *be;
  const os_unet *unet;
  const onestep_request *request;
  int B, F, noisy_channels, latent_channels, h, w, in_channels;
  bool cfg;                   /* batch 2, unconditional half first */
  const float *image_latents; /* host [latent_channels, h, w] */
  float *context_host;        /* host [B, D], uploaded for every call (a tap may change it) */
  float *context_dev;         /* backend [B, D] */
  int context_dim;
  float added_time_ids[6];    /* [B, 3] */
  float *guidance;            /* [F] */
  float *sample_host, *out_host, *sample_dev, *out_dev;
  int calls, planned_calls;
  /* Reports progress after each UNet call with the new x0 estimate [F, C, h, w]. */
  void (*on_call)(void *owner, int calls, int planned_calls, const float *x0);
  void *owner;
} os_unet_denoiser;

/* Allocates the per-call buffers; the caller sets the other fields first. */
onestep_status os_unet_denoiser_init(os_unet_denoiser *d, onestep_error *error);
void os_unet_denoiser_clear(os_unet_denoiser *d);
os_denoiser os_unet_denoiser_wrap(os_unet_denoiser *d);

/* torch.linspace(start, end, n) in float32. */
void os_linspace(float start, float end, int n, float *out);

#endif
