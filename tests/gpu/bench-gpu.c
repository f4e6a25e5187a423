/* bench-gpu.c: the engine's models at full SVD-XT size on the CUDA backend,
 * with random weights (weights do not change the cost).
 *
 * Times the UNet forward (1024x576, 14 and 25 frames, batch 1 and 2), the
 * temporal VAE decoder, the encoder, CLIP, and the one-step Time Travel
 * Sampler's work (CLIP, encode, two UNet calls, decode, frames to host) both
 * as that chain of model calls and through onestep_generate() on a model
 * folder written for the purpose. Prints milliseconds (median of timed runs
 * after a warm-up; each run ends with the backend's sync, so host time equals
 * GPU time on its one stream), TFLOP/s over the reference's useful FLOP counts
 * (docs/anchors.md), % of the card's GEMM peak when given, and peak backend
 * memory. Weights come from bench-weights.c.
 *
 * Usage: bench-gpu [--peak-tflops T] [--budget-s S] [--only KEY] | --bind-only
 *        | --train-memory FRAMES [--size WxH]
 *        | --memory [--size WxH] | --memory-goal | --memory-faults [--size WxH]
 *   T: the card's measured fp16 GEMM rate (from gemm-peak), for "% of peak";
 *   S: stop starting new measurements after S seconds (default 300);
 *   KEY: run one measurement only (pipeline, unet14, unet25, decode14, encode,
 *   clip, chain14, unet14b2, unet25b2, decode25, chain25), e.g. together with
 *   ONESTEP_CUDA_PROFILE=1 for its per-op breakdown;
 *   --bind-only: bind the three models on the CPU backend (zero-copy, no
 *   compute) and print their sizes: checks the configs anywhere, in a second;
 *   --memory: the engine's own peak memory per piece at WxH (default
 *   1024x576) on a backend that computes nothing (bench-memory.h), in seconds,
 *   anywhere; exits 1 when a piece leaks or fails the dry backend's checks;
 *   --memory-goal: the same at 1024x576 (whatever --size says), also exiting 1 unless a one-step
 *   generation with fp16 weights and storage meets issue 12's goals (25
 *   frames at most 12e9 bytes, 14 frames under 10e9);
 *   --train-memory F: one LoRA training step of the UNet at F frames and
 *   WxH on the same dry backend, with and without gradient checkpointing
 *   (bench-train-memory.h);
 *   --memory-faults: the same models with every allocation failing in turn
 *   (bench_memory_faults): the error paths free everything and touch no
 *   freed buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "bench-memory.h"
#include "bench-train-memory.h"
#include "bench-pipeline.h"
#include "bench-weights.h"
#include "clip.h"
#include "config.h"
#include "dry-backend.h"
#include "layers.h"
#include "unet.h"
#include "vae.h"
#include "weights.h"

#define WIDTH 1024
#define HEIGHT 576
#define LATENT_H (HEIGHT / 8)
#define LATENT_W (WIDTH / 8)
static double budget_s = 300.0, peak_tflops = 0.0;
static const char *only; /* --only KEY */
static struct timespec start_time;

static void
finish_weights(os_weight_set *ws, const void *model, const char *component)
{
  onestep_error error = { 0 };
  if (os_weights_finish(ws, &error) != ONESTEP_OK || !model) {
    fprintf(stderr, "binding the %s failed: %s\n", component, error.message);
    exit(1);
  }
}

/* ---------------------------------------------------------------------------- */
/* configs: stabilityai/stable-video-diffusion-img2vid-xt */

static os_unet_config
svd_xt_unet(void)
{
  os_unet_config cfg = {
    .in_channels = 8, .out_channels = 4, .num_frames = 25, .n_levels = 4,
    .block_out_channels = { 320, 640, 1280, 1280 },
    .num_attention_heads = { 5, 10, 20, 20 },
    .transformer_layers_per_block = { 1, 1, 1, 1 },
    .down_has_attention = { true, true, true, false },
    .up_has_attention = { false, true, true, true },
    .layers_per_block = 2,
    .cross_attention_dim = 1024,
    .addition_time_embed_dim = 256,
    .projection_class_embeddings_input_dim = 768,
    .sample_size = 96,
  };
  return cfg;
}

