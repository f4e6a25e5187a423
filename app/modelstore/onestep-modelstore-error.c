/* onestep-modelstore-error.c */
#include "onestep-modelstore-error.h"

G_DEFINE_QUARK (onestep-modelstore-error-quark, onestep_modelstore_error)
