/* test-app.c: drives the real Onestep application and window in-process.
 *
 * It starts without a model, which asks for one, drops an image through the
 * drop target's own code path, which shows it at once, then loads the tiny
 * test model, waits for the one-step clip and its refinement, checks that the
 * preview drew a picture, runs the step comparison and exports a clip. Window
 * snapshots are saved as PNG screenshots along the way.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "onestep-application.h"
#include "onestep-before-after.h"
#include "onestep-controls.h"
#include "onestep-export-dialog.h"
#include "onestep-image.h"
#include "onestep-preferences-window.h"
#include "onestep-window.h"
#include "ui-test-util.h"

static OnestepApplication *app;
static OnestepWindow *window;
static GSettings *settings;
static char *export_dir;
static char *data_dir;

/* Distinct colours in the widget's rendering: a blank or uniform area has a
 * handful (antialiased corners), a drawn video frame has many. */
static guint
count_colors (GtkWidget *widget)
{
  g_autoptr(GdkTexture) texture = ui_test_render_widget (widget);
  int width = gdk_texture_get_width (texture);
  int height = gdk_texture_get_height (texture);
  g_autofree guint32 *pixels = g_new (guint32, (gsize)width * height);
  g_autoptr(GHashTable) colors = g_hash_table_new (NULL, NULL);

  gdk_texture_download (texture, (guchar *)pixels, (gsize)width * 4);
  for (gsize i = 0; i < (gsize)width * height; i++)
    g_hash_table_add (colors, GUINT_TO_POINTER (pixels[i]));

  return g_hash_table_size (colors);
}

static gboolean
is_status_page_titled (GtkWidget     *widget,
                       gconstpointer  title)
{
  return ADW_IS_STATUS_PAGE (widget) &&
         g_strcmp0 (adw_status_page_get_title (ADW_STATUS_PAGE (widget)), title) == 0;
}

static gboolean
is_button_for_action (GtkWidget     *widget,
                      gconstpointer  action_name)
{
  return GTK_IS_BUTTON (widget) &&
         g_strcmp0 (gtk_actionable_get_action_name (GTK_ACTIONABLE (widget)), action_name) == 0;
}

/* The first run, with no model: the window says how to get one. */
static void
test_empty_state (void)
{
  ui_test_wait_for_paint (GTK_WIDGET (window));
  g_assert_null (onestep_window_get_current_result (window));
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (window), is_status_page_titled,
                                        "Get a Model"));
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (window), is_button_for_action,
                                        "win.manage-models"));
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (window), is_button_for_action,
                                        "win.choose-model"));
  ui_test_save_screenshot (GTK_WIDGET (window), "empty-state.png");
}

static void
test_preferences (void)
{
  GtkWindow *preferences;

  g_action_group_activate_action (G_ACTION_GROUP (app), "preferences", NULL);
  preferences = ui_test_find_window (ONESTEP_TYPE_PREFERENCES_WINDOW);
  g_assert_nonnull (preferences);
  ui_test_wait_for_paint (GTK_WIDGET (preferences));
  ui_test_save_screenshot (GTK_WIDGET (preferences), "preferences.png");
  gtk_window_destroy (preferences);
}

static gboolean
model_loaded (gpointer data)
{
  return onestep_window_get_model_loaded (window);
}

static gboolean
refinement_done (gpointer data)
{
  return !onestep_window_get_busy (window) &&
         onestep_history_get_len (onestep_window_get_history (window)) >= 1;
}

static void
on_result_ready (OnestepWindow *win,
                 OnestepResult *result,
                 guint         *n_results)
{
  /* The first clip is the one-step result; the refinement is still to come. */
  if ((*n_results)++ == 0)
    {
      g_assert_cmpint (onestep_result_get_params (result)->steps, ==, 1);
      g_assert_true (onestep_window_get_busy (win));
      /* Lay out and paint the new clip; this is not asserted on, as the
       * refinement may end meanwhile. */
      ui_test_wait_for_paint (GTK_WIDGET (win));
      ui_test_save_screenshot (GTK_WIDGET (win), "preview-refining.png");
    }
}

static void
on_result_counted (OnestepWindow *win,
                   OnestepResult *result,
                   guint         *n_results)
{
  (*n_results)++;
}

static gboolean
preview_has_frames (gpointer data)
{
  return onestep_preview_get_n_frames (onestep_window_get_preview (window)) > 0;
}

/* An image dropped before there is a model is shown at once as a still, with
 * the way to a model beside it and no Stop button. */
static void
check_image_without_model (void)
{
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GFile) image = g_file_new_for_path (g_getenv ("ONESTEP_TEST_IMAGE"));
  OnestepPreview *preview = onestep_window_get_preview (window);

  /* The drop target hands its value to this same function. */
  g_value_init (&value, G_TYPE_FILE);
  g_value_set_object (&value, image);
  g_assert_true (onestep_window_drop (window, &value));
  g_assert_true (ui_test_wait_until (preview_has_frames, NULL));

  g_assert_cmpint (onestep_preview_get_n_frames (preview), ==, 1);
  g_assert_false (onestep_window_get_busy (window));
  g_assert_null (onestep_window_get_current_result (window));

  ui_test_wait_for_paint (GTK_WIDGET (window));
  g_assert_cmpuint (count_colors (gtk_widget_get_first_child (GTK_WIDGET (preview))), >, 32);
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (window), is_button_for_action,
                                        "win.manage-models"));
  g_assert_null (ui_test_find_mapped_widget (GTK_WIDGET (window), is_button_for_action, "win.stop"));
  ui_test_save_screenshot (GTK_WIDGET (window), "image-without-model.png");
}

/* The user drops an image first, then chooses a model, which brings it to
 * life: the one-step clip, then its refinement. */
static void
test_generate (void)
{
  OnestepPreview *preview = onestep_window_get_preview (window);
  OnestepResult *result;
  GtkWidget *display;
  guint n_results = 0;
  gulong handler;

  check_image_without_model ();

  handler = g_signal_connect (window, "result-ready", G_CALLBACK (on_result_ready), &n_results);
  onestep_window_set_model (window, g_getenv ("ONESTEP_TEST_MODEL"));
  g_assert_true (ui_test_wait_until (model_loaded, NULL));
  g_assert_true (ui_test_wait_until (refinement_done, NULL));
  g_signal_handler_disconnect (window, handler);
  g_assert_cmpuint (n_results, ==, 2);

  result = onestep_window_get_current_result (window);
  g_assert_nonnull (result);
  g_assert_cmpint (onestep_result_get_params (result)->steps, ==, 2);
  g_assert_cmpint (onestep_result_get_n_frames (result), >, 0);

  ui_test_wait_for_paint (GTK_WIDGET (window));
  g_test_message ("preview drawn with %s", onestep_preview_get_uses_gl (preview) ? "OpenGL"
                                                                                  : "GtkPicture");
  /* The display, under the before/after view's overlay. */
  display = gtk_overlay_get_child (GTK_OVERLAY (gtk_widget_get_first_child (GTK_WIDGET (preview))));
  g_assert_true (GTK_IS_STACK (display));
  g_assert_cmpuint (count_colors (display), >, 32);
  ui_test_save_screenshot (GTK_WIDGET (window), "preview.png");
}

