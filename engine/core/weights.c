/* weights.c: binding a component's tensors by name, with shape checks, dtype
 * conversion, the optional transform, and upload into backend memory. */
#include "weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct {
  char *name;
  const os_st_tensor *tensor;
  const char *file;      /* for messages: the file it came from, or the set's origin */
  const float *bound;    /* backend pointer once taken */
  bool owned;            /* bound was allocated here (else it points into the mapping) */
} weight_entry;

struct os_weight_set {
  char *component, *origin;
  os_backend *be;
  weight_entry *entries; /* sorted by name */
  int n_entries, capacity;
  os_weight_transform_fn transform;
  void *transform_data;
  onestep_error latched;
  int64_t n_params;
  int dtype_count[3];
};

os_weight_set *
os_weight_set_new(const char *component, const char *origin, os_backend *be)
{
  os_weight_set *ws = calloc(1, sizeof *ws);
  if (!ws)
    return NULL;
  ws->component = strdup(component);
  ws->origin = strdup(origin);
  ws->be = be;
  if (!ws->component || !ws->origin) {
    os_weight_set_free(ws);
    return NULL;
  }
  return ws;
}

void
os_weight_set_free(os_weight_set *ws)
{
  if (!ws)
    return;
  for (int i = 0; i < ws->n_entries; i++) {
    if (ws->entries[i].owned)
      ws->be->ops->free(ws->be, (void *)ws->entries[i].bound);
    free(ws->entries[i].name);
  }
  free(ws->entries);
  free(ws->component);
  free(ws->origin);
  free(ws);
}

os_backend *
os_weight_set_backend(const os_weight_set *ws)
{
  return ws->be;
}

void
os_weight_set_set_transform(os_weight_set *ws, os_weight_transform_fn fn, void *user_data)
{
  ws->transform = fn;
  ws->transform_data = user_data;
}

/* Index of name, or -(insertion point) - 1 when absent. */
static int
find_entry(const os_weight_set *ws, const char *name)
{
  int lo = 0, hi = ws->n_entries - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(ws->entries[mid].name, name);
    if (c == 0)
      return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -lo - 1;
}

static onestep_status
add_entry(os_weight_set *ws, const char *name, const os_st_tensor *t, const char *file,
          onestep_error *error)
{
  int at = find_entry(ws, name);
  if (at >= 0)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: tensor '%s' is given twice (%s and %s)",
                        ws->component, name, ws->entries[at].file, file);
  at = -at - 1;
  if (ws->n_entries == ws->capacity) {
    int capacity = ws->capacity ? 2 * ws->capacity : 256;
    weight_entry *grown = realloc(ws->entries, (size_t)capacity * sizeof *grown);
    if (!grown)
      return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", ws->component);
    ws->entries = grown;
    ws->capacity = capacity;
  }
  char *copy = strdup(name);
  if (!copy)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", ws->component);
  memmove(&ws->entries[at + 1], &ws->entries[at],
          (size_t)(ws->n_entries - at) * sizeof *ws->entries);
  ws->entries[at] = (weight_entry){.name = copy, .tensor = t, .file = file};
  ws->n_entries++;
  ws->n_params += os_shape_numel(t->ndim, t->shape);
  ws->dtype_count[t->dtype]++;
  return ONESTEP_OK;
}

onestep_status
os_weight_set_add(os_weight_set *ws, const char *name, const os_st_tensor *t,
                  onestep_error *error)
{
  return add_entry(ws, name, t, ws->origin, error);
}

onestep_status
os_weight_set_add_file(os_weight_set *ws, const os_safetensors *st, onestep_error *error)
{
  for (int i = 0; i < st->n_tensors; i++) {
    onestep_status status = add_entry(ws, st->tensors[i].name, &st->tensors[i], st->path, error);
    if (status != ONESTEP_OK)
      return status;
  }
  return ONESTEP_OK;
}

/* Dims without trailing ones, so [C,C,1,1] and [C,C] compare equal. */
static int
significant_dims(int ndim, const int64_t *shape)
{
  while (ndim > 0 && shape[ndim - 1] == 1)
    ndim--;
  return ndim;
}

static bool
shapes_match(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b)
{
  int n = significant_dims(ndim_a, a);
  if (n != significant_dims(ndim_b, b))
    return false;
  for (int i = 0; i < n; i++)
    if (a[i] != b[i])
      return false;
  return true;
}

static void
format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (used < size)
    snprintf(buf + used, size - used, "]");
}

/* Latches the first error only; later ones are consequences. */
static void
latch(os_weight_set *ws, onestep_status code, const char *fmt, ...) OS_PRINTF(3, 4);

static void
latch(os_weight_set *ws, onestep_status code, const char *fmt, ...)
{
  if (ws->latched.code != ONESTEP_OK)
    return;
  va_list ap;
  va_start(ap, fmt);
  ws->latched.code = code;
  vsnprintf(ws->latched.message, sizeof ws->latched.message, fmt, ap);
  va_end(ap);
}

