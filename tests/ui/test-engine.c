/* test-engine.c: OnestepEngine, the app's worker thread around the engine,
 * with the tiny test model. Needs no display. ONESTEP_TEST_DEVICE=cuda runs
 * it on the GPU backend (and fails if that backend is not used).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

#include "onestep-engine.h"
#include "ui-test-util.h"

#define DEADLINE_SECONDS 300

static OnestepEngine *engine;
static onestep_device device;
static GBytes *image;
static int image_width;
static int image_height;
static GThread *main_thread;

typedef struct
{
  gboolean       done;
  gboolean       ok;
  GError        *error;
  GPtrArray     *results;
  guint          n_progress;
  double         last_fraction;
  gboolean       fraction_went_back;
  gboolean       seconds_left_known;
  GCancellable  *cancel_at_first_progress;
} Run;

static void
run_clear (Run *run)
{
  g_clear_error (&run->error);
  g_clear_pointer (&run->results, g_ptr_array_unref);
}

static gboolean
run_done (gpointer run)
{
  return ((Run *)run)->done;
}

static void
wait_for (Run *run)
{
  g_assert_true (ui_test_wait_until (run_done, run));
}

static void
on_loaded (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Run *run = user_data;
  onestep_model_info info;

  run->ok = onestep_engine_load_model_finish (ONESTEP_ENGINE (object), result, &info, &run->error);
  if (run->ok)
    {
      g_assert_cmpint (info.default_frames, >, 0);
      g_assert_cmpint (info.default_width, >, 0);
      g_test_message ("loaded on %s", info.device_name);
      if (device == ONESTEP_DEVICE_CUDA)
        g_assert_cmpint (info.device, ==, ONESTEP_DEVICE_CUDA);
    }
  run->done = TRUE;
}

static void
on_progress (const OnestepEngineProgress *progress,
             gpointer                     user_data)
{
  Run *run = user_data;
  double fraction;

  g_assert_true (g_thread_self () == main_thread);
  fraction = onestep_engine_progress_get_fraction (progress, progress->time);
  if (fraction < run->last_fraction)
    run->fraction_went_back = TRUE;
  run->last_fraction = fraction;
  if (onestep_engine_progress_get_seconds_left (progress, progress->time) >= 0)
    run->seconds_left_known = TRUE;
  run->n_progress++;

  if (run->cancel_at_first_progress != NULL)
    g_cancellable_cancel (run->cancel_at_first_progress);
}

static void
on_result (OnestepResult *result,
           gpointer       user_data)
{
  Run *run = user_data;

  g_assert_true (g_thread_self () == main_thread);
  g_ptr_array_add (run->results, g_object_ref (result));
}

static void
on_generated (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Run *run = user_data;

  run->ok = onestep_engine_generate_finish (ONESTEP_ENGINE (object), result, &run->error);
  run->done = TRUE;
}

static OnestepParams *
test_params (guint32 seed)
{
  OnestepParams *params = onestep_params_new ();

  params->model_path = g_strdup (g_getenv ("ONESTEP_TEST_MODEL"));
  params->device = device;
  params->seed = seed;

  return params;
}

static void
generate (Run          *run,
          guint32       seed,
          const int    *steps,
          guint         n_steps,
          GCancellable *cancellable)
{
  g_autoptr(OnestepParams) params = test_params (seed);

  run->results = g_ptr_array_new_with_free_func (g_object_unref);
  onestep_engine_generate_async (engine, image, image_width, image_height, params,
                                 steps, n_steps, on_progress, on_result, run,
                                 cancellable, on_generated, run);
  wait_for (run);
}

static void
test_load (void)
{
  Run run = { 0 };

  onestep_engine_load_model_async (engine, g_getenv ("ONESTEP_TEST_MODEL"), NULL, device,
                                   ONESTEP_PRECISION_AUTO, NULL, on_loaded, &run);
  wait_for (&run);
  g_assert_no_error (run.error);
  g_assert_true (run.ok);
}

static void
test_missing_model (void)
{
  g_autofree char *missing = g_build_filename (g_get_tmp_dir (), "no-such-onestep-model", NULL);
  Run run = { 0 };

  onestep_engine_load_model_async (engine, missing, NULL, device, ONESTEP_PRECISION_AUTO, NULL,
                                   on_loaded, &run);
  wait_for (&run);
  g_assert_false (run.ok);
  g_assert_error (run.error, ONESTEP_ENGINE_ERROR, ONESTEP_ERR_IO);
  g_assert_nonnull (strstr (run.error->message, "no-such-onestep-model"));
  run_clear (&run);
}

/* One request, two step counts: both clips arrive in order, on the main thread. */
static void
test_refinement_ladder (void)
{
  static const int steps[] = { 1, 2 };
  Run run = { 0 };

  generate (&run, 42, steps, G_N_ELEMENTS (steps), NULL);
  g_assert_no_error (run.error);
  g_assert_true (run.ok);
  g_assert_cmpuint (run.results->len, ==, 2);
  g_assert_cmpuint (run.n_progress, >, 0);
  g_assert_false (run.fraction_went_back);
  /* The last report is the last run's decoding: all the work is done, and it was timed. */
  g_assert_cmpfloat_with_epsilon (run.last_fraction, 1.0, 1e-9);
  g_assert_true (run.seconds_left_known);

  for (guint i = 0; i < run.results->len; i++)
    {
      OnestepResult *result = g_ptr_array_index (run.results, i);
      const OnestepParams *used = onestep_result_get_params (result);

      g_assert_cmpint (used->steps, ==, steps[i]);
      g_assert_cmpint (used->seed, ==, 42);
      g_assert_cmpint (onestep_result_get_nfe (result), >=, steps[i]);
      g_assert_cmpuint (g_bytes_get_size (onestep_result_get_frames (result)), ==,
                        (gsize)onestep_result_get_n_frames (result) *
                        onestep_result_get_width (result) * onestep_result_get_height (result) * 3);
    }
  run_clear (&run);
}

