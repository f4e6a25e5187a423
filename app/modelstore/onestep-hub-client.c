/* onestep-hub-client.c */
#include "onestep-hub-client.h"
#include "onestep-file-hash.h"
#include "onestep-modelstore-error.h"

#define MAX_REDIRECTS 10

SoupSession *
_onestep_hub_session_new (void)
{
  return soup_session_new_with_options ("user-agent", "Onestep/" ONESTEP_VERSION " libsoup/3",
                                        NULL);
}

void
_onestep_hub_file_info_clear (OnestepHubFileInfo *info)
{
  g_clear_pointer (&info->hash, g_free);
  info->size = 0;
}

static char *
host_of (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);

  return uri ? g_strdup_printf ("%s:%d", g_uri_get_host (uri), g_uri_get_port (uri)) : NULL;
}

static void
set_network_error (GError                  **error,
                   GError                   *cause,
                   const OnestepHubRequest  *request)
{
  g_autofree char *host = host_of (request->url);

  if (g_error_matches (cause, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_propagate_error (error, g_error_copy (cause));
      return;
    }
  g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_NETWORK,
               "Could not reach %s to fetch %s: %s. Check the internet connection and try again.",
               host ? host : request->url, request->description, cause->message);
}

static void
set_http_error (GError                  **error,
                SoupMessage              *message,
                const OnestepHubRequest  *request)
{
  guint status = soup_message_get_status (message);

  if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN)
    {
      if (request->token == NULL)
        g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_GATED,
                     "The hub refused %s (HTTP %u): this model is gated. Accept the licence on "
                     "the model page (%s) while logged in, then add a Hugging Face access token.",
                     request->description, status, request->page_url);
      else
        g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_GATED,
                     "The hub refused %s (HTTP %u) even with the access token: check that the "
                     "token is valid and that its account accepted the licence on the model "
                     "page (%s).",
                     request->description, status, request->page_url);
    }
  else if (status == SOUP_STATUS_NOT_FOUND)
    g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_NOT_FOUND,
                 "%s was not found on the hub (HTTP 404): the repository, revision or file "
                 "may have been renamed or removed (%s).",
                 request->description, request->url);
  else
    g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_HTTP,
                 "The hub answered HTTP %u (%s) for %s.", status,
                 soup_message_get_reason_phrase (message), request->description);
}

/* Sends one request, following redirects by hand so that the token goes only
 * to the hub's own host, never to the storage it redirects to. */
static GInputStream *
send_following_redirects (SoupSession              *session,
                          const OnestepHubRequest  *request,
                          const char               *method,
                          guint64                   offset,
                          gboolean                  stop_at_linked_etag,
                          SoupMessage             **message_out,
                          GCancellable             *cancellable,
                          GError                  **error)
{
  g_autofree char *hub_host = host_of (request->url);
  g_autofree char *url = g_strdup (request->url);

  for (guint hop = 0; hop <= MAX_REDIRECTS; hop++)
    {
      g_autoptr(SoupMessage) message = soup_message_new (method, url);
      g_autoptr(GInputStream) stream = NULL;
      g_autoptr(GError) local_error = NULL;
      g_autofree char *host = host_of (url);
      SoupMessageHeaders *headers;
      const char *location;
      char *next_url;

      if (message == NULL)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_HTTP,
                       "Not a valid address for %s: %s", request->description, url);
          return NULL;
        }
      soup_message_add_flags (message, SOUP_MESSAGE_NO_REDIRECT);
      headers = soup_message_get_request_headers (message);
      if (request->token != NULL && g_strcmp0 (host, hub_host) == 0)
        {
          g_autofree char *bearer = g_strconcat ("Bearer ", request->token, NULL);

          soup_message_headers_replace (headers, "Authorization", bearer);
        }
      if (offset > 0)
        soup_message_headers_set_range (headers, (goffset) offset, -1);

      stream = soup_session_send (session, message, cancellable, &local_error);
      if (stream == NULL)
        {
          set_network_error (error, local_error, request);
          return NULL;
        }

      location = soup_message_headers_get_one (soup_message_get_response_headers (message), "Location");
      if (!SOUP_STATUS_IS_REDIRECTION (soup_message_get_status (message)) || location == NULL ||
          (stop_at_linked_etag &&
           soup_message_headers_get_one (soup_message_get_response_headers (message), "X-Linked-Etag")))
        {
          *message_out = g_steal_pointer (&message);
          return g_steal_pointer (&stream);
        }

      g_input_stream_close (stream, NULL, NULL);
      next_url = g_uri_resolve_relative (url, location, G_URI_FLAGS_NONE, NULL);
      if (next_url == NULL)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_HTTP,
                       "The hub redirected %s to an invalid address: %s",
                       request->description, location);
          return NULL;
        }
      g_free (url);
      url = next_url;
    }

  g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_HTTP,
               "Too many redirects while fetching %s", request->description);
  return NULL;
}

