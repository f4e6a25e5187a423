/* trainer.c: onestep_trainer (onestep_train.h): SVD's denoising objective
 * on batches from the latent cache, LoRA and full tensors, AdamW. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_json.h"
#include "data_cache.h"
#include "denoiser.h"
#include "error.h"
#include "onestep_train.h"
#include "osv.h"
#include "philox.h"
#include "pipeline_internal.h"
#include "train_export.h"
#include "train_optim.h"

/* Philox streams by purpose; the step is the offset (data, noise levels) or
 * part of the stream (noise), so any step's draws stand alone. */
#define STREAM_DATA (1ull << 56)
#define STREAM_SIGMA (2ull << 56)
#define STREAM_NOISE (3ull << 56)
#define STREAM_GRID (4ull << 56)
#define MAX_GRID 1000

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
  /* OSV */
  os_dinov2 *dino;
  os_disc *disc;
  os_osv_players players;
  double grid[MAX_GRID];
  float *target;
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
    .objective = ONESTEP_OBJECTIVE_DIFFUSION,
    .disc_cmap = 64,
    .lr_d = 1e-5f,
    .beta1_d = 0.0f,
    .beta2_d = 0.999f,
    .max_grad_norm_d = 1.0f,
    .lambda_adv = 0.1f,
    .grid_points = 100,
    .teacher_steps = 5,
    .guidance_min = 1.0f,
    .guidance_max = 3.0f,
  };
}

void
onestep_trainer_free(onestep_trainer *t)
{
  if (!t)
    return;
  os_backend *be = t->ctx ? t->ctx->be : NULL;
  float *device[] = {t->x0, t->x, t->cond, t->embeds, t->grad, t->target};
  for (size_t i = 0; i < sizeof device / sizeof *device; i++)
    if (device[i])
      be->ops->free(be, device[i]);
  free(t->host_x0);
  free(t->host_noise);
  free(t->host_cond);
  free(t->host_embeds);
  os_tape_free(t->tape);
  os_disc_free(t->disc);
  os_dinov2_free(t->dino);
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
  /* the globs, then the DINOv2 and stage-1 paths; never reallocated (the
   * target lists point into it) */
  t->strings = calloc((size_t)n + 2, sizeof *t->strings);
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
  const char **paths[2] = {&p->dinov2_path, &p->init_from};
  for (int i = 0; i < 2; i++)
    if (*paths[i]) {
      if (!(t->strings[t->n_strings] = strdup(*paths[i])))
        return false;
      *paths[i] = t->strings[t->n_strings++];
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
  if (p->objective == ONESTEP_OBJECTIVE_DIFFUSION)
    return ONESTEP_OK;
  if (!p->dinov2_path)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "OSV needs a DINOv2 model folder (onestep-cli models download dinov2-small)");
  if (p->grid_points < 2 || p->grid_points > MAX_GRID || p->teacher_steps < 1 ||
      p->teacher_steps >= p->grid_points || p->disc_cmap < 1 || !(p->lr_d > 0.0f) ||
      !(p->beta1_d >= 0.0f && p->beta1_d < 1.0f) || !(p->beta2_d >= 0.0f && p->beta2_d < 1.0f) ||
      p->lambda_adv < 0.0f || !(p->huber_c > 0.0f))
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "OSV settings out of range (grid of 2 to %d points, 1 <= m < grid, "
                        "positive cmap, rates and c)",
                        MAX_GRID);
  return ONESTEP_OK;
}

static float *
backend_floats(os_backend *be, size_t n)
{
  return be->ops->alloc(be, (n ? n : 1) * sizeof(float));
}

/* The DINOv2 blocks the discriminator taps: four evenly spaced ones ending
 * with the last (2, 5, 8, 11 for ViT-S/14's twelve), as OSV's DINOv2 heads. */
static int
default_taps(const char *dinov2_dir, int *taps, onestep_error *error)
{
  size_t size = strlen(dinov2_dir) + sizeof "/config.json";
  char *path = malloc(size);
  os_json_file f = {0};
  if (!path)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory"), 0;
  snprintf(path, size, "%s/config.json", dinov2_dir);
  int depth = os_json_open(&f, path, error) == ONESTEP_OK
                  ? os_json_int_min(&f, "num_hidden_layers", 12, 1)
                  : 0;
  if (f.root)
    os_json_close(&f);
  free(path);
  int n = depth >= 4 ? 4 : depth;
  for (int i = 0; i < n; i++)
    taps[i] = (i + 1) * depth / n - 1;
  return n;
}