/* The seed reaches the engine: the same seed repeats a clip, another changes it. */
static void
test_seed (void)
{
  static const int one_step[] = { 1 };
  Run first = { 0 };
  Run again = { 0 };
  Run other = { 0 };
  GBytes *a;

  generate (&first, 7, one_step, 1, NULL);
  generate (&again, 7, one_step, 1, NULL);
  generate (&other, 8, one_step, 1, NULL);
  g_assert_true (first.ok && again.ok && other.ok);

  a = onestep_result_get_frames (g_ptr_array_index (first.results, 0));
  g_assert_true (g_bytes_equal (a, onestep_result_get_frames (g_ptr_array_index (again.results, 0))));
  g_assert_false (g_bytes_equal (a, onestep_result_get_frames (g_ptr_array_index (other.results, 0))));

  run_clear (&first);
  run_clear (&again);
  run_clear (&other);
}

/* Cancelling stops the work: it ends as cancelled and delivers no clip. */
static void
test_cancel (void)
{
  static const int steps[] = { 1, 2, 4, 8 };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Run run = { 0 };

  run.cancel_at_first_progress = cancellable;
  generate (&run, 1, steps, G_N_ELEMENTS (steps), cancellable);
  g_assert_false (run.ok);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (run.results->len, ==, 0);
  g_assert_cmpuint (run.n_progress, ==, 1);
  run_clear (&run);
}

static void
on_progress_seen (const OnestepEngineProgress *progress,
                  gpointer                     user_data)
{
  *(onestep_stage *)user_data = progress->stage;
}

static void
on_result_unexpected (OnestepResult *result,
                      gpointer       user_data)
{
  g_assert_not_reached ();
}

/* Quitting does not wait for the engine, even in the middle of a UNet evaluation that
 * takes many seconds at this size. Last: the engine is shut down afterwards. */
