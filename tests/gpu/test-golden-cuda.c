/* test-golden-cuda.c: a golden case on the CUDA backend, with no GLib, so that
 * it runs on a bare GPU machine (device-run.sh) where onestep-cli's
 * libraries are missing. The image comes as raw RGB8 (device-bundle.sh
 * converts input.png). Tolerance: 1e-4 in fp32, 2e-3 fp16, 1e-2 bf16.
 *
 * Usage: test-golden-cuda CASE_DIR IMAGE.rgb   (exit 77 without a usable GPU) */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onestep.h"
#include "safetensors.h"

typedef struct {
  const os_safetensors *golden;
  const char *run;
  int produced, failed;
  double worst;
  char worst_key[256];
  double tolerance;
} tap_state;

static float *
load_tensor(const os_safetensors *st, const char *key)
{
  const os_st_tensor *t = os_safetensors_find(st, key);
  if (!t)
    return NULL;
  size_t n = (size_t)os_shape_numel(t->ndim, t->shape);
  float *data = malloc(sizeof(float) * (n ? n : 1));
  if (data)
    os_dtype_to_f32(data, t->data, t->dtype, n);
  return data;
}

static void
compare(const char *name, const float *data, int ndim, const int64_t *shape, void *user_data)
{
  tap_state *s = user_data;
  char key[256];
  snprintf(key, sizeof key, "%s.%s", s->run, name);
  const os_st_tensor *t = os_safetensors_find(s->golden, key);
  if (!t)
    return;
  float *ref = load_tensor(s->golden, key);
  size_t n = (size_t)os_shape_numel(t->ndim, t->shape);
  int64_t produced_n = os_shape_numel(ndim, shape);
  double d2 = 0, r2 = 0, max_abs = 0;
  if (!ref || produced_n != (int64_t)n) {
    printf("%-36s shape differs\n", key);
    s->failed++;
    free(ref);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    double d = (double)data[i] - ref[i];
    d2 += d * d;
    r2 += (double)ref[i] * ref[i];
    max_abs = fabs(d) > max_abs ? fabs(d) : max_abs;
  }
  double rel = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
  if (isnan(rel))
    rel = INFINITY;
  bool ok = rel <= s->tolerance;
  printf("%-36s %12.3e %12.3e  %s\n", key, rel, max_abs, ok ? "ok" : "FAIL");
  s->produced++;
  s->failed += !ok;
  if (rel > s->worst || s->worst_key[0] == '\0') {
    s->worst = rel;
    snprintf(s->worst_key, sizeof s->worst_key, "%s", key);
  }
  free(ref);
}

static char *
read_file(const char *path, size_t *size)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(len + 1);
  if (buf && fread(buf, 1, len, f) != (size_t)len) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[len] = '\0';
    *size = len;
  }
  return buf;
}

static double
precision_tolerance(void)
{
  const char *p = getenv("ONESTEP_CUDA_PRECISION");
  if (p && strcmp(p, "bf16") == 0)
    return 1e-2;
  if (p && strcmp(p, "fp16") == 0)
    return 2e-3;
  if (p && strcmp(p, "tf32") == 0)
    return 2e-3;
  return 1e-4;
}

static int
number(const cJSON *obj, const char *key)
{
  return (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

int
main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: %s CASE_DIR IMAGE.rgb\n", argv[0]);
    return 2;
  }
  char path[4096];
  size_t size = 0, rgb_size = 0;
  onestep_error error = {0};

  onestep_context_params params = onestep_context_default_params();
  params.device = ONESTEP_DEVICE_CUDA;
  params.precision = ONESTEP_PRECISION_FP32; /* ONESTEP_CUDA_PRECISION overrides it */
  snprintf(path, sizeof path, "%s/model", argv[1]);
  onestep_context *ctx = onestep_context_new(path, &params, &error);
  if (!ctx) {
    printf("%s\n", error.message);
    return error.code == ONESTEP_ERR_DEVICE ? 77 : 1;
  }
  printf("device: %s\n", onestep_context_get_info(ctx)->device_name);

  snprintf(path, sizeof path, "%s/golden.json", argv[1]);
  char *json_text = read_file(path, &size);
  cJSON *top = json_text ? cJSON_Parse(json_text) : NULL;
  snprintf(path, sizeof path, "%s/golden.safetensors", argv[1]);
  os_safetensors *golden = os_safetensors_open(path, &error);
  uint8_t *rgb = (uint8_t *)read_file(argv[2], &rgb_size);
  if (!top || !golden || !rgb) {
    fprintf(stderr, "cannot read the golden case %s or image %s\n", argv[1], argv[2]);
    return 1;
  }
  int width = number(top, "width"), height = number(top, "height");
  if (rgb_size != (size_t)width * height * 3) {
    fprintf(stderr, "%s: expected %dx%d RGB8\n", argv[2], width, height);
    return 1;
  }

  tap_state state = {.golden = golden, .tolerance = precision_tolerance()};
  const cJSON *run;
  int expected = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(top, "keys"));
  cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(top, "runs"))
  {
    char key[256];
    state.run = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "name"));
    snprintf(key, sizeof key, "%s.noise.image_aug", state.run);
    float *noise_aug = load_tensor(golden, key);
    snprintf(key, sizeof key, "%s.noise.latents", state.run);
    float *noise_latents = load_tensor(golden, key);

    onestep_request request = onestep_request_default();
    request.width = width;
    request.height = height;
    request.frames = number(top, "num_frames");
    request.fps = number(top, "fps");
    request.motion_bucket_id = number(top, "motion_bucket_id");
    request.noise_aug_strength =
        (float)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(top, "noise_aug_strength"));
    request.steps = number(run, "num_inference_steps");
    request.min_guidance =
        (float)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(run, "min_guidance_scale"));
    request.max_guidance =
        (float)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(run, "max_guidance_scale"));
    if (cJSON_GetObjectItemCaseSensitive(run, "decode_chunk_size"))
      request.decode_chunk_size = number(run, "decode_chunk_size");
    request.sampler = ONESTEP_SAMPLER_EULER;
    request.noise_image_aug = noise_aug;
    request.noise_latents = noise_latents;
    request.tap = compare;
    request.user_data = &state;

    onestep_image image = {width, height, width * 3, rgb};
    onestep_clip *clip = onestep_generate(ctx, &image, &request, &error);
    free(noise_aug);
    free(noise_latents);
    if (!clip) {
      fprintf(stderr, "run %s: %s\n", state.run, error.message);
      return 1;
    }
    onestep_clip_free(clip);
  }
  printf("golden %s on CUDA: %d of %d tensors, worst rel err %.3e (%s), tolerance %.0e\n",
         argv[1], state.produced, expected, state.worst, state.worst_key, state.tolerance);
  int status = state.failed == 0 && state.produced == expected ? 0 : 1;
  cJSON_Delete(top);
  free(json_text);
  free(rgb);
  os_safetensors_close(golden);
  onestep_context_free(ctx);
  return status;
}
