/* bench-pipeline.c: see bench-pipeline.h. */
#include "bench-pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench-weights.h"
#include "onestep.h"

#define WIDTH 1024
#define HEIGHT 576

/* stabilityai/stable-video-diffusion-img2vid-xt's configs, reduced to what
 * the engine reads. */
static const struct {
  const char *path, *text;
} config_files[] = {
  { "model_index.json",
    "{\"_class_name\": \"StableVideoDiffusionPipeline\",\n"
    " \"feature_extractor\": [\"transformers\", \"CLIPImageProcessor\"],\n"
    " \"image_encoder\": [\"transformers\", \"CLIPVisionModelWithProjection\"],\n"
    " \"scheduler\": [\"diffusers\", \"EulerDiscreteScheduler\"],\n"
    " \"unet\": [\"diffusers\", \"UNetSpatioTemporalConditionModel\"],\n"
    " \"vae\": [\"diffusers\", \"AutoencoderKLTemporalDecoder\"]}\n" },
  { "unet/config.json",
    "{\"_class_name\": \"UNetSpatioTemporalConditionModel\", \"addition_time_embed_dim\": 256,\n"
    " \"block_out_channels\": [320, 640, 1280, 1280], \"cross_attention_dim\": 1024,\n"
    " \"down_block_types\": [\"CrossAttnDownBlockSpatioTemporal\",\n"
    "   \"CrossAttnDownBlockSpatioTemporal\", \"CrossAttnDownBlockSpatioTemporal\",\n"
    "   \"DownBlockSpatioTemporal\"],\n"
    " \"in_channels\": 8, \"layers_per_block\": 2, \"num_attention_heads\": [5, 10, 20, 20],\n"
    " \"num_frames\": 25, \"out_channels\": 4, \"projection_class_embeddings_input_dim\": 768,\n"
    " \"sample_size\": 96, \"transformer_layers_per_block\": 1,\n"
    " \"up_block_types\": [\"UpBlockSpatioTemporal\", \"CrossAttnUpBlockSpatioTemporal\",\n"
    "   \"CrossAttnUpBlockSpatioTemporal\", \"CrossAttnUpBlockSpatioTemporal\"]}\n" },
  { "vae/config.json",
    "{\"_class_name\": \"AutoencoderKLTemporalDecoder\", \"block_out_channels\": [128, 256, 512, 512],\n"
    " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\",\n"
    "   \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n"
    " \"force_upcast\": true, \"in_channels\": 3, \"latent_channels\": 4, \"layers_per_block\": 2,\n"
    " \"out_channels\": 3, \"sample_size\": 768, \"scaling_factor\": 0.18215}\n" },
  { "image_encoder/config.json",
    "{\"architectures\": [\"CLIPVisionModelWithProjection\"], \"hidden_act\": \"gelu\",\n"
    " \"hidden_size\": 1280, \"image_size\": 224, \"intermediate_size\": 5120,\n"
    " \"layer_norm_eps\": 1e-05, \"model_type\": \"clip_vision_model\",\n"
    " \"num_attention_heads\": 16, \"num_channels\": 3, \"num_hidden_layers\": 32,\n"
    " \"patch_size\": 14, \"projection_dim\": 1024}\n" },
  { "scheduler/scheduler_config.json",
    "{\"_class_name\": \"EulerDiscreteScheduler\", \"final_sigmas_type\": \"zero\",\n"
    " \"num_train_timesteps\": 1000, \"prediction_type\": \"v_prediction\", \"sigma_max\": 700.0,\n"
    " \"sigma_min\": 0.002, \"timestep_spacing\": \"leading\", \"timestep_type\": \"continuous\",\n"
    " \"use_karras_sigmas\": true}\n" },
  { "feature_extractor/preprocessor_config.json",
    "{\"image_mean\": [0.48145466, 0.4578275, 0.40821073],\n"
    " \"image_std\": [0.26862954, 0.26130258, 0.27577711]}\n" },
};

static const char *subdirs[] = { "unet", "vae", "image_encoder", "scheduler", "feature_extractor" };

/* One file per model, in the order of bench_model_tensors' ranges. */
static const char *weight_files[] = { "unet/diffusion_pytorch_model.safetensors",
                                      "vae/diffusion_pytorch_model.safetensors",
                                      "image_encoder/model.safetensors" };

/* dir/name into out; false when it does not fit. */
static bool
join(char *out, size_t size, const char *dir, const char *name)
{
  int n = snprintf(out, size, "%s/%s", dir, name);
  return n >= 0 && (size_t)n < size;
}

static bool
write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return false;
  bool ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok;
}