static os_vae_config
svd_xt_vae(void)
{
  os_vae_config cfg = {
    .in_channels = 3, .out_channels = 3, .latent_channels = 4, .layers_per_block = 2,
    .n_levels = 4, .block_out_channels = { 128, 256, 512, 512 }, .norm_num_groups = 32,
    .scaling_factor = 0.18215f, .force_upcast = true, .sample_size = 768,
  };
  return cfg;
}

static os_clip_config
vit_h14(void)
{
  os_clip_config cfg = {
    .hidden_size = 1280, .intermediate_size = 5120, .num_hidden_layers = 32,
    .num_attention_heads = 16, .patch_size = 14, .image_size = 224, .num_channels = 3,
    .projection_dim = 1024, .layer_norm_eps = 1e-5f, .quick_gelu = false,
  };
  return cfg;
}

/* ---------------------------------------------------------------------------- */
/* timing */

typedef struct {
  os_unet *unet;
  os_vae *vae;
  os_clip *clip;
  os_backend *be;
  float *sample, *context, *latents, *unet_out, *image, *mean, *frames, *pixels, *embeds;
  float *frames_host;
  int B, F;
} bench;

typedef onestep_status (*bench_fn)(bench *b, onestep_error *error);

static double
seconds_since(const struct timespec *t0)
{
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int
compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One warm-up, then `runs` timed runs; prints a table row. Skipped unless
 * `key` is the --only one (when given). */
static void
measure(bench *b, const char *key, const char *what, bench_fn fn, int runs, double tflop,
        double reference_ms)
{
  if (only && strcmp(only, key) != 0)
    return;
  if (seconds_since(&start_time) > budget_s) {
    printf("%-34s skipped: time budget of %.0f s spent\n", what, budget_s);
    return;
  }
  onestep_error error = { 0 };
  os_backend *be = b->be;
  double times[16];
  be->peak_bytes = be->bytes_in_use;
  for (int r = -1; r < runs; r++) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    onestep_status status = fn(b, &error);
    if (status == ONESTEP_OK)
      status = be->ops->sync(be, &error);
    if (status != ONESTEP_OK) {
      printf("%-34s FAILED: %s\n", what, error.message);
      return;
    }
    if (r >= 0)
      times[r] = seconds_since(&t0) * 1e3;
  }
  qsort(times, runs, sizeof times[0], compare_doubles);
  double ms = times[runs / 2];
  double rate = tflop > 0 ? tflop / (ms * 1e-3) : 0;
  printf("%-34s %9.1f ms  %7.1f TFLOP/s", what, ms, rate);
  if (peak_tflops > 0 && tflop > 0)
    printf("  %5.1f%% of peak", 100.0 * rate / peak_tflops);
  else
    printf("  %14s", "");
  printf("  peak mem %6.2f GiB", be->peak_bytes / (1024.0 * 1024.0 * 1024.0));
  if (reference_ms > 0)
    printf("  (diffusers H200: %.0f ms)", reference_ms);
  printf("\n");
  fflush(stdout);
}

/* Uniform values in [-1, 1) from a linear congruential sequence. */
static void
upload_random(os_backend *be, float *dst, size_t n, uint64_t seed)
{
  float *host = malloc(n * sizeof(float));
  if (!host)
    exit(1);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    host[i] = (float)((seed >> 40) * 0x1p-23) - 1.0f;
  }
  be->ops->upload(be, dst, host, n * sizeof(float));
  free(host);
}

static float *
device_buffer(os_backend *be, size_t n, const char *what)
{
  float *p = be->ops->alloc(be, n * sizeof(float));
  if (!p) {
    fprintf(stderr, "out of GPU memory for %s (%.1f MiB)\n", what, n * 4.0 / (1 << 20));
    exit(1);
  }
  return p;
}

static onestep_status
run_unet(bench *b, onestep_error *error)
{
  /* fps 7 (the UNet sees 6), motion bucket 127, noise augmentation 0.02 */
  float time_ids[6] = { 6, 127, 0.02f, 6, 127, 0.02f };
  return os_unet_forward(b->unet, b->be, b->sample, 1.0f, b->context, time_ids, b->B, b->F,
                         LATENT_H, LATENT_W, b->unet_out, error);
}