static gboolean
is_idle (gpointer data)
{
  return !onestep_window_get_busy (window);
}

static gboolean
idle_with_history (gpointer data)
{
  return !onestep_window_get_busy (window) &&
         onestep_history_get_len (onestep_window_get_history (window)) >= GPOINTER_TO_UINT (data);
}

/* Stop cancels the work with nothing delivered afterwards; a history entry
 * brings its clip and settings back without generating again. */
static void
test_stop_and_restore (void)
{
  OnestepHistory *history = onestep_window_get_history (window);
  guint before = onestep_history_get_len (history);
  g_autoptr(OnestepResult) earlier = g_object_ref (onestep_window_get_current_result (window));
  guint n_results = 0;
  gulong handler;

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (onestep_window_get_busy (window));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.stop", NULL));
  g_assert_false (onestep_window_get_busy (window));

  /* A full run after the stopped one brings its two clips and adds one row. */
  handler = g_signal_connect (window, "result-ready", G_CALLBACK (on_result_counted), &n_results);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (ui_test_wait_until (idle_with_history, GUINT_TO_POINTER (before + 1)));
  g_signal_handler_disconnect (window, handler);
  g_assert_cmpuint (n_results, ==, 2);
  g_assert_cmpuint (onestep_history_get_len (history), ==, before + 1);
  g_assert_true (onestep_window_get_current_result (window) != earlier);

  ui_test_wait_for_paint (GTK_WIDGET (history));
  ui_test_save_screenshot (GTK_WIDGET (history), "history.png");

  g_signal_emit_by_name (history, "result-activated", earlier);
  g_assert_true (onestep_window_get_current_result (window) == earlier);
  g_assert_false (onestep_window_get_busy (window));
}

static GObject *
window_child (const char *name)
{
  return gtk_widget_get_template_child (GTK_WIDGET (window), ONESTEP_TYPE_WINDOW, name);
}

static GObject *
controls_child (const char *name)
{
  return gtk_widget_get_template_child (GTK_WIDGET (window_child ("controls")),
                                        ONESTEP_TYPE_CONTROLS, name);
}

/* What a generation showed while it ran. */
typedef struct
{
  int        steps;              /* the chosen step count */
  GPtrArray *results;
  /* Steps of the chosen count the status line went through, as bits, and any
   * other count it said it was refining with. */
  guint      refining_steps_seen;
  gboolean   other_count_seen;
  gboolean   time_left_seen;
  double     fraction_at_refinement;  /* the bar as the chosen count began; -1 before */
  double     last_fraction;
  gboolean   fraction_went_back;
  gboolean   screenshot_taken;
} GenerationWatch;

static void
on_watched_result (OnestepWindow   *win,
                   OnestepResult   *result,
                   GenerationWatch *watch)
{
  /* The one-step clip comes first, while the chosen count is still to run. */
  if (watch->results->len == 0)
    {
      g_assert_cmpint (onestep_result_get_params (result)->steps, ==, 1);
      g_assert_true (onestep_window_get_busy (win));
    }
  g_ptr_array_add (watch->results, g_object_ref (result));
}

static void
on_watched_status (GtkLabel        *label,
                   GParamSpec      *pspec,
                   GenerationWatch *watch)
{
  const char *text = gtk_label_get_label (label);
  double fraction = gtk_progress_bar_get_fraction (GTK_PROGRESS_BAR (window_child ("progress_bar")));
  int count, step, of;

  if (fraction < watch->last_fraction)
    watch->fraction_went_back = TRUE;
  watch->last_fraction = fraction;
  if (strstr (text, " left") != NULL)
    watch->time_left_seen = TRUE;

  if (sscanf (text, "Refining with %d steps", &count) != 1)
    return;
  if (count != watch->steps)
    watch->other_count_seen = TRUE;
  if (watch->fraction_at_refinement < 0)
    watch->fraction_at_refinement = fraction;
  if (sscanf (text, "Refining with %d steps: step %d of %d", &count, &step, &of) == 3)
    {
      watch->refining_steps_seen |= 1u << step;
      /* Halfway through: the preview shows the engine's estimate, the status the time left. */
      if (step == watch->steps / 2 + 1 && !watch->screenshot_taken)
        {
          watch->screenshot_taken = TRUE;
          ui_test_wait_for_paint (GTK_WIDGET (window));
          ui_test_save_screenshot (GTK_WIDGET (window), "refining-once.png");
        }
    }
}

static gboolean
idle_with_results (gpointer data)
{
  GenerationWatch *watch = data;

  return !onestep_window_get_busy (window) && watch->results->len > 0 &&
         onestep_result_get_params (g_ptr_array_index (watch->results,
                                                       watch->results->len - 1))->steps == watch->steps;
}

/* Sets the step count, which starts a generation, and watches it to its end. */
static void
generate_watched (int              steps,
                  GenerationWatch *watch)
{
  GObject *status = window_child ("status_label");
  gulong status_handler;
  gulong result_handler;

  *watch = (GenerationWatch) { .steps = steps, .fraction_at_refinement = -1,
                               .results = g_ptr_array_new_with_free_func (g_object_unref) };
  status_handler = g_signal_connect (status, "notify::label", G_CALLBACK (on_watched_status), watch);
  result_handler = g_signal_connect (window, "result-ready", G_CALLBACK (on_watched_result), watch);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (controls_child ("steps_spin")), steps);
  g_assert_true (onestep_window_get_busy (window));
  g_assert_true (ui_test_wait_until (idle_with_results, watch));
  g_signal_handler_disconnect (status, status_handler);
  g_signal_handler_disconnect (window, result_handler);
}

/* The one-step clip at once, then the chosen count run once (not 1, 2, 4 and then
 * the count, each from scratch), its estimate shown after each step; History gets
 * one row. */
