/* store.c: ownership of the files and tensors behind a checkpoint's weight sets. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lora.h"

struct os_derived_tensor {
  os_st_tensor tensor;
  void *owned; /* data owned by the store, or NULL for a view */
  os_derived_tensor *next;
};

os_checkpoint_store *os_store_new(void)
{
  return calloc(1, sizeof(os_checkpoint_store));
}

void os_store_free(os_checkpoint_store *s)
{
  if (!s)
    return;
  os_lora_merge_free(s->lora);
  for (os_derived_tensor *d = s->derived, *next; d; d = next) {
    next = d->next;
    free(d->tensor.name);
    free(d->owned);
    free(d);
  }
  for (int i = 0; i < s->n_unet; i++)
    free(s->unet_names[i]);
  free(s->unet_names);
  free(s->unet_tensors);
  for (int i = 0; i < s->n_files; i++)
    os_safetensors_close(s->files[i]);
  free(s->files);
  free(s);
}

os_safetensors *os_store_open(os_checkpoint_store *s, const char *path, onestep_error *error)
{
  if (s->n_files == s->cap_files) {
    int cap = s->cap_files ? 2 * s->cap_files : 4;
    os_safetensors **files = realloc(s->files, cap * sizeof *files);
    if (!files) {
      os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
      return NULL;
    }
    s->files = files;
    s->cap_files = cap;
  }
  os_safetensors *st = os_safetensors_open(path, error);
  if (st)
    s->files[s->n_files++] = st;
  return st;
}

static os_derived_tensor *derive(os_checkpoint_store *s, const char *name, os_dtype dtype,
                                 int ndim, const int64_t *shape)
{
  os_derived_tensor *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->tensor.name = strdup(name);
  if (!d->tensor.name) {
    free(d);
    return NULL;
  }
  d->tensor.dtype = dtype;
  d->tensor.ndim = ndim;
  memcpy(d->tensor.shape, shape, ndim * sizeof *shape);
  d->tensor.nbytes = (size_t)os_shape_numel(ndim, shape) * os_dtype_size(dtype);
  d->next = s->derived;
  s->derived = d;
  return d;
}

const os_st_tensor *os_store_view(os_checkpoint_store *s, const os_st_tensor *src, const char *name,
                                  int ndim, const int64_t *shape, size_t byte_offset)
{
  os_derived_tensor *d = derive(s, name, src->dtype, ndim, shape);
  if (!d)
    return NULL;
  d->tensor.data = (const char *)src->data + byte_offset;
  return &d->tensor;
}

const os_st_tensor *os_store_transpose(os_checkpoint_store *s, const os_st_tensor *src,
                                       const char *name)
{
  int64_t rows = src->shape[0], cols = src->shape[1];
  int64_t shape[2] = {cols, rows};
  size_t elem = os_dtype_size(src->dtype);
  void *data = malloc(src->nbytes);
  if (!data)
    return NULL;
  os_derived_tensor *d = derive(s, name, src->dtype, 2, shape);
  if (!d) {
    free(data);
    return NULL;
  }
  const char *in = src->data;
  char *out = data;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      memcpy(out + (c * rows + r) * elem, in + (r * cols + c) * elem, elem);
  d->owned = data;
  d->tensor.data = data;
  return &d->tensor;
}

const os_st_tensor *os_store_owned(os_checkpoint_store *s, const char *name, int ndim,
                                   const int64_t *shape, float *data)
{
  os_derived_tensor *d = derive(s, name, OS_DTYPE_F32, ndim, shape);
  if (!d) {
    free(data);
    return NULL;
  }
  d->owned = data;
  d->tensor.data = data;
  return &d->tensor;
}

onestep_status os_store_add_unet(os_checkpoint_store *s, os_weight_set *ws, const char *name,
                                 const os_st_tensor *t, onestep_error *error)
{
  if (s->n_unet == s->cap_unet) {
    int cap = s->cap_unet ? 2 * s->cap_unet : 256;
    char **names = realloc(s->unet_names, cap * sizeof *names);
    if (names)
      s->unet_names = names;
    const os_st_tensor **tensors = realloc(s->unet_tensors, cap * sizeof *tensors);
    if (tensors)
      s->unet_tensors = tensors;
    if (!names || !tensors)
      return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "unet: out of memory at %s", name);
    s->cap_unet = cap;
  }
  char *copy = strdup(name);
  if (!copy)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "unet: out of memory at %s", name);
  s->unet_names[s->n_unet] = copy;
  s->unet_tensors[s->n_unet++] = t;
  return os_weight_set_add(ws, name, t, error);
}
