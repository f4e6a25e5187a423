/* onestep-hub-client.h: the blocking HTTP requests the downloader makes to the
 * Hugging Face hub from its worker thread, with hub errors explained in words. */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct {
  const char *url;          /* .../{repo}/resolve/{revision}/{path} */
  const char *token;        /* (nullable) sent as "Authorization: Bearer" to the hub's host */
  const char *description;  /* "FILE from REPO", for messages */
  const char *page_url;     /* the model page, where a gated licence is accepted */
} OnestepHubRequest;

typedef struct {
  char    *hash;  /* sha256 (LFS) or git sha1 from the ETag, or NULL */
  guint64  size;  /* 0 when the hub did not say */
} OnestepHubFileInfo;

SoupSession  *_onestep_hub_session_new   (void);
/* HEAD without following the hub's redirect to its storage, as the hub puts the
 * LFS hash and size in X-Linked-Etag / X-Linked-Size of that redirect. */
gboolean      _onestep_hub_query_file   (SoupSession              *session,
                                         const OnestepHubRequest  *request,
                                         OnestepHubFileInfo       *info,
                                         GCancellable             *cancellable,
                                         GError                  **error);
/* GET from offset (a Range request when offset > 0). *body_offset is where the
 * returned body starts: offset when the server honoured the range, 0 when it
 * sent the whole file. */
GInputStream *_onestep_hub_open_file    (SoupSession              *session,
                                         const OnestepHubRequest  *request,
                                         guint64                   offset,
                                         guint64                  *body_offset,
                                         GCancellable             *cancellable,
                                         GError                  **error);
void          _onestep_hub_file_info_clear (OnestepHubFileInfo    *info);

G_END_DECLS