static void
test_refine_once (void)
{
  OnestepHistory *history = onestep_window_get_history (window);
  guint before = onestep_history_get_len (history);
  GenerationWatch watch;
  int unet_evaluations = 0;

  generate_watched (4, &watch);

  g_assert_cmpuint (watch.results->len, ==, 2);
  for (guint i = 0; i < watch.results->len; i++)
    unet_evaluations += onestep_result_get_nfe (g_ptr_array_index (watch.results, i));
  g_test_message ("UNet evaluations for 4 steps: %d", unet_evaluations);
  /* tiny-a guides every step (two UNet inputs): one step, then four; the old
   * ladder of 1, 2 and 4 steps made (1 + 2 + 4) × 2 = 14. */
  g_assert_cmpint (unet_evaluations, ==, (1 + 4) * 2);
  g_assert_false (watch.other_count_seen);
  g_assert_cmpuint (watch.refining_steps_seen, ==, 0x1e);
  g_assert_true (watch.screenshot_taken);

  g_assert_cmpuint (onestep_history_get_len (history), ==, before + 1);
  g_assert_true (onestep_window_get_current_result (window) == g_ptr_array_index (watch.results, 1));
  g_ptr_array_unref (watch.results);

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (controls_child ("steps_spin")), 2);
  g_assert_true (ui_test_wait_until (idle_with_history, GUINT_TO_POINTER (before + 2)));
}

/* The bar measures work done, never going back; as the chosen count begins it has
 * come only as far as the one-step run's share of the work; the status line tells
 * the time left. */
static void
test_progress_in_work (void)
{
  GenerationWatch watch;
  double one_step_seconds;
  double chosen_seconds;
  double share;

  generate_watched (4, &watch);

  one_step_seconds = onestep_result_get_seconds (g_ptr_array_index (watch.results, 0));
  chosen_seconds = onestep_result_get_seconds (g_ptr_array_index (watch.results, 1));
  share = one_step_seconds / (one_step_seconds + chosen_seconds);
  g_test_message ("bar at the start of 4 steps: %.2f; the one-step run took %.2f s, the 4 steps %.2f s",
                  watch.fraction_at_refinement, one_step_seconds, chosen_seconds);
  g_assert_false (watch.fraction_went_back);
  g_assert_true (watch.time_left_seen);
  /* Counted in runs it would stand at 1/2 (2/3 with the old ladder); it stands near
   * the one-step run's share of the time, which it foretold from that run's timings
   * (how near depends on how steady the machine is). */
  g_test_message ("the one-step run's share of the time: %.2f", share);
  g_assert_cmpfloat (watch.fraction_at_refinement, >, 0);
  g_assert_cmpfloat (watch.fraction_at_refinement, <, 0.5);
  g_ptr_array_unref (watch.results);

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (controls_child ("steps_spin")), 2);
  g_assert_true (ui_test_wait_until ((UiCondition)is_idle, NULL));
}

typedef struct
{
  gboolean  done;
  char     *window_status;  /* the window's status line as the engine returned */
} EngineJob;

static void
on_blocking_job_done (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  EngineJob *job = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_false (onestep_engine_generate_finish (ONESTEP_ENGINE (object), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  job->window_status = g_strdup (gtk_label_get_label (GTK_LABEL (window_child ("status_label"))));
  job->done = TRUE;
}

static void
ignore_result (OnestepResult *result,
               gpointer       user_data)
{
}

static gboolean
status_is (gpointer data)
{
  return g_str_equal (gtk_label_get_label (GTK_LABEL (window_child ("status_label"))), data);
}

/* Between Stop and the engine's return the window says "Stopping…", then "Stopped".
 * The engine is kept from returning by a long job of the test's own ahead of the
 * window's, as a long layer would keep it. */
static void
test_stopping (void)
{
  OnestepEngine *engine = onestep_application_get_engine (app);
  g_autoptr(OnestepParams) params = onestep_controls_get_params (ONESTEP_CONTROLS (window_child ("controls")));
  g_autoptr(GCancellable) blocking = g_cancellable_new ();
  g_autoptr(GBytes) image = NULL;
  g_autoptr(GdkTexture) texture = NULL;
  g_autoptr(GError) error = NULL;
  const int steps[] = { 25 };
  EngineJob job = { 0 };
  int width;
  int height;

  texture = gdk_texture_new_from_filename (g_getenv ("ONESTEP_TEST_IMAGE"), &error);
  g_assert_no_error (error);
  image = onestep_image_rgb_from_texture (texture);
  width = gdk_texture_get_width (texture);
  height = gdk_texture_get_height (texture);
  onestep_engine_generate_async (engine, image, width, height, params, steps, 1, NULL,
                                 ignore_result, NULL, blocking, on_blocking_job_done, &job);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.stop", NULL));
  g_assert_cmpstr (gtk_label_get_label (GTK_LABEL (window_child ("status_label"))), ==, "Stopping…");
  g_assert_false (onestep_window_get_busy (window));
  g_assert_null (ui_test_find_mapped_widget (GTK_WIDGET (window), is_button_for_action, "win.stop"));
  ui_test_wait_for_paint (GTK_WIDGET (window));
  ui_test_save_screenshot (GTK_WIDGET (window), "stopping.png");
  g_assert_false (job.done);
  g_assert_true (status_is ("Stopping…"));

  g_cancellable_cancel (blocking);
  g_assert_true (ui_test_wait_until (status_is, "Stopped"));
  g_assert_true (job.done);
  g_assert_cmpstr (job.window_status, ==, "Stopping…");
  g_free (job.window_status);
  ui_test_wait_for_paint (GTK_WIDGET (window));
  ui_test_save_screenshot (GTK_WIDGET (window), "stopped.png");
}

static gboolean
is_toast (GtkWidget     *widget,
          gconstpointer  data)
{
  return g_str_equal (G_OBJECT_TYPE_NAME (widget), "AdwToastWidget");
}

/* A toast slides in from below its overlay's edge; shown is where it settles. */
static gboolean
toast_shown (gpointer data)
{
  GtkWidget *toast = ui_test_find_mapped_widget (GTK_WIDGET (window), is_toast, NULL);
  GtkWidget *overlay;
  graphene_rect_t bounds;

  if (toast == NULL)
    return FALSE;
  overlay = gtk_widget_get_ancestor (toast, ADW_TYPE_TOAST_OVERLAY);
  /* Not laid out yet, or still sliding in. */
  return gtk_widget_compute_bounds (toast, overlay, &bounds) && bounds.origin.y > 0 &&
         bounds.origin.y + bounds.size.height <= gtk_widget_get_height (overlay);
}

static void
assert_apart (GtkWidget *toast,
              GtkWidget *widget)
{
  graphene_rect_t toast_bounds;
  graphene_rect_t widget_bounds;

  g_assert_true (gtk_widget_compute_bounds (toast, GTK_WIDGET (window), &toast_bounds));
  g_assert_true (gtk_widget_compute_bounds (widget, GTK_WIDGET (window), &widget_bounds));
  g_test_message ("toast at %g,%g %gx%g; %s at %g,%g %gx%g",
                  toast_bounds.origin.x, toast_bounds.origin.y, toast_bounds.size.width,
                  toast_bounds.size.height, G_OBJECT_TYPE_NAME (widget), widget_bounds.origin.x,
                  widget_bounds.origin.y, widget_bounds.size.width, widget_bounds.size.height);
  g_assert_false (graphene_rect_intersection (&toast_bounds, &widget_bounds, NULL));
}

/* A message in the middle of a generation leaves the status line and Stop in sight. */
static void
test_toast_leaves_status (void)
{
  g_autofree char *not_an_image = g_build_filename (g_getenv ("ONESTEP_TEST_MODEL"),
                                                    "model_index.json", NULL);
  g_autoptr(GFile) file = g_file_new_for_path (not_an_image);
  GtkWidget *stop_button = GTK_WIDGET (window_child ("stop_button"));
  GtkWidget *toast;

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (controls_child ("steps_spin")), 4);
  g_assert_true (onestep_window_get_busy (window));
  onestep_window_open_file (window, file);
  g_assert_true (ui_test_wait_until (toast_shown, NULL));
  ui_test_wait_for_paint (GTK_WIDGET (window));
  ui_test_save_screenshot (GTK_WIDGET (window), "toast-while-generating.png");

  toast = ui_test_find_mapped_widget (GTK_WIDGET (window), is_toast, NULL);
  g_assert_true (gtk_widget_get_mapped (stop_button));
  assert_apart (toast, GTK_WIDGET (window_child ("status_label")));
  assert_apart (toast, GTK_WIDGET (window_child ("progress_bar")));
  assert_apart (toast, stop_button);

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (controls_child ("steps_spin")), 2);
  g_assert_true (ui_test_wait_until (is_idle, NULL));
}

