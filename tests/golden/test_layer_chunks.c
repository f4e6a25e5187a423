/* test_layer_chunks.c: the layers that split their work give the same clip
 * with the smallest pieces as with none, in the UNet (with CFG: two batch
 * elements), the temporal decoder, the VAE's mid-block attention and CLIP:
 * - image chunks: spatial resnets and upsampling one image at a time, and
 *   temporal resnets in tiles of one pixel of every frame (their GroupNorm
 *   statistics gathered tile by tile);
 * - token chunks: the attention's q/k/v projections over chunks of whole
 *   sequences, the GEGLU feed-forward over chunks of rows.
 * Not bit for bit: OpenBLAS sums in another order for other matrix sizes, so
 * the bar is float rounding (relative L2 1e-5), far below what a misplaced
 * image, chunk or tile would cause. Also: the abort callback is polled
 * between image chunks of the decode, and an abort there stops the run.
 *
 * Usage: test-layer-chunks CASE_DIR */
#include <stdlib.h>

#include "layers.h"
#include "onestep.h"
#include "test_util.h"

typedef struct {
  const char *what;
  int frames;
  size_t token_budget, image_budget; /* while chunked; 0: the default */
} chunk_case;

static const chunk_case cases[] = {
  { "one image or pixel per chunk", 3, 0, 1 },
  { "one sequence or 64 rows, one image or pixel per chunk", 6, 1, 1 },
};

static onestep_clip *
generate(onestep_context *ctx, const onestep_image *image, int frames)
{
  onestep_request request = onestep_request_default();
  onestep_error error = {0};
  request.frames = frames;
  request.steps = 2;
  request.seed = 11;
  request.max_guidance = 2.0f;
  request.sampler = ONESTEP_SAMPLER_EULER;
  request.want_float_frames = true;
  onestep_clip *clip = onestep_generate(ctx, image, &request, &error);
  CHECK(clip != NULL, "generate: %s", error.message);
  return clip;
}

static void
check_case(onestep_context *ctx, const onestep_image *image, const chunk_case *c)
{
  onestep_clip *whole = generate(ctx, image, c->frames);
  os_layers_set_token_chunk_budget(c->token_budget);
  os_layers_set_image_chunk_budget(c->image_budget);
  onestep_clip *chunked = generate(ctx, image, c->frames);
  os_layers_set_token_chunk_budget(0);
  os_layers_set_image_chunk_budget(0);

  if (whole && chunked) {
    size_t n = (size_t)whole->frames * whole->height * whole->width * 3;
    double rel = relative_l2(chunked->rgb_float, whole->rgb_float, n);
    printf("%s: %zu values compared, relative L2 difference %.3g\n", c->what, n, rel);
    CHECK(whole->frames == c->frames && chunked->frames == c->frames, "frames %d, %d",
          whole->frames, chunked->frames);
    CHECK(rel < 1e-5, "%s changed the clip (relative L2 %.3g)", c->what, rel);
  }
  onestep_clip_free(whole);
  onestep_clip_free(chunked);
}

/* Abort polls seen while the decode runs, or all of them when stopping at
 * poll number stop_at. */
static int
decode_polls(onestep_context *ctx, const onestep_image *image, int stop_at, onestep_status *code)
{
  poll_counter counter = { .stop_at = stop_at };
  onestep_request request = onestep_request_default();
  onestep_error error = {0};
  request.frames = 3;
  request.steps = 1;
  request.progress = poll_counter_progress;
  request.abort = poll_counter_abort;
  request.user_data = &counter;
  onestep_clip *clip = onestep_generate(ctx, image, &request, &error);
  *code = clip ? ONESTEP_OK : error.code;
  onestep_clip_free(clip);
  return stop_at ? counter.polls : counter.polls_in[ONESTEP_STAGE_DECODE];
}

static void
check_abort_between_chunks(onestep_context *ctx, const onestep_image *image)
{
  onestep_status code;
  int whole = decode_polls(ctx, image, 0, &code);
  os_layers_set_image_chunk_budget(1);
  int chunked = decode_polls(ctx, image, 0, &code);
  CHECK(code == ONESTEP_OK, "generation failed: %d", code);
  /* every decoder resnet polls once more per extra image of its 3 */
  printf("abort polls in the decode: %d with whole batches, %d with one image per chunk\n",
         whole, chunked);
  CHECK(chunked > whole, "no polls between image chunks (%d, %d)", chunked, whole);
  int total = decode_polls(ctx, image, 1 << 30, &code);
  int stopped = decode_polls(ctx, image, total, &code);
  CHECK(code == ONESTEP_ERR_ABORTED && stopped == total,
        "an abort at the last poll (%d) gave code %d after %d polls", total, code, stopped);
  os_layers_set_image_chunk_budget(0);
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
    return test_summary("layer-chunks");

  const onestep_model_info *info = onestep_context_get_info(ctx);
  int w = info->default_width, h = info->default_height;
  uint8_t *rgb = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h * 3; i++)
    rgb[i] = (uint8_t)(i * 53 % 241);
  onestep_image image = {w, h, w * 3, rgb};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case(ctx, &image, &cases[i]);
  check_abort_between_chunks(ctx, &image);
  free(rgb);
  onestep_context_free(ctx);
  return test_summary("layer-chunks");
}
