/* generate.c: StableVideoDiffusionPipeline end to end (svd-architecture.md §8). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clip_preprocess.h"
#include "error.h"
#include "grid.h"
#include "image_encode.h"
#include "philox.h"
#include "request_resolve.h"
#include "sampler.h"
#include "unet_denoiser.h"

/* Share of the whole generation each stage reports in progress fractions. */
static const float stage_start[] = {0.0f, 0.0f, 0.05f, 0.10f, 0.90f};
static const float stage_span[] = {0.0f, 0.05f, 0.05f, 0.80f, 0.10f};

typedef struct {
  onestep_context *ctx;
  const onestep_request *req;
  os_resolved_request r;
  os_backend *be;
  /* host */
  float *image_embeds;  /* [D] */
  float *image_latents; /* [latent, h, w] */
  float *sigmas;        /* [steps + 1] */
  int grid_points;      /* consistency grid N of the CM and TTS schedules */
  float *noise;         /* [F, latent, h, w] initial Gaussian noise */
  float *latents;       /* [F, latent, h, w] the sampler's result */
  float *decoded;       /* [F, 3, H, W] in [-1, 1] */
  uint8_t *preview_rgb; /* [F, r h, r w, 3] the latest preview */
  onestep_clip *clip;
  float fraction; /* the last progress fraction reported */
  bool aborted;   /* the abort callback has asked to stop */
} generation;

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fills the stage fields of p and calls the progress callback. */
static void report_with(generation *g, onestep_progress *p, onestep_stage stage, int step,
                        int n_steps, float within)
{
  p->stage = stage;
  p->step = step;
  p->n_steps = n_steps;
  /* Rounding at stage boundaries must never make the fraction go back. */
  float fraction = stage_start[stage] + stage_span[stage] * within;
  g->fraction = fraction > g->fraction ? fraction : g->fraction;
  p->fraction = g->fraction;
  g->req->progress(p, g->req->user_data);
}

static void report(generation *g, onestep_stage stage, int step, int n_steps, float within)
{
  if (!g->req->progress)
    return;
  onestep_progress p = {0};
  report_with(g, &p, stage, step, n_steps, within);
}

static void tap(generation *g, const char *name, float *data, int ndim, const int64_t *shape)
{
  if (g->req->tap)
    g->req->tap(name, data, ndim, shape, g->req->user_data);
}

/* The request's abort callback as the backend polls it: once it has asked to
 * stop it keeps saying so, as an op that it stopped midway left its output
 * unfinished, and a callback changing its mind must not let that through. */
static bool abort_latched(void *user_data)
{
  generation *g = user_data;
  if (!g->aborted && g->req->abort && g->req->abort(g->req->user_data))
    g->aborted = true;
  return g->aborted;
}

static onestep_status check_abort(generation *g, onestep_error *error)
{
  if (abort_latched(g))
    return os_error_set(error, ONESTEP_ERR_ABORTED, "generation aborted");
  return ONESTEP_OK;
}

/* Backend scratch buffers of one stage, freed together. */
typedef struct {
  os_backend *be;
  void *ptr[4];
  int n;
} scratch;

static float *scratch_alloc(scratch *s, size_t floats)
{
  void *p = s->be->ops->alloc(s->be, floats * sizeof(float));
  if (p)
    s->ptr[s->n++] = p;
  return p;
}

static void scratch_free(scratch *s)
{
  for (int i = 0; i < s->n; i++)
    s->be->ops->free(s->be, s->ptr[i]);
  s->n = 0;
}

static onestep_status out_of_memory(onestep_error *error, const char *what)
{
  return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for %s", what);
}

/* CLIP branch: the original image -> image_embeds. */
static onestep_status run_clip(generation *g, const onestep_image *image, onestep_error *error)
{
  const os_clip_config *cc = &g->ctx->src.config.clip;
  int S = cc->image_size, D = cc->projection_dim;
  float *pixels = malloc((size_t)3 * S * S * sizeof(float));
  g->image_embeds = malloc((size_t)D * sizeof(float));
  if (!pixels || !g->image_embeds) {
    free(pixels);
    return out_of_memory(error, "the CLIP input");
  }
  onestep_status status = os_image_embed(g->ctx, image, pixels, g->image_embeds, error);
  int64_t px_shape[4] = {1, 3, S, S}, emb_shape[2] = {1, D};
  if (status == ONESTEP_OK) {
    tap(g, "clip.pixel_values", pixels, 4, px_shape);
    tap(g, "clip.image_embeds", g->image_embeds, 2, emb_shape);
  }
  free(pixels);
  return status;
}

