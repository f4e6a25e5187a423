/* loopback-hub.c */
#include <string.h>

#include "loopback-hub.h"

typedef struct {
  char     *repository;
  char     *path;
  GBytes   *content;
  GBytes   *served;  /* what goes on the wire; differs from content when corrupted */
  char     *sha256;
  char     *git_sha1;
  gboolean  lfs;
} HubFile;

struct _LoopbackHub
{
  SoupServer *server;
  char       *url;
  GPtrArray  *files;
  GHashTable *gated;         /* repository -> token */
  gssize      cut_after;     /* -1: no cut planned */
  gboolean    cut_closes;
  GPtrArray  *stalled;       /* stolen connections kept open */
  gint64      last_range_start;
};

static void
hub_file_free (HubFile *file)
{
  g_free (file->repository);
  g_free (file->path);
  g_bytes_unref (file->content);
  g_bytes_unref (file->served);
  g_free (file->sha256);
  g_free (file->git_sha1);
  g_free (file);
}

char *
loopback_hub_sha256 (GBytes *content)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, content);
}

static char *
git_blob_sha1 (GBytes *content)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA1);
  g_autofree char *header = g_strdup_printf ("blob %" G_GSIZE_FORMAT, g_bytes_get_size (content));
  gsize size;
  const guchar *data = g_bytes_get_data (content, &size);

  g_checksum_update (checksum, (const guchar *) header, strlen (header) + 1);
  g_checksum_update (checksum, data, size);
  return g_strdup (g_checksum_get_string (checksum));
}

static HubFile *
find_by_repo_path (LoopbackHub *hub,
                   const char  *repository,
                   const char  *path)
{
  for (guint i = 0; i < hub->files->len; i++)
    {
      HubFile *file = g_ptr_array_index (hub->files, i);

      if (g_str_equal (file->repository, repository) && g_str_equal (file->path, path))
        return file;
    }
  return NULL;
}

static HubFile *
find_by_sha256 (LoopbackHub *hub,
                const char  *sha256)
{
  for (guint i = 0; i < hub->files->len; i++)
    {
      HubFile *file = g_ptr_array_index (hub->files, i);

      if (file->lfs && g_str_equal (file->sha256, sha256))
        return file;
    }
  return NULL;
}

/* Writes a response by hand on the stolen connection so that the body can be
 * cut short, which SoupServer itself never does. */
static void
cut_transfer (LoopbackHub       *hub,
              SoupServerMessage *msg,
              GBytes            *body)
{
  g_autoptr(GIOStream) stream = soup_server_message_steal_connection (msg);
  GOutputStream *output = g_io_stream_get_output_stream (stream);
  gsize size;
  const guint8 *data = g_bytes_get_data (body, &size);
  g_autofree char *head = g_strdup_printf ("HTTP/1.1 200 OK\r\n"
                                           "Content-Type: application/octet-stream\r\n"
                                           "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n", size);
  gsize n = MIN ((gsize) hub->cut_after, size);

  g_output_stream_write_all (output, head, strlen (head), NULL, NULL, NULL);
  g_output_stream_write_all (output, data, n, NULL, NULL, NULL);
  g_output_stream_flush (output, NULL, NULL);
  if (hub->cut_closes)
    g_io_stream_close (stream, NULL, NULL);
  else
    g_ptr_array_add (hub->stalled, g_steal_pointer (&stream));
  hub->cut_after = -1;
}

static void
serve_body (LoopbackHub       *hub,
            SoupServerMessage *msg,
            GBytes            *body,
            const char        *etag)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response_headers = soup_server_message_get_response_headers (msg);
  gboolean is_get = g_str_equal (soup_server_message_get_method (msg), SOUP_METHOD_GET);
  gsize size = g_bytes_get_size (body);
  SoupRange *ranges = NULL;
  int n_ranges = 0;

  soup_message_headers_replace (response_headers, "ETag", etag);
  if (soup_message_headers_get_ranges (request_headers, size, &ranges, &n_ranges) && n_ranges == 1)
    {
      goffset start = ranges[0].start;
      goffset end = ranges[0].end;
      g_autoptr(GBytes) slice = g_bytes_new_from_bytes (body, start, end - start + 1);

      if (is_get)
        hub->last_range_start = start;
      soup_message_headers_set_content_range (response_headers, start, end, size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      soup_message_body_append_bytes (soup_server_message_get_response_body (msg), slice);
    }
  else
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_body_append_bytes (soup_server_message_get_response_body (msg), body);
    }
  soup_message_headers_free_ranges (request_headers, ranges);
}

static gboolean
authorized (LoopbackHub       *hub,
            SoupServerMessage *msg,
            const char        *repository)
{
  const char *token = g_hash_table_lookup (hub->gated, repository);
  const char *header;
  g_autofree char *expected = NULL;

  if (token == NULL)
    return TRUE;
  header = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                         "Authorization");
  expected = g_strconcat ("Bearer ", token, NULL);
  return g_strcmp0 (header, expected) == 0;
}

