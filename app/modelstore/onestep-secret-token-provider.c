/* onestep-secret-token-provider.c */
#include <libsecret/secret.h>

#include "onestep-modelstore-error.h"
#include "onestep-secret-token-provider.h"

struct _OnestepSecretTokenProvider
{
  GObject parent_instance;
};

static void token_provider_iface_init (OnestepTokenProviderInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OnestepSecretTokenProvider, onestep_secret_token_provider,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ONESTEP_TYPE_TOKEN_PROVIDER,
                                                      token_provider_iface_init))

/* One token per hub service; the attribute leaves room for a mirror's own. */
static const SecretSchema *
token_schema (void)
{
  static const SecretSchema schema = {
    "io.github.onestep.Onestep.Token", SECRET_SCHEMA_NONE,
    {
      { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
    }
  };
  return &schema;
}

#define TOKEN_SERVICE "huggingface.co"

static char *
onestep_secret_token_provider_lookup_token (OnestepTokenProvider  *provider,
                                            GCancellable          *cancellable,
                                            GError               **error)
{
  g_autoptr(GError) local_error = NULL;
  char *secret;
  char *token;

  secret = secret_password_lookup_sync (token_schema (), cancellable, &local_error,
                                        "service", TOKEN_SERVICE, NULL);
  if (local_error != NULL)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_TOKEN,
                   "Could not read the Hugging Face token from the keyring: %s",
                   local_error->message);
      return NULL;
    }
  token = g_strdup (secret);
  secret_password_free (secret);
  return token;
}

static gboolean
onestep_secret_token_provider_store_token (OnestepTokenProvider  *provider,
                                           const char            *token,
                                           GCancellable          *cancellable,
                                           GError               **error)
{
  g_autoptr(GError) local_error = NULL;

  if (token == NULL)
    secret_password_clear_sync (token_schema (), cancellable, &local_error,
                                "service", TOKEN_SERVICE, NULL);
  else
    secret_password_store_sync (token_schema (), SECRET_COLLECTION_DEFAULT,
                                "Onestep: Hugging Face access token", token,
                                cancellable, &local_error,
                                "service", TOKEN_SERVICE, NULL);
  if (local_error != NULL)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_TOKEN,
                   "Could not save the Hugging Face token in the keyring: %s",
                   local_error->message);
      return FALSE;
    }
  return TRUE;
}

static void
token_provider_iface_init (OnestepTokenProviderInterface *iface)
{
  iface->lookup_token = onestep_secret_token_provider_lookup_token;
  iface->store_token = onestep_secret_token_provider_store_token;
}

static void
onestep_secret_token_provider_class_init (OnestepSecretTokenProviderClass *klass)
{
}

static void
onestep_secret_token_provider_init (OnestepSecretTokenProvider *self)
{
}

OnestepTokenProvider *
onestep_secret_token_provider_new (void)
{
  return g_object_new (ONESTEP_TYPE_SECRET_TOKEN_PROVIDER, NULL);
}