/* Stage 2 from a stage-1 checkpoint folder: its adapters and discriminator
 * (values and spectral-norm vectors); fresh moments, the EMA equal to the
 * student, step 0. */
static onestep_status
start_from_stage_1(onestep_trainer *t, const char *dir, onestep_error *error)
{
  size_t size = strlen(dir) + sizeof "/disc.safetensors" + 8;
  char *path = malloc(size);
  if (!path)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  snprintf(path, size, "%s/state.safetensors", dir);
  onestep_status status = os_train_state_load_adapters(t->train, path, error);
  snprintf(path, size, "%s/disc.safetensors", dir);
  if (status == ONESTEP_OK)
    status = os_disc_load(t->disc, path, error);
  free(path);
  if (status != ONESTEP_OK)
    return status;
  os_train_params_reset_moments(t->train);
  os_train_params_reset_moments(os_disc_params(t->disc));
  os_train_params_reset_ema(t->train);
  t->step = t->players.step_g = t->players.step_d = 0;
  return ONESTEP_OK;
}

static onestep_status
setup_osv(onestep_trainer *t, onestep_error *error)
{
  const onestep_train_params *p = &t->params;
  int taps[4];
  int n_taps = default_taps(p->dinov2_path, taps, error);
  if (n_taps == 0 || !(t->dino = os_dinov2_load(p->dinov2_path, t->ctx->be, taps, n_taps, error)))
    return error->code ? error->code : ONESTEP_ERR_MODEL;
  os_disc_config cfg = {.cond_dim = (int)t->cross_dim, .cmap = p->disc_cmap, .seed = p->seed};
  if (!(t->disc = os_disc_new(t->dino, &cfg, error)))
    return error->code;
  os_osv_grid(p->grid_points, 0.002, 700.0, 7.0, t->grid);
  t->players = (os_osv_players){
    .unet = t->ctx->unet, .student = t->train, .disc = t->disc,
    .lambda_adv = p->lambda_adv, .huber_c = p->huber_c,
    .adam_g = t->adam, .adam_d = {.lr = p->lr_d, .beta1 = p->beta1_d, .beta2 = p->beta2_d,
                                  .eps = p->eps},
    .max_grad_norm_g = p->max_grad_norm, .max_grad_norm_d = p->max_grad_norm_d,
  };
  /* Stage 1 trains the adapters alone. */
  os_train_params_freeze_full(t->train, p->objective == ONESTEP_OBJECTIVE_OSV_LGP);
  return p->init_from ? start_from_stage_1(t, p->init_from, error) : ONESTEP_OK;
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
  t->target = p->objective == ONESTEP_OBJECTIVE_DIFFUSION ? NULL : backend_floats(be, n);
  if (!t->host_x0 || !t->host_noise || !t->host_cond || !t->host_embeds || !t->x0 || !t->x ||
      !t->grad || !t->cond || !t->embeds || !t->tape ||
      (p->objective != ONESTEP_OBJECTIVE_DIFFUSION && !t->target)) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for a batch of %d clips",
                 p->batch);
    goto fail;
  }
  if (p->objective != ONESTEP_OBJECTIVE_DIFFUSION && setup_osv(t, error) != ONESTEP_OK)
    goto fail;
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