static void
test_shutdown_does_not_wait (void)
{
  static const int one_step[] = { 1 };
  g_autoptr(OnestepParams) params = test_params (3);
  onestep_stage stage = ONESTEP_STAGE_LOAD;
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_USEC_PER_SEC;
  gint64 start;
  double waited_ms;

  params->width = 256;
  params->height = 192;
  params->frames = 2;
  onestep_engine_generate_async (engine, image, image_width, image_height, params, one_step, 1,
                                 on_progress_seen, on_result_unexpected, &stage, NULL, NULL, NULL);
  while (stage != ONESTEP_STAGE_DENOISE && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (stage, ==, ONESTEP_STAGE_DENOISE);
  g_usleep (G_USEC_PER_SEC / 2);

  start = g_get_monotonic_time ();
  onestep_engine_shutdown (engine);
  waited_ms = (g_get_monotonic_time () - start) / 1000.0;
  g_test_message ("shutdown took %.1f ms", waited_ms);
  g_assert_cmpfloat (waited_ms, <, 100);
}

static GBytes *
load_rgb (const char *path,
          int        *width,
          int        *height)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new_from_file (path, &error);
  guint8 *rgb;

  g_assert_no_error (error);
  g_assert_false (gdk_pixbuf_get_has_alpha (pixbuf));
  *width = gdk_pixbuf_get_width (pixbuf);
  *height = gdk_pixbuf_get_height (pixbuf);
  rgb = g_malloc ((gsize)*width * *height * 3);
  for (int y = 0; y < *height; y++)
    memcpy (rgb + (gsize)y * *width * 3,
            gdk_pixbuf_read_pixels (pixbuf) + (gsize)y * gdk_pixbuf_get_rowstride (pixbuf),
            (gsize)*width * 3);

  return g_bytes_new_take (rgb, (gsize)*width * *height * 3);
}

static void
report_at (OnestepWorkEstimate *work,
           onestep_stage        stage,
           int                  step,
           double               seconds)
{
  onestep_progress progress = { .stage = stage, .step = step };

  onestep_work_estimate_report (work, &progress, (gint64)(seconds * G_USEC_PER_SEC));
}

/* A one-step run, timed, then a four-step one: the work is weighed by what each
 * part took, not counted in runs, and the second run is foretold from the first. */
static void
test_work_estimate (void)
{
  /* Two frames, guided (two inputs per UNet call), all decoded at once. */
  const onestep_plan plans[] = {
    { .frames = 2, .steps = 1, .unet_calls = 1, .unet_batch = 2, .decode_chunk = 2 },
    { .frames = 2, .steps = 4, .unet_calls = 4, .unet_batch = 2, .decode_chunk = 2 },
  };
  g_autoptr(OnestepWorkEstimate) work = onestep_work_estimate_new (plans, G_N_ELEMENTS (plans));
  OnestepWorkState state;
  double decoding;

  /* Nothing timed yet: in cost units, image 0.5 + call 4 + decoding 2 per frame-unit
   * (6.5) for the first run, 0.5 + 16 + 2 (18.5) for the second. */
  onestep_work_estimate_start_run (work, 0, 0);
  report_at (work, ONESTEP_STAGE_CLIP, 0, 0);
  onestep_work_estimate_get_state (work, &state);
  g_assert_cmpfloat_with_epsilon (state.fraction, 0, 1e-9);
  g_assert_cmpfloat_with_epsilon (state.fraction_under_way, 0.5 / 25, 1e-9);
  g_assert_cmpfloat (state.seconds_left, <, 0);

  /* Image stages 1 s, the call 2 s, decoding the two frames 3 s. */
  report_at (work, ONESTEP_STAGE_DENOISE, 0, 1);
  report_at (work, ONESTEP_STAGE_DENOISE, 1, 3);
  onestep_work_estimate_get_state (work, &state);
  /* Timed: 1 s for 0.5 units and 2 s for 4; decoding, not timed yet, at their 3 s for 4.5
   * units: the first run's decoding, then the second run. */
  decoding = 2 * 3 / 4.5;
  g_assert_cmpfloat_with_epsilon (state.seconds_left, decoding + (1 + 4 * 2 + decoding), 1e-9);
  report_at (work, ONESTEP_STAGE_DECODE, 0, 3);
  report_at (work, ONESTEP_STAGE_DECODE, 1, 6);
  onestep_work_estimate_finish_run (work);
  onestep_work_estimate_get_state (work, &state);
  /* The first run took 6 s; the second will take 1 + 4 × 2 + 3 = 12 s. */
  g_assert_cmpfloat_with_epsilon (state.fraction, 6.0 / 18, 1e-9);
  g_assert_cmpfloat_with_epsilon (state.seconds_left, 12, 1e-9);
  g_assert_cmpfloat_with_epsilon (state.seconds_under_way, 1, 1e-9);

  onestep_work_estimate_start_run (work, 1, 6 * G_USEC_PER_SEC);
  report_at (work, ONESTEP_STAGE_DENOISE, 0, 7);
  report_at (work, ONESTEP_STAGE_DENOISE, 1, 9);
  onestep_work_estimate_get_state (work, &state);
  g_assert_cmpfloat_with_epsilon (state.fraction, 9.0 / 18, 1e-9);
  g_assert_cmpfloat_with_epsilon (state.seconds_under_way, 2, 1e-9);
  g_assert_cmpfloat_with_epsilon (state.fraction_under_way, 2.0 / 18, 1e-9);
}

