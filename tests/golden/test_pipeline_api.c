/* test_pipeline_api.c: onestep.h on the tiny-a model: progress, abort, float
 * frames, the clip's bookkeeping and request errors. */
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onestep.h"
#include "test_util.h"

typedef struct {
  int progress_calls, denoise_calls, abort_polls, abort_after;
  float last_fraction;
  bool monotonic;
  int previews, preview_frames, preview_width, preview_height;
} observer;

static void on_progress(const onestep_progress *p, void *user_data)
{
  observer *o = user_data;
  if (p->fraction < o->last_fraction)
    o->monotonic = false;
  o->last_fraction = p->fraction;
  o->progress_calls++;
  if (p->stage == ONESTEP_STAGE_DENOISE && p->step > 0)
    o->denoise_calls++;
  if (p->preview_rgb) {
    o->previews++;
    o->preview_frames = p->preview_frames;
    o->preview_width = p->preview_width;
    o->preview_height = p->preview_height;
  }
}

static bool on_abort(void *user_data)
{
  observer *o = user_data;
  return ++o->abort_polls > o->abort_after;
}

static void test_generate(onestep_context *ctx, const onestep_image *image)
{
  observer o = {.monotonic = true, .abort_after = 1 << 30};
  onestep_request req = onestep_request_default();
  req.steps = 3;
  req.seed = 11;
  req.want_float_frames = true;
  req.progress = on_progress;
  req.abort = on_abort;
  req.user_data = &o;
  onestep_error error = {0};
  onestep_plan plan = {0};
  CHECK(onestep_plan_request(ctx, image, &req, &plan, &error) == ONESTEP_OK, "plan: %s",
        error.message);
  onestep_clip *clip = onestep_generate(ctx, image, &req, &error);
  CHECK(clip != NULL, "generate: %s", error.message);
  if (!clip)
    return;
  /* The plan foretells what the generation did and how its progress counted it. */
  CHECK(plan.frames == clip->frames && plan.width == clip->width &&
            plan.height == clip->height && plan.steps == clip->steps &&
            plan.sampler == clip->sampler && plan.unet_batch == 2 &&
            plan.unet_calls == o.denoise_calls && plan.unet_calls * plan.unet_batch == clip->nfe,
        "plan %dx%dx%d, %d steps, %d calls of %d", plan.frames, plan.width, plan.height,
        plan.steps, plan.unet_calls, plan.unet_batch);
  const onestep_model_info *info = onestep_context_get_info(ctx);
  CHECK(clip->frames == info->default_frames && clip->width == image->width &&
            clip->height == image->height,
        "clip %dx%dx%d", clip->frames, clip->width, clip->height);
  CHECK(clip->steps == 3 && clip->nfe == 6 && clip->n_sigmas == 4 && clip->sigmas[3] == 0.0f,
        "steps %d nfe %d n_sigmas %d", clip->steps, clip->nfe, clip->n_sigmas);
  CHECK(clip->sampler == ONESTEP_SAMPLER_EULER, "sampler %s", onestep_sampler_name(clip->sampler));
  CHECK(o.monotonic && fabsf(o.last_fraction - 1.0f) < 1e-6f && o.denoise_calls == 3,
        "progress: monotonic %d, last %g, %d UNet calls", o.monotonic, o.last_fraction,
        o.denoise_calls);
  /* tiny-a's VAE halves the size, so the preview decoder upsamples latents by 2. */
  CHECK(o.previews == 3 && o.preview_frames == clip->frames &&
            o.preview_width == clip->width && o.preview_height == clip->height,
        "%d previews of %dx%dx%d", o.previews, o.preview_frames, o.preview_width,
        o.preview_height);
  CHECK(clip->peak_bytes > 0 && clip->seconds_denoise >= 0.0, "peak %zu", clip->peak_bytes);
  size_t n = (size_t)clip->frames * clip->width * clip->height * 3;
  int mismatches = 0;
  for (size_t i = 0; i < n; i++) {
    float f = clip->rgb_float[i];
    if (!(f >= 0.0f && f <= 1.0f) || clip->rgb[i] != (uint8_t)nearbyintf(f * 255.0f))
      mismatches++;
  }
  CHECK(mismatches == 0, "%d RGB8 values disagree with the float frames", mismatches);
  onestep_clip_free(clip);

  /* Stopping after a few polls returns ONESTEP_ERR_ABORTED and no clip. */
  for (int after = 0; after < 4; after++) {
    o = (observer){.monotonic = true, .abort_after = after};
    clip = onestep_generate(ctx, image, &req, &error);
    CHECK(clip == NULL && error.code == ONESTEP_ERR_ABORTED, "abort after %d polls: code %d",
          after, error.code);
    onestep_clip_free(clip);
  }
}

typedef struct {
  int64_t chunk_frames[4];
  int chunks;
} chunk_taps;

static void on_tap(const char *name, float *data, int ndim, const int64_t *shape,
                   void *user_data)
{
  chunk_taps *t = user_data;
  int index;
  char rest[32];
  if (sscanf(name, "vae_dec.%d.%31s", &index, rest) == 2 && strcmp(rest, "frames") == 0 &&
      index == t->chunks && index < 4) {
    t->chunk_frames[index] = shape[0];
    t->chunks++;
  }
}