static gboolean
showing_source (gpointer data)
{
  return onestep_window_get_current_result (window) == NULL &&
         onestep_preview_get_n_frames (onestep_window_get_preview (window)) == 1;
}

/* The colour of the pixel at (x, y), as fractions of the picture's width and height,
 * of a rendering of widget, where a picture of the aspect ratio is fitted whole. */
static guint32
pixel_at (GdkTexture *rendering,
          double      aspect,
          double      x,
          double      y)
{
  int width = gdk_texture_get_width (rendering);
  int height = gdk_texture_get_height (rendering);
  double fitted_width = MIN (width, height * aspect);
  double fitted_height = fitted_width / aspect;
  g_autofree guint32 *pixels = g_new (guint32, (gsize)width * height);
  int px = (int)((width - fitted_width) / 2 + x * fitted_width);
  int py = (int)((height - fitted_height) / 2 + y * fitted_height);

  gdk_texture_download (rendering, (guchar *)pixels, (gsize)width * 4);
  return pixels[(gsize)py * width + px];
}

static GdkTexture *
render_divided_at (GtkWidget *before_after,
                   double     position)
{
  onestep_before_after_set_position (ONESTEP_BEFORE_AFTER (before_after), position);
  ui_test_wait_for_paint (before_after);
  return ui_test_render_widget (gtk_widget_get_parent (before_after));
}

/* A pasted image shows at once, before any clip; once there is a clip, the before/after
 * view shows the image left of its divider and the clip right of it. */
static void
test_source_and_before_after (void)
{
  OnestepPreview *preview = onestep_window_get_preview (window);
  GtkWidget *source_button = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (preview),
                                                                       ONESTEP_TYPE_PREVIEW,
                                                                       "source_button"));
  GtkWidget *before_after = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (preview),
                                                                      ONESTEP_TYPE_PREVIEW,
                                                                      "before_after"));
  guint before = onestep_history_get_len (onestep_window_get_history (window));
  g_autoptr(GdkTexture) image = NULL;
  g_autoptr(GdkTexture) all_clip = NULL;
  g_autoptr(GdkTexture) all_image = NULL;
  g_autoptr(GdkTexture) divided = NULL;
  g_autoptr(GError) error = NULL;
  OnestepResult *result;
  double aspect;

  image = gdk_texture_new_from_filename (g_getenv ("ONESTEP_TEST_IMAGE"), &error);
  g_assert_no_error (error);
  gdk_clipboard_set_texture (gtk_widget_get_clipboard (GTK_WIDGET (window)), image);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.paste", NULL));
  g_assert_true (ui_test_wait_until (showing_source, NULL));
  g_assert_true (onestep_window_get_busy (window));
  g_assert_false (gtk_widget_get_sensitive (source_button));
  ui_test_wait_for_paint (GTK_WIDGET (window));
  ui_test_save_screenshot (GTK_WIDGET (window), "source-at-once.png");

  g_assert_true (ui_test_wait_until (idle_with_history, GUINT_TO_POINTER (before + 1)));
  result = onestep_window_get_current_result (window);
  aspect = (double)onestep_result_get_width (result) / onestep_result_get_height (result);
  onestep_preview_set_playing (preview, FALSE);
  onestep_preview_set_frame (preview, 0);
  g_assert_true (gtk_widget_get_sensitive (source_button));
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (source_button), TRUE);
  g_assert_true (ui_test_wait_until ((UiCondition)gtk_widget_get_mapped, before_after));

  all_clip = render_divided_at (before_after, 0);
  all_image = render_divided_at (before_after, 1);
  divided = render_divided_at (before_after, 0.5);
  /* Low in the picture, clear of the labels and the divider's handle. */
  g_assert_cmpuint (pixel_at (all_clip, aspect, 0.25, 0.75), !=, pixel_at (all_image, aspect, 0.25, 0.75));
  g_assert_cmpuint (pixel_at (divided, aspect, 0.25, 0.75), ==, pixel_at (all_image, aspect, 0.25, 0.75));
  g_assert_cmpuint (pixel_at (divided, aspect, 0.75, 0.75), ==, pixel_at (all_clip, aspect, 0.75, 0.75));
  ui_test_wait_for_paint (GTK_WIDGET (window));
  ui_test_save_screenshot (GTK_WIDGET (window), "before-after.png");

  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (source_button), FALSE);
  onestep_preview_set_playing (preview, TRUE);
}

