/* test_image_chunks.c: the layers that work image by image (spatial resnets,
 * upsampling) give the same clip whether they process all images at once or
 * one at a time, in the UNet (with CFG, so 2 x frames images) and in the
 * temporal decoder. Not bit for bit: OpenBLAS sums in another order for
 * other matrix sizes, so the bar is float rounding (relative L2 1e-5), far
 * below what a misplaced image or offset would cause.
 *
 * Usage: test-image-chunks CASE_DIR */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "onestep.h"
#include "test_util.h"

static onestep_clip *
generate(onestep_context *ctx, const onestep_image *image)
{
  onestep_request request = onestep_request_default();
  onestep_error error = {0};
  request.frames = 3;
  request.steps = 2;
  request.seed = 7;
  request.max_guidance = 2.0f;
  request.sampler = ONESTEP_SAMPLER_EULER;
  request.want_float_frames = true;
  onestep_clip *clip = onestep_generate(ctx, image, &request, &error);
  CHECK(clip != NULL, "generate: %s", error.message);
  return clip;
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE_DIR\n", argv[0]);
    return 2;
  }
  char model[4096];
  snprintf(model, sizeof model, "%s/model", argv[1]);
  onestep_context_params params = onestep_context_default_params();
  params.device = ONESTEP_DEVICE_CPU;
  onestep_error error = {0};
  onestep_context *ctx = onestep_context_new(model, &params, &error);
  CHECK(ctx != NULL, "%s", error.message);
  if (!ctx)
    return test_exit_status();

  const onestep_model_info *info = onestep_context_get_info(ctx);
  int w = info->default_width, h = info->default_height;
  uint8_t *rgb = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h * 3; i++)
    rgb[i] = (uint8_t)(i * 37 % 251);
  onestep_image image = {w, h, w * 3, rgb};

  onestep_clip *whole = generate(ctx, &image);
  os_layers_set_image_chunk_budget(1); /* one image per chunk */
  onestep_clip *chunked = generate(ctx, &image);
  os_layers_set_image_chunk_budget((size_t)64 << 20);

  if (whole && chunked) {
    size_t n = (size_t)whole->frames * whole->height * whole->width * 3;
    CHECK(whole->frames == 3 && chunked->frames == 3, "frames %d, %d", whole->frames,
          chunked->frames);
    double rel = relative_l2(chunked->rgb_float, whole->rgb_float, n);
    printf("%zu values compared: relative L2 difference %.3g\n", n, rel);
    CHECK(rel < 1e-5, "chunked layers changed the clip (relative L2 %.3g)", rel);
  }
  onestep_clip_free(whole);
  onestep_clip_free(chunked);
  free(rgb);
  onestep_context_free(ctx);
  return test_exit_status();
}