/* Writes the folder; false (with a message printed) on failure. */
static bool
write_model(const char *dir, const bench_model_tensors *t)
{
  char path[4096];
  for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
    if (!join(path, sizeof path, dir, subdirs[i]) || mkdir(path, 0700) != 0) {
      perror(path);
      return false;
    }
  }
  for (size_t i = 0; i < sizeof config_files / sizeof config_files[0]; i++) {
    if (!join(path, sizeof path, dir, config_files[i].path) ||
        !write_text(path, config_files[i].text)) {
      perror(path);
      return false;
    }
  }
  int ranges[3][2] = { { t->unet_first, t->unet_last },
                       { t->vae_first, t->vae_last },
                       { t->clip_first, t->clip_last } };
  for (int i = 0; i < 3; i++) {
    onestep_error error = { 0 };
    if (!join(path, sizeof path, dir, weight_files[i]) ||
        bench_weights_write(path, ranges[i][0], ranges[i][1], &error) != ONESTEP_OK) {
      fprintf(stderr, "%s\n", error.message);
      return false;
    }
  }
  return true;
}

static void
remove_model(const char *dir)
{
  char path[4096];
  for (size_t i = 0; i < sizeof weight_files / sizeof weight_files[0]; i++) {
    if (join(path, sizeof path, dir, weight_files[i]))
      unlink(path);
  }
  for (size_t i = 0; i < sizeof config_files / sizeof config_files[0]; i++) {
    if (join(path, sizeof path, dir, config_files[i].path))
      unlink(path);
  }
  for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
    if (join(path, sizeof path, dir, subdirs[i]))
      rmdir(path);
  }
  rmdir(dir);
}

static double
now_seconds(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int
compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void
bench_pipeline(const bench_model_tensors *tensors, int frames, int runs)
{
  const char *tmp = getenv("TMPDIR");
  char dir[1024];
  if (!join(dir, sizeof dir, tmp && *tmp ? tmp : "/tmp", "onestep-bench-XXXXXX") || !mkdtemp(dir)) {
    perror(dir);
    return;
  }
  double t0 = now_seconds();
  if (!write_model(dir, tensors)) {
    remove_model(dir);
    return;
  }
  printf("model folder written in %.0f s; ", now_seconds() - t0);

  onestep_error error = { 0 };
  onestep_context_params params = onestep_context_default_params();
  params.device = ONESTEP_DEVICE_CUDA;
  t0 = now_seconds();
  onestep_context *ctx = onestep_context_new(dir, &params, &error);
  if (!ctx) {
    printf("\none step via onestep_generate       FAILED to load: %s\n", error.message);
    remove_model(dir);
    return;
  }
  printf("loaded in %.0f s\n", now_seconds() - t0);

  /* a smooth colour field: the content does not change the cost */
  uint8_t *rgb = malloc((size_t)WIDTH * HEIGHT * 3);
  if (!rgb)
    exit(1);
  for (int y = 0; y < HEIGHT; y++)
    for (int x = 0; x < WIDTH; x++) {
      uint8_t *p = rgb + ((size_t)y * WIDTH + x) * 3;
      p[0] = (uint8_t)(x * 255 / WIDTH);
      p[1] = (uint8_t)(y * 255 / HEIGHT);
      p[2] = (uint8_t)((x + y) & 255);
    }
  onestep_image image = { WIDTH, HEIGHT, WIDTH * 3, rgb };
  onestep_request request = onestep_request_default();
  request.width = WIDTH;
  request.height = HEIGHT;
  request.frames = frames;
  request.sampler = ONESTEP_SAMPLER_TTS;
  request.steps = 1;
  request.min_guidance = request.max_guidance = 1.0f; /* no CFG */
  request.seed = 1;

  double times[16], clip_s = 0, encode_s = 0, denoise_s = 0, decode_s = 0;
  int nfe = 0;
  size_t peak = 0;
  for (int r = -1; r < runs; r++) {
    t0 = now_seconds();
    onestep_clip *clip = onestep_generate(ctx, &image, &request, &error);
    double seconds = now_seconds() - t0;
    if (!clip) {
      printf("one step via onestep_generate       FAILED: %s\n", error.message);
      break;
    }
    if (r >= 0) {
      times[r] = seconds * 1e3;
      clip_s = clip->seconds_clip;
      encode_s = clip->seconds_encode;
      denoise_s = clip->seconds_denoise;
      decode_s = clip->seconds_decode;
      nfe = clip->nfe;
      peak = clip->peak_bytes;
    }
    onestep_clip_free(clip);
    if (r == runs - 1) {
      qsort(times, runs, sizeof times[0], compare_doubles);
      printf("one step via onestep_generate, %d frames: %.1f ms (median of %d; last run: CLIP "
             "%.0f, encode %.0f, denoise %.0f with %d UNet calls, decode %.0f ms), peak memory "
             "%.2f GiB\n",
             frames, times[runs / 2], runs, clip_s * 1e3, encode_s * 1e3, denoise_s * 1e3, nfe,
             decode_s * 1e3, peak / (1024.0 * 1024.0 * 1024.0));
    }
  }
  free(rgb);
  onestep_context_free(ctx);
  remove_model(dir);
}