static gboolean
comparison_done (gpointer data)
{
  OnestepCompareView *compare = data;

  return !onestep_compare_view_get_running (compare) &&
         onestep_compare_view_get_n_results (compare) == 4;
}

static void
on_result_collected (OnestepWindow *win,
                     OnestepResult *result,
                     GPtrArray     *results)
{
  g_ptr_array_add (results, g_object_ref (result));
}

static void
test_compare (void)
{
  OnestepCompareView *compare = onestep_window_get_compare_view (window);
  static const int expected_steps[] = { 1, 2, 4, 8 };
  g_autoptr(GPtrArray) generated = g_ptr_array_new_with_free_func (g_object_unref);
  gulong handler;

  /* A generation's one-step clip is the comparison's, not made again. */
  handler = g_signal_connect (window, "result-ready", G_CALLBACK (on_result_collected), generated);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (ui_test_wait_until (is_idle, NULL));
  g_signal_handler_disconnect (window, handler);
  g_assert_cmpuint (generated->len, ==, 2);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.compare", NULL));
  g_assert_true (ui_test_wait_until (comparison_done, compare));
  g_assert_true (onestep_compare_view_get_result (compare, 0) == g_ptr_array_index (generated, 0));

  for (guint i = 0; i < G_N_ELEMENTS (expected_steps); i++)
    {
      OnestepResult *result = onestep_compare_view_get_result (compare, i);

      g_assert_cmpint (onestep_result_get_params (result)->steps, ==, expected_steps[i]);
      g_assert_cmpint (onestep_result_get_nfe (result), >=, expected_steps[i]);
    }

  ui_test_wait_for_paint (GTK_WIDGET (window));
  g_assert_cmpuint (count_colors (GTK_WIDGET (compare)), >, 32);
  ui_test_save_screenshot (GTK_WIDGET (window), "comparison.png");
}

/* Counts the labels under widget that read text. */
static guint
count_labels (GtkWidget  *widget,
              const char *text)
{
  guint n = GTK_IS_LABEL (widget) && g_str_equal (gtk_label_get_label (GTK_LABEL (widget)), text);

  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    n += count_labels (child, text);
  return n;
}

/* Compare goes before the preview's refinement, and stopping it, with its own Stop
 * or the preview's, leaves no cell waiting. */
static void
test_compare_stops (void)
{
  OnestepCompareView *compare = onestep_window_get_compare_view (window);
  GObject *stop_button = gtk_widget_get_template_child (GTK_WIDGET (compare),
                                                        ONESTEP_TYPE_COMPARE_VIEW, "stop_button");

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (onestep_window_get_busy (window));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.compare", NULL));
  g_assert_false (onestep_window_get_busy (window));
  g_assert_true (onestep_compare_view_get_running (compare));
  g_assert_true (gtk_widget_get_sensitive (GTK_WIDGET (stop_button)));

  g_signal_emit_by_name (stop_button, "clicked");
  g_assert_false (onestep_compare_view_get_running (compare));
  g_assert_false (gtk_widget_get_sensitive (GTK_WIDGET (stop_button)));
  g_assert_cmpuint (count_labels (GTK_WIDGET (compare), "Waiting…"), ==, 0);
  g_assert_cmpuint (count_labels (GTK_WIDGET (compare), "Stopped"), ==,
                    4 - onestep_compare_view_get_n_results (compare));

  /* A preview generation started while comparing; the preview's Stop stops both. */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.compare", NULL));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.stop", NULL));
  g_assert_false (onestep_window_get_busy (window));
  g_assert_false (onestep_compare_view_get_running (compare));
  g_assert_cmpuint (count_labels (GTK_WIDGET (compare), "Waiting…"), ==, 0);

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.compare", NULL));
  g_assert_true (ui_test_wait_until (comparison_done, compare));
}

static gboolean
window_gone (gpointer data)
{
  return *(gpointer *)data == NULL;
}

static void
on_exported (OnestepExportDialog *dialog,
             const char          *path,
             char               **exported)
{
  *exported = g_strdup (path);
}

static void
test_export (void)
{
  OnestepCompareView *compare = onestep_window_get_compare_view (window);
  OnestepResult *picked = onestep_compare_view_get_result (compare, 1);
  g_autofree char *path = NULL;
  GtkWindow *dialog;
  GStatBuf st;

  g_settings_set_string (settings, "export-folder", export_dir);
  g_settings_set_enum (settings, "export-format", 2 /* gif */);

  /* What the comparison cell's Export button does. */
  g_signal_emit_by_name (compare, "export-requested", picked);
  dialog = ui_test_find_window (ONESTEP_TYPE_EXPORT_DIALOG);
  g_assert_nonnull (dialog);
  g_signal_connect (dialog, "exported", G_CALLBACK (on_exported), &path);
  ui_test_wait_for_paint (GTK_WIDGET (dialog));
  ui_test_save_screenshot (GTK_WIDGET (dialog), "export-dialog.png");

  g_object_add_weak_pointer (G_OBJECT (dialog), (gpointer *)&dialog);
  onestep_export_dialog_export (ONESTEP_EXPORT_DIALOG (dialog));
  g_assert_true (ui_test_wait_until (window_gone, &dialog));

  g_assert_nonnull (path);
  g_assert_true (g_str_has_suffix (path, ".gif"));
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 0);
  g_assert_cmpint (g_unlink (path), ==, 0);
}

/* Exports result through the export dialog in format; returns the exported path. */
static char *
export_result (OnestepResult *result,
               int            format)
{
  GtkWindow *dialog;
  char *exported = NULL;

  g_settings_set_string (settings, "export-folder", export_dir);
  g_settings_set_enum (settings, "export-format", format);
  dialog = onestep_window_export (window, result);
  g_signal_connect (dialog, "exported", G_CALLBACK (on_exported), &exported);
  g_object_add_weak_pointer (G_OBJECT (dialog), (gpointer *)&dialog);
  onestep_export_dialog_export (ONESTEP_EXPORT_DIALOG (dialog));
  g_assert_true (ui_test_wait_until (window_gone, &dialog));
  g_assert_nonnull (exported);
  return exported;
}

static JsonNode *
load_json (const char *path)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static void
remove_png_folder (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (path, name, NULL);

      g_assert_cmpint (g_unlink (file), ==, 0);
    }
  g_assert_cmpint (g_rmdir (path), ==, 0);
}

/* Exports result as a GIF named name (without extension) through the export dialog;
 * as the name is taken, answers the question with response. Returns the exported
 * path, NULL when nothing was exported. */
