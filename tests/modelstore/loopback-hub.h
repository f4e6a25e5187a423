/* loopback-hub.h: a small Hugging Face hub look-alike on 127.0.0.1 for the
 * download tests: resolve URLs, LFS redirects carrying X-Linked-Etag and
 * X-Linked-Size, Range requests, gated repositories, and transfers that break
 * off or stall part way. */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _LoopbackHub LoopbackHub;

LoopbackHub *loopback_hub_new                 (void);
void         loopback_hub_free                (LoopbackHub *hub);
/* "http://127.0.0.1:PORT" */
const char  *loopback_hub_get_url             (LoopbackHub *hub);
/* lfs: served through a redirect to /cdn/<sha256> like the hub's LFS files;
 * otherwise served directly with the git blob sha1 as ETag. */
void         loopback_hub_add_file            (LoopbackHub *hub,
                                               const char  *repository,
                                               const char  *path,
                                               GBytes      *content,
                                               gboolean     lfs);
/* Requests to the repository need "Authorization: Bearer <token>". */
void         loopback_hub_set_gated           (LoopbackHub *hub,
                                               const char  *repository,
                                               const char  *token);
/* Serves other bytes than the advertised hash describes. */
void         loopback_hub_corrupt_file        (LoopbackHub *hub,
                                               const char  *repository,
                                               const char  *path);
/* The next body transfer sends only the first n bytes, then closes the
 * connection (break) or leaves it open without sending more (stall). */
void         loopback_hub_break_next_transfer (LoopbackHub *hub,
                                               gsize        n);
void         loopback_hub_stall_next_transfer (LoopbackHub *hub,
                                               gsize        n);
/* Start of the Range of the last body request, or -1 if it had none. */
gint64       loopback_hub_get_last_range_start (LoopbackHub *hub);
/* The sha256 hex of a content. */
char        *loopback_hub_sha256              (GBytes      *content);

G_END_DECLS
