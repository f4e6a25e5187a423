/* ui-test-util.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

#include "onestep-controls.h"
#include "ui-test-util.h"

/* Generous: the tiny model takes well under a second per clip on one core. */
#define DEADLINE_SECONDS 300

static OnestepApplication *app;
static OnestepWindow *window;

gboolean
ui_test_have_display (void)
{
  if (g_getenv ("DISPLAY") != NULL || g_getenv ("WAYLAND_DISPLAY") != NULL)
    return TRUE;

  g_test_skip ("no display: run under xvfb-run");
  return FALSE;
}

OnestepWindow *
ui_test_start_app (void)
{
  g_autoptr(GError) error = NULL;

  app = onestep_application_new ();
  g_application_set_flags (G_APPLICATION (app), G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);

  g_application_activate (G_APPLICATION (app));
  window = ONESTEP_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (window);
  return window;
}

static gboolean
history_saved (gpointer data)
{
  return !onestep_history_get_saving (onestep_window_get_history (window));
}

/* Once the clips are on disk, so that the test can remove its data folder. */
void
ui_test_stop_app (void)
{
  g_assert_true (ui_test_wait_until (history_saved, NULL));
  gtk_window_destroy (GTK_WINDOW (window));
  window = NULL;
  onestep_engine_shutdown (onestep_application_get_engine (app));
  onestep_engine_wait_for_workers ();
  g_clear_object (&app);
}

OnestepWindow *
ui_test_get_window (void)
{
  return window;
}

static gboolean
keep_waking (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
ui_test_wait_until (UiCondition condition,
                    gpointer    data)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_USEC_PER_SEC;
  guint wake_id = g_timeout_add (20, keep_waking, NULL);
  gboolean met;

  while (!(met = condition (data)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);

  g_source_remove (wake_id);
  return met;
}

static void
on_after_paint (GdkFrameClock *clock,
                gboolean      *painted)
{
  *painted = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *)data;
}

static gboolean
transition_running (GtkWidget *widget)
{
  if (GTK_IS_STACK (widget) && gtk_stack_get_transition_running (GTK_STACK (widget)))
    return TRUE;
  if (ADW_IS_SQUEEZER (widget) && adw_squeezer_get_transition_running (ADW_SQUEEZER (widget)))
    return TRUE;

  for (GtkWidget *child = gtk_widget_get_first_child (widget); child;
       child = gtk_widget_get_next_sibling (child))
    if (transition_running (child))
      return TRUE;

  return FALSE;
}

static gboolean
transitions_done (gpointer widget)
{
  return !transition_running (widget);
}

/* Waits until the widget's window has painted a frame since now, after any page
 * transition: screenshots show where a change leads, not a crossfade. */
void
ui_test_wait_for_paint (GtkWidget *widget)
{
  gboolean painted = FALSE;
  GdkFrameClock *clock;
  gulong handler;

  g_assert_true (ui_test_wait_until ((UiCondition)gtk_widget_get_mapped, widget));
  g_assert_true (ui_test_wait_until (transitions_done, widget));
  clock = gtk_widget_get_frame_clock (widget);
  handler = g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), &painted);
  gtk_widget_queue_draw (widget);
  g_assert_true (ui_test_wait_until (is_true, &painted));
  g_signal_handler_disconnect (clock, handler);
}

GdkTexture *
ui_test_render_widget (GtkWidget *widget)
{
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  g_autoptr(GskRenderNode) node = NULL;
  GskRenderer *renderer;

  g_assert_cmpint (width, >, 0);
  g_assert_cmpint (height, >, 0);

  gdk_paintable_snapshot (paintable, snapshot, width, height);
  node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));

  return gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, width, height));
}

void
ui_test_save_screenshot (GtkWidget  *widget,
                         const char *name)
{
  const char *dir = g_getenv ("ONESTEP_SCREENSHOT_DIR");
  g_autoptr(GdkTexture) texture = NULL;
  g_autofree char *path = NULL;

  if (dir == NULL)
    return;

  texture = ui_test_render_widget (widget);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s", path);
}

