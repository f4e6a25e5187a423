/* test_adversarial_gradient.c: the discriminator's gradient reaches the
 * generator. The student's LoRA gradient from OSV's adversarial term alone,
 * 0.1 mean(relu(1 - D(f_student(x, s)))), is non-zero and agrees with a
 * central finite difference of that term along a direction of the adapters
 * (half the gradient's own, half random, so that the change is far above
 * float32's rounding of the loss; the discriminator's spectral-norm vectors
 * are restored before every evaluation, since each forward advances them).
 * Usage: test-adversarial-gradient MODEL_DIR DINOV2_DIR DISC_FILE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discriminator.h"
#include "osv_target.h"
#include "philox.h"
#include "pipeline_internal.h"
#include "test_check.h"
#include "train_test.h"

enum { B = 1, F = 2, H = 16, W = 24 };
static const uint64_t SEED = 77;
static const char *const targets[] = {"*attn1.to_q", "*attn1.to_v", "*attn2.to_out.0"};

typedef struct {
  onestep_context *ctx;
  os_train_params *student;
  os_disc *disc;
  const char *disc_file;
  float *x, *cond, *embeds;
  float ids[3];
} setup;

/* The adversarial term; with backward, the student's gradients too. */
static double
adversarial(setup *s, bool backward)
{
  os_backend *be = s->ctx->be;
  onestep_error error = {0};
  CHECK(os_disc_load(s->disc, s->disc_file, &error) == ONESTEP_OK, "%s", error.message);
  os_tape *tape = os_tape_new(be);
  os_osv_conditioning c = {.B = B, .F = F, .h = H, .w = W,
                           .cross_dim = s->ctx->src.config.unet.cross_attention_dim,
                           .cond_latent = s->cond, .context = s->embeds, .added_time_ids = s->ids};
  float sigma = 2.5f;
  os_denoise_input in = os_osv_denoise_input(tape, &c, &sigma);
  size_t n = (size_t)B * F * 4 * H * W;
  os_tv fake = os_train_denoise(s->ctx->unet, s->student, tape, os_tape_leaf(tape, s->x, n, NULL),
                                &in, NULL);
  os_tv logits;
  CHECK(os_disc_forward(s->disc, tape, fake, os_tape_leaf(tape, s->embeds, (size_t)c.cross_dim, NULL),
                        B, F, H, W, false, &logits, &error) == ONESTEP_OK,
        "%s", error.message);
  size_t n_logits = os_tape_size(tape, logits);
  float *dlogits = be->ops->alloc(be, n_logits * sizeof(float));
  be->ops->fill(be, dlogits, 0.0f, n_logits);
  double value = 0.1 * os_disc_hinge(be, os_tape_data(tape, logits), n_logits, 1.0f, 0.1f, dlogits);
  if (backward) {
    os_train_params_zero_grad(s->student);
    CHECK(os_tape_backward(tape, logits, dlogits, &error) == ONESTEP_OK, "%s", error.message);
  }
  be->ops->free(be, dlogits);
  os_tape_free(tape);
  return value;
}

int
main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL_DIR DINOV2_DIR DISC_FILE\n", argv[0]);
    return 2;
  }
  onestep_error error = {0};
  onestep_context_params cp = onestep_context_default_params();
  cp.device = ONESTEP_DEVICE_CPU;
  setup s = {.disc_file = argv[3], .ids = {6.0f, 127.0f, 0.02f}};
  s.ctx = onestep_context_new(argv[1], &cp, &error);
  if (!s.ctx) {
    fprintf(stderr, "%s\n", error.message);
    return 1;
  }
  os_backend *be = s.ctx->be;
  int cross = s.ctx->src.config.unet.cross_attention_dim;
  os_train_spec spec = {.rank = 2, .alpha = 2.0f, .lora_targets = targets, .n_lora_targets = 3,
                        .seed = 9};
  const int taps[] = {1, 3};
  os_dinov2 *dino = os_dinov2_load(argv[2], be, taps, 2, &error);
  s.student = dino ? os_train_params_new(s.ctx->src.unet, &spec, &error) : NULL;
  s.disc = s.student ? os_disc_new(dino, &(os_disc_config){.cond_dim = cross, .cmap = 16}, &error)
                     : NULL;
  CHECK(s.disc != NULL, "setup: %s", error.message);
  if (!s.disc)
    return test_summary("adversarial gradient");
  train_test_fill_lora_b(s.student, SEED, 50, 0.05f);
  s.x = train_test_upload_normal(be, SEED, 1, (size_t)B * F * 4 * H * W, 2.5f);
  s.cond = train_test_upload_normal(be, SEED, 2, (size_t)B * 4 * H * W, 0.8f);
  s.embeds = train_test_upload_normal(be, SEED, 3, (size_t)B * cross, 1.0f);

  adversarial(&s, true);
  size_t total;
  float *grad = train_test_gradients(s.student, &total);
  double norm = 0.0;
  for (size_t i = 0; i < total; i++)
    norm += (double)grad[i] * grad[i];
  CHECK(norm > 0.0, "the adversarial term gives the adapters no gradient");

  float *direction = malloc(total * sizeof(float));
  os_philox_normal(5, 6, 0, direction, total);
  double random_norm = 0.0;
  for (size_t i = 0; i < total; i++)
    random_norm += (double)direction[i] * direction[i];
  double predicted = 0.0;
  for (size_t i = 0; i < total; i++) {
    direction[i] = (float)(0.5 * grad[i] / sqrt(norm) + 0.5 * direction[i] / sqrt(random_norm));
    predicted += (double)grad[i] * direction[i];
  }
  const double eps = 1e-2; /* the whole step's length over every adapter value */
  train_test_shift(s.student, direction, eps);
  double up = adversarial(&s, false);
  train_test_shift(s.student, direction, -2.0 * eps);
  double down = adversarial(&s, false);
  double measured = (up - down) / (2.0 * eps), rel = fabs(measured - predicted) / fabs(predicted);
  printf("adversarial gradient: norm %.3e; along the direction: tape %.6e, finite difference "
         "%.6e (rel %.2e)\n",
         sqrt(norm), predicted, measured, rel);
  CHECK(rel < 5e-3, "the adversarial gradient disagrees with the finite difference: %.3e", rel);

  free(grad);
  free(direction);
  float *buffers[] = {s.x, s.cond, s.embeds};
  for (int i = 0; i < 3; i++)
    be->ops->free(be, buffers[i]);
  os_disc_free(s.disc);
  os_dinov2_free(dino);
  os_train_params_free(s.student);
  onestep_context_free(s.ctx);
  return test_summary("adversarial gradient");
}
