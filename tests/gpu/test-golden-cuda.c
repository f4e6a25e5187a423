/* test-golden-cuda.c: the golden check (engine/golden) on the CUDA backend,
 * with no GLib, so that it runs on a bare GPU machine (device-run.sh) where
 * onestep-cli's libraries are missing. The image comes as raw RGB8
 * (device-bundle.sh converts input.png). The tolerance follows
 * ONESTEP_CUDA_PRECISION: 1e-4 in fp32, 2e-3 in tf32 and fp16, 1e-2 in bf16.
 * --stage-by-stage feeds every stage the reference's inputs (golden.h).
 *
 * Usage: test-golden-cuda [--stage-by-stage] CASE_DIR IMAGE.rgb
 * (exit 77 without a usable GPU) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "golden.h"

typedef struct {
  const char *path;
  uint8_t *rgb;
  size_t size;
} raw_image;

static bool
read_raw_image(raw_image *raw)
{
  FILE *f = fopen(raw->path, "rb");
  if (!f)
    return false;
  long length = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  raw->rgb = length >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)length + 1) : NULL;
  raw->size = raw->rgb ? fread(raw->rgb, 1, (size_t)length, f) : 0;
  fclose(f);
  return raw->rgb && raw->size == (size_t)length;
}

static onestep_status
raw_image_at(int width, int height, onestep_image *image, void *user_data, onestep_error *error)
{
  const raw_image *raw = user_data;
  if (raw->size != (size_t)width * height * 3)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "%s: expected %dx%d RGB8", raw->path,
                        width, height);
  *image = (onestep_image){width, height, width * 3, raw->rgb};
  return ONESTEP_OK;
}

static double
precision_tolerance(void)
{
  const char *p = getenv("ONESTEP_CUDA_PRECISION");
  if (p && strcmp(p, "bf16") == 0)
    return 1e-2;
  if (p && (strcmp(p, "fp16") == 0 || strcmp(p, "tf32") == 0))
    return 2e-3;
  return 1e-4;
}

int
main(int argc, char **argv)
{
  bool stage_by_stage = argc > 1 && strcmp(argv[1], "--stage-by-stage") == 0;
  argv += stage_by_stage;
  argc -= stage_by_stage;
  if (argc != 3) {
    fprintf(stderr, "usage: test-golden-cuda [--stage-by-stage] CASE_DIR IMAGE.rgb\n");
    return 2;
  }
  onestep_error error = {0};
  os_golden_case *golden = os_golden_case_open(argv[1], &error);
  raw_image raw = {.path = argv[2]};
  if (!golden) {
    fprintf(stderr, "test-golden-cuda: %s\n", error.message);
    return 1;
  }
  if (!read_raw_image(&raw)) {
    fprintf(stderr, "test-golden-cuda: cannot read the image %s\n", raw.path);
    os_golden_case_free(golden);
    free(raw.rgb);
    return 1;
  }

  os_golden_options options = {
      .params = onestep_context_default_params(),
      .tolerance = precision_tolerance(),
      .stage_by_stage = stage_by_stage,
      .image_for = raw_image_at,
      .user_data = &raw,
      .program = "test-golden-cuda",
  };
  options.params.device = ONESTEP_DEVICE_CUDA;
  options.params.precision = ONESTEP_PRECISION_FP32; /* ONESTEP_CUDA_PRECISION overrides it */
  os_golden_result result = os_golden_check(golden, &options);
  os_golden_case_free(golden);
  free(raw.rgb);
  return result == OS_GOLDEN_NO_DEVICE ? 77 : result == OS_GOLDEN_PASSED ? 0 : 1;
}
