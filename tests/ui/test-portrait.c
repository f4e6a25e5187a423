/* test-portrait.c: a portrait photo gets portrait frames, and the user drags the
 * crop frame over it; the app cuts the image as onestep-cli does with
 * --crop-position.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

#include "onestep-crop-view.h"
#include "ui-test-util.h"

/* Taller than the test model's portrait frames (32 x 48), so some is cut. */
#define PHOTO_WIDTH 40
#define PHOTO_HEIGHT 100

static char *work_dir;

/* A portrait PNG: red at the top, blue at the bottom, so that where it is cut shows. */
static char *
write_portrait_photo (void)
{
  g_autoptr(GdkPixbuf) photo = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, PHOTO_WIDTH, PHOTO_HEIGHT);
  g_autofree char *path = g_build_filename (work_dir, "portrait.png", NULL);
  g_autoptr(GError) error = NULL;

  for (int y = 0; y < PHOTO_HEIGHT; y++)
    for (int x = 0; x < PHOTO_WIDTH; x++)
      {
        guint8 *pixel = gdk_pixbuf_get_pixels (photo) + y * gdk_pixbuf_get_rowstride (photo) + 3 * x;

        pixel[0] = 255 - y * 255 / PHOTO_HEIGHT;
        pixel[1] = (guint8)(x * 6);
        pixel[2] = y * 255 / PHOTO_HEIGHT;
      }
  g_assert_true (gdk_pixbuf_save (photo, path, "png", &error, NULL));
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

static const char *
selected_size (void)
{
  AdwComboRow *size_row = ADW_COMBO_ROW (ui_test_get_controls_child ("size_row"));

  return gtk_string_object_get_string (adw_combo_row_get_selected_item (size_row));
}

/* The first frame of the clip onestep-cli makes with the settings of result. */
static void
assert_cli_makes_the_same_clip (OnestepResult *result,
                                const char    *photo)
{
  g_autofree char *cli_folder = g_build_filename (work_dir, "from-cli", NULL);
  g_autofree char *cli_frame = g_build_filename (cli_folder, "frame-0001.png", NULL);
  g_autoptr(GdkPixbuf) cli_pixels = NULL;
  g_autoptr(GError) error = NULL;
  int width = onestep_result_get_width (result);
  int height = onestep_result_get_height (result);

  ui_test_generate_with_cli (result, photo, cli_folder);
  cli_pixels = gdk_pixbuf_new_from_file (cli_frame, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_width (cli_pixels), ==, width);
  g_assert_cmpint (gdk_pixbuf_get_height (cli_pixels), ==, height);
  g_assert_cmpint (gdk_pixbuf_get_rowstride (cli_pixels), ==, width * 3);
  g_assert_cmpmem (gdk_pixbuf_read_pixels (cli_pixels), (gsize)width * height * 3,
                   g_bytes_get_data (onestep_result_get_frames (result), NULL), (gsize)width * height * 3);
  ui_test_remove_tree (cli_folder);
}

/* What the crop view's drag gesture reports for a drag from (x, y) by dy. */
static void
drag_crop_view (GtkWidget *crop_view,
                double     x,
                double     y,
                double     dy)
{
  g_autoptr(GListModel) controllers = gtk_widget_observe_controllers (crop_view);

  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr(GObject) controller = g_list_model_get_item (controllers, i);

      if (GTK_IS_GESTURE_DRAG (controller))
        {
          g_signal_emit_by_name (controller, "drag-begin", x, y);
          g_signal_emit_by_name (controller, "drag-update", 0.0, dy);
          g_signal_emit_by_name (controller, "drag-end", 0.0, dy);
          return;
        }
    }
  g_assert_not_reached ();
}

