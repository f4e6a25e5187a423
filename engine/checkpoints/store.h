/* store.h: what an opened checkpoint keeps alive for its weight sets: the
 * mapped files, tensors derived from them (views, splits, transposes), the
 * UNet's registered names (for LoRA resolution) and the LoRA merge state. */
#ifndef ONESTEP_CHECKPOINT_STORE_H
#define ONESTEP_CHECKPOINT_STORE_H

#include "checkpoint.h"
#include "safetensors.h"

typedef struct os_lora_merge os_lora_merge;
typedef struct os_derived_tensor os_derived_tensor;

struct os_checkpoint_store {
  os_safetensors **files;
  int n_files, cap_files;
  os_derived_tensor *derived; /* a list: addresses stay fixed once handed out */
  char **unet_names;          /* as registered in the UNet set */
  const os_st_tensor **unet_tensors;
  int n_unet, cap_unet;
  os_lora_merge *lora;
};

os_checkpoint_store *os_store_new(void);
void os_store_free(os_checkpoint_store *s);

/* Opens and keeps a safetensors file; NULL after setting error. */
os_safetensors *os_store_open(os_checkpoint_store *s, const char *path, onestep_error *error);

/* A tensor header over bytes [byte_offset, byte_offset + nbytes) of src's data,
 * with a new shape (a row slice or a squeeze; no copy). */
const os_st_tensor *os_store_view(os_checkpoint_store *s, const os_st_tensor *src, const char *name,
                                  int ndim, const int64_t *shape, size_t byte_offset);
/* A copy of a 2-D tensor, transposed, in its own dtype. */
const os_st_tensor *os_store_transpose(os_checkpoint_store *s, const os_st_tensor *src,
                                       const char *name);
/* An F32 tensor over data, which the store takes over (freed with the store). */
const os_st_tensor *os_store_owned(os_checkpoint_store *s, const char *name, int ndim,
                                   const int64_t *shape, float *data);

/* Registers t in the UNet set under name and remembers it for LoRA lookup. */
onestep_status os_store_add_unet(os_checkpoint_store *s, os_weight_set *ws, const char *name,
                                 const os_st_tensor *t, onestep_error *error);

#endif