gboolean
_onestep_hub_query_file (SoupSession              *session,
                         const OnestepHubRequest  *request,
                         OnestepHubFileInfo       *info,
                         GCancellable             *cancellable,
                         GError                  **error)
{
  g_autoptr(SoupMessage) message = NULL;
  g_autoptr(GInputStream) stream = NULL;
  SoupMessageHeaders *headers;
  const char *etag;
  const char *size;
  guint status;

  stream = send_following_redirects (session, request, SOUP_METHOD_HEAD, 0, TRUE,
                                     &message, cancellable, error);
  if (stream == NULL)
    return FALSE;
  g_input_stream_close (stream, NULL, NULL);

  status = soup_message_get_status (message);
  if (!SOUP_STATUS_IS_SUCCESSFUL (status) && !SOUP_STATUS_IS_REDIRECTION (status))
    {
      set_http_error (error, message, request);
      return FALSE;
    }

  headers = soup_message_get_response_headers (message);
  etag = soup_message_headers_get_one (headers, "X-Linked-Etag");
  if (etag == NULL)
    etag = soup_message_headers_get_one (headers, "ETag");
  size = soup_message_headers_get_one (headers, "X-Linked-Size");

  info->hash = _onestep_hash_from_etag (etag);
  if (size != NULL)
    info->size = g_ascii_strtoull (size, NULL, 10);
  else if (SOUP_STATUS_IS_SUCCESSFUL (status))
    info->size = (guint64) MAX (soup_message_headers_get_content_length (headers), 0);
  return TRUE;
}

GInputStream *
_onestep_hub_open_file (SoupSession              *session,
                        const OnestepHubRequest  *request,
                        guint64                   offset,
                        guint64                  *body_offset,
                        GCancellable             *cancellable,
                        GError                  **error)
{
  g_autoptr(SoupMessage) message = NULL;
  g_autoptr(GInputStream) stream = NULL;
  guint status;

  stream = send_following_redirects (session, request, SOUP_METHOD_GET, offset, FALSE,
                                     &message, cancellable, error);
  if (stream == NULL)
    return NULL;

  status = soup_message_get_status (message);
  if (status == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE && offset > 0)
    {
      /* The partial file no longer fits what the server has: start over. */
      g_input_stream_close (stream, NULL, NULL);
      return _onestep_hub_open_file (session, request, 0, body_offset, cancellable, error);
    }
  if (status == SOUP_STATUS_PARTIAL_CONTENT && offset > 0)
    {
      goffset start = -1, end = -1, total = -1;

      if (!soup_message_headers_get_content_range (soup_message_get_response_headers (message),
                                                   &start, &end, &total) ||
          start != (goffset) offset)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_HTTP,
                       "The server resumed %s at the wrong place (asked for byte %" G_GUINT64_FORMAT ")",
                       request->description, offset);
          return NULL;
        }
      *body_offset = offset;
      return g_steal_pointer (&stream);
    }
  if (status == SOUP_STATUS_OK)
    {
      *body_offset = 0;
      return g_steal_pointer (&stream);
    }

  set_http_error (error, message, request);
  return NULL;
}
