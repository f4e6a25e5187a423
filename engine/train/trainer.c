/* trainer.c: onestep_trainer (onestep_train.h): SVD's denoising objective
 * on batches from the latent cache, LoRA and full tensors, AdamW. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_cache.h"
#include "denoiser.h"
#include "error.h"
#include "onestep_train.h"
#include "philox.h"
#include "pipeline_internal.h"
#include "train_export.h"
#include "train_optim.h"

/* Philox streams by purpose; the step is the offset (data, noise levels) or
 * part of the stream (noise), so any step's draws stand alone. */
#define STREAM_DATA (1ull << 56)
#define STREAM_SIGMA (2ull << 56)
#define STREAM_NOISE (3ull << 56)

struct onestep_trainer {
  onestep_train_params params; /* the target lists point into `strings` */
  char **strings;
  int n_strings;
  onestep_context *ctx;
  os_data_cache *cache;
  os_train_params *train;
  os_tape *tape;
  os_loss_config loss;
  os_adam_config adam;
  int64_t step;
  int F, h, w;
  size_t per_sample, cond_floats, cross_dim;
  float *host_x0, *host_noise, *host_cond, *host_embeds; /* one batch */
  float *x0, *x, *cond, *embeds, *grad;                  /* the same in backend memory */
  char description[256];
};

onestep_train_params
onestep_train_default_params(void)
{
  static const char *const attention[] = {"*attn1.to_q", "*attn1.to_k", "*attn1.to_v",
                                          "*attn1.to_out.0"};
  return (onestep_train_params){
    .context = onestep_context_default_params(),
    .lora_rank = 8,
    .lora_alpha = 8.0f,
    .lora_targets = attention,
    .n_lora_targets = 4,
    .loss = ONESTEP_LOSS_MSE,
    .huber_c = 0.001f,
    .sigma_log_mean = 0.7f,
    .sigma_log_std = 1.6f,
    .motion_bucket_id = 127,
    .noise_aug_strength = 0.02f,
    .lr = 1e-4f,
    .beta1 = 0.9f,
    .beta2 = 0.999f,
    .eps = 1e-8f,
    .weight_decay = 0.01f,
    .max_grad_norm = 1.0f,
    .ema_decay = 0.999f,
    .batch = 1,
  };
}

void
onestep_trainer_free(onestep_trainer *t)
{
  if (!t)
    return;
  os_backend *be = t->ctx ? t->ctx->be : NULL;
  float *device[] = {t->x0, t->x, t->cond, t->embeds, t->grad};
  for (size_t i = 0; i < sizeof device / sizeof *device; i++)
    if (device[i])
      be->ops->free(be, device[i]);
  free(t->host_x0);
  free(t->host_noise);
  free(t->host_cond);
  free(t->host_embeds);
  os_tape_free(t->tape);
  os_train_params_free(t->train);
  os_data_cache_close(t->cache);
  onestep_context_free(t->ctx);
  for (int i = 0; i < t->n_strings; i++)
    free(t->strings[i]);
  free(t->strings);
  free(t);
}

/* Copies the target globs so that the trainer owns them. */
static bool
own_targets(onestep_trainer *t)
{
  onestep_train_params *p = &t->params;
  int n = p->n_lora_targets + p->n_train_targets;
  t->strings = calloc((size_t)n + 1, sizeof *t->strings);
  if (!t->strings)
    return false;
  const char *const *lists[2] = {p->lora_targets, p->train_targets};
  int counts[2] = {p->n_lora_targets, p->n_train_targets};
  for (int l = 0; l < 2; l++) {
    char **copy = t->strings + t->n_strings;
    for (int i = 0; i < counts[l]; i++) {
      if (!(t->strings[t->n_strings] = strdup(lists[l][i])))
        return false;
      t->n_strings++;
    }
    if (l == 0)
      p->lora_targets = (const char *const *)copy;
    else
      p->train_targets = (const char *const *)copy;
  }
  return true;
}

static onestep_status
check_params(const onestep_train_params *p, onestep_error *error)
{
  if (p->batch < 1 || p->batch > OS_TAPE_MAX_ARGS)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "batch %d: it must be 1 to %d",
                        p->batch, OS_TAPE_MAX_ARGS);
  if (p->n_lora_targets > 0 && p->lora_rank < 1)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "LoRA rank %d: it must be 1 or more", p->lora_rank);
  if (!(p->lr > 0.0f) || !(p->beta1 >= 0.0f && p->beta1 < 1.0f) ||
      !(p->beta2 >= 0.0f && p->beta2 < 1.0f) || !(p->eps > 0.0f) || p->weight_decay < 0.0f)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "learning rate, betas, eps or weight decay out of range");
  if (!(p->ema_decay >= 0.0f && p->ema_decay <= 1.0f) || p->max_grad_norm < 0.0f)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "EMA decay must be in [0, 1] and the clipping norm not negative");
  if (p->loss == ONESTEP_LOSS_PSEUDO_HUBER && !(p->huber_c > 0.0f))
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "the pseudo-Huber c must be positive");
  return ONESTEP_OK;
}