GtkWidget *
ui_test_find_mapped_widget (GtkWidget         *root,
                            UiWidgetPredicate  predicate,
                            gconstpointer      data)
{
  if (!gtk_widget_get_mapped (root))
    return NULL;
  if (predicate (root, data))
    return root;

  for (GtkWidget *child = gtk_widget_get_first_child (root); child;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found = ui_test_find_mapped_widget (child, predicate, data);

      if (found != NULL)
        return found;
    }

  return NULL;
}

gboolean
ui_test_is_button_labelled (GtkWidget     *widget,
                            gconstpointer  label)
{
  return GTK_IS_BUTTON (widget) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (widget)), label) == 0;
}

GtkWindow *
ui_test_find_window (GType type)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (GList *l = toplevels; l; l = l->next)
    if (G_TYPE_CHECK_INSTANCE_TYPE (l->data, type))
      return l->data;
  return NULL;
}

/* A widget of the window's settings panel, by its id in onestep-controls.ui. */
GObject *
ui_test_get_controls_child (const char *name)
{
  GtkWidget *controls = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (window), ONESTEP_TYPE_WINDOW,
                                                                   "controls"));

  return gtk_widget_get_template_child (controls, ONESTEP_TYPE_CONTROLS, name);
}

static gboolean
model_loaded (gpointer data)
{
  return onestep_window_get_model_loaded (window);
}

void
ui_test_load_model (void)
{
  onestep_window_set_model (window, g_getenv ("ONESTEP_TEST_MODEL"));
  g_assert_true (ui_test_wait_until (model_loaded, NULL));
}

static gboolean
idle_with_new_result (gpointer previous)
{
  OnestepResult *current = onestep_window_get_current_result (window);

  return !onestep_window_get_busy (window) && current != NULL && current != previous;
}

OnestepResult *
ui_test_wait_for_new_result (OnestepResult *previous)
{
  g_assert_true (ui_test_wait_until (idle_with_new_result, previous));
  return onestep_window_get_current_result (window);
}

OnestepResult *
ui_test_open_and_wait (const char *image_path)
{
  g_autoptr(GFile) file = g_file_new_for_path (image_path);
  OnestepResult *previous = onestep_window_get_current_result (window);

  onestep_window_open_file (window, file);
  return ui_test_wait_for_new_result (previous);
}

void
ui_test_generate_with_cli (OnestepResult *result,
                           const char    *image,
                           const char    *output)
{
  const OnestepParams *params = onestep_result_get_params (result);
  g_autofree char *seed = g_strdup_printf ("%u", params->seed);
  g_autofree char *steps = g_strdup_printf ("%d", params->steps);
  g_autofree char *frames = g_strdup_printf ("%d", params->frames);
  g_autofree char *width = g_strdup_printf ("%d", params->width);
  g_autofree char *height = g_strdup_printf ("%d", params->height);
  g_autofree char *fps = g_strdup_printf ("%d", params->fps);
  g_autofree char *motion = g_strdup_printf ("%d", params->motion_bucket_id);
  char noise[G_ASCII_DTOSTR_BUF_SIZE];
  char crop[G_ASCII_DTOSTR_BUF_SIZE];
  const char *argv[] = {
    g_getenv ("ONESTEP_CLI"), "generate", "--model", params->model_path, "--output", output,
    "--seed", seed, "--steps", steps, "--frames", frames, "--width", width, "--height", height,
    "--fps", fps, "--motion-bucket", motion, "--noise-aug",
    g_ascii_dtostr (noise, sizeof noise, params->noise_aug_strength),
    "--crop-position", g_ascii_dtostr (crop, sizeof crop, params->crop_position),
    "--sampler", onestep_sampler_name (onestep_result_get_sampler (result)), image, NULL
  };
  g_autoptr(GError) error = NULL;
  int status;

  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                               NULL, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  g_assert_no_error (error);
}

/* Removes a folder and everything under it. */
void
ui_test_remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        ui_test_remove_tree (child);
      else
        g_assert_cmpint (g_unlink (child), ==, 0);
    }
  g_assert_cmpint (g_rmdir (path), ==, 0);
}