static onestep_status
run_decode(bench *b, onestep_error *error)
{
  return os_vae_decode(b->vae, b->be, b->latents, b->F, LATENT_H, LATENT_W, b->frames, error);
}

static onestep_status
run_encode(bench *b, onestep_error *error)
{
  return os_vae_encode(b->vae, b->be, b->image, HEIGHT, WIDTH, b->mean, NULL, error);
}

static onestep_status
run_clip(bench *b, onestep_error *error)
{
  return os_clip_forward(b->clip, b->be, b->pixels, b->embeds, error);
}

/* The one-step Time Travel Sampler's work at b->F frames: CLIP, encode, two
 * UNet calls, decode, frames to host memory. */
static onestep_status
run_one_step(bench *b, onestep_error *error)
{
  onestep_status status;
  b->B = 1;
  if ((status = run_clip(b, error)) || (status = run_encode(b, error)) ||
      (status = run_unet(b, error)) || (status = run_unet(b, error)) ||
      (status = run_decode(b, error)))
    return status;
  b->be->ops->download(b->be, b->frames_host, b->frames,
                       (size_t)b->F * 3 * HEIGHT * WIDTH * sizeof(float));
  return ONESTEP_OK;
}

/* ---------------------------------------------------------------------------- */

/* Binds the three models on be (weights synthesised on demand) and records
 * each one's range of synthetic tensors. */
static void
bind_models(bench *b, os_backend *be, bool scaled, os_weight_set *sets[3],
            bench_model_tensors *tensors)
{
  os_unet_config unet_cfg = svd_xt_unet();
  os_vae_config vae_cfg = svd_xt_vae();
  os_clip_config clip_cfg = vit_h14();
  b->be = be;
  sets[0] = bench_weight_set("unet", be, scaled);
  sets[1] = bench_weight_set("vae", be, scaled);
  sets[2] = bench_weight_set("image_encoder", be, scaled);
  tensors->unet_first = bench_weights_count();
  b->unet = os_unet_bind(&unet_cfg, sets[0]);
  finish_weights(sets[0], b->unet, "UNet");
  tensors->unet_last = tensors->vae_first = bench_weights_count();
  b->vae = os_vae_bind(&vae_cfg, sets[1]);
  finish_weights(sets[1], b->vae, "VAE");
  tensors->vae_last = tensors->clip_first = bench_weights_count();
  b->clip = os_clip_bind(&clip_cfg, sets[2]);
  finish_weights(sets[2], b->clip, "CLIP");
  tensors->clip_last = bench_weights_count();
}

static void
free_models(bench *b, os_weight_set *sets[3])
{
  os_clip_free(b->clip);
  os_vae_free(b->vae);
  os_unet_free(b->unet);
  for (int i = 0; i < 3; i++)
    os_weight_set_free(sets[i]);
}

/* The dry run: models bound on the dry backend, weights read in place. */
static int
run_memory(const int64_t params[3], int width, int height, bool faults, bool check_goal,
           int train_frames)
{
  os_backend *dry = bench_dry_backend_new();
  if (!dry) {
    fprintf(stderr, "cannot create the dry backend\n");
    return 1;
  }
  const void *pool;
  size_t pool_bytes;
  bench_weights_pool(&pool, &pool_bytes);
  bench_dry_backend_allow_host(dry, pool, pool_bytes);
  bench b = { 0 };
  os_weight_set *sets[3];
  bench_model_tensors tensors;
  bind_models(&b, dry, false, sets, &tensors);
  /* The dry backend is a host backend (weights in place): chunk tokens as a GPU does. */
  os_layers_set_token_chunk_budget(OS_DEVICE_TOKEN_CHUNK_FLOATS);
  bench_memory_models m = {
    b.unet, b.vae, b.clip, svd_xt_unet(), svd_xt_vae(), vit_h14(),
    { bench_weights_device_bytes_16bit(tensors.unet_first, tensors.unet_last),
      bench_weights_device_bytes_16bit(tensors.vae_first, tensors.vae_last),
      bench_weights_device_bytes_16bit(tensors.clip_first, tensors.clip_last) },
  };
  int status;
  if (train_frames > 0)
    /* The paper's setting: a LoRA step at 14 frames with checkpointing (a 4 GiB budget). */
    status = bench_train_memory(dry, b.unet, sets[0], params[0], train_frames, width, height,
                                (size_t)4 << 30) |
             bench_train_memory(dry, b.unet, sets[0], params[0], train_frames, width, height, 0);
  else
    status = faults ? bench_memory_faults(dry, &m, width, height)
                    : bench_memory(dry, &m, width, height, check_goal);
  free_models(&b, sets);
  dry->ops->destroy(dry);
  return status;
}

