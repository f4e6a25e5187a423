/* test-webp.c: a WebP image opens like a PNG, where gdk-pixbuf has a WebP loader
 * (webp-pixbuf-loader); exits 77, skipped, where it has none.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <stdlib.h>

#include "onestep-image.h"
#include "ui-test-util.h"

/* Lossy, so colours are compared within this. */
#define COLOUR_TOLERANCE 24

static gboolean
have_webp_loader (void)
{
  g_autoptr(GSList) formats = gdk_pixbuf_get_formats ();

  for (GSList *l = formats; l != NULL; l = l->next)
    if (g_str_equal (gdk_pixbuf_format_get_name (l->data), "webp"))
      return TRUE;
  return FALSE;
}

static void
assert_colour_near (const guint8 *pixel,
                    int           red,
                    int           green,
                    int           blue)
{
  g_assert_cmpint (abs (pixel[0] - red), <=, COLOUR_TOLERANCE);
  g_assert_cmpint (abs (pixel[1] - green), <=, COLOUR_TOLERANCE);
  g_assert_cmpint (abs (pixel[2] - blue), <=, COLOUR_TOLERANCE);
}

/* tests/data/images/gradient-24x40.webp: red rising to the right (10 per column),
 * green downwards (6 per row), blue 128. */
static void
test_open_webp (void)
{
  const char *path = g_getenv ("ONESTEP_TEST_WEBP");
  g_autoptr(GSettings) settings = NULL;
  g_autoptr(GBytes) rgb = NULL;
  OnestepResult *result;
  GdkTexture *source;
  const guint8 *pixels;

  if (!ui_test_have_display ())
    return;

  settings = g_settings_new (SCHEMA_ID);
  g_settings_set_int (settings, "default-steps", 1);
  ui_test_start_app ();
  ui_test_load_model ();

  result = ui_test_open_and_wait (path);
  source = onestep_result_get_source (result);
  g_assert_cmpint (gdk_texture_get_width (source), ==, 24);
  g_assert_cmpint (gdk_texture_get_height (source), ==, 40);
  rgb = onestep_image_rgb_from_texture (source);
  pixels = g_bytes_get_data (rgb, NULL);
  assert_colour_near (pixels, 0, 0, 128);
  assert_colour_near (pixels + (39 * 24 + 23) * 3, 230, 234, 128);
  g_assert_cmpint (onestep_result_get_n_frames (result), >, 0);

  ui_test_wait_for_paint (GTK_WIDGET (ui_test_get_window ()));
  ui_test_save_screenshot (GTK_WIDGET (ui_test_get_window ()), "webp-opened.png");
  ui_test_stop_app ();
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data_dir = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  if (!have_webp_loader ())
    {
      g_printerr ("gdk-pixbuf has no WebP loader (install webp-pixbuf-loader): skipped\n");
      return 77;
    }

  data_dir = g_dir_make_tmp ("onestep-webp-XXXXXX", &error);
  g_assert_no_error (error);
  /* History entries of this run stay in this folder. */
  g_setenv ("XDG_DATA_HOME", data_dir, TRUE);

  g_test_add_func ("/input/webp", test_open_webp);
  status = g_test_run ();

  ui_test_remove_tree (data_dir);
  return status;
}