static char *
export_gif_named (OnestepResult *result,
                  const char    *name,
                  const char    *response)
{
  GtkWindow *dialog;
  GtkWindow *question;
  char *exported = NULL;

  g_settings_set_string (settings, "export-folder", export_dir);
  g_settings_set_enum (settings, "export-format", 2 /* gif */);
  dialog = onestep_window_export (window, result);
  g_signal_connect (dialog, "exported", G_CALLBACK (on_exported), &exported);
  gtk_editable_set_text (GTK_EDITABLE (gtk_widget_get_template_child (GTK_WIDGET (dialog),
                                                                      ONESTEP_TYPE_EXPORT_DIALOG,
                                                                      "name_row")), name);
  onestep_export_dialog_export (ONESTEP_EXPORT_DIALOG (dialog));
  question = ui_test_find_window (ADW_TYPE_MESSAGE_DIALOG);
  g_assert_nonnull (question);
  adw_message_dialog_response (ADW_MESSAGE_DIALOG (question), response);
  g_object_add_weak_pointer (G_OBJECT (dialog), (gpointer *)&dialog);
  if (g_str_equal (response, "cancel"))
    gtk_window_destroy (dialog);
  g_assert_true (ui_test_wait_until (window_gone, &dialog));
  return exported;
}

/* Exporting a clip again gives a free default name with the settings in it; a taken
 * name is replaced or changed to a free one as the user chooses. */
static void
test_export_name_clash (void)
{
  OnestepResult *result = onestep_window_get_current_result (window);
  const OnestepParams *params = onestep_result_get_params (result);
  g_autofree char *first = export_result (result, 2 /* gif */);
  g_autofree char *second = NULL;
  g_autofree char *first_base = g_path_get_basename (first);
  g_autofree char *name = g_strndup (first_base, strlen (first_base) - strlen (".gif"));
  g_autofree char *size = g_strdup_printf ("-%dx%d-", params->width, params->height);
  g_autofree char *expected_second = g_strdup_printf ("%s-2.gif", name);
  g_autofree char *expected_third = g_strdup_printf ("%s-3.gif", name);
  g_autofree char *replaced = NULL;
  g_autofree char *third = NULL;
  g_autofree char *third_base = NULL;
  g_autofree char *second_base = NULL;
  GStatBuf st;

  g_test_message ("default name: %s", first_base);
  g_assert_nonnull (strstr (name, onestep_sampler_name (onestep_result_get_sampler (result))));
  g_assert_nonnull (strstr (name, size));
  second = export_result (result, 2 /* gif */);
  second_base = g_path_get_basename (second);
  g_assert_cmpstr (second_base, ==, expected_second);

  g_assert_null (export_gif_named (result, name, "cancel"));

  g_assert_true (g_file_set_contents (first, "", 0, NULL));
  replaced = export_gif_named (result, name, "replace");
  g_assert_cmpstr (replaced, ==, first);
  g_assert_cmpint (g_stat (first, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 0);

  third = export_gif_named (result, name, "rename");
  third_base = g_path_get_basename (third);
  g_assert_cmpstr (third_base, ==, expected_third);
  g_assert_true (g_file_test (third, G_FILE_TEST_IS_REGULAR));

  g_assert_cmpint (g_unlink (first), ==, 0);
  g_assert_cmpint (g_unlink (second), ==, 0);
  g_assert_cmpint (g_unlink (third), ==, 0);
}

/* The app and onestep-cli write the same settings.json, member for member and type for
 * type, for a clip made with the same settings. */
static void
test_settings_match_cli (void)
{
  OnestepResult *result = onestep_window_get_current_result (window);
  g_autofree char *gui_folder = export_result (result, 3 /* PNG frames */);
  g_autofree char *cli_folder = g_build_filename (export_dir, "from-cli", NULL);
  g_autofree char *gui_file = g_build_filename (gui_folder, "settings.json", NULL);
  g_autofree char *cli_file = g_build_filename (cli_folder, "settings.json", NULL);
  g_autoptr(JsonNode) gui_settings = NULL;
  g_autoptr(JsonNode) cli_settings = NULL;
  g_autofree char *gui_text = NULL;
  g_autofree char *cli_text = NULL;

  ui_test_generate_with_cli (result, g_getenv ("ONESTEP_TEST_IMAGE"), cli_folder);
  gui_settings = load_json (gui_file);
  cli_settings = load_json (cli_file);
  gui_text = json_to_string (gui_settings, FALSE);
  cli_text = json_to_string (cli_settings, FALSE);
  g_test_message ("app: %s", gui_text);
  g_test_message ("cli: %s", cli_text);
  g_assert_cmpstr (gui_text, ==, cli_text);
  g_assert_true (json_node_equal (gui_settings, cli_settings));
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (json_node_get_object (gui_settings),
                                                                     "seed")), ==, G_TYPE_INT64);

  remove_png_folder (gui_folder);
  remove_png_folder (cli_folder);
}

/* A JPEG of a camera held upright: stored width x height (top red, bottom blue), with
 * EXIF orientation 6, shown turned a quarter clockwise (height x width). */
