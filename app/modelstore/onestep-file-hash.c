/* onestep-file-hash.c */
#include <string.h>

#include "onestep-file-hash.h"

static gboolean
is_hex (const char *text,
        gsize       length)
{
  if (strlen (text) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isxdigit (text[i]))
      return FALSE;
  return TRUE;
}

char *
_onestep_hash_from_etag (const char *etag)
{
  g_autofree char *value = NULL;
  gsize length;

  if (etag == NULL)
    return NULL;
  if (g_str_has_prefix (etag, "W/"))
    etag += 2;
  value = g_strdup (etag);
  length = strlen (value);
  if (length >= 2 && value[0] == '"' && value[length - 1] == '"')
    {
      value[length - 1] = '\0';
      memmove (value, value + 1, length - 1);
    }
  if (!is_hex (value, 64) && !is_hex (value, 40))
    return NULL;
  return g_ascii_strdown (value, -1);
}

gboolean
_onestep_file_has_hash (const char    *path,
                        const char    *expected,
                        char         **actual,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileInputStream) input = NULL;
  g_autoptr(GChecksum) checksum = NULL;
  g_autofree guint8 *buffer = NULL;
  gboolean git_blob = strlen (expected) == 40;
  gssize n;

  g_return_val_if_fail (actual != NULL, FALSE);

  if (!(input = g_file_read (file, cancellable, error)))
    return FALSE;

  checksum = g_checksum_new (git_blob ? G_CHECKSUM_SHA1 : G_CHECKSUM_SHA256);
  if (git_blob)
    {
      /* git hashes "blob <size>\0" followed by the content */
      g_autoptr(GFileInfo) info = g_file_input_stream_query_info (input, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                                  cancellable, error);
      g_autofree char *header = NULL;

      if (info == NULL)
        return FALSE;
      header = g_strdup_printf ("blob %" G_GUINT64_FORMAT, (guint64) g_file_info_get_size (info));
      g_checksum_update (checksum, (const guchar *) header, strlen (header) + 1);
    }

  buffer = g_malloc (1 << 20);
  while ((n = g_input_stream_read (G_INPUT_STREAM (input), buffer, 1 << 20, cancellable, error)) > 0)
    g_checksum_update (checksum, buffer, n);
  if (n < 0)
    return FALSE;

  *actual = g_strdup (g_checksum_get_string (checksum));
  return g_ascii_strcasecmp (*actual, expected) == 0;
}
