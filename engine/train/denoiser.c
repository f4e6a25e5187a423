/* denoiser.c: see denoiser.h. */
#include "denoiser.h"

#include <math.h>

#include "tape_ops.h"
#include "unet_graph.h"

os_tv
os_train_denoise(const os_unet *unet, os_train_params *params, os_tape *tape, os_tv x,
                 const os_denoise_input *in, os_tv *model_output)
{
  int B = in->B, F = in->F, N = B * F, P = 4 * in->h * in->w;
  size_t n = (size_t)N * P;
  float c_in[OS_TAPE_MAX_ARGS], c_skip[OS_TAPE_MAX_ARGS], c_out[OS_TAPE_MAX_ARGS];
  float timesteps[OS_TAPE_MAX_ARGS];
  if (B > OS_TAPE_MAX_ARGS)
    return os_tape_fail(tape, "a batch over 16 samples");
  for (int b = 0; b < B; b++) {
    double s = in->sigma[b];
    c_in[b] = (float)(1.0 / sqrt(s * s + 1.0));
    c_skip[b] = (float)(1.0 / (s * s + 1.0));
    c_out[b] = (float)(-s / sqrt(s * s + 1.0));
    timesteps[b] = (float)(0.25 * log(s));
  }
  os_tv scaled = os_tape_scale_slices(tape, x, c_in, B, n);
  os_tv cond = os_tape_add_row_vector(tape, OS_TAPE_NONE, in->cond_latent, B, F, P);
  os_unet_graph_input gin = {
    .sample = os_tape_concat_channels(tape, scaled, 4, cond, 4, N, in->h * in->w),
    .timesteps = timesteps,
    .context = in->context,
    .added_time_ids = in->added_time_ids,
    .B = B, .F = F, .h = in->h, .w = in->w,
    .checkpoint_budget = in->checkpoint_budget,
  };
  os_tv out = os_unet_graph_forward(unet, params, tape, &gin);
  if (model_output)
    *model_output = out;
  return os_tape_add(tape, os_tape_scale_slices(tape, x, c_skip, B, n),
                     os_tape_scale_slices(tape, out, c_out, B, n), n);
}

double
os_train_batch_loss(os_backend *be, const float *pred, const float *target, const float *sigma,
                    int B, size_t per_sample, const os_loss_config *cfg, float *grad)
{
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    double s = cfg->edm_weight ? sigma[b] : 1.0;
    double weight = cfg->edm_weight ? (s * s + 1.0) / (s * s) : 1.0;
    double scale = weight / ((double)per_sample * B);
    size_t off = (size_t)b * per_sample;
    total += scale * be->ops->grad->loss(be, grad ? grad + off : NULL, pred + off, target + off,
                                         per_sample, cfg->kind, cfg->huber_c, (float)scale);
  }
  return total;
}
