/* onestep-modelstore-error.h: errors of the model manager, each meant to be shown
 * to the user as is. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ONESTEP_MODELSTORE_ERROR (onestep_modelstore_error_quark ())

typedef enum {
  ONESTEP_MODELSTORE_ERROR_CATALOGUE,     /* the catalogue is malformed */
  ONESTEP_MODELSTORE_ERROR_UNKNOWN_MODEL, /* no model with that name */
  ONESTEP_MODELSTORE_ERROR_GATED,         /* 401/403: licence not accepted or no token */
  ONESTEP_MODELSTORE_ERROR_NOT_FOUND,     /* 404 */
  ONESTEP_MODELSTORE_ERROR_HTTP,          /* any other unexpected HTTP status */
  ONESTEP_MODELSTORE_ERROR_NETWORK,       /* the server could not be reached */
  ONESTEP_MODELSTORE_ERROR_INTERRUPTED,   /* the transfer broke off; it can be resumed */
  ONESTEP_MODELSTORE_ERROR_NO_SPACE,      /* not enough free disk space */
  ONESTEP_MODELSTORE_ERROR_CHECKSUM,      /* the data does not match the expected hash */
  ONESTEP_MODELSTORE_ERROR_INVALID_MODEL, /* an import failed the engine's validation */
  ONESTEP_MODELSTORE_ERROR_INDEX,         /* the models index is unreadable */
  ONESTEP_MODELSTORE_ERROR_TOKEN,         /* the token could not be stored or read */
} OnestepModelstoreError;

GQuark onestep_modelstore_error_quark (void);

G_END_DECLS
