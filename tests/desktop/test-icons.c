/* test-icons.c: the app icon and its symbolic variant render at their sizes and are
 * not blank; skipped where gdk-pixbuf has no SVG loader. */
#include <gdk-pixbuf/gdk-pixbuf.h>

static gboolean
svg_loader_available (void)
{
  g_autoptr(GSList) formats = gdk_pixbuf_get_formats ();

  for (GSList *l = formats; l != NULL; l = l->next)
    {
      g_autofree char *name = gdk_pixbuf_format_get_name (l->data);

      if (g_str_equal (name, "svg"))
        return TRUE;
    }
  return FALSE;
}

/* Share of pixels that are not fully transparent. */
static double
coverage (GdkPixbuf *pixbuf)
{
  const guint8 *pixels = gdk_pixbuf_read_pixels (pixbuf);
  int width = gdk_pixbuf_get_width (pixbuf);
  int height = gdk_pixbuf_get_height (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  int channels = gdk_pixbuf_get_n_channels (pixbuf);
  int covered = 0;

  g_assert_true (gdk_pixbuf_get_has_alpha (pixbuf));
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      covered += pixels[y * stride + x * channels + 3] != 0;
  return (double) covered / (width * height);
}

static void
test_icon (gconstpointer data)
{
  const char *file = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  int size = g_str_has_suffix (file, "-symbolic.svg") ? 16 : 128;
  double covered;

  if (!svg_loader_available ())
    {
      g_test_skip ("gdk-pixbuf has no SVG loader");
      return;
    }
  pixbuf = gdk_pixbuf_new_from_file_at_size (file, size, size, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_width (pixbuf), ==, size);
  g_assert_cmpint (gdk_pixbuf_get_height (pixbuf), ==, size);
  covered = coverage (pixbuf);
  g_test_message ("%s: %.0f%% covered", file, covered * 100);
  g_assert_cmpfloat (covered, >, 0.3);
  g_assert_cmpfloat (covered, <, 0.95);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  for (int i = 1; i < argc; i++)
    {
      g_autofree char *path = g_strdup_printf ("/icons/%d", i);

      g_test_add_data_func (path, argv[i], test_icon);
    }
  return g_test_run ();
}
