/* test_abort_polls.c: a whole generation polls the abort callback on a
 * schedule that depends on the shapes only, and a stop at any poll ends it
 * with ONESTEP_ERR_ABORTED. With the CPU backend's unit of work lowered so
 * that the tiny model's ops poll inside themselves too (as full-size ones
 * do), it checks that:
 * - 1 and 2 threads poll equally often and give the same clip, which is the
 *   clip generated without a callback;
 * - a stop at the first, a middle and the last poll of every stage ends the
 *   generation as aborted after exactly that many polls: no op's unfinished
 *   output becomes a result.
 *
 * Usage: test-abort-polls CASE_DIR */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "onestep.h"
#include "test_util.h"

/* Small enough that the tiny model's ops take several units. */
#define TEST_UNIT_WORK ((double)(1 << 16))

/* Generates, with progress reports (so with previews) and, unless counter is
 * NULL, the counting callback; *clip_out (if not NULL) takes the clip. */
static onestep_status
generate(onestep_context *ctx, const onestep_image *image, poll_counter *counter,
         onestep_clip **clip_out)
{
  poll_counter uncounted = {0};
  onestep_request request = onestep_request_default();
  onestep_error error = {0};
  request.frames = 3;
  request.steps = 1;
  request.want_float_frames = true;
  request.progress = poll_counter_progress;
  request.abort = counter ? poll_counter_abort : NULL;
  request.user_data = counter ? counter : &uncounted;
  onestep_clip *clip = onestep_generate(ctx, image, &request, &error);
  if (clip_out)
    *clip_out = clip;
  else
    onestep_clip_free(clip);
  return clip ? ONESTEP_OK : error.code;
}

static onestep_context *
context(const char *model, int threads)
{
  onestep_context_params params = onestep_context_default_params();
  onestep_error error = {0};
  params.device = ONESTEP_DEVICE_CPU;
  params.n_threads = threads;
  onestep_context *ctx = onestep_context_new(model, &params, &error);
  CHECK(ctx != NULL, "%s", error.message);
  return ctx;
}

static bool
same_clip(const onestep_clip *a, const onestep_clip *b)
{
  size_t n = (size_t)a->frames * a->height * a->width * 3;
  return a->frames == b->frames && memcmp(a->rgb_float, b->rgb_float, n * sizeof(float)) == 0;
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
  onestep_context *one = context(model, 1), *two = context(model, 2);
  if (!one || !two)
    return test_summary("abort-polls");

  const onestep_model_info *info = onestep_context_get_info(one);
  int w = info->default_width, h = info->default_height;
  uint8_t *rgb = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h * 3; i++)
    rgb[i] = (uint8_t)(i * 37 % 251);
  onestep_image image = {w, h, w * 3, rgb};

  os_cpu_set_unit_work(TEST_UNIT_WORK);
  onestep_clip *plain = NULL, *polled1 = NULL, *polled2 = NULL;
  poll_counter counted1 = {0}, counted2 = {0};
  /* Without a callback first: each context readies its preview decoder. */
  CHECK(generate(one, &image, NULL, &plain) == ONESTEP_OK, "generation without a callback");
  CHECK(generate(two, &image, NULL, NULL) == ONESTEP_OK, "generation without a callback");
  CHECK(generate(one, &image, &counted1, &polled1) == ONESTEP_OK, "generation, 1 thread");
  CHECK(generate(two, &image, &counted2, &polled2) == ONESTEP_OK, "generation, 2 threads");
  printf("polls: %d (before the first stage %d, clip %d, encode %d, denoise %d, decode %d) on "
         "1 thread, %d on 2\n",
         counted1.polls, counted1.polls_in[ONESTEP_STAGE_LOAD], counted1.polls_in[ONESTEP_STAGE_CLIP],
         counted1.polls_in[ONESTEP_STAGE_ENCODE], counted1.polls_in[ONESTEP_STAGE_DENOISE],
         counted1.polls_in[ONESTEP_STAGE_DECODE], counted2.polls);
  CHECK(counted1.polls == counted2.polls, "polls: %d on 1 thread, %d on 2", counted1.polls,
        counted2.polls);
  CHECK(memcmp(counted1.polls_in, counted2.polls_in, sizeof counted1.polls_in) == 0,
        "polls per stage differ between 1 and 2 threads");
  if (plain && polled1 && polled2) {
    CHECK(same_clip(polled1, plain), "the callback changed the clip");
    CHECK(same_clip(polled2, polled1), "2 threads changed the clip");
  }

  /* A stage's polls follow the previous stages' (those before the first
   * report count as the CLIP stage's). */
  int before = counted1.polls_in[ONESTEP_STAGE_LOAD];
  for (int stage = ONESTEP_STAGE_CLIP; stage <= ONESTEP_STAGE_DECODE; stage++) {
    int in_stage = counted1.polls_in[stage] + (stage == ONESTEP_STAGE_CLIP ? before : 0);
    CHECK(in_stage > 0, "no polls in stage %d", stage);
    int first = stage == ONESTEP_STAGE_CLIP ? 1 : before + 1;
    int stops[3] = {first, first + in_stage / 2, first + in_stage - 1};
    for (int i = 0; i < 3 && in_stage > 0; i++) {
      poll_counter stopping = {.stop_at = stops[i]};
      onestep_status code = generate(i == 1 ? two : one, &image, &stopping, NULL);
      CHECK(code == ONESTEP_ERR_ABORTED && stopping.polls == stopping.stop_at,
            "a stop at poll %d of %d (stage %d): code %d after %d polls", stopping.stop_at,
            counted1.polls, stage, code, stopping.polls);
    }
    before = first + in_stage - 1;
  }
  os_cpu_set_unit_work(0);

  onestep_clip_free(plain);
  onestep_clip_free(polled1);
  onestep_clip_free(polled2);
  free(rgb);
  onestep_context_free(one);
  onestep_context_free(two);
  return test_summary("abort-polls");
}