/* VAE branch: noise-augmented image -> posterior mean (unscaled). */
static onestep_status run_encode(generation *g, const onestep_image *image, onestep_error *error)
{
  int H = g->r.height, W = g->r.width, lc = g->ctx->src.config.vae.latent_channels;
  size_t n_img = (size_t)3 * H * W, n_lat = (size_t)lc * g->r.latent_h * g->r.latent_w;
  float *x = malloc(n_img * sizeof(float)), *noise = malloc(n_img * sizeof(float));
  float *std = malloc(n_lat * sizeof(float));
  g->image_latents = malloc(n_lat * sizeof(float));
  onestep_status status = ONESTEP_OK;
  if (!x || !noise || !std || !g->image_latents) {
    status = out_of_memory(error, "the VAE encoder input");
    goto out;
  }
  os_image_to_signed_float(image, x, g->ctx->host_threads);
  if (g->req->noise_image_aug)
    memcpy(noise, g->req->noise_image_aug, n_img * sizeof(float));
  else
    os_philox_normal(g->req->seed, OS_NOISE_IMAGE_AUG, 0, noise, n_img);
  int64_t img_shape[4] = {1, 3, H, W};
  int64_t lat_shape[4] = {1, lc, g->r.latent_h, g->r.latent_w};
  tap(g, "noise.image_aug", noise, 4, img_shape);
  for (size_t i = 0; i < n_img; i++)
    x[i] = x[i] + g->req->noise_aug_strength * noise[i];
  tap(g, "vae_enc.input", x, 4, img_shape);
  status = os_image_encode_latent(g->ctx, x, H, W, g->image_latents, std, error);
  if (status != ONESTEP_OK)
    goto out;
  tap(g, "vae_enc.mean", g->image_latents, 4, lat_shape);
  tap(g, "vae_enc.std", std, 4, lat_shape);
out:
  free(x);
  free(noise);
  free(std);
  return status;
}

/* The sampler's noise levels and the initial noise eps (unscaled). */
static onestep_status prepare_noise(generation *g, onestep_error *error)
{
  const os_scheduler_config *sc = &g->ctx->src.config.scheduler;
  int F = g->r.frames, lc = g->ctx->src.config.vae.latent_channels, k = g->r.steps;
  size_t n = (size_t)F * lc * g->r.latent_h * g->r.latent_w;
  g->sigmas = malloc((size_t)(k + 1) * sizeof(float));
  g->noise = malloc(n * sizeof(float));
  g->latents = malloc(n * sizeof(float));
  if (!g->sigmas || !g->noise || !g->latents)
    return out_of_memory(error, "the latents");
  onestep_status status = ONESTEP_OK;
  if (g->r.sampler == ONESTEP_SAMPLER_EULER) {
    if (!sc->use_karras_sigmas || !sc->v_prediction)
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s/scheduler/scheduler_config.json: the euler sampler needs Karras "
                          "sigmas with v_prediction",
                          g->ctx->src.config.path);
    os_karras_sigmas(sc->sigma_min, sc->sigma_max, sc->rho, k, g->sigmas);
  } else {
    status = os_cm_schedule(g->grid_points, k, g->sigmas, error);
  }
  if (g->req->noise_latents)
    memcpy(g->noise, g->req->noise_latents, n * sizeof(float));
  else
    os_philox_normal(g->req->seed, OS_NOISE_LATENTS, 0, g->noise, n);
  int64_t shape[5] = {1, F, lc, g->r.latent_h, g->r.latent_w};
  tap(g, "noise.latents", g->noise, 5, shape);
  return status;
}

/* Euler starts from eps * init_noise_sigma: diffusers uses sqrt(max sigma^2 + 1)
 * for "leading" spacing and max sigma otherwise. */
static onestep_status sample_euler(generation *g, const os_denoiser *d, onestep_error *error)
{
  float max_sigma = g->sigmas[0];
  float init_noise_sigma = strcmp(g->ctx->src.config.scheduler.timestep_spacing, "leading") == 0
                               ? sqrtf(max_sigma * max_sigma + 1.0f)
                               : max_sigma;
  for (size_t i = 0; i < d->n; i++)
    g->latents[i] = g->noise[i] * init_noise_sigma;
  return os_sample_euler(d, g->sigmas, g->r.steps, g->latents, error);
}