/* Between two reports the fraction moves on with the time, within the work under
 * way and never past it; so does the time left count down. */
static void
test_progress_moves_within_work (void)
{
  OnestepEngineProgress progress = {
    .work = { .fraction = 0.2, .fraction_under_way = 0.1, .seconds_under_way = 10,
              .seconds_left = 80 },
    .time = 1000 * G_USEC_PER_SEC,
  };
  OnestepEngineProgress untimed = progress;

  g_assert_cmpfloat_with_epsilon (onestep_engine_progress_get_fraction (&progress, progress.time),
                                  0.2, 1e-9);
  g_assert_cmpfloat_with_epsilon (onestep_engine_progress_get_fraction (&progress,
                                                                        progress.time + 5 * G_USEC_PER_SEC),
                                  0.25, 1e-9);
  g_assert_cmpfloat_with_epsilon (onestep_engine_progress_get_fraction (&progress,
                                                                        progress.time + 60 * G_USEC_PER_SEC),
                                  0.3, 1e-9);
  g_assert_cmpfloat_with_epsilon (onestep_engine_progress_get_seconds_left (&progress,
                                                                            progress.time + 5 * G_USEC_PER_SEC),
                                  75, 1e-9);
  g_assert_cmpfloat_with_epsilon (onestep_engine_progress_get_seconds_left (&progress,
                                                                            progress.time + 60 * G_USEC_PER_SEC),
                                  70, 1e-9);

  /* Nothing timed: no estimate to move on by, and no time left to tell. */
  untimed.work.seconds_under_way = 0;
  untimed.work.seconds_left = -1;
  g_assert_cmpfloat_with_epsilon (onestep_engine_progress_get_fraction (&untimed,
                                                                        untimed.time + 5 * G_USEC_PER_SEC),
                                  0.2, 1e-9);
  g_assert_cmpfloat (onestep_engine_progress_get_seconds_left (&untimed, untimed.time), <, 0);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);

  main_thread = g_thread_self ();
  device = g_strcmp0 (g_getenv ("ONESTEP_TEST_DEVICE"), "cuda") == 0 ? ONESTEP_DEVICE_CUDA
                                                                     : ONESTEP_DEVICE_CPU;
  image = load_rgb (g_getenv ("ONESTEP_TEST_IMAGE"), &image_width, &image_height);
  engine = onestep_engine_new ();

  g_test_add_func ("/engine/load", test_load);
  g_test_add_func ("/engine/missing-model", test_missing_model);
  g_test_add_func ("/engine/refinement-ladder", test_refinement_ladder);
  g_test_add_func ("/engine/seed", test_seed);
  g_test_add_func ("/engine/cancel", test_cancel);
  g_test_add_func ("/engine/shutdown-does-not-wait", test_shutdown_does_not_wait);
  g_test_add_func ("/engine/work-estimate", test_work_estimate);
  g_test_add_func ("/engine/progress-moves-within-work", test_progress_moves_within_work);
  status = g_test_run ();

  g_object_unref (engine);
  g_bytes_unref (image);
  onestep_engine_wait_for_workers ();

  return status;
}
