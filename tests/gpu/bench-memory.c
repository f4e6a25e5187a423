/* bench-memory.c: see bench-memory.h.
 *
 * Each piece allocates its inputs and outputs on the backend as the pipeline
 * does (engine/pipeline/generate.c: one stage's buffers live only during that
 * stage), so a piece's peak is what that stage of onestep_generate() adds to
 * the resident weights. The one-step chain runs the stages in the pipeline's
 * order (CLIP, encode, two UNet calls, decode of all frames at once). */
#include "bench-memory.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dry-backend.h"
#include "layers.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
/* Issue 12: a one-step generation at 1024x576, all frames decoded together,
 * in at most 12 GB for 25 frames and under 10 GB for 14. */
#define GOAL_25_FRAMES 12e9
#define GOAL_14_FRAMES 10e9

typedef struct {
  os_backend *be;
  const bench_memory_models *m;
  int H, W, h, w; /* image and latent sizes */
} dry_run;

/* One stage's backend buffers, freed together. */
typedef struct {
  os_backend *be;
  float *ptr[4];
  int n;
} stage_buffers;

static float *
stage_alloc(stage_buffers *s, size_t floats)
{
  float *p = s->be->ops->alloc(s->be, floats * sizeof(float));
  if (p)
    s->ptr[s->n++] = p;
  return p;
}

static void
stage_free(stage_buffers *s)
{
  for (int i = 0; i < s->n; i++)
    s->be->ops->free(s->be, s->ptr[i]);
  s->n = 0;
}

static onestep_status
out_of_memory(stage_buffers *s, onestep_error *error)
{
  stage_free(s);
  snprintf(error->message, sizeof error->message, "the dry backend ran out of address space");
  return ONESTEP_ERR_OUT_OF_MEMORY;
}

static onestep_status
clip_stage(dry_run *d, int B, int F, onestep_error *error)
{
  const os_clip_config *c = &d->m->clip_cfg;
  stage_buffers s = { d->be };
  float *pixels = stage_alloc(&s, (size_t)c->num_channels * c->image_size * c->image_size);
  float *embeds = stage_alloc(&s, c->projection_dim);
  if (!pixels || !embeds)
    return out_of_memory(&s, error);
  onestep_status status = os_clip_forward(d->m->clip, d->be, pixels, embeds, error);
  stage_free(&s);
  return status;
}

static onestep_status
encode_stage(dry_run *d, int B, int F, onestep_error *error)
{
  size_t latent = (size_t)d->m->vae_cfg.latent_channels * d->h * d->w;
  stage_buffers s = { d->be };
  float *image = stage_alloc(&s, (size_t)3 * d->H * d->W);
  float *mean = stage_alloc(&s, latent), *std = stage_alloc(&s, latent);
  if (!image || !mean || !std)
    return out_of_memory(&s, error);
  onestep_status status = os_vae_encode(d->m->vae, d->be, image, d->H, d->W, mean, std, error);
  stage_free(&s);
  return status;
}

/* `calls` UNet evaluations on one input/output pair, as the denoise stage. */
static onestep_status
unet_calls(dry_run *d, int B, int F, int calls, onestep_error *error)
{
  const os_unet_config *c = &d->m->unet_cfg;
  size_t plane = (size_t)d->h * d->w;
  stage_buffers s = { d->be };
  float *sample = stage_alloc(&s, (size_t)B * F * c->in_channels * plane);
  float *out = stage_alloc(&s, (size_t)B * F * c->out_channels * plane);
  float *context = stage_alloc(&s, (size_t)B * c->cross_attention_dim);
  if (!sample || !out || !context)
    return out_of_memory(&s, error);
  /* fps 7 (the UNet sees 6), motion bucket 127, noise augmentation 0.02 */
  const float time_ids[6] = { 6, 127, 0.02f, 6, 127, 0.02f };
  onestep_status status = ONESTEP_OK;
  for (int i = 0; i < calls && status == ONESTEP_OK; i++)
    status = os_unet_forward(d->m->unet, d->be, sample, 1.0f, context, time_ids, B, F, d->h, d->w,
                             out, error);
  stage_free(&s);
  return status;
}

static onestep_status
unet_stage(dry_run *d, int B, int F, onestep_error *error)
{
  return unet_calls(d, B, F, 1, error);
}

static onestep_status
decode_stage(dry_run *d, int B, int F, onestep_error *error)
{
  stage_buffers s = { d->be };
  float *latents = stage_alloc(&s, (size_t)F * d->m->vae_cfg.latent_channels * d->h * d->w);
  float *frames = stage_alloc(&s, (size_t)F * 3 * d->H * d->W);
  if (!latents || !frames)
    return out_of_memory(&s, error);
  onestep_status status = os_vae_decode(d->m->vae, d->be, latents, F, d->h, d->w, frames, error);
  stage_free(&s);
  return status;
}

