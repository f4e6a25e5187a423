/* test_layer_chunks.c: the layers that work token by token (the attention's
 * q/k/v projections over chunks of whole sequences, the GEGLU feed-forward
 * over chunks of rows) and the temporal resnets that convolve in place
 * through windows of frames give the same clip with the smallest chunks as
 * with none, in the UNet (with CFG: two batch elements), the temporal decoder,
 * the VAE's mid-block attention and CLIP; 6 frames, so that frames fall in
 * more than one window. As for image chunks the bar is float rounding
 * (relative L2 1e-5): OpenBLAS sums other matrix sizes in another order, and
 * a misplaced chunk or window would be far above it.
 *
 * Usage: test-layer-chunks CASE_DIR */
#include <stdlib.h>

#include "layers.h"
#include "onestep.h"
#include "test_util.h"

static onestep_clip *
generate(onestep_context *ctx, const onestep_image *image)
{
  onestep_request request = onestep_request_default();
  onestep_error error = {0};
  request.frames = 6;
  request.steps = 2;
  request.seed = 11;
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
    rgb[i] = (uint8_t)(i * 53 % 241);
  onestep_image image = {w, h, w * 3, rgb};

  onestep_clip *whole = generate(ctx, &image);
  /* one sequence, or 64 rows, per chunk; one image per chunk; windows of 4 frames */
  os_layers_set_token_chunk_budget(1);
  os_layers_set_image_chunk_budget(1);
  onestep_clip *chunked = generate(ctx, &image);
  os_layers_set_token_chunk_budget(0);
  os_layers_set_image_chunk_budget((size_t)64 << 20);

  if (whole && chunked) {
    size_t n = (size_t)whole->frames * whole->height * whole->width * 3;
    double rel = relative_l2(chunked->rgb_float, whole->rgb_float, n);
    printf("%zu values compared: relative L2 difference %.3g\n", n, rel);
    CHECK(whole->frames == 6 && chunked->frames == 6, "frames %d, %d", whole->frames,
          chunked->frames);
    CHECK(rel < 1e-5, "chunks changed the clip (relative L2 %.3g)", rel);
  }
  onestep_clip_free(whole);
  onestep_clip_free(chunked);
  free(rgb);
  onestep_context_free(ctx);
  return test_exit_status();
}
