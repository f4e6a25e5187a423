/* export-gif-comment.c: FFmpeg's GIF muxer writes no metadata, so the settings go into a
 * GIF89a comment extension (0x21 0xFE, sub-blocks of at most 255 bytes, then 0x00),
 * placed just before the trailer byte 0x3B. */
#include "export-private.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define GIF_TRAILER 0x3b

static gboolean
set_errno_error (GError    **error,
                 int         saved_errno,
                 const char *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               _("Could not add the settings comment to “%s”: %s"),
               path, g_strerror (saved_errno));
  return FALSE;
}

gboolean
_onestep_export_gif_add_comment (const char  *path,
                                 const char  *text,
                                 GError     **error)
{
  FILE *file = g_fopen (path, "r+b");
  gsize length = strlen (text);
  gboolean ok;
  int saved_errno;

  if (file == NULL)
    return set_errno_error (error, errno, path);

  if (fseek (file, -1, SEEK_END) != 0 || fgetc (file) != GIF_TRAILER)
    {
      fclose (file);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("Could not add the settings comment to “%s”: the GIF has no trailer"), path);
      return FALSE;
    }

  ok = fseek (file, -1, SEEK_END) == 0
       && fputc (0x21, file) != EOF
       && fputc (0xfe, file) != EOF;
  for (gsize offset = 0; ok && offset < length; offset += 255)
    {
      gsize block = MIN (length - offset, 255);

      ok = fputc ((int) block, file) != EOF
           && fwrite (text + offset, 1, block, file) == block;
    }
  ok = ok && fputc (0x00, file) != EOF && fputc (GIF_TRAILER, file) != EOF;
  saved_errno = errno;

  if (fclose (file) != 0 && ok)
    {
      ok = FALSE;
      saved_errno = errno;
    }
  return ok ? TRUE : set_errno_error (error, saved_errno, path);
}
