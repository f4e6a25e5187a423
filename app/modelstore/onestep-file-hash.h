/* onestep-file-hash.h: checking a downloaded file against the hub's hash: the
 * sha256 of LFS files or the git blob sha1 of plain git files (what the hub's
 * ETag carries for each). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The hash inside an ETag header value (quotes and W/ removed, lowercased) when
 * it is a 40-hex git sha1 or a 64-hex sha256; otherwise NULL. */
char     *_onestep_hash_from_etag (const char    *etag);

/* expected: 64 hex digits (sha256 of the content) or 40 (git blob sha1).
 * On mismatch returns FALSE without error and sets actual. */
gboolean  _onestep_file_has_hash  (const char    *path,
                                   const char    *expected,
                                   char         **actual,
                                   GCancellable  *cancellable,
                                   GError       **error);

G_END_DECLS
