/* denoiser.h: SVD's preconditioned denoiser on the tape, and its diffusion
 * loss (EDM, v-prediction, sigma_data = 1):
 *   f(x, s) = x / (s^2 + 1) - s / sqrt(s^2 + 1) * F(cat(x / sqrt(s^2 + 1), c), 0.25 ln s, ...)
 * with c the conditioning image's latent on every frame. */
#ifndef ONESTEP_DENOISER_H
#define ONESTEP_DENOISER_H

#include "backend_grad.h"
#include "tape.h"
#include "train_params.h"
#include "unet.h"

typedef struct {
  int B, F, h, w;          /* latents [B, F, 4, h, w] */
  const float *sigma;      /* host [B] */
  os_tv cond_latent;       /* [B, 4, h, w] */
  os_tv context;           /* [B, cross_attention_dim] */
  const float *added_time_ids; /* host [B, 3] */
  size_t checkpoint_budget;    /* see os_unet_graph_input */
} os_denoise_input;

/* f(x, sigma) [B, F, 4, h, w]; *model_output (may be NULL) gets F's output. */
os_tv os_train_denoise(const os_unet *unet, os_train_params *params, os_tape *tape, os_tv x,
                       const os_denoise_input *in, os_tv *model_output);

typedef struct {
  os_loss_kind kind;
  float huber_c;
  /* Per-sample weights: SVD's w(s) = (s^2 + 1) / s^2 when true, else 1. */
  bool edm_weight;
} os_loss_config;

/* Mean over the batch of w_b * mean(loss(pred_b, target_b)); with grad (n
 * floats, may be NULL) the loss's gradient with respect to pred is added.
 * sigma (host [B]) is read only for SVD's weights. */
double os_train_batch_loss(os_backend *be, const float *pred, const float *target,
                           const float *sigma, int B, size_t per_sample,
                           const os_loss_config *cfg, float *grad);

#endif
