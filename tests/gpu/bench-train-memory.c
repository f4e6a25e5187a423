/* bench-train-memory.c: see bench-train-memory.h. */
#include "bench-train-memory.h"

#include <stdio.h>
#include <stdlib.h>

#include "denoiser.h"
#include "dry-backend.h"
#include "train_optim.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define GOAL_BYTES 40e9 /* a full-size SVD-XT LoRA step at 14 frames 576x320 */
#define CROSS_DIM 1024

int
bench_train_memory(os_backend *dry, const os_unet *unet, os_weight_set *unet_weights,
                   int64_t unet_params, int frames, int width, int height,
                   size_t checkpoint_budget)
{
  static const char *const targets[] = {"*attn1.to_q", "*attn1.to_k", "*attn1.to_v",
                                        "*attn1.to_out.0"};
  onestep_error error = {0};
  int h = height / 8, w = width / 8, status = 1;
  size_t n = (size_t)frames * 4 * h * w;
  os_train_spec spec = {.rank = 8, .alpha = 8.0f, .lora_targets = targets, .n_lora_targets = 4};
  os_train_params *params = os_train_params_new(unet_weights, &spec, &error);
  os_tape *tape = os_tape_new(dry);
  float *x = dry->ops->alloc(dry, n * sizeof(float));
  float *x0 = dry->ops->alloc(dry, n * sizeof(float));
  float *grad = dry->ops->alloc(dry, n * sizeof(float));
  float *cond = dry->ops->alloc(dry, (size_t)4 * h * w * sizeof(float));
  float *ctx = dry->ops->alloc(dry, CROSS_DIM * sizeof(float));
  if (!params || !tape || !x || !x0 || !grad || !cond || !ctx) {
    fprintf(stderr, "setting up the training step failed: %s\n", error.message);
    goto done;
  }
  size_t resident = dry->bytes_in_use;
  dry->peak_bytes = resident;
  float sigma = 1.0f, ids[3] = {6.0f, 127.0f, 0.02f};
  os_denoise_input in = {.B = 1, .F = frames, .h = h, .w = w, .sigma = &sigma,
                         .cond_latent = os_tape_leaf(tape, cond, (size_t)4 * h * w, NULL),
                         .context = os_tape_leaf(tape, ctx, CROSS_DIM, NULL),
                         .added_time_ids = ids, .checkpoint_budget = checkpoint_budget};
  os_tv out = os_train_denoise(unet, params, tape, os_tape_leaf(tape, x, n, NULL), &in, NULL);
  os_loss_config loss = {.kind = OS_LOSS_SQUARED, .edm_weight = true};
  if (out != OS_TAPE_NONE) {
    os_train_batch_loss(dry, os_tape_data(tape, out), x0, &sigma, 1, n, &loss, grad);
    os_tape_backward(tape, out, grad, &error);
  }
  if (os_tape_status(tape, &error) != ONESTEP_OK) {
    fprintf(stderr, "the training step failed: %s\n", error.message);
    goto done;
  }
  os_tape_reset(tape);
  os_adam_config adam = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f};
  os_train_adam_step(params, &adam, 1);
  size_t peak = dry->peak_bytes - resident, weights = (size_t)unet_params * 4;
  double total = (double)(peak + resident) + (double)weights;
  printf("LoRA step, %d frames %dx%d, checkpoint budget %.1f GiB: activations and gradients "
         "%.2f GiB, + batch and %lld trained values %.3f GiB, + UNet weights %.2f GiB (fp32) = "
         "%.2f GiB peak (goal %.0f GB: %s)\n",
         frames, width, height, checkpoint_budget / GIB, peak / GIB,
         (long long)os_train_params_numel(params), resident / GIB, weights / GIB, total / GIB,
         GOAL_BYTES / 1e9, total <= GOAL_BYTES ? "met" : "missed");
  status = 0;
done:
  os_tape_free(tape);
  os_train_params_free(params);
  float *buffers[] = {x, x0, grad, cond, ctx};
  for (int i = 0; i < 5; i++)
    if (buffers[i])
      dry->ops->free(dry, buffers[i]);
  return status;
}