/* Three frames decoded two at a time: chunks vae_dec.0 (2 frames) and vae_dec.1 (1). */
static void test_decode_chunks(onestep_context *ctx, const onestep_image *image)
{
  chunk_taps taps = {0};
  onestep_request req = onestep_request_default();
  req.frames = 3;
  req.steps = 1;
  req.decode_chunk_size = 2;
  req.tap = on_tap;
  req.user_data = &taps;
  onestep_error error = {0};
  onestep_clip *clip = onestep_generate(ctx, image, &req, &error);
  CHECK(clip != NULL && clip->frames == 3, "chunked decode: %s", error.message);
  CHECK(taps.chunks == 2 && taps.chunk_frames[0] == 2 && taps.chunk_frames[1] == 1,
        "%d chunks of %lld and %lld frames", taps.chunks, (long long)taps.chunk_frames[0],
        (long long)taps.chunk_frames[1]);
  onestep_clip_free(clip);
}

static void expect_invalid(onestep_context *ctx, const onestep_image *image,
                           onestep_request req, const char *needle)
{
  onestep_error error = {0};
  onestep_clip *clip = onestep_generate(ctx, image, &req, &error);
  CHECK(clip == NULL && error.code == ONESTEP_ERR_INVALID_ARGUMENT && strstr(error.message, needle),
        "expected an invalid-argument error naming '%s', got %d '%s'", needle, error.code,
        error.message);
  onestep_clip_free(clip);
}

static void test_bad_requests(onestep_context *ctx, const onestep_image *image)
{
  onestep_request req = onestep_request_default();
  req.width = image->width * 2;
  expect_invalid(ctx, image, req, "scale the image");
  req = onestep_request_default();
  req.frames = -3;
  expect_invalid(ctx, image, req, "frames -3");
  req = onestep_request_default();
  req.steps = 5000;
  expect_invalid(ctx, image, req, "steps 5000");
  req = onestep_request_default();
  req.fps = 0;
  expect_invalid(ctx, image, req, "fps 0");
  req = onestep_request_default();
  req.min_guidance = 3.0f;
  req.max_guidance = 1.0f;
  expect_invalid(ctx, image, req, "max_guidance");
  req = onestep_request_default();
  req.sampler = (onestep_sampler)42;
  expect_invalid(ctx, image, req, "sampler");
  expect_invalid(ctx, NULL, onestep_request_default(), "image");
}

static void test_names(void)
{
  onestep_sampler s;
  CHECK(onestep_sampler_from_name("tts", &s) && s == ONESTEP_SAMPLER_TTS, "tts");
  CHECK(!onestep_sampler_from_name("heun", &s), "heun is not a sampler");
  CHECK(strcmp(onestep_sampler_name(ONESTEP_SAMPLER_EULER), "euler") == 0, "euler");
  CHECK(strcmp(onestep_stage_name(ONESTEP_STAGE_DECODE), "decode") == 0, "decode");
  CHECK(strcmp(onestep_model_kind_name(ONESTEP_MODEL_KIND_BASE_SVD), "base-svd") == 0, "kind");
}

int main(int argc, char **argv)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/input.png", argv[1]);
  GdkPixbuf *pixbuf = gdk_pixbuf_new_from_file(path, NULL);
  if (!pixbuf)
    return 1;
  onestep_image image = {gdk_pixbuf_get_width(pixbuf), gdk_pixbuf_get_height(pixbuf),
                         gdk_pixbuf_get_rowstride(pixbuf), gdk_pixbuf_read_pixels(pixbuf)};
  snprintf(path, sizeof path, "%s/model", argv[1]);
  onestep_context_params params = onestep_context_default_params();
  params.device = ONESTEP_DEVICE_CPU;
  onestep_error error = {0};
  onestep_context *ctx = onestep_context_new(path, &params, &error);
  CHECK(ctx != NULL, "%s", error.message);
  if (ctx) {
    const onestep_model_info *info = onestep_context_get_info(ctx);
    CHECK(info->kind == ONESTEP_MODEL_KIND_BASE_SVD && info->device == ONESTEP_DEVICE_CPU &&
              info->default_frames == 2 && info->default_width == 48 &&
              info->default_height == 32 && info->unet_params == 1793078 &&
              strcmp(info->weight_dtype, "F32") == 0,
          "info: kind %d frames %d size %dx%d unet %lld dtype %s", info->kind,
          info->default_frames, info->default_width, info->default_height,
          (long long)info->unet_params, info->weight_dtype);
    test_generate(ctx, &image);
    test_bad_requests(ctx, &image);
    test_decode_chunks(ctx, &image);
    onestep_context_free(ctx);
  }
  params.device = ONESTEP_DEVICE_CUDA;
  snprintf(path, sizeof path, "%s/model", argv[1]);
  ctx = onestep_context_new(path, &params, &error);
  CHECK(ctx != NULL || error.code == ONESTEP_ERR_DEVICE, "cuda: %d %s", error.code, error.message);
  onestep_context_free(ctx);
  test_names();
  g_object_unref(pixbuf);
  return test_summary("pipeline-api");
}
