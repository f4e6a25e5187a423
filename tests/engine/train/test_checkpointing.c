/* test_checkpointing.c: the UNet's training graph with every block
 * checkpointed gives the same output and gradients, bit for bit, as with every
 * activation kept, with less peak memory; and the tape's gradient of a whole
 * UNet step agrees with a central finite difference of the loss along a
 * random direction of the trained tensors.
 * Usage: test-checkpointing MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "denoiser.h"
#include "philox.h"
#include "pipeline_internal.h"
#include "test_check.h"
#include "train_test.h"

enum { B = 2, F = 2, H = 8, W = 12, LC = 4 };
static const uint64_t SEED = 1234;
static const char *const lora_targets[] = {"*attn1.to_q", "*attn1.to_v", "*ff.net.2", "*proj_in"};
static const char *const full_targets[] = {"conv_in.*", "*time_mixer.mix_factor",
                                           "*norm1.weight"};

typedef struct {
  onestep_context *ctx;
  os_train_params *params;
  os_tape *tape;
  float *x, *x0, *cond, *ctxv, *dD;
  float sigma[B], ids[3 * B];
} setup;

/* One forward and backward; returns the loss (gradients left in the params). */
static double
step(setup *s, size_t budget, size_t *peak)
{
  os_backend *be = s->ctx->be;
  size_t n = (size_t)B * F * LC * H * W, D = s->ctx->src.config.unet.cross_attention_dim;
  /* A tape of its own: a used one keeps its buffers for reuse. */
  s->tape = os_tape_new(be);
  be->peak_bytes = be->bytes_in_use;
  os_denoise_input in = {.B = B, .F = F, .h = H, .w = W, .sigma = s->sigma,
                         .cond_latent = os_tape_leaf(s->tape, s->cond, (size_t)B * LC * H * W, NULL),
                         .context = os_tape_leaf(s->tape, s->ctxv, (size_t)B * D, NULL),
                         .added_time_ids = s->ids, .checkpoint_budget = budget};
  os_tv out = os_train_denoise(s->ctx->unet, s->params, s->tape, os_tape_leaf(s->tape, s->x, n, NULL),
                               &in, NULL);
  os_loss_config loss = {.kind = OS_LOSS_SQUARED, .edm_weight = true};
  be->ops->fill(be, s->dD, 0.0f, n);
  double value = os_train_batch_loss(be, os_tape_data(s->tape, out), s->x0, s->sigma, B,
                                     n / B, &loss, s->dD);
  os_train_params_zero_grad(s->params);
  onestep_error error = {0};
  CHECK(os_tape_backward(s->tape, out, s->dD, &error) == ONESTEP_OK, "backward: %s", error.message);
  os_tape_free(s->tape);
  if (peak)
    *peak = be->peak_bytes;
  return value;
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  onestep_error error = {0};
  onestep_context_params cp = onestep_context_default_params();
  cp.device = ONESTEP_DEVICE_CPU;
  setup s = {0};
  s.ctx = onestep_context_new(argv[1], &cp, &error);
  if (!s.ctx) {
    fprintf(stderr, "%s\n", error.message);
    return 1;
  }
  os_backend *be = s.ctx->be;
  os_train_spec spec = {.rank = 2, .alpha = 4.0f, .lora_targets = lora_targets, .n_lora_targets = 4,
                        .full_targets = full_targets, .n_full_targets = 3, .seed = 5};
  s.params = os_train_params_new(s.ctx->src.unet, &spec, &error);
  CHECK(s.params != NULL, "params: %s", error.message);
  if (!s.params)
    return test_summary("checkpointing");
  train_test_fill_lora_b(s.params, SEED, 100, 0.05f);
  size_t n = (size_t)B * F * LC * H * W, D = s.ctx->src.config.unet.cross_attention_dim;
  s.x0 = train_test_upload_normal(be, SEED, 1, n, 0.8f);
  s.x = train_test_upload_normal(be, SEED, 2, n, 1.5f);
  s.cond = train_test_upload_normal(be, SEED, 3, (size_t)B * LC * H * W, 0.8f);
  s.ctxv = train_test_upload_normal(be, SEED, 4, (size_t)B * D, 1.0f);
  s.dD = be->ops->alloc(be, n * sizeof(float));
  s.sigma[0] = 0.7f;
  s.sigma[1] = 3.0f;
  for (int b = 0; b < B; b++) {
    s.ids[3 * b] = 6.0f;
    s.ids[3 * b + 1] = 127.0f;
    s.ids[3 * b + 2] = 0.02f;
  }

  size_t peak_kept, peak_checkpointed, total;
  double loss_kept = step(&s, 0, &peak_kept);
  float *kept = train_test_gradients(s.params, &total);
  double loss_checkpointed = step(&s, 1, &peak_checkpointed);
  float *checkpointed = train_test_gradients(s.params, &total);
  CHECK(loss_kept == loss_checkpointed, "loss %.17g vs %.17g", loss_kept, loss_checkpointed);
  CHECK(memcmp(kept, checkpointed, total * sizeof(float)) == 0,
        "checkpointed gradients differ from the kept ones");
  CHECK(peak_checkpointed < peak_kept, "peak %zu checkpointed vs %zu kept", peak_checkpointed,
        peak_kept);
  printf("peak memory of a step: %zu bytes with every activation kept, %zu checkpointed\n",
         peak_kept, peak_checkpointed);

  /* The directional derivative <g, d> against (L(v + e d) - L(v - e d)) / 2e. */
  float *direction = malloc(total * sizeof(float));
  os_philox_normal(99, 7, 0, direction, total);
  double predicted = 0.0, norm = 0.0;
  for (size_t i = 0; i < total; i++) {
    predicted += (double)kept[i] * direction[i];
    norm += (double)direction[i] * direction[i];
  }
  /* Small: the random tiny model curves strongly (1e-3 is 7% off through conv_in). */
  double eps = 1e-4 / sqrt(norm / (double)total);
  train_test_shift(s.params, direction, eps);
  double up = step(&s, 0, NULL);
  train_test_shift(s.params, direction, -2.0 * eps);
  double down = step(&s, 0, NULL);
  train_test_shift(s.params, direction, eps);
  double measured = (up - down) / (2.0 * eps);
  double rel = fabs(measured - predicted) / fabs(predicted);
  printf("directional derivative: tape %.9g, finite difference %.9g (rel %.2e)\n", predicted,
         measured, rel);
  CHECK(rel < 1e-2, "the tape's gradient disagrees with the finite difference: %.3e", rel);

  free(direction);
  free(kept);
  free(checkpointed);
  float *buffers[] = {s.x, s.x0, s.cond, s.ctxv, s.dD};
  for (int i = 0; i < 5; i++)
    be->ops->free(be, buffers[i]);
  os_train_params_free(s.params);
  onestep_context_free(s.ctx);
  return test_summary("checkpointing");
}