static onestep_status sample(generation *g, const os_denoiser *d, onestep_error *error)
{
  switch (g->r.sampler) {
  case ONESTEP_SAMPLER_CM:
    return os_sample_cm(d, g->sigmas, g->r.steps, g->noise, g->req->seed, g->latents, error);
  case ONESTEP_SAMPLER_TTS: {
    float *grid = malloc((size_t)g->grid_points * sizeof(float));
    if (!grid)
      return out_of_memory(error, "the noise grid");
    os_cm_grid(g->grid_points, grid);
    onestep_status status =
        os_sample_tts(d, grid, g->grid_points, g->r.steps, g->noise, g->latents, error);
    free(grid);
    return status;
  }
  default:
    return sample_euler(g, d, error);
  }
}

/* Readies the preview decoder once per context; a model without one still
 * generates, only without previews. */
static onestep_status prepare_preview(generation *g, onestep_error *error)
{
  onestep_context *ctx = g->ctx;
  if (!g->req->progress || ctx->preview_state != OS_PREVIEW_UNTRIED)
    return ONESTEP_OK;
  onestep_error preview_error = {0};
  onestep_status status =
      os_preview_for_vae(&ctx->preview, ctx->vae, &ctx->src.config.vae, g->be,
                         os_checkpoint_decoder_hash(&ctx->src), NULL, &preview_error);
  if (status == ONESTEP_ERR_ABORTED)
    return os_error_set(error, status, "generation aborted");
  ctx->preview_state = status == ONESTEP_OK ? OS_PREVIEW_READY : OS_PREVIEW_UNAVAILABLE;
  return ONESTEP_OK;
}

static void on_unet_call(void *owner, int calls, int planned, const float *x0)
{
  generation *g = owner;
  const os_preview_decoder *pd = &g->ctx->preview;
  if (!g->req->progress)
    return;
  onestep_progress p = {0};
  if (g->ctx->preview_state == OS_PREVIEW_READY) {
    int F = g->r.frames, ph = g->r.latent_h * pd->scale, pw = g->r.latent_w * pd->scale;
    if (!g->preview_rgb)
      g->preview_rgb = malloc((size_t)F * ph * pw * 3);
    if (g->preview_rgb) {
      os_preview_apply(pd, x0, F, g->r.latent_h, g->r.latent_w, g->preview_rgb);
      p.preview_rgb = g->preview_rgb;
      p.preview_frames = F;
      p.preview_width = pw;
      p.preview_height = ph;
    }
  }
  report_with(g, &p, ONESTEP_STAGE_DENOISE, calls, planned, (float)calls / (float)planned);
}

static onestep_status run_denoise(generation *g, onestep_error *error)
{
  const os_model_config *cfg = &g->ctx->src.config;
  int B = g->r.cfg ? 2 : 1, D = cfg->unet.cross_attention_dim;
  os_unet_denoiser d = {0};
  d.be = g->be;
  d.unet = g->ctx->unet;
  d.request = g->req;
  d.B = B;
  d.F = g->r.frames;
  d.noisy_channels = cfg->unet.out_channels;
  d.latent_channels = cfg->vae.latent_channels;
  d.in_channels = cfg->unet.in_channels;
  d.h = g->r.latent_h;
  d.w = g->r.latent_w;
  d.cfg = g->r.cfg;
  d.image_latents = g->image_latents;
  d.context_dim = D;
  d.planned_calls = os_sampler_nfe(g->r.sampler, g->r.steps, g->r.cfg) / B;
  d.on_call = on_unet_call;
  d.owner = g;
  for (int b = 0; b < B; b++) {
    d.added_time_ids[3 * b + 0] = (float)(g->req->fps - 1);
    d.added_time_ids[3 * b + 1] = (float)g->req->motion_bucket_id;
    d.added_time_ids[3 * b + 2] = g->req->noise_aug_strength;
  }
  onestep_status status = prepare_preview(g, error);
  if (status != ONESTEP_OK)
    return status;
  float *context = calloc((size_t)B * D, sizeof(float));
  scratch s = {g->be};
  float *context_dev = scratch_alloc(&s, (size_t)B * D);
  status = os_unet_denoiser_init(&d, error);
  if (status == ONESTEP_OK && (!context || !context_dev))
    status = out_of_memory(error, "the UNet context");
  if (status != ONESTEP_OK)
    goto out;
  /* The unconditional half keeps a zero embedding. */
  memcpy(context + (size_t)(B - 1) * D, g->image_embeds, (size_t)D * sizeof(float));
  d.context_host = context;
  d.context_dev = context_dev;
  os_linspace(g->r.min_guidance, g->r.max_guidance, g->r.frames, d.guidance);

  os_denoiser denoiser = os_unet_denoiser_wrap(&d);
  report(g, ONESTEP_STAGE_DENOISE, 0, g->r.steps, 0.0f);
  status = sample(g, &denoiser, error);
  g->clip->nfe = d.calls * B;
out:
  os_unet_denoiser_clear(&d);
  free(context);
  scratch_free(&s);
  return status;
}