static void
test_portrait (void)
{
  g_autofree char *photo = NULL;
  g_autoptr(GSettings) settings = NULL;
  g_autofree char *centred_frames = NULL;
  g_autofree char *top_frames = NULL;
  OnestepResult *result;
  GObject *crop_row;
  GObject *crop_scale;
  GObject *crop_view_row;
  GObject *crop_view;
  graphene_rect_t frame;

  if (!ui_test_have_display ())
    return;

  settings = g_settings_new (SCHEMA_ID);
  g_settings_set_int (settings, "default-steps", 2);
  ui_test_start_app ();
  ui_test_load_model ();
  photo = write_portrait_photo ();

  /* Portrait frames for a portrait photo, not a silent landscape crop. */
  result = ui_test_open_and_wait (photo);
  g_test_message ("size offered: %s", selected_size ());
  g_assert_true (g_str_has_prefix (selected_size (), "Portrait (32 × 48)"));
  g_assert_cmpint (onestep_result_get_width (result), ==, 32);
  g_assert_cmpint (onestep_result_get_height (result), ==, 48);
  assert_cli_makes_the_same_clip (result, photo);
  centred_frames = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, onestep_result_get_frames (result));

  /* 40 x 100 is taller than 2:3: the crop moves from top to bottom. */
  crop_row = ui_test_get_controls_child ("crop_row");
  crop_scale = ui_test_get_controls_child ("crop_scale");
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (crop_row)));
  g_assert_cmpstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (crop_row)), ==,
                   "From the top edge to the bottom edge");
  g_assert_cmpfloat (gtk_range_get_value (GTK_RANGE (crop_scale)), ==, 0.5);

  /* Dragging the frame in the crop view up to the top makes a new clip, cut as
   * onestep-cli cuts it. */
  crop_view_row = ui_test_get_controls_child ("crop_view_row");
  crop_view = ui_test_get_controls_child ("crop_view");
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (crop_view_row)));
  ui_test_wait_for_paint (GTK_WIDGET (crop_view));
  frame = onestep_crop_view_get_frame_rect (ONESTEP_CROP_VIEW (crop_view));
  g_assert_cmpfloat (frame.size.height, >, 0);
  drag_crop_view (GTK_WIDGET (crop_view), frame.origin.x + frame.size.width / 2,
                  frame.origin.y + frame.size.height / 2, -frame.size.height);
  g_assert_cmpfloat (gtk_range_get_value (GTK_RANGE (crop_scale)), ==, 0.0);
  g_assert_cmpfloat (onestep_crop_view_get_frame_rect (ONESTEP_CROP_VIEW (crop_view)).origin.y, <,
                     frame.origin.y);
  result = ui_test_wait_for_new_result (result);
  g_assert_cmpfloat (onestep_result_get_params (result)->crop_position, ==, 0.0);
  top_frames = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, onestep_result_get_frames (result));
  g_assert_cmpstr (top_frames, !=, centred_frames);
  assert_cli_makes_the_same_clip (result, photo);
  ui_test_wait_for_paint (GTK_WIDGET (ui_test_get_window ()));
  ui_test_save_screenshot (GTK_WIDGET (ui_test_get_window ()), "portrait-crop.png");
  ui_test_wait_for_paint (GTK_WIDGET (crop_view_row));
  ui_test_save_screenshot (GTK_WIDGET (crop_view_row), "portrait-crop-view.png");

  /* A landscape image afterwards gets landscape frames again, centred, with no crop
   * to move when its shape is the frame's. */
  result = ui_test_open_and_wait (g_getenv ("ONESTEP_TEST_IMAGE"));
  g_assert_true (g_str_has_prefix (selected_size (), "Landscape (48 × 32)"));
  g_assert_cmpint (onestep_result_get_width (result), ==, 48);
  g_assert_cmpfloat (onestep_result_get_params (result)->crop_position, ==, 0.5);
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (crop_row)));

  ui_test_stop_app ();
  g_assert_cmpint (g_unlink (photo), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  work_dir = g_dir_make_tmp ("onestep-portrait-XXXXXX", &error);
  g_assert_no_error (error);
  /* History entries of this run stay in this folder. */
  g_setenv ("XDG_DATA_HOME", work_dir, TRUE);

  g_test_add_func ("/input/portrait", test_portrait);
  status = g_test_run ();

  ui_test_remove_tree (work_dir);
  g_free (work_dir);
  return status;
}