static float *
backend_floats(os_backend *be, size_t n)
{
  return be->ops->alloc(be, (n ? n : 1) * sizeof(float));
}

onestep_trainer *
onestep_trainer_new(const onestep_train_params *params, onestep_error *error)
{
  os_error_clear(error);
  if (check_params(params, error) != ONESTEP_OK)
    return NULL;
  onestep_trainer *t = calloc(1, sizeof *t);
  if (!t || (t->params = *params, !own_targets(t))) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  const onestep_train_params *p = &t->params;
  if (!(t->ctx = onestep_context_new(p->model_path, &p->context, error)))
    goto fail;
  os_backend *be = t->ctx->be;
  if (!be->ops->grad) {
    os_error_set(error, ONESTEP_ERR_DEVICE, "the %s backend cannot train yet", be->ops->name);
    goto fail;
  }
  if (!(t->cache = os_data_cache_open(p->cache_dir, t->ctx, error)))
    goto fail;
  os_train_spec spec = {.rank = p->lora_rank, .alpha = p->lora_alpha,
                        .lora_targets = p->lora_targets, .n_lora_targets = p->n_lora_targets,
                        .full_targets = p->train_targets, .n_full_targets = p->n_train_targets,
                        .seed = p->seed};
  if (!(t->train = os_train_params_new(t->ctx->src.unet, &spec, error)))
    goto fail;
  t->loss = (os_loss_config){.kind = p->loss == ONESTEP_LOSS_PSEUDO_HUBER ? OS_LOSS_PSEUDO_HUBER
                                                                          : OS_LOSS_SQUARED,
                             .huber_c = p->huber_c,
                             .edm_weight = p->loss == ONESTEP_LOSS_MSE};
  t->adam = (os_adam_config){.lr = p->lr, .beta1 = p->beta1, .beta2 = p->beta2, .eps = p->eps,
                             .weight_decay = p->weight_decay};
  os_data_cache_size(t->cache, &t->F, &t->h, &t->w);
  int lc = t->ctx->src.config.vae.latent_channels;
  t->cond_floats = (size_t)lc * t->h * t->w;
  t->per_sample = (size_t)t->F * t->cond_floats;
  t->cross_dim = (size_t)t->ctx->src.config.unet.cross_attention_dim;
  size_t n = (size_t)p->batch * t->per_sample;
  t->host_x0 = malloc(n * sizeof(float));
  t->host_noise = malloc(n * sizeof(float));
  t->host_cond = malloc((size_t)p->batch * t->cond_floats * sizeof(float));
  t->host_embeds = malloc((size_t)p->batch * t->cross_dim * sizeof(float));
  t->x0 = backend_floats(be, n);
  t->x = backend_floats(be, n);
  t->grad = backend_floats(be, n);
  t->cond = backend_floats(be, (size_t)p->batch * t->cond_floats);
  t->embeds = backend_floats(be, (size_t)p->batch * t->cross_dim);
  t->tape = os_tape_new(be);
  if (!t->host_x0 || !t->host_noise || !t->host_cond || !t->host_embeds || !t->x0 || !t->x ||
      !t->grad || !t->cond || !t->embeds || !t->tape) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for a batch of %d clips",
                 p->batch);
    goto fail;
  }
  int adapters = os_train_params_lora_count(t->train);
  int full = os_train_params_count(t->train) - 2 * adapters;
  snprintf(t->description, sizeof t->description,
           "LoRA rank %d on %d layers + %d tensors in full, %.3g M values; %d clips of %d "
           "frames at %dx%d latents",
           adapters ? p->lora_rank : 0, adapters, full,
           (double)os_train_params_numel(t->train) / 1e6, os_data_cache_clips(t->cache), t->F,
           t->w, t->h);
  return t;
fail:
  onestep_trainer_free(t);
  return NULL;
}

const char *
onestep_trainer_describe(const onestep_trainer *t)
{
  return t->description;
}

const onestep_model_info *
onestep_trainer_model_info(const onestep_trainer *t)
{
  return &t->ctx->info;
}

int64_t
onestep_trainer_step_count(const onestep_trainer *t)
{
  return t->step;
}

int
onestep_trainer_cache_clips(const onestep_trainer *t)
{
  return os_data_cache_clips(t->cache);
}

/* The step's batch: clips, noise levels and noise, all from (seed, step). */
static void
draw_batch(onestep_trainer *t, float *sigma)
{
  const onestep_train_params *p = &t->params;
  int B = p->batch, clips = os_data_cache_clips(t->cache);
  double u[OS_TAPE_MAX_ARGS];
  float z[OS_TAPE_MAX_ARGS];
  uint64_t first = (uint64_t)t->step * B;
  os_philox_uniform(p->seed, STREAM_DATA, first, u, B);
  os_philox_normal(p->seed, STREAM_SIGMA, first, z, B);
  for (int b = 0; b < B; b++) {
    int clip = (int)(u[b] * clips);
    const float *latents, *cond, *embeds;
    os_data_cache_clip(t->cache, clip < clips ? clip : clips - 1, &latents, &cond, &embeds);
    memcpy(t->host_x0 + b * t->per_sample, latents, t->per_sample * sizeof(float));
    memcpy(t->host_cond + b * t->cond_floats, cond, t->cond_floats * sizeof(float));
    memcpy(t->host_embeds + b * t->cross_dim, embeds, t->cross_dim * sizeof(float));
    sigma[b] = expf(p->sigma_log_mean + p->sigma_log_std * z[b]);
  }
  os_philox_normal(p->seed, STREAM_NOISE + (uint64_t)t->step, 0, t->host_noise,
                   (size_t)B * t->per_sample);
}

