/* weights.h: the tensors of one model component, bound by name with checked shapes.
 *
 * Model code takes every tensor its config implies; the first missing or
 * mis-shaped tensor latches an error naming it, and check_all_used() reports
 * tensors that the config does not explain. */
#ifndef ONESTEP_WEIGHTS_H
#define ONESTEP_WEIGHTS_H

#include "backend.h"
#include "safetensors.h"

typedef struct os_weight_set os_weight_set;

/* Called on each tensor's float32 host copy before upload (LoRA merging). */
typedef onestep_status (*os_weight_transform_fn)(const char *name, float *data, int ndim,
                                                 const int64_t *shape, void *user_data,
                                                 onestep_error *error);

/* `component` names the set in messages (e.g. "unet"); `origin` is the file or folder. */
os_weight_set *os_weight_set_new(const char *component, const char *origin, os_backend *be);
void os_weight_set_free(os_weight_set *ws); /* frees the uploaded tensors too */

/* Registers a source tensor under `name` (the set does not own st; keep it open
 * until the set is freed). A duplicate name is an error. */
onestep_status os_weight_set_add(os_weight_set *ws, const char *name, const os_st_tensor *t,
                                 onestep_error *error);
/* Registers every tensor of a file under its own name. */
onestep_status os_weight_set_add_file(os_weight_set *ws, const os_safetensors *st,
                                      onestep_error *error);
/* The backend the set uploads to. */
os_backend *os_weight_set_backend(const os_weight_set *ws);
void os_weight_set_set_transform(os_weight_set *ws, os_weight_transform_fn fn, void *user_data);

/* Returns the tensor in backend memory, or NULL after latching an error
 * (missing, wrong shape, out of memory). Tensors of two or more dimensions
 * are stored as OS_STORAGE_WEIGHT (16 bits on a 16-bit backend), vectors as
 * float32; a host backend may point into the file's mapping instead. Trailing
 * singleton dims may be given or omitted (a [C,C,1,1] conv weight matches {C,C}). */
const float *os_weights_take(os_weight_set *ws, const char *name, int ndim,
                             const int64_t *shape);
/* printf-style name; shape as a -1 terminated list of dims. */
const float *os_weights_takef(os_weight_set *ws, const int64_t *shape_m1, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool os_weights_has(const os_weight_set *ws, const char *name);

/* The latched error, or an error naming the first unused tensor. */
onestep_status os_weights_finish(os_weight_set *ws, onestep_error *error);
int64_t os_weights_param_count(const os_weight_set *ws);

/* The set's tensors in name order, for code that walks them all (training
 * picks its tensors by name pattern): name, shape, and the backend pointer
 * once taken (else NULL). */
int os_weights_count(const os_weight_set *ws);
const char *os_weights_entry(const os_weight_set *ws, int i, const float **bound, int *ndim,
                             const int64_t **shape);
const char *os_weights_dtype_name(const os_weight_set *ws); /* dtype of most tensors */

#endif
