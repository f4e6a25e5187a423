/* onestep-cli-frames.c: a folder of numbered PNG frames, written atomically. */
#include <errno.h>
#include <glib/gstdio.h>

#include "onestep-cli.h"

static void
remove_partial_folder (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (dir);
}

gboolean
onestep_cli_write_png_folder (const char    *out,
                              const guint8  *rgb,
                              int            frames,
                              int            width,
                              int            height,
                              GError       **error)
{
  g_autofree char *parent = g_path_get_dirname (out);
  g_autofree char *base = g_path_get_basename (out);
  g_autofree char *template = g_strdup_printf ("%s/.%s.partial-XXXXXX", parent, base);
  size_t frame_bytes = (size_t) width * height * 3;

  if (g_file_test (out, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                   "output %s already exists; choose a new name", out);
      return FALSE;
    }
  if (g_mkdtemp (template) == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot create a folder next to %s: %s", out, g_strerror (saved_errno));
      return FALSE;
    }

  for (int f = 0; f < frames; f++)
    {
      g_autoptr(GdkPixbuf) frame = gdk_pixbuf_new_from_data (rgb + f * frame_bytes,
                                                             GDK_COLORSPACE_RGB, FALSE, 8,
                                                             width, height, width * 3,
                                                             NULL, NULL);
      g_autofree char *name = g_strdup_printf ("frame-%04d.png", f + 1);
      g_autofree char *path = g_build_filename (template, name, NULL);

      if (!gdk_pixbuf_save (frame, path, "png", error, NULL))
        {
          remove_partial_folder (template);
          return FALSE;
        }
    }

  if (g_rename (template, out) != 0)
    {
      int saved_errno = errno;
      remove_partial_folder (template);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot move the frames to %s: %s", out, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}