/* The one-step Time Travel Sampler without CFG: two UNet calls at batch 1. */
static onestep_status
one_step_chain(dry_run *d, int B, int F, onestep_error *error)
{
  onestep_status status;
  if ((status = clip_stage(d, 1, 1, error)) || (status = encode_stage(d, 1, 1, error)) ||
      (status = unet_calls(d, 1, F, 2, error)) || (status = decode_stage(d, 1, F, error)))
    return status;
  return ONESTEP_OK;
}

typedef onestep_status (*stage_fn)(dry_run *d, int B, int F, onestep_error *error);

static int
compare_sizes_descending(const void *a, const void *b)
{
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x < y) - (x > y);
}

/* The largest blocks live at the peak: where the memory goes. */
static void
print_blocks_at_peak(os_backend *be)
{
  const size_t *at_peak;
  size_t n = bench_dry_backend_blocks_at_peak(be, &at_peak);
  size_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
  if (!sizes)
    return;
  for (size_t i = 0; i < n; i++)
    sizes[i] = at_peak[i];
  qsort(sizes, n, sizeof *sizes, compare_sizes_descending);
  printf("%40s at peak %zu blocks, largest (GiB):", "", n);
  size_t rest = 0;
  for (size_t i = 0; i < n; i++) {
    if (i < 8)
      printf(" %.2f", sizes[i] / GIB);
    else
      rest += sizes[i];
  }
  if (rest)
    printf(" + %.2f in the rest", rest / GIB);
  printf("\n");
  free(sizes);
}

/* One run of a piece from an empty backend at the dry backend's present
 * precision: its peak, or 0 after printing why it failed. */
static size_t
run_piece(dry_run *d, stage_fn fn, int B, int F)
{
  os_backend *be = d->be;
  onestep_error error = { 0 };
  size_t before = be->bytes_in_use, blocks = bench_dry_backend_live_blocks(be);
  size_t violations = bench_dry_backend_violations(be, NULL);
  be->peak_bytes = before;
  onestep_status status = fn(d, B, F, &error);
  size_t peak = be->peak_bytes - before;
  const char *first;
  size_t new_violations = bench_dry_backend_violations(be, &first) - violations;
  if (status != ONESTEP_OK)
    printf("FAILED: %s ", error.message);
  else if (new_violations)
    printf("FAILED: %zu buffer checks, the first: %s ", new_violations, first);
  else if (be->bytes_in_use != before || bench_dry_backend_live_blocks(be) != blocks)
    printf("FAILED: leaked %zu bytes in %zu blocks ", be->bytes_in_use - before,
           bench_dry_backend_live_blocks(be) - blocks);
  else if (peak == 0)
    printf("FAILED: allocated nothing ");
  else
    return peak;
  return 0;
}

/* Runs one piece in fp32, then in fp16 storage; prints its row and the
 * blocks live at the fp16 peak; returns the fp16 peak (0 when a run failed). */
static size_t
measure_piece(dry_run *d, const char *what, stage_fn fn, int B, int F, bool *ok)
{
  printf("%-40s ", what);
  bench_dry_backend_set_precision(d->be, ONESTEP_PRECISION_FP32);
  size_t fp32 = run_piece(d, fn, B, F);
  bench_dry_backend_set_precision(d->be, ONESTEP_PRECISION_FP16);
  size_t fp16 = fp32 ? run_piece(d, fn, B, F) : 0;
  if (fp16)
    printf("%10.2f %10.2f  ok\n", fp32 / GIB, fp16 / GIB);
  else
    printf("\n");
  print_blocks_at_peak(d->be);
  *ok = *ok && fp16;
  return fp16;
}

