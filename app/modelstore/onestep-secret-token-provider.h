/* onestep-secret-token-provider.h: the Hugging Face token in the user's keyring
 * (libsecret, schema io.github.onestep.Onestep.Token), entered once. */
#pragma once

#include "onestep-token-provider.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_SECRET_TOKEN_PROVIDER (onestep_secret_token_provider_get_type ())

G_DECLARE_FINAL_TYPE (OnestepSecretTokenProvider, onestep_secret_token_provider,
                      ONESTEP, SECRET_TOKEN_PROVIDER, GObject)

OnestepTokenProvider *onestep_secret_token_provider_new (void);

G_END_DECLS