void
onestep_trainer_clip_size(const onestep_trainer *t, int *frames, int *width, int *height,
                          float *fps)
{
  int r = os_vae_downscale(t->ctx->vae);
  *frames = t->F;
  *width = t->w * r;
  *height = t->h * r;
  *fps = os_data_cache_fps(t->cache);
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

/* The grid index of an OSV step: uniform over [0, N) for stage 1 and
 * [0, N - m) for stage 2 (its teacher walks m points further). */
static int
draw_grid_index(const onestep_trainer *t)
{
  const onestep_train_params *p = &t->params;
  int span = p->grid_points - (p->objective == ONESTEP_OBJECTIVE_OSV_ACD ? p->teacher_steps : 0);
  double u;
  os_philox_uniform(p->seed, STREAM_GRID, (uint64_t)t->step, &u, 1);
  int n = (int)(u * span);
  return n < span ? n : span - 1;
}

/* The batch in backend memory: x0, conditioning, and x = x0 + sigma_b eps_b. */
static void
upload_batch(onestep_trainer *t, const float *sigma, float *ids)
{
  const onestep_train_params *p = &t->params;
  os_backend *be = t->ctx->be;
  int B = p->batch;
  size_t n = (size_t)B * t->per_sample;
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
}

static onestep_status
diffusion_step(onestep_trainer *t, const float *sigma, const float *ids,
               onestep_train_stats *stats, onestep_error *error)
{
  const onestep_train_params *p = &t->params;
  os_backend *be = t->ctx->be;
  int B = p->batch;
  size_t n = (size_t)B * t->per_sample;
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
  if (status == ONESTEP_OK) {
    be->ops->fill(be, t->grad, 0.0f, n);
    stats->loss = os_train_batch_loss(be, os_tape_data(tape, D), t->x0, sigma, B, t->per_sample,
                                      &t->loss, t->grad);
    os_train_params_zero_grad(t->train);
    status = os_tape_backward(tape, D, t->grad, error);
  }
  os_tape_reset(tape);
  if (status != ONESTEP_OK)
    return status;
  stats->grad_norm = os_train_grad_norm(t->train);
  os_train_clip_grads(t->train, stats->grad_norm, p->max_grad_norm);
  os_train_adam_step(t->train, &t->adam, t->step + 1);
  os_train_ema_update(t->train, p->ema_decay);
  return ONESTEP_OK;
}

/* OSV: stage 1 (x0 is both the real sample and the consistency target) or
 * stage 2 (the teacher's steps and the EMA student give the target). */
static onestep_status
osv_step(onestep_trainer *t, int n_grid, const float *ids, onestep_train_stats *stats,
         onestep_error *error)
{
  const onestep_train_params *p = &t->params;
  os_backend *be = t->ctx->be;
  os_osv_conditioning c = {.B = p->batch, .F = t->F, .h = t->h, .w = t->w,
                           .cross_dim = (int)t->cross_dim, .cond_latent = t->cond,
                           .context = t->embeds, .added_time_ids = ids};
  const float *target = t->x0;
  double weight = 1.0;
  onestep_status status;
  if (p->objective == ONESTEP_OBJECTIVE_OSV_ACD) {
    os_acd_schedule schedule = {.grid = t->grid, .n = n_grid, .m = p->teacher_steps,
                                .guidance_min = p->guidance_min, .guidance_max = p->guidance_max};
    status = os_osv_acd_target(t->ctx->unet, t->train, be, t->x, &schedule, &c, t->target, NULL,
                               error);
    if (status != ONESTEP_OK)
      return status;
    target = t->target;
    weight = pow(1.0 / (t->grid[n_grid] - t->grid[n_grid + p->teacher_steps]), 0.1);
  }
  os_osv_stats osv;
  status = os_osv_iteration(&t->players, be, t->x, (float)t->grid[n_grid], target, (float)weight,
                            &c, NULL, NULL, &osv, error);
  if (status != ONESTEP_OK)
    return status;
  if (p->objective == ONESTEP_OBJECTIVE_OSV_ACD)
    os_train_ema_update(t->train, p->ema_decay);
  stats->loss = osv.loss_g;
  stats->grad_norm = osv.grad_norm_g;
  stats->loss_d = osv.loss_d;
  stats->adv_g = osv.adv_g;
  stats->consistency = osv.huber;
  stats->grad_norm_d = osv.grad_norm_d;
  stats->grid_index = n_grid;
  return ONESTEP_OK;
}

onestep_status
onestep_trainer_step(onestep_trainer *t, onestep_train_stats *stats, onestep_error *error)
{
  os_error_clear(error);
  const onestep_train_params *p = &t->params;
  os_backend *be = t->ctx->be;
  double start = now_seconds();
  float sigma[OS_TAPE_MAX_ARGS], ids[3 * OS_TAPE_MAX_ARGS];
  onestep_train_stats result = {.lr = p->lr};
  draw_batch(t, sigma);
  int n_grid = -1;
  if (p->objective != ONESTEP_OBJECTIVE_DIFFUSION) {
    n_grid = draw_grid_index(t);
    for (int b = 0; b < p->batch; b++)
      sigma[b] = (float)t->grid[n_grid];
  }
  upload_batch(t, sigma, ids);
  onestep_status status = n_grid < 0 ? diffusion_step(t, sigma, ids, &result, error)
                                     : osv_step(t, n_grid, ids, &result, error);
  if (status == ONESTEP_OK && !isfinite(result.loss))
    status = os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                          "step %lld: the loss is not finite (learning rate too high?)",
                          (long long)t->step + 1);
  if (status == ONESTEP_OK)
    status = be->ops->sync(be, error);
  if (status != ONESTEP_OK)
    return status;
  t->step++;
  result.step = t->step;
  result.seconds = now_seconds() - start;
  result.peak_bytes = be->peak_bytes;
  if (stats)
    *stats = result;
  return ONESTEP_OK;
}