int
main(int argc, char **argv)
{
  bool bind_only = false, memory = false, memory_faults = false, memory_goal = false;
  int memory_width = WIDTH, memory_height = HEIGHT, train_frames = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bind-only") == 0)
      bind_only = true;
    else if (strcmp(argv[i], "--memory") == 0)
      memory = true;
    else if (strcmp(argv[i], "--memory-goal") == 0)
      memory = memory_goal = true;
    else if (strcmp(argv[i], "--memory-faults") == 0)
      memory = memory_faults = true;
    else if (strcmp(argv[i], "--train-memory") == 0 && i + 1 < argc &&
             (train_frames = atoi(argv[++i])) > 0)
      memory = true;
    else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc &&
             sscanf(argv[++i], "%dx%d", &memory_width, &memory_height) == 2 &&
             memory_width >= 64 && memory_height >= 64 && memory_width % 64 == 0 &&
             memory_height % 64 == 0)
      continue;
    else if (strcmp(argv[i], "--peak-tflops") == 0 && i + 1 < argc)
      peak_tflops = atof(argv[++i]);
    else if (strcmp(argv[i], "--budget-s") == 0 && i + 1 < argc)
      budget_s = atof(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr,
              "usage: %s [--peak-tflops T] [--budget-s S] [--only KEY] | --bind-only\n"
              "       | --memory [--size WxH] | --memory-goal | --memory-faults [--size WxH]\n"
              "       | --train-memory FRAMES [--size WxH]\n"
              "         (W and H multiples of 64)\n",
              argv[0]);
      return 2;
    }
  }
  if (memory_goal) { /* the goals are at full size */
    memory_width = WIDTH;
    memory_height = HEIGHT;
  }
  clock_gettime(CLOCK_MONOTONIC, &start_time);
  bench_weights_init();

  /* Binding on the CPU backend is zero-copy and instant: it checks the
   * configs and names every tensor, for the model folder below. */
  onestep_error error = { 0 };
  os_backend *cpu = os_backend_cpu_new(1, &error);
  if (!cpu) {
    fprintf(stderr, "cannot create the CPU backend: %s\n", error.message);
    return 1;
  }
  bench b = { 0 };
  os_weight_set *sets[3];
  bench_model_tensors tensors;
  bind_models(&b, cpu, false, sets, &tensors);
  /* The released SVD-XT files hold exactly these many parameters
   * (svd-architecture.md section 10): the models' bindings imply their shapes. */
  const int64_t released[3] = { 1524623082, 97742847, 632076800 };
  bool counts_match = true;
  int64_t counts[3];
  printf("SVD-XT parameters:");
  for (int i = 0; i < 3; i++) {
    int64_t count = counts[i] = os_weights_param_count(sets[i]);
    printf(" %s %lld%s", i == 0 ? "UNet" : i == 1 ? "VAE" : "CLIP", (long long)count,
           count == released[i] ? "" : " (released file: different)");
    counts_match = counts_match && count == released[i];
  }
  printf("\n");
  free_models(&b, sets);
  cpu->ops->destroy(cpu);
  if (bind_only)
    return counts_match ? 0 : 1;
  if (memory)
    return run_memory(counts, memory_width, memory_height, memory_faults, memory_goal,
                      train_frames);

  os_backend *be = os_backend_cuda_new(ONESTEP_PRECISION_FP32, &error);
  if (!be) {
    printf("SKIP: no usable CUDA backend: %s\n", error.message);
    return 77;
  }
  const char *precision = getenv("ONESTEP_CUDA_PRECISION");
  printf("%s\nprecision %s (ONESTEP_CUDA_PRECISION)\n", be->name,
         precision && *precision ? precision : "fp32");

  /* The headline first: the whole engine, image in to frames in host memory. */
  if (!only || strcmp(only, "pipeline") == 0)
    bench_pipeline(&tensors, 14, 3);
  if (only && strcmp(only, "pipeline") == 0) {
    be->ops->destroy(be);
    return 0;
  }

  bind_models(&b, be, true, sets, &tensors);
  if (be->ops->sync(be, &error) != ONESTEP_OK) {
    fprintf(stderr, "uploading weights failed: %s\n", error.message);
    return 1;
  }
  printf("weights on the GPU: %.2f GiB (%.0f s since start)\n",
         be->bytes_in_use / (1024.0 * 1024.0 * 1024.0), seconds_since(&start_time));

  size_t latent = (size_t)4 * LATENT_H * LATENT_W, pixels = (size_t)3 * HEIGHT * WIDTH;
  b.sample = device_buffer(be, 2 * 25 * 2 * latent, "UNet input");
  b.unet_out = device_buffer(be, 2 * 25 * latent, "UNet output");
  b.context = device_buffer(be, 2 * 1024, "image embeddings");
  b.latents = device_buffer(be, 25 * latent, "latents");
  b.frames = device_buffer(be, 25 * pixels, "frames");
  b.image = device_buffer(be, pixels, "image");
  b.mean = device_buffer(be, latent, "posterior mean");
  b.pixels = device_buffer(be, 3 * 224 * 224, "CLIP pixels");
  b.embeds = device_buffer(be, 1024, "CLIP embedding");
  b.frames_host = malloc(25 * pixels * sizeof(float));
  if (!b.frames_host)
    return 1;
  upload_random(be, b.sample, 2 * 25 * 2 * latent, 1);
  upload_random(be, b.context, 2 * 1024, 2);
  upload_random(be, b.latents, 25 * latent, 3);
  upload_random(be, b.image, pixels, 4);
  upload_random(be, b.pixels, 3 * 224 * 224, 5);

  printf("\n%-34s %12s  %15s  %14s  %s\n", "component (1024x576)", "median", "rate",
         "of GEMM peak", "peak memory (all weights included)");
  /* Most wanted first, so that a spent budget skips the rest. Useful FLOP
   * per docs/anchors.md; batch 2 doubles batch 1. */
  b.B = 1;
  b.F = 14;
  measure(&b, "unet14", "UNet forward, 14 frames, batch 1", run_unet, 3, 44.7, 202);
  b.F = 25;
  measure(&b, "unet25", "UNet forward, 25 frames, batch 1", run_unet, 3, 79.8, 340);
  b.F = 14;
  measure(&b, "decode14", "VAE decoder, 14 frames", run_decode, 3, 97.2, 1176);
  measure(&b, "encode", "VAE encoder, 1 image", run_encode, 5, 2.6, 27);
  measure(&b, "clip", "CLIP ViT-H/14, 1 image", run_clip, 5, 0.34, 10);
  measure(&b, "chain14", "one step (TTS) chain, 14 frames", run_one_step, 3,
          2 * 44.7 + 97.2 + 2.6 + 0.34, 1600);
  b.B = 2;
  measure(&b, "unet14b2", "UNet forward, 14 frames, batch 2", run_unet, 3, 89.4, 0);
  b.F = 25;
  measure(&b, "unet25b2", "UNet forward, 25 frames, batch 2", run_unet, 3, 159.7, 635);
  measure(&b, "decode25", "VAE decoder, 25 frames", run_decode, 1, 173.6, 2077);
  /* the memory goal: a whole 25-frame generation within 12 GB */
  measure(&b, "chain25", "one step (TTS) chain, 25 frames", run_one_step, 1,
          2 * 79.8 + 173.6 + 2.6 + 0.34, 0);

  printf("\ntotal %.0f s; reference: diffusers 0.40 fp16 on an H200 (docs/anchors.md)\n",
         seconds_since(&start_time));
  free_models(&b, sets);
  be->ops->destroy(be);
  return 0;
}
