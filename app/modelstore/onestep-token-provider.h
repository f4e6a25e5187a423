/* onestep-token-provider.h: where the Hugging Face access token for gated
 * repositories comes from. The app stores it in the keyring
 * (OnestepSecretTokenProvider); the CLI's --token and the tests keep it in
 * memory (OnestepMemoryTokenProvider). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ONESTEP_TYPE_TOKEN_PROVIDER (onestep_token_provider_get_type ())

G_DECLARE_INTERFACE (OnestepTokenProvider, onestep_token_provider, ONESTEP, TOKEN_PROVIDER, GObject)

struct _OnestepTokenProviderInterface
{
  GTypeInterface parent_iface;

  /* Both block and may be called from any thread. lookup returns NULL without
   * an error when no token is stored; store with a NULL token forgets it. */
  char     *(*lookup_token) (OnestepTokenProvider  *self,
                             GCancellable          *cancellable,
                             GError               **error);
  gboolean  (*store_token)  (OnestepTokenProvider  *self,
                             const char            *token,
                             GCancellable          *cancellable,
                             GError               **error);
};

char     *onestep_token_provider_lookup_token       (OnestepTokenProvider  *self,
                                                     GCancellable          *cancellable,
                                                     GError               **error);
gboolean  onestep_token_provider_store_token        (OnestepTokenProvider  *self,
                                                     const char            *token,
                                                     GCancellable          *cancellable,
                                                     GError               **error);
/* For the UI: stores in a worker thread. */
void      onestep_token_provider_store_token_async  (OnestepTokenProvider  *self,
                                                     const char            *token,
                                                     GCancellable          *cancellable,
                                                     GAsyncReadyCallback    callback,
                                                     gpointer               user_data);
gboolean  onestep_token_provider_store_token_finish (OnestepTokenProvider  *self,
                                                     GAsyncResult          *result,
                                                     GError               **error);

G_END_DECLS