/* A checkpoint folder's files. */
#define STATE_FILE "state.safetensors"           /* trained values, moments, EMA, step */
#define DISC_STATE_FILE "disc-state.safetensors" /* OSV: the discriminator's moments, its steps */
#define DISC_FILE "disc.safetensors"             /* OSV: its values and spectral-norm u, v */

static char *
joined(const char *dir, const char *name)
{
  size_t size = strlen(dir) + strlen(name) + 2;
  char *path = malloc(size);
  if (path)
    snprintf(path, size, "%s/%s", dir, name);
  return path;
}

static char *
suffixed(const char *path, const char *suffix)
{
  size_t size = strlen(path) + strlen(suffix) + 1;
  char *s = malloc(size);
  if (s)
    snprintf(s, size, "%s%s", path, suffix);
  return s;
}

/* Removes a checkpoint folder (its files, then itself); absent is fine. */
static void
remove_checkpoint(const char *dir)
{
  const char *files[] = {STATE_FILE, DISC_STATE_FILE, DISC_FILE};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char *path = joined(dir, files[i]);
    if (path)
      unlink(path);
    free(path);
  }
  rmdir(dir);
}

static onestep_status
write_checkpoint(onestep_trainer *t, const char *dir, onestep_error *error)
{
  char *state = joined(dir, STATE_FILE), *disc_state = joined(dir, DISC_STATE_FILE);
  char *disc = joined(dir, DISC_FILE);
  onestep_status status;
  if (!state || !disc_state || !disc)
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  else if (mkdir(dir, 0755) != 0)
    status = os_error_set(error, ONESTEP_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
  else
    status = os_train_state_save(t->train, t->step, state, error);
  if (status == ONESTEP_OK && t->disc)
    status = os_train_state_save(os_disc_params(t->disc), t->players.step_d, disc_state, error);
  if (status == ONESTEP_OK && t->disc)
    status = os_disc_save(t->disc, disc, error);
  free(state);
  free(disc_state);
  free(disc);
  return status;
}

onestep_status
onestep_trainer_save(onestep_trainer *t, const char *path, onestep_error *error)
{
  os_error_clear(error);
  /* Written beside it, then swapped in: a failure leaves the old one whole. */
  char *fresh = suffixed(path, ".new"), *old = suffixed(path, ".old");
  if (!fresh || !old) {
    free(fresh);
    free(old);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  }
  remove_checkpoint(fresh);
  onestep_status status = write_checkpoint(t, fresh, error);
  struct stat st;
  bool had_old = stat(path, &st) == 0;
  if (status == ONESTEP_OK) {
    remove_checkpoint(old);
    if ((had_old && rename(path, old) != 0) || rename(fresh, path) != 0)
      status = os_error_set(error, ONESTEP_ERR_IO, "cannot move the checkpoint into %s: %s", path,
                            strerror(errno));
    else
      remove_checkpoint(old);
  }
  if (status != ONESTEP_OK)
    remove_checkpoint(fresh);
  free(fresh);
  free(old);
  return status;
}

static onestep_status
load_checkpoint(onestep_trainer *t, const char *dir, onestep_error *error)
{
  char *state = joined(dir, STATE_FILE), *disc_state = joined(dir, DISC_STATE_FILE);
  char *disc = joined(dir, DISC_FILE);
  onestep_status status = ONESTEP_OK;
  if (!state || !disc_state || !disc)
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  else
    status = os_train_state_load(t->train, &t->step, state, error);
  if (status == ONESTEP_OK && t->disc) {
    status = os_train_state_load(os_disc_params(t->disc), &t->players.step_d, disc_state, error);
    if (status == ONESTEP_OK)
      status = os_disc_load(t->disc, disc, error);
    t->players.step_g = t->step;
  }
  free(state);
  free(disc_state);
  free(disc);
  return status;
}

onestep_status
onestep_trainer_load(onestep_trainer *t, const char *path, onestep_error *error)
{
  os_error_clear(error);
  return load_checkpoint(t, path, error);
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