/* Converts (and transforms) into backend memory; NULL after latching an error. */
static float *
load_converted(os_weight_set *ws, const weight_entry *e)
{
  const os_st_tensor *t = e->tensor;
  size_t numel = (size_t)os_shape_numel(t->ndim, t->shape);
  size_t bytes = (numel ? numel : 1) * sizeof(float);
  os_backend *be = ws->be;
  /* Matrices and kernels in the backend's 16-bit type with no float32 copy;
   * vectors (biases, norm scales, mix factors) stay float32: they are tiny,
   * join float32 sums and statistics, and mix factors are read back. */
  os_storage storage = t->ndim >= 2 ? OS_STORAGE_WEIGHT : OS_STORAGE_FP32;
  float *device = be->ops->alloc_as(be, numel ? numel : 1, storage);
  /* a host backend's buffer is the conversion target itself: one copy, not two */
  float *host = be->ops->is_host ? device : malloc(bytes);
  if (!device || !host) {
    if (device)
      be->ops->free(be, device);
    free(be->ops->is_host ? NULL : host);
    latch(ws, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory loading tensor '%s' (%zu MB)",
          ws->component, e->name, bytes >> 20);
    return NULL;
  }
  os_dtype_to_f32(host, t->data, t->dtype, numel);
  onestep_status status = ONESTEP_OK;
  if (ws->transform) {
    onestep_error transform_error = {0};
    status = ws->transform(e->name, host, t->ndim, t->shape, ws->transform_data,
                           &transform_error);
    if (status != ONESTEP_OK)
      latch(ws, status, "%s", transform_error.message);
  }
  if (!be->ops->is_host) {
    if (status == ONESTEP_OK)
      be->ops->upload(be, device, host, bytes);
    free(host);
  }
  if (status != ONESTEP_OK) {
    be->ops->free(be, device);
    return NULL;
  }
  return device;
}

const float *
os_weights_take(os_weight_set *ws, const char *name, int ndim, const int64_t *shape)
{
  if (ws->latched.code != ONESTEP_OK)
    return NULL;
  int at = find_entry(ws, name);
  if (at < 0) {
    latch(ws, ONESTEP_ERR_MODEL, "%s: tensor '%s' is missing from %s (required by the config)",
          ws->component, name, ws->origin);
    return NULL;
  }
  weight_entry *e = &ws->entries[at];
  const os_st_tensor *t = e->tensor;
  if (!shapes_match(t->ndim, t->shape, ndim, shape)) {
    char have[160], want[160];
    format_shape(have, sizeof have, t->ndim, t->shape);
    format_shape(want, sizeof want, ndim, shape);
    latch(ws, ONESTEP_ERR_MODEL, "%s: tensor '%s' in %s has shape %s, the config implies %s",
          ws->component, name, e->file, have, want);
    return NULL;
  }
  if (e->bound)
    return e->bound; /* taken before (shared weights) */

  bool aligned = ((uintptr_t)t->data % sizeof(float)) == 0;
  if (ws->be->ops->is_host && t->dtype == OS_DTYPE_F32 && !ws->transform && aligned) {
    e->bound = t->data; /* zero copy: straight from the read-only mapping */
  } else {
    e->bound = load_converted(ws, e);
    e->owned = e->bound != NULL;
  }
  return e->bound;
}

const float *
os_weights_takef(os_weight_set *ws, const int64_t *shape_m1, const char *fmt, ...)
{
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  int ndim = 0;
  while (ndim < OS_MAX_DIMS && shape_m1[ndim] != -1)
    ndim++;
  return os_weights_take(ws, name, ndim, shape_m1);
}

bool
os_weights_has(const os_weight_set *ws, const char *name)
{
  return find_entry(ws, name) >= 0;
}

onestep_status
os_weights_finish(os_weight_set *ws, onestep_error *error)
{
  if (ws->latched.code != ONESTEP_OK)
    return os_error_set(error, ws->latched.code, "%s", ws->latched.message);
  for (int i = 0; i < ws->n_entries; i++) {
    const weight_entry *e = &ws->entries[i];
    if (!e->bound)
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s: tensor '%s' in %s is not part of this model (config and weights "
                          "disagree)",
                          ws->component, e->name, e->file);
  }
  return ONESTEP_OK;
}

int64_t
os_weights_param_count(const os_weight_set *ws)
{
  return ws->n_params;
}

int
os_weights_count(const os_weight_set *ws)
{
  return ws->n_entries;
}

const char *
os_weights_entry(const os_weight_set *ws, int i, const float **bound, int *ndim,
                 const int64_t **shape)
{
  const weight_entry *e = &ws->entries[i];
  *bound = e->bound;
  *ndim = e->tensor->ndim;
  *shape = e->tensor->shape;
  return e->name;
}

const char *
os_weights_dtype_name(const os_weight_set *ws)
{
  os_dtype most = OS_DTYPE_F32;
  for (int d = 1; d < 3; d++)
    if (ws->dtype_count[d] > ws->dtype_count[most])
      most = (os_dtype)d;
  return os_dtype_name(most);
}