static char *
write_upright_photo (int width,
                     int height)
{
  /* APP1: "Exif", a big-endian TIFF header and one IFD entry, Orientation = 6. */
  static const guint8 exif[] = {
    0xff, 0xe1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
    'M', 'M', 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08,
    0x00, 0x01, 0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
  };
  g_autoptr(GdkPixbuf) stored = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, height);
  g_autoptr(GByteArray) file = g_byte_array_new ();
  g_autofree char *path = g_build_filename (export_dir, "upright.jpg", NULL);
  g_autofree char *jpeg = NULL;
  g_autoptr(GError) error = NULL;
  gsize length;

  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        guint8 *pixel = gdk_pixbuf_get_pixels (stored) + y * gdk_pixbuf_get_rowstride (stored) + 3 * x;

        pixel[0] = y < height / 2 ? 220 : 30;
        pixel[1] = (guint8)(x * 4);
        pixel[2] = y < height / 2 ? 30 : 220;
      }
  g_assert_true (gdk_pixbuf_save_to_buffer (stored, &jpeg, &length, "jpeg", &error, "quality", "95", NULL));
  g_assert_no_error (error);
  g_byte_array_append (file, (const guint8 *)jpeg, 2);  /* SOI */
  g_byte_array_append (file, exif, sizeof exif);
  g_byte_array_append (file, (const guint8 *)jpeg + 2, length - 2);
  g_assert_true (g_file_set_contents (path, (const char *)file->data, file->len, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static gboolean
idle_after_two_results (gpointer data)
{
  return !onestep_window_get_busy (window) && *(guint *)data >= 2;
}

/* One photo gives one clip: the app reads and fits an image as onestep-cli does,
 * EXIF orientation included. */
static void
test_same_clip_as_cli (void)
{
  g_autofree char *photo = write_upright_photo (32, 48);
  g_autoptr(GFile) file = g_file_new_for_path (photo);
  g_autofree char *cli_folder = g_build_filename (export_dir, "photo-from-cli", NULL);
  g_autofree char *cli_frame = g_build_filename (cli_folder, "frame-0001.png", NULL);
  g_autoptr(GdkPixbuf) cli_pixels = NULL;
  g_autoptr(GError) error = NULL;
  OnestepResult *result;
  GdkTexture *source;
  guint n_results = 0;
  gulong handler;
  int width, height;

  handler = g_signal_connect (window, "result-ready", G_CALLBACK (on_result_counted), &n_results);
  onestep_window_open_file (window, file);
  g_assert_true (ui_test_wait_until (idle_after_two_results, &n_results));
  g_signal_handler_disconnect (window, handler);
  result = onestep_window_get_current_result (window);
  source = onestep_result_get_source (result);
  g_assert_cmpint (gdk_texture_get_width (source), ==, 48);
  g_assert_cmpint (gdk_texture_get_height (source), ==, 32);

  ui_test_generate_with_cli (result, photo, cli_folder);
  cli_pixels = gdk_pixbuf_new_from_file (cli_frame, &error);
  g_assert_no_error (error);
  width = onestep_result_get_width (result);
  height = onestep_result_get_height (result);
  g_assert_cmpint (gdk_pixbuf_get_width (cli_pixels), ==, width);
  g_assert_cmpint (gdk_pixbuf_get_height (cli_pixels), ==, height);
  g_assert_cmpint (gdk_pixbuf_get_rowstride (cli_pixels), ==, width * 3);
  g_assert_cmpmem (gdk_pixbuf_read_pixels (cli_pixels), (gsize)width * height * 3,
                   g_bytes_get_data (onestep_result_get_frames (result), NULL),
                   (gsize)width * height * 3);

  remove_png_folder (cli_folder);
  g_assert_cmpint (g_unlink (photo), ==, 0);
}

static void
on_status_changed (GtkLabel   *label,
                   GParamSpec *pspec,
                   GPtrArray  *statuses)
{
  g_ptr_array_add (statuses, g_strdup (gtk_label_get_label (label)));
}

static gboolean
idle_with_tts_result (gpointer data)
{
  OnestepResult *result = onestep_window_get_current_result (window);

  return !onestep_window_get_busy (window) && result != NULL &&
         onestep_result_get_sampler (result) == ONESTEP_SAMPLER_TTS &&
         onestep_result_get_params (result)->steps == GPOINTER_TO_INT (data);
}

/* The Time Travel Sampler evaluates the UNet twice per step: the status still counts
 * steps, "step 2 of 4", not evaluations, "step 4 of 8". */
static void
test_status_counts_steps (void)
{
  GtkWidget *controls = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (window),
                                                                   ONESTEP_TYPE_WINDOW,
                                                                   "controls"));
  GObject *status = gtk_widget_get_template_child (GTK_WIDGET (window), ONESTEP_TYPE_WINDOW,
                                                   "status_label");
  GObject *sampler_row = gtk_widget_get_template_child (controls, ONESTEP_TYPE_CONTROLS,
                                                        "sampler_row");
  GObject *steps_spin = gtk_widget_get_template_child (controls, ONESTEP_TYPE_CONTROLS,
                                                       "steps_spin");
  g_autoptr(GPtrArray) statuses = g_ptr_array_new_with_free_func (g_free);
  guint n_counted = 0;
  gulong handler;

  handler = g_signal_connect (status, "notify::label", G_CALLBACK (on_status_changed), statuses);
  adw_combo_row_set_selected (ADW_COMBO_ROW (sampler_row), ONESTEP_SAMPLER_TTS);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (steps_spin), 4);
  g_assert_true (ui_test_wait_until (idle_with_tts_result, GINT_TO_POINTER (4)));
  g_signal_handler_disconnect (status, handler);

  for (guint i = 0; i < statuses->len; i++)
    {
      const char *text = g_ptr_array_index (statuses, i);
      int run_steps, step, of;

      if (sscanf (text, "Refining with %d steps: step %d of %d", &run_steps, &step, &of) == 3 ||
          (sscanf (text, "Generating: step %d of %d", &step, &of) == 2 && (run_steps = 1)))
        {
          g_test_message ("%s", text);
          g_assert_cmpint (of, ==, run_steps);
          g_assert_cmpint (step, >=, 1);
          g_assert_cmpint (step, <=, of);
          n_counted++;
        }
    }
  g_assert_cmpuint (n_counted, >, 0);
}

static guint
count_scroll_controllers (GtkWidget *widget)
{
  g_autoptr(GListModel) controllers = gtk_widget_observe_controllers (widget);
  guint n = 0;

  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr(GObject) controller = g_list_model_get_item (controllers, i);

      n += GTK_IS_EVENT_CONTROLLER_SCROLL (controller);
    }
  return n;
}

/* Counts the spin buttons under widget, checking that none takes the mouse wheel. */
static guint
check_spin_buttons_leave_wheel (GtkWidget *widget)
{
  guint n_spins = 0;

  if (GTK_IS_SPIN_BUTTON (widget))
    {
      g_assert_cmpuint (count_scroll_controllers (widget), ==, 0);
      n_spins++;
    }
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    n_spins += check_spin_buttons_leave_wheel (child);
  return n_spins;
}

/* The wheel scrolls the side panel even with the pointer over Seed, Width or Frames:
 * its spin buttons take no scroll events, the panel does. */
static void
test_wheel_scrolls_panel (void)
{
  GtkWidget *controls = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (window),
                                                                   ONESTEP_TYPE_WINDOW,
                                                                   "controls"));
  GtkWidget *panel = gtk_widget_get_ancestor (controls, GTK_TYPE_SCROLLED_WINDOW);

  g_assert_cmpuint (check_spin_buttons_leave_wheel (controls), >=, 8);
  g_assert_nonnull (panel);
  g_assert_cmpuint (count_scroll_controllers (panel), >, 0);
}