static double
now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

onestep_status
onestep_trainer_step(onestep_trainer *t, onestep_train_stats *stats, onestep_error *error)
{
  os_error_clear(error);
  const onestep_train_params *p = &t->params;
  os_backend *be = t->ctx->be;
  double start = now_seconds();
  int B = p->batch;
  size_t n = (size_t)B * t->per_sample;
  float sigma[OS_TAPE_MAX_ARGS], ids[3 * OS_TAPE_MAX_ARGS];
  draw_batch(t, sigma);
  for (int b = 0; b < B; b++) {
    ids[3 * b] = os_data_cache_fps(t->cache) - 1.0f;
    ids[3 * b + 1] = (float)p->motion_bucket_id;
    ids[3 * b + 2] = p->noise_aug_strength;
  }
  be->ops->upload(be, t->x0, t->host_x0, n * sizeof(float));
  be->ops->upload(be, t->x, t->host_noise, n * sizeof(float));
  be->ops->upload(be, t->cond, t->host_cond, (size_t)B * t->cond_floats * sizeof(float));
  be->ops->upload(be, t->embeds, t->host_embeds, (size_t)B * t->cross_dim * sizeof(float));
  /* x = x0 + sigma_b * noise_b, in place over the noise */
  for (int b = 0; b < B; b++) {
    float *xb = t->x + b * t->per_sample;
    be->ops->scale(be, xb, xb, sigma[b], t->per_sample);
    be->ops->grad->axpy(be, xb, t->x0 + b * t->per_sample, 1.0f, t->per_sample);
  }
  os_tape *tape = t->tape;
  os_denoise_input in = {
    .B = B, .F = t->F, .h = t->h, .w = t->w, .sigma = sigma,
    .cond_latent = os_tape_leaf(tape, t->cond, (size_t)B * t->cond_floats, NULL),
    .context = os_tape_leaf(tape, t->embeds, (size_t)B * t->cross_dim, NULL),
    .added_time_ids = ids,
    .checkpoint_budget = p->checkpoint_budget,
  };
  os_tv D = os_train_denoise(t->ctx->unet, t->train, tape, os_tape_leaf(tape, t->x, n, NULL), &in,
                             NULL);
  onestep_status status = os_tape_status(tape, error);
  double loss = 0.0, norm = 0.0;
  if (status == ONESTEP_OK) {
    be->ops->fill(be, t->grad, 0.0f, n);
    loss = os_train_batch_loss(be, os_tape_data(tape, D), t->x0, sigma, B, t->per_sample, &t->loss,
                               t->grad);
    os_train_params_zero_grad(t->train);
    status = os_tape_backward(tape, D, t->grad, error);
  }
  os_tape_reset(tape);
  if (status == ONESTEP_OK && !isfinite(loss))
    status = os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                          "step %lld: the loss is not finite (learning rate too high?)",
                          (long long)t->step + 1);
  if (status != ONESTEP_OK)
    return status;
  norm = os_train_grad_norm(t->train);
  os_train_clip_grads(t->train, norm, p->max_grad_norm);
  os_train_adam_step(t->train, &t->adam, t->step + 1);
  os_train_ema_update(t->train, p->ema_decay);
  if ((status = be->ops->sync(be, error)) != ONESTEP_OK)
    return status;
  t->step++;
  if (stats)
    *stats = (onestep_train_stats){.step = t->step, .loss = loss, .grad_norm = norm, .lr = p->lr,
                                   .seconds = now_seconds() - start,
                                   .peak_bytes = be->peak_bytes};
  return ONESTEP_OK;
}

onestep_status
onestep_trainer_save(onestep_trainer *t, const char *path, onestep_error *error)
{
  os_error_clear(error);
  return os_train_state_save(t->train, t->step, path, error);
}

onestep_status
onestep_trainer_load(onestep_trainer *t, const char *path, onestep_error *error)
{
  os_error_clear(error);
  return os_train_state_load(t->train, &t->step, path, error);
}

onestep_status
onestep_trainer_export(onestep_trainer *t, const char *adapter_dir, const char *unet_file,
                       bool use_ema, onestep_error *error)
{
  os_error_clear(error);
  const onestep_train_params *p = &t->params;
  onestep_status status = ONESTEP_OK;
  if (adapter_dir && os_train_params_lora_count(t->train) > 0)
    status = os_train_export_peft(t->train, p->lora_rank, p->lora_alpha, use_ema, adapter_dir,
                                  error);
  if (status == ONESTEP_OK && unet_file)
    status = os_train_export_unet(t->train, t->ctx->src.unet, use_ema, unet_file, error);
  return status;
}
