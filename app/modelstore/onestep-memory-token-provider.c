/* onestep-memory-token-provider.c */
#include "onestep-memory-token-provider.h"

struct _OnestepMemoryTokenProvider
{
  GObject  parent_instance;
  GMutex   mutex;  /* lookups come from download threads */
  char    *token;
};

static void token_provider_iface_init (OnestepTokenProviderInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OnestepMemoryTokenProvider, onestep_memory_token_provider,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ONESTEP_TYPE_TOKEN_PROVIDER,
                                                      token_provider_iface_init))

static char *
onestep_memory_token_provider_lookup_token (OnestepTokenProvider  *provider,
                                            GCancellable          *cancellable,
                                            GError               **error)
{
  OnestepMemoryTokenProvider *self = ONESTEP_MEMORY_TOKEN_PROVIDER (provider);
  char *token;

  g_mutex_lock (&self->mutex);
  token = g_strdup (self->token);
  g_mutex_unlock (&self->mutex);
  return token;
}

static gboolean
onestep_memory_token_provider_store_token (OnestepTokenProvider  *provider,
                                           const char            *token,
                                           GCancellable          *cancellable,
                                           GError               **error)
{
  OnestepMemoryTokenProvider *self = ONESTEP_MEMORY_TOKEN_PROVIDER (provider);

  g_mutex_lock (&self->mutex);
  g_free (self->token);
  self->token = g_strdup (token);
  g_mutex_unlock (&self->mutex);
  return TRUE;
}

static void
token_provider_iface_init (OnestepTokenProviderInterface *iface)
{
  iface->lookup_token = onestep_memory_token_provider_lookup_token;
  iface->store_token = onestep_memory_token_provider_store_token;
}

static void
onestep_memory_token_provider_finalize (GObject *object)
{
  OnestepMemoryTokenProvider *self = (OnestepMemoryTokenProvider *) object;

  g_clear_pointer (&self->token, g_free);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (onestep_memory_token_provider_parent_class)->finalize (object);
}

static void
onestep_memory_token_provider_class_init (OnestepMemoryTokenProviderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = onestep_memory_token_provider_finalize;
}

static void
onestep_memory_token_provider_init (OnestepMemoryTokenProvider *self)
{
  g_mutex_init (&self->mutex);
}

OnestepTokenProvider *
onestep_memory_token_provider_new (const char *token)
{
  OnestepMemoryTokenProvider *self = g_object_new (ONESTEP_TYPE_MEMORY_TOKEN_PROVIDER, NULL);

  self->token = g_strdup (token);
  return ONESTEP_TOKEN_PROVIDER (self);
}
