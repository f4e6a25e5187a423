/* onestep-token-provider.c */
#include "onestep-token-provider.h"

G_DEFINE_INTERFACE (OnestepTokenProvider, onestep_token_provider, G_TYPE_OBJECT)

static void
onestep_token_provider_default_init (OnestepTokenProviderInterface *iface)
{
}

char *
onestep_token_provider_lookup_token (OnestepTokenProvider  *self,
                                     GCancellable          *cancellable,
                                     GError               **error)
{
  g_return_val_if_fail (ONESTEP_IS_TOKEN_PROVIDER (self), NULL);

  return ONESTEP_TOKEN_PROVIDER_GET_IFACE (self)->lookup_token (self, cancellable, error);
}

gboolean
onestep_token_provider_store_token (OnestepTokenProvider  *self,
                                    const char            *token,
                                    GCancellable          *cancellable,
                                    GError               **error)
{
  g_return_val_if_fail (ONESTEP_IS_TOKEN_PROVIDER (self), FALSE);

  return ONESTEP_TOKEN_PROVIDER_GET_IFACE (self)->store_token (self, token, cancellable, error);
}

static void
store_token_worker (GTask        *task,
                    gpointer      source_object,
                    gpointer      task_data,
                    GCancellable *cancellable)
{
  GError *error = NULL;

  if (onestep_token_provider_store_token (source_object, task_data, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
onestep_token_provider_store_token_async (OnestepTokenProvider *self,
                                          const char           *token,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ONESTEP_IS_TOKEN_PROVIDER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_token_provider_store_token_async);
  g_task_set_task_data (task, g_strdup (token), g_free);
  g_task_run_in_thread (task, store_token_worker);
}

gboolean
onestep_token_provider_store_token_finish (OnestepTokenProvider  *self,
                                           GAsyncResult          *result,
                                           GError               **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