int
bench_memory(os_backend *dry, const bench_memory_models *m, int width, int height,
             bool check_goal)
{
  int f = 1 << (m->vae_cfg.n_levels - 1);
  dry_run d = { dry, m, height, width, height / f, width / f };
  bool ok = true;
  printf("\nengine allocations at %dx%d (dry run: nothing computed; each piece's own inputs and "
         "outputs included, weights not), float32 buffers at 4 bytes per value; in fp16, "
         "activation buffers at 2\n",
         width, height);
  printf("%-40s %10s %10s\n", "piece", "fp32 GiB", "fp16 GiB");
  measure_piece(&d, "UNet forward, 14 frames, batch 1", unet_stage, 1, 14, &ok);
  measure_piece(&d, "UNet forward, 25 frames, batch 1", unet_stage, 1, 25, &ok);
  measure_piece(&d, "UNet forward, 14 frames, batch 2", unet_stage, 2, 14, &ok);
  measure_piece(&d, "UNet forward, 25 frames, batch 2", unet_stage, 2, 25, &ok);
  measure_piece(&d, "VAE decoder, 14 frames", decode_stage, 1, 14, &ok);
  measure_piece(&d, "VAE decoder, 25 frames", decode_stage, 1, 25, &ok);
  measure_piece(&d, "VAE encoder, 1 image", encode_stage, 1, 1, &ok);
  measure_piece(&d, "CLIP, 1 image", clip_stage, 1, 1, &ok);
  size_t chains[2] = {
    measure_piece(&d, "one step (TTS, no CFG), 14 frames", one_step_chain, 1, 14, &ok),
    measure_piece(&d, "one step (TTS, no CFG), 25 frames", one_step_chain, 1, 25, &ok),
  };

  /* onestep_context keeps all three models on the device between stages
   * and generations: every stage runs beside all the weights. */
  size_t weights = 0;
  const char *names[3] = { "UNet", "VAE", "CLIP" };
  printf("\nresident weights in fp16 (matrices and kernels in 16 bits, vectors in float32), all "
         "three kept between stages:");
  for (int i = 0; i < 3; i++) {
    printf(" %s %.2f GiB%s", names[i], m->weight_bytes[i] / GIB, i < 2 ? "," : "\n");
    weights += m->weight_bytes[i];
  }
  printf("one step in fp16, weights + the chain's peak:\n");
  static const struct {
    int frames;
    double goal;
    bool inclusive;
  } goals[2] = { { 14, GOAL_14_FRAMES, false }, { 25, GOAL_25_FRAMES, true } };
  for (int i = 0; i < 2; i++) {
    double total = (double)weights + chains[i];
    bool met = chains[i] && (goals[i].inclusive ? total <= goals[i].goal : total < goals[i].goal);
    printf("  %d frames: %.2f GiB = %.2f GB (goal %s %.0f GB: %s)\n", goals[i].frames,
           total / GIB, total / 1e9, goals[i].inclusive ? "at most" : "under", goals[i].goal / 1e9,
           met ? "met" : "NOT MET");
    if (check_goal && !met)
      ok = false;
  }
  printf("not counted here: the CUDA backend's own scratch (im2col chunks up to 256 MiB, 16-bit "
         "copies of GEMM operands, cuBLAS workspace)\n");
  return ok ? 0 : 1;
}

/* Runs a piece once per allocation it makes, that allocation failing: each
 * run must report out of memory, free everything and pass the buffer checks
 * (the error paths' ownership: no leak, no double free, no use after free). */
static bool
fault_piece(dry_run *d, const char *what, stage_fn fn, int B, int F)
{
  os_backend *be = d->be;
  onestep_error error = { 0 };
  size_t before = be->bytes_in_use, blocks = bench_dry_backend_live_blocks(be);
  size_t start = bench_dry_backend_allocations(be);
  if (fn(d, B, F, &error) != ONESTEP_OK) {
    printf("%-40s FAILED without a fault: %s\n", what, error.message);
    return false;
  }
  size_t n = bench_dry_backend_allocations(be) - start, failures = 0;
  for (size_t i = 0; i < n; i++) {
    const char *first;
    size_t violations = bench_dry_backend_violations(be, NULL);
    bench_dry_backend_fail_allocation(be, bench_dry_backend_allocations(be) + i);
    onestep_status status = fn(d, B, F, &error);
    bench_dry_backend_fail_allocation(be, SIZE_MAX);
    size_t new_violations = bench_dry_backend_violations(be, &first) - violations;
    bool ok = status == ONESTEP_ERR_OUT_OF_MEMORY && be->bytes_in_use == before &&
              bench_dry_backend_live_blocks(be) == blocks && new_violations == 0;
    if (!ok && failures++ == 0)
      printf("%-40s allocation %zu of %zu failing: status %d (%s), %zu bytes in %zu blocks left, "
             "%zu buffer checks failed%s%s\n",
             what, i, n, (int)status, error.message, be->bytes_in_use - before,
             bench_dry_backend_live_blocks(be) - blocks, new_violations,
             new_violations ? ", the first: " : "", new_violations ? first : "");
    if (!ok) { /* start the next run from a clean count */
      before = be->bytes_in_use;
      blocks = bench_dry_backend_live_blocks(be);
    }
  }
  printf("%-40s %5zu allocations, each failed once: %s\n", what, n,
         failures ? "FAILED" : "ok");
  return failures == 0;
}

int
bench_memory_faults(os_backend *dry, const bench_memory_models *m, int width, int height)
{
  int f = 1 << (m->vae_cfg.n_levels - 1);
  dry_run d = { dry, m, height, width, height / f, width / f };
  /* The smallest chunks, so that every chunked and in-place path runs. */
  os_layers_set_image_chunk_budget(1);
  os_layers_set_token_chunk_budget(1);
  printf("\nout-of-memory paths at %dx%d, smallest chunks\n", width, height);
  bool ok = fault_piece(&d, "UNet forward, 3 frames, batch 2", unet_stage, 2, 3);
  ok = fault_piece(&d, "VAE decoder, 3 frames", decode_stage, 1, 3) && ok;
  ok = fault_piece(&d, "VAE encoder, 1 image", encode_stage, 1, 1) && ok;
  ok = fault_piece(&d, "CLIP, 1 image", clip_stage, 1, 1) && ok;
  os_layers_set_image_chunk_budget((size_t)64 << 20);
  os_layers_set_token_chunk_budget(0);
  return ok ? 0 : 1;
}
