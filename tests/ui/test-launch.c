/* test-launch.c: starts the application as the README says and watches it
 * from outside, as a user would see it.
 *
 * Usage: test-launch SCREENSHOT_NAME COMMAND [ARGUMENT...]
 *
 * The command (e.g. `meson devenv -C BUILDDIR onestep`) runs in its own
 * process group with GSETTINGS_SCHEMA_DIR removed from its environment, so it
 * has to find the schema by itself. The test passes when a window titled
 * "Onestep" is mapped and the application is still running a moment later;
 * the window is then saved from the X server as a PNG screenshot in
 * ONESTEP_SCREENSHOT_DIR.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEADLINE_SECONDS 120
/* How long the application must stay up once its window is mapped. */
#define ALIVE_SECONDS 3

static char **command;
static const char *screenshot_name;

static char *
dup_window_title (Display *display,
                  Window   window)
{
  Atom utf8_string = XInternAtom (display, "UTF8_STRING", False);
  Atom net_wm_name = XInternAtom (display, "_NET_WM_NAME", False);
  Atom type;
  int format;
  unsigned long n_items;
  unsigned long bytes_after;
  unsigned char *data = NULL;
  char *title = NULL;

  if (XGetWindowProperty (display, window, net_wm_name, 0, 1024, False, utf8_string, &type,
                          &format, &n_items, &bytes_after, &data) == Success && data != NULL)
    title = g_strndup ((const char *)data, n_items);
  if (data != NULL)
    XFree (data);

  return title;
}

/* The mapped top-level window titled "Onestep", or None. */
static Window
find_onestep_window (Display *display)
{
  Window root;
  Window parent;
  Window *children = NULL;
  unsigned int n_children = 0;
  Window found = None;

  if (!XQueryTree (display, DefaultRootWindow (display), &root, &parent, &children, &n_children))
    return None;

  for (unsigned int i = 0; i < n_children && found == None; i++)
    {
      XWindowAttributes attributes;
      g_autofree char *title = NULL;

      if (!XGetWindowAttributes (display, children[i], &attributes) ||
          attributes.map_state != IsViewable)
        continue;

      title = dup_window_title (display, children[i]);
      if (g_strcmp0 (title, "Onestep") == 0)
        found = children[i];
    }

  if (children != NULL)
    XFree (children);
  return found;
}

static guint
channel_value (unsigned long pixel,
               unsigned long mask)
{
  unsigned long value = pixel & mask;
  guint bits = 0;

  while (mask != 0 && (mask & 1) == 0)
    {
      mask >>= 1;
      value >>= 1;
    }
  for (unsigned long m = mask; m != 0; m >>= 1)
    bits++;

  return bits == 0 ? 0 : (guint)(value * 255 / ((1ul << bits) - 1));
}

/* The window's pixels as the X server shows them. */
static GdkPixbuf *
capture_window (Display *display,
                Window   window)
{
  XWindowAttributes attributes;
  XImage *image;
  GdkPixbuf *pixbuf;
  guint8 *pixels;
  int rowstride;

  g_assert_true (XGetWindowAttributes (display, window, &attributes));
  image = XGetImage (display, window, 0, 0, attributes.width, attributes.height, AllPlanes,
                     ZPixmap);
  g_assert_nonnull (image);

  pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, attributes.width, attributes.height);
  pixels = gdk_pixbuf_get_pixels (pixbuf);
  rowstride = gdk_pixbuf_get_rowstride (pixbuf);
  for (int y = 0; y < attributes.height; y++)
    for (int x = 0; x < attributes.width; x++)
      {
        unsigned long pixel = XGetPixel (image, x, y);
        guint8 *out = pixels + (gsize)y * rowstride + (gsize)x * 3;

        out[0] = channel_value (pixel, image->red_mask);
        out[1] = channel_value (pixel, image->green_mask);
        out[2] = channel_value (pixel, image->blue_mask);
      }

  XDestroyImage (image);
  return pixbuf;
}

static guint
count_colors (GdkPixbuf *pixbuf)
{
  g_autoptr(GHashTable) colors = g_hash_table_new (NULL, NULL);
  const guint8 *pixels = gdk_pixbuf_read_pixels (pixbuf);
  int rowstride = gdk_pixbuf_get_rowstride (pixbuf);

  for (int y = 0; y < gdk_pixbuf_get_height (pixbuf); y++)
    for (int x = 0; x < gdk_pixbuf_get_width (pixbuf); x++)
      {
        const guint8 *p = pixels + (gsize)y * rowstride + (gsize)x * 3;

        g_hash_table_add (colors, GUINT_TO_POINTER (p[0] << 16 | p[1] << 8 | p[2]));
      }

  return g_hash_table_size (colors);
}

static void
save_screenshot (GdkPixbuf *pixbuf)
{
  const char *dir = g_getenv ("ONESTEP_SCREENSHOT_DIR");
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    return;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  path = g_build_filename (dir, screenshot_name, NULL);
  g_assert_true (gdk_pixbuf_save (pixbuf, path, "png", &error, NULL));
  g_assert_no_error (error);
  g_test_message ("screenshot: %s", path);
}

static void
own_process_group (gpointer user_data)
{
  setpgid (0, 0);
}

/* Whether the child has exited; its wait status in *status then. */
static gboolean
child_exited (GPid  pid,
              int  *status)
{
  return waitpid (pid, status, WNOHANG) == pid;
}

static void
test_launch (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkPixbuf) screenshot = NULL;
  g_auto(GStrv) env = g_get_environ ();
  gint64 deadline;
  Display *display;
  Window window = None;
  GPid pid;
  int status;

  env = g_environ_unsetenv (env, "GSETTINGS_SCHEMA_DIR");
  g_assert_true (g_spawn_async (NULL, command, env,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                own_process_group, NULL, &pid, &error));
  g_assert_no_error (error);

  display = XOpenDisplay (NULL);
  g_assert_nonnull (display);

  deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_USEC_PER_SEC;
  while ((window = find_onestep_window (display)) == None)
    {
      if (child_exited (pid, &status))
        g_error ("%s exited (wait status %d) before mapping a window", command[0], status);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (G_USEC_PER_SEC / 10);
    }

  g_usleep (ALIVE_SECONDS * G_USEC_PER_SEC);
  if (child_exited (pid, &status))
    g_error ("%s exited (wait status %d) after mapping its window", command[0], status);

  screenshot = capture_window (display, window);
  g_test_message ("window: %d × %d, %u colours", gdk_pixbuf_get_width (screenshot),
                  gdk_pixbuf_get_height (screenshot), count_colors (screenshot));
  /* A drawn window has text and antialiased edges, not a flat fill. */
  g_assert_cmpuint (count_colors (screenshot), >, 16);
  save_screenshot (screenshot);

  XCloseDisplay (display);
  kill (-pid, SIGTERM);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (argc < 3)
    {
      g_printerr ("Usage: %s SCREENSHOT_NAME COMMAND [ARGUMENT...]\n", argv[0]);
      return 2;
    }
  if (g_getenv ("DISPLAY") == NULL)
    {
      g_test_skip ("no X display: run under xvfb-run");
      return 77;
    }

  screenshot_name = argv[1];
  command = argv + 2;
  g_test_add_func ("/ui/launch", test_launch);

  return g_test_run ();
}
