/* discriminator.h: OSV's latent discriminator (training.md section 5) on
 * the tape: the latent upsampler (conv 3x3 + PixelShuffle(4)), a bilinear
 * resize to whole DINOv2 patches, the frozen DINOv2's tapped blocks, and per
 * tap one spatial and one temporal head (StyleGAN-T's DiscHead: spectral-norm
 * convs, BatchNormLocal, LeakyReLU 0.2, a residual block, projection on the
 * CLIP image embedding). Logits of all heads are concatenated per sample.
 *
 * The trained tensors (upsampler and heads) form an os_train_params (full
 * tensors only, PyTorch's state_dict names: "up_conv.weight",
 * "spatial.0.b1.conv.weight_orig", ...), so train_optim.h's Adam, clipping
 * and gradient norm apply to them as they are. Each spectral-norm conv keeps
 * its power-iteration vectors u and v ("<conv>.weight_u" / "weight_v"),
 * advanced by every forward, as PyTorch does in training mode; they belong
 * in checkpoints (os_disc_save / os_disc_load).
 *
 * An iteration runs the discriminator three times, in this order:
 *   1. generator step: os_disc_forward(fake, with_grads false), the fake
 *      latents a tensor with a gradient; os_disc_hinge(+1) seeds its loss;
 *   2-3. discriminator step: os_train_params_zero_grad(os_disc_params(d)),
 *      os_disc_backward_d(real, fake detached) which runs D(real) then
 *      D(fake), then os_train_adam_step(os_disc_params(d), ...). */
#ifndef ONESTEP_DISCRIMINATOR_H
#define ONESTEP_DISCRIMINATOR_H

#include <stdint.h>

#include "dinov2.h"
#include "tape.h"
#include "train_params.h"

typedef struct {
  int cond_dim; /* the CLIP image embedding's width (the UNet's cross_attention_dim) */
  int cmap;     /* projection width of the conditioned heads (64 at full size) */
  uint64_t seed; /* for a new discriminator's tensors */
} os_disc_config;

typedef struct os_disc os_disc;

/* A new discriminator over dino (borrowed; it must outlive the
 * discriminator), initialised as PyTorch initialises its layers: convs and
 * linears uniform in +-1/sqrt(fan_in), BatchNormLocal 1 and 0, u and v
 * normalised Gaussians; all from Philox with cfg->seed. */
os_disc *os_disc_new(os_dinov2 *dino, const os_disc_config *cfg, onestep_error *error);
void os_disc_free(os_disc *d);

/* The trained tensors, with their gradients and Adam moments. */
os_train_params *os_disc_params(os_disc *d);

/* Every trained tensor's value and every u and v from / to a safetensors
 * file in PyTorch's names (the reference's disc_init.safetensors). Loading
 * needs every tensor, of its shape; the Adam moments are not touched. */
onestep_status os_disc_load(os_disc *d, const char *path, onestep_error *error);
onestep_status os_disc_save(os_disc *d, const char *path, onestep_error *error);

/* Logits per sample for latents of T frames of h x w. */
int os_disc_logit_count(const os_disc *d, int T, int h, int w);

/* latents [B, T, 4, h, w] (scaled, as the UNet sees them), clip_embeds
 * [B, cond_dim] -> *logits [B, os_disc_logit_count]. With with_grads the
 * trained tensors collect gradients (the discriminator's step); without,
 * they are constants and gradients only pass through to the latents (the
 * generator's step). Every call advances the spectral-norm vectors. */
onestep_status os_disc_forward(os_disc *d, os_tape *tape, os_tv latents, os_tv clip_embeds, int B,
                               int T, int h, int w, bool with_grads, os_tv *logits,
                               onestep_error *error);

/* The hinge mean(relu(1 - sign * logits)) over n logits (backend memory):
 * sign +1 for real samples and the generator's loss, -1 for fakes in the
 * discriminator's. With grad (n backend floats, may be NULL), adds
 * scale * its gradient with respect to the logits. */
double os_disc_hinge(os_backend *be, const float *logits, size_t n, float sign, float scale,
                     float *grad);

/* The discriminator's step before its optimiser: D(real), then D(fake), both
 * with gradients for the trained tensors, L_D = hinge(real, +1) +
 * hinge(fake, -1), and its backward (gradients accumulate). real and fake
 * should carry no gradient (fake detached). *logits_real / *logits_fake (may
 * be NULL) get the logits, valid until the tape is reset. */
onestep_status os_disc_backward_d(os_disc *d, os_tape *tape, os_tv real, os_tv fake,
                                  os_tv clip_embeds, int B, int T, int h, int w, double *loss,
                                  os_tv *logits_real, os_tv *logits_fake, onestep_error *error);

#endif
