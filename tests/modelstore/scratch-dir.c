/* scratch-dir.c */
#include <glib/gstdio.h>

#include "scratch-dir.h"

void
scratch_dir_remove (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_unlink (path);
      return;
    }
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      scratch_dir_remove (child);
    }
  g_dir_close (dir);
  g_rmdir (path);
}