/* With a model but no image, a window offers to take one. */
static void
test_model_without_image (void)
{
  OnestepWindow *second = onestep_window_new (GTK_APPLICATION (app),
                                              onestep_application_get_engine (app));

  gtk_window_present (GTK_WINDOW (second));
  onestep_window_set_model (second, g_getenv ("ONESTEP_TEST_MODEL"));
  g_assert_true (ui_test_wait_until ((UiCondition)onestep_window_get_model_loaded, second));

  ui_test_wait_for_paint (GTK_WIDGET (second));
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (second), is_status_page_titled,
                                        "Drop an Image"));
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (second), is_button_for_action, "win.open"));
  ui_test_save_screenshot (GTK_WIDGET (second), "model-without-image.png");
  gtk_window_destroy (GTK_WINDOW (second));
}

static void
on_error_reported (OnestepWindow *win,
                   const char    *what_failed,
                   const char    *details,
                   char         **reported)
{
  g_free (*reported);
  *reported = g_strdup_printf ("%s: %s", what_failed, details);
}

static gboolean
is_set (gpointer data)
{
  return *(char **)data != NULL;
}

/* The test model is still loaded, saved and shown, and generates. */
static void
assert_working_model_kept (void)
{
  g_autofree char *saved = g_settings_get_string (settings, "model-path");
  OnestepControls *controls = ONESTEP_CONTROLS (window_child ("controls"));
  AdwComboRow *model_row = ADW_COMBO_ROW (controls_child ("model_row"));
  GtkStringObject *shown = adw_combo_row_get_selected_item (model_row);
  g_autoptr(OnestepParams) params = onestep_controls_get_params (controls);
  guint before = onestep_history_get_len (onestep_window_get_history (window));

  g_assert_true (onestep_window_get_model_loaded (window));
  g_assert_false (onestep_window_get_busy (window));
  g_assert_cmpstr (saved, ==, g_getenv ("ONESTEP_TEST_MODEL"));
  g_assert_cmpstr (params->model_path, ==, g_getenv ("ONESTEP_TEST_MODEL"));
  g_assert_nonnull (shown);
  g_assert_cmpstr (gtk_string_object_get_string (shown), ==, "model");

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (window), "win.generate", NULL));
  g_assert_true (ui_test_wait_until (idle_with_history, GUINT_TO_POINTER (before + 1)));
}

/* Bad input gives a message naming the problem, and the window goes on. */
static void
test_errors (void)
{
  g_autofree char *model_dir = g_path_get_dirname (g_getenv ("ONESTEP_TEST_MODEL"));
  g_autofree char *not_an_image = g_build_filename (g_getenv ("ONESTEP_TEST_MODEL"),
                                                    "model_index.json", NULL);
  g_autoptr(GFile) file = g_file_new_for_path (not_an_image);
  g_autofree char *missing_model = g_build_filename (model_dir, "no-such-model", NULL);
  g_autofree char *reported = NULL;
  OnestepResult *shown = onestep_window_get_current_result (window);
  gulong handler;

  handler = g_signal_connect (window, "error-reported", G_CALLBACK (on_error_reported), &reported);

  onestep_window_open_file (window, file);
  g_assert_true (ui_test_wait_until (is_set, &reported));
  g_test_message ("%s", reported);
  g_assert_nonnull (strstr (reported, "model_index.json"));
  g_assert_true (onestep_window_get_current_result (window) == shown);

  /* A model that does not load leaves the working one in place, and in the settings. */
  g_clear_pointer (&reported, g_free);
  onestep_window_set_model (window, missing_model);
  g_assert_true (ui_test_wait_until (is_set, &reported));
  g_test_message ("%s", reported);
  g_assert_nonnull (strstr (reported, "no-such-model"));
  assert_working_model_kept ();

  g_clear_pointer (&reported, g_free);
  onestep_window_set_model (window, model_dir);
  g_assert_true (ui_test_wait_until (is_set, &reported));
  g_test_message ("%s", reported);
  assert_working_model_kept ();

  g_signal_handler_disconnect (window, handler);
}

static gboolean
history_saved (gpointer data)
{
  return !onestep_history_get_saving (onestep_window_get_history (window));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  if (g_getenv ("DISPLAY") == NULL && g_getenv ("WAYLAND_DISPLAY") == NULL)
    {
      g_test_skip ("no display: run under xvfb-run");
      return 77;
    }

  export_dir = g_dir_make_tmp ("onestep-export-XXXXXX", &error);
  g_assert_no_error (error);
  /* The history keeps every clip there: a first run's empty history, each time. */
  data_dir = g_dir_make_tmp ("onestep-data-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("XDG_DATA_HOME", data_dir, TRUE);

  app = onestep_application_new ();
  g_application_set_flags (G_APPLICATION (app), G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);

  settings = g_settings_new (SCHEMA_ID);
  /* Refine once: the one-step clip, then two steps. */
  g_settings_set_int (settings, "default-steps", 2);

  g_application_activate (G_APPLICATION (app));
  window = ONESTEP_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (window);

  g_test_add_func ("/ui/empty-state", test_empty_state);
  g_test_add_func ("/ui/preferences", test_preferences);
  g_test_add_func ("/ui/wheel-scrolls-panel", test_wheel_scrolls_panel);
  g_test_add_func ("/ui/generate", test_generate);
  g_test_add_func ("/ui/stop-and-restore", test_stop_and_restore);
  g_test_add_func ("/ui/refine-once", test_refine_once);
  g_test_add_func ("/ui/progress-in-work", test_progress_in_work);
  g_test_add_func ("/ui/stopping", test_stopping);
  g_test_add_func ("/ui/toast-leaves-status", test_toast_leaves_status);
  g_test_add_func ("/ui/source-and-before-after", test_source_and_before_after);
  g_test_add_func ("/ui/compare", test_compare);
  g_test_add_func ("/ui/compare-stops", test_compare_stops);
  g_test_add_func ("/ui/export", test_export);
  g_test_add_func ("/ui/model-without-image", test_model_without_image);
  g_test_add_func ("/ui/export-name-clash", test_export_name_clash);
  g_test_add_func ("/ui/settings-match-cli", test_settings_match_cli);
  g_test_add_func ("/ui/same-clip-as-cli", test_same_clip_as_cli);
  g_test_add_func ("/ui/status-counts-steps", test_status_counts_steps);
  g_test_add_func ("/ui/errors", test_errors);
  status = g_test_run ();

  g_assert_true (ui_test_wait_until (history_saved, NULL));
  gtk_window_destroy (GTK_WINDOW (window));
  onestep_engine_shutdown (onestep_application_get_engine (app));
  onestep_engine_wait_for_workers ();
  g_object_unref (settings);
  g_rmdir (export_dir);
  ui_test_remove_tree (data_dir);

  return status;
}