/* /{owner}/{name}/resolve/{revision}/{path} */
static void
handle_resolve (LoopbackHub       *hub,
                SoupServerMessage *msg,
                const char        *request_path)
{
  g_auto(GStrv) parts = g_strsplit (request_path + 1, "/", 5);
  g_autofree char *repository = NULL;
  g_autofree char *etag = NULL;
  HubFile *file;

  if (g_strv_length (parts) != 5 || !g_str_equal (parts[2], "resolve"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  repository = g_strconcat (parts[0], "/", parts[1], NULL);
  if (!authorized (hub, msg, repository))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_UNAUTHORIZED, NULL);
      return;
    }
  if (!(file = find_by_repo_path (hub, repository, parts[4])))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }

  if (file->lfs)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
      g_autofree char *location = g_strconcat ("/cdn/", file->sha256, NULL);
      g_autofree char *size = g_strdup_printf ("%" G_GSIZE_FORMAT, g_bytes_get_size (file->content));

      etag = g_strdup_printf ("\"%s\"", file->sha256);
      soup_message_headers_replace (headers, "Location", location);
      soup_message_headers_replace (headers, "X-Linked-Etag", etag);
      soup_message_headers_replace (headers, "X-Linked-Size", size);
      soup_server_message_set_status (msg, SOUP_STATUS_FOUND, NULL);
      return;
    }
  etag = g_strdup_printf ("\"%s\"", file->git_sha1);
  serve_body (hub, msg, file->served, etag);
}

static void
handle_request (SoupServer        *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  LoopbackHub *hub = user_data;

  if (g_str_has_prefix (path, "/cdn/"))
    {
      HubFile *file = find_by_sha256 (hub, path + strlen ("/cdn/"));
      g_autofree char *etag = NULL;

      if (file == NULL)
        {
          soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
          return;
        }
      if (g_str_equal (soup_server_message_get_method (msg), SOUP_METHOD_GET))
        {
          hub->last_range_start = -1;
          if (hub->cut_after >= 0)
            {
              cut_transfer (hub, msg, file->served);
              return;
            }
        }
      /* Storage has its own ETag, as the hub's CDN does. */
      etag = g_strdup_printf ("\"cdn-%s\"", file->sha256);
      serve_body (hub, msg, file->served, etag);
      return;
    }
  handle_resolve (hub, msg, path);
}

LoopbackHub *
loopback_hub_new (void)
{
  LoopbackHub *hub = g_new0 (LoopbackHub, 1);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GError) error = NULL;
  GSList *uris;

  hub->server = soup_server_new ("server-header", "loopback-hub", NULL);
  hub->files = g_ptr_array_new_with_free_func ((GDestroyNotify) hub_file_free);
  hub->gated = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  hub->stalled = g_ptr_array_new_with_free_func (g_object_unref);
  hub->cut_after = -1;
  hub->last_range_start = -1;

  soup_server_add_handler (hub->server, NULL, handle_request, hub, NULL);
  if (!soup_server_listen (hub->server, address, 0, &error))
    g_error ("loopback hub: cannot listen on 127.0.0.1: %s", error->message);

  uris = soup_server_get_uris (hub->server);
  hub->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return hub;
}

void
loopback_hub_free (LoopbackHub *hub)
{
  for (guint i = 0; i < hub->stalled->len; i++)
    g_io_stream_close (g_ptr_array_index (hub->stalled, i), NULL, NULL);
  g_ptr_array_unref (hub->stalled);
  soup_server_disconnect (hub->server);
  g_object_unref (hub->server);
  g_ptr_array_unref (hub->files);
  g_hash_table_unref (hub->gated);
  g_free (hub->url);
  g_free (hub);
}

const char *
loopback_hub_get_url (LoopbackHub *hub)
{
  return hub->url;
}

void
loopback_hub_add_file (LoopbackHub *hub,
                       const char  *repository,
                       const char  *path,
                       GBytes      *content,
                       gboolean     lfs)
{
  HubFile *file = g_new0 (HubFile, 1);

  file->repository = g_strdup (repository);
  file->path = g_strdup (path);
  file->content = g_bytes_ref (content);
  file->served = g_bytes_ref (content);
  file->sha256 = loopback_hub_sha256 (content);
  file->git_sha1 = git_blob_sha1 (content);
  file->lfs = lfs;
  g_ptr_array_add (hub->files, file);
}

void
loopback_hub_set_gated (LoopbackHub *hub,
                        const char  *repository,
                        const char  *token)
{
  g_hash_table_replace (hub->gated, g_strdup (repository), g_strdup (token));
}

void
loopback_hub_corrupt_file (LoopbackHub *hub,
                           const char  *repository,
                           const char  *path)
{
  HubFile *file = find_by_repo_path (hub, repository, path);
  gsize size;
  guint8 *data;

  g_assert_nonnull (file);
  data = g_bytes_unref_to_data (g_bytes_ref (file->content), &size);
  data[size / 2] ^= 0xff;
  g_bytes_unref (file->served);
  file->served = g_bytes_new_take (data, size);
}

void
loopback_hub_break_next_transfer (LoopbackHub *hub,
                                  gsize        n)
{
  hub->cut_after = (gssize) n;
  hub->cut_closes = TRUE;
}

void
loopback_hub_stall_next_transfer (LoopbackHub *hub,
                                  gsize        n)
{
  hub->cut_after = (gssize) n;
  hub->cut_closes = FALSE;
}

gint64
loopback_hub_get_last_range_start (LoopbackHub *hub)
{
  return hub->last_range_start;
}
