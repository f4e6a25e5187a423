/* checkpoint_internal.h: the format readers behind os_checkpoint_open. */
#ifndef ONESTEP_CHECKPOINT_INTERNAL_H
#define ONESTEP_CHECKPOINT_INTERNAL_H

#include "checkpoint.h"
#include "store.h"

/* printf-style lookup of a tensor by name. */
const os_st_tensor *os_find_tensorf(const os_safetensors *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool os_has_prefix(const char *s, const char *prefix);

/* A Stability single file: configs from the tensor shapes, all three sets. */
onestep_status os_single_file_open(os_checkpoint_store *s, const char *path,
                                   const os_checkpoint_options *options, os_backend *be,
                                   os_model_source *out, onestep_error *error);

/* A UNet-only file (diffusers or sgm names) registered into ws for cfg's layout. */
onestep_status os_unet_file_add(os_checkpoint_store *s, const char *path,
                                const os_unet_config *cfg, os_weight_set *ws,
                                onestep_error *error);

#endif
