/* onestep-memory-token-provider.h: a token held in memory for the life of the
 * object (the CLI's --token or $HF_TOKEN, and tests, which need no keyring). */
#pragma once

#include "onestep-token-provider.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_MEMORY_TOKEN_PROVIDER (onestep_memory_token_provider_get_type ())

G_DECLARE_FINAL_TYPE (OnestepMemoryTokenProvider, onestep_memory_token_provider,
                      ONESTEP, MEMORY_TOKEN_PROVIDER, GObject)

/* token: (nullable) */
OnestepTokenProvider *onestep_memory_token_provider_new (const char *token);

G_END_DECLS