/* Decodes latents / scaling_factor chunk by chunk into g->decoded. */
static onestep_status run_decode(generation *g, onestep_error *error)
{
  const os_vae_config *vc = &g->ctx->src.config.vae;
  int F = g->r.frames, lc = vc->latent_channels, h = g->r.latent_h, w = g->r.latent_w;
  int H = g->r.height, W = g->r.width, chunk = g->r.decode_chunk;
  size_t lat_frame = (size_t)lc * h * w, img_frame = (size_t)3 * H * W;
  g->decoded = malloc((size_t)F * img_frame * sizeof(float));
  float *z = malloc((size_t)F * lat_frame * sizeof(float));
  scratch s = {g->be};
  float *z_dev = scratch_alloc(&s, (size_t)chunk * lat_frame);
  float *frames_dev = scratch_alloc(&s, (size_t)chunk * img_frame);
  onestep_status status = ONESTEP_OK;
  if (!g->decoded || !z || !z_dev || !frames_dev) {
    status = out_of_memory(error, "the decoded frames");
    goto out;
  }
  float inv_scale = (float)(1.0 / vc->scaling_factor);
  for (size_t i = 0; i < (size_t)F * lat_frame; i++)
    z[i] = inv_scale * g->latents[i];
  int n_chunks = (F + chunk - 1) / chunk;
  for (int c = 0; c < n_chunks && status == ONESTEP_OK; c++) {
    status = check_abort(g, error);
    if (status != ONESTEP_OK)
      break;
    int first = c * chunk, n = F - first < chunk ? F - first : chunk;
    char name[48];
    int64_t lat_shape[4] = {n, lc, h, w}, img_shape[4] = {n, 3, H, W};
    snprintf(name, sizeof name, "vae_dec.%d.latents", c);
    tap(g, name, z + (size_t)first * lat_frame, 4, lat_shape);
    g->be->ops->upload(g->be, z_dev, z + (size_t)first * lat_frame, n * lat_frame * sizeof(float));
    status = os_vae_decode(g->ctx->vae, g->be, z_dev, n, h, w, frames_dev, error);
    if (status != ONESTEP_OK)
      break;
    float *dst = g->decoded + (size_t)first * img_frame;
    g->be->ops->download(g->be, dst, frames_dev, n * img_frame * sizeof(float));
    status = g->be->ops->sync(g->be, error);
    snprintf(name, sizeof name, "vae_dec.%d.frames", c);
    if (status == ONESTEP_OK)
      tap(g, name, dst, 4, img_shape);
    report(g, ONESTEP_STAGE_DECODE, c + 1, n_chunks, (float)(c + 1) / (float)n_chunks);
  }
out:
  free(z);
  scratch_free(&s);
  return status;
}

/* clamp(x / 2 + 0.5, 0, 1) -> frames [F, H, W, 3] as RGB8 (round half to even
 * as numpy does) and, on request, float. */
static onestep_status postprocess(generation *g, onestep_error *error)
{
  int F = g->r.frames, H = g->r.height, W = g->r.width;
  size_t plane = (size_t)H * W, n = (size_t)F * 3 * plane;
  onestep_clip *clip = g->clip;
  int n_threads = g->ctx->host_threads;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (size_t i = 0; i < n; i++) {
    float p = g->decoded[i] * 0.5f + 0.5f;
    g->decoded[i] = p < 0.0f ? 0.0f : p > 1.0f ? 1.0f : p;
  }
  int64_t shape[5] = {1, F, 3, H, W};
  tap(g, "frames", g->decoded, 5, shape);
  clip->rgb = malloc(n);
  if (g->req->want_float_frames)
    clip->rgb_float = malloc(n * sizeof(float));
  if (!clip->rgb || (g->req->want_float_frames && !clip->rgb_float))
    return out_of_memory(error, "the output frames");
  /* planar float frames to interleaved RGB, one row of one frame per task */
#pragma omp parallel for collapse(2) num_threads(n_threads) schedule(static)
  for (int f = 0; f < F; f++)
    for (int y = 0; y < H; y++) {
      const float *planes = g->decoded + (size_t)f * 3 * plane + (size_t)y * W;
      size_t o = ((size_t)f * plane + (size_t)y * W) * 3;
      for (int x = 0; x < W; x++)
        for (int c = 0; c < 3; c++) {
          float v = planes[(size_t)c * plane + x];
          clip->rgb[o + 3 * x + c] = (uint8_t)lrintf(v * 255.0f);
          if (clip->rgb_float)
            clip->rgb_float[o + 3 * x + c] = v;
        }
    }
  return ONESTEP_OK;
}

static void generation_clear(generation *g)
{
  free(g->image_embeds);
  free(g->image_latents);
  free(g->noise);
  free(g->latents);
  free(g->decoded);
  free(g->sigmas);
  free(g->preview_rgb);
}

/* Runs one stage, timing it and checking for abort first. */
#define RUN_STAGE(g, stage, seconds_field, call)                                               \
  do {                                                                                         \
    status = check_abort(g, error);                                                            \
    if (status != ONESTEP_OK)                                                                  \
      goto fail;                                                                               \
    report(g, stage, 0, 0, 0.0f);                                                              \
    double t0 = now_seconds();                                                                 \
    status = (call);                                                                           \
    (g)->clip->seconds_field = now_seconds() - t0;                                             \
    if (status != ONESTEP_OK)                                                                  \
      goto fail;                                                                               \
  } while (0)

onestep_clip *onestep_generate(onestep_context *ctx, const onestep_image *image,
                               const onestep_request *request, onestep_error *error)
{
  os_error_clear(error);
  if (!ctx || !request) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "context and request are required");
    return NULL;
  }
  generation g = {ctx, request};
  g.be = ctx->be;
  g.grid_points = ctx->info.grid_points > 0 ? ctx->info.grid_points : OS_CM_GRID_OSV;
  onestep_status status = os_request_resolve(ctx, image, request, &g.r, error);
  if (status != ONESTEP_OK)
    return NULL;
  g.clip = calloc(1, sizeof *g.clip);
  if (!g.clip) {
    out_of_memory(error, "the clip");
    return NULL;
  }
  g.clip->frames = g.r.frames;
  g.clip->width = g.r.width;
  g.clip->height = g.r.height;
  g.clip->steps = g.r.steps;
  g.clip->sampler = g.r.sampler;
  g.be->abort_cb = request->abort ? abort_latched : NULL;
  g.be->abort_user_data = &g;
  g.be->peak_bytes = g.be->bytes_in_use;

  RUN_STAGE(&g, ONESTEP_STAGE_CLIP, seconds_clip, run_clip(&g, image, error));
  RUN_STAGE(&g, ONESTEP_STAGE_ENCODE, seconds_encode, run_encode(&g, image, error));
  status = prepare_noise(&g, error);
  if (status != ONESTEP_OK)
    goto fail;
  RUN_STAGE(&g, ONESTEP_STAGE_DENOISE, seconds_denoise, run_denoise(&g, error));
  RUN_STAGE(&g, ONESTEP_STAGE_DECODE, seconds_decode, run_decode(&g, error));
  status = postprocess(&g, error);
  if (status != ONESTEP_OK)
    goto fail;

  g.clip->n_sigmas = g.r.steps + 1;
  g.clip->sigmas = g.sigmas;
  g.sigmas = NULL;
  g.clip->peak_bytes = g.be->peak_bytes;
  g.be->abort_cb = NULL;
  generation_clear(&g);
  return g.clip;

fail:
  g.be->abort_cb = NULL;
  generation_clear(&g);
  onestep_clip_free(g.clip);
  return NULL;
}

onestep_status onestep_plan_request(const onestep_context *ctx, const onestep_image *image,
                                    const onestep_request *request, onestep_plan *plan,
                                    onestep_error *error)
{
  os_error_clear(error);
  if (!ctx || !request || !plan)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "context, request and plan are required");
  os_resolved_request r;
  onestep_status status = os_request_resolve(ctx, image, request, &r, error);
  if (status != ONESTEP_OK)
    return status;
  int batch = r.cfg ? 2 : 1;
  *plan = (onestep_plan){
      .frames = r.frames,
      .width = r.width,
      .height = r.height,
      .steps = r.steps,
      .sampler = r.sampler,
      .unet_calls = os_sampler_nfe(r.sampler, r.steps, r.cfg) / batch,
      .unet_batch = batch,
      .decode_chunk = r.decode_chunk,
  };
  return ONESTEP_OK;
}

void onestep_clip_free(onestep_clip *clip)
{
  if (!clip)
    return;
  free(clip->rgb);
  free(clip->rgb_float);
  free(clip->sigmas);
  free(clip);
}
