/* bench-weights.c: see bench-weights.h. */
#include "bench-weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"
#include "splitmix64.h"

#define POOL_FLOATS ((size_t)32 << 20) /* random values all weights are cut from */

static float *pool;
static size_t pool_cursor;
static os_st_tensor **synthetic;
static int n_synthetic, cap_synthetic;

void
bench_weights_init(void)
{
  pool = malloc(POOL_FLOATS * sizeof(float));
  if (!pool) {
    fprintf(stderr, "out of host memory for the weight pool\n");
    exit(1);
  }
  uint64_t state = 12345;
  for (size_t i = 0; i < POOL_FLOATS; i++)
    pool[i] = (float)((next_random(&state) >> 40) * 0x1p-23) - 1.0f; /* [-1, 1) */
}

void
bench_weights_pool(const void **start, size_t *bytes)
{
  *start = pool;
  *bytes = POOL_FLOATS * sizeof(float);
}

const float *__real_os_weights_take(os_weight_set *ws, const char *name, int ndim,
                                    const int64_t *shape);
const float *__wrap_os_weights_take(os_weight_set *ws, const char *name, int ndim,
                                    const int64_t *shape);

/* Registers a tensor of the asked shape before the real take binds it. */
const float *
__wrap_os_weights_take(os_weight_set *ws, const char *name, int ndim, const int64_t *shape)
{
  if (!os_weights_has(ws, name)) {
    int64_t numel = os_shape_numel(ndim, shape);
    os_st_tensor *t = calloc(1, sizeof *t);
    if (!t || numel > (int64_t)POOL_FLOATS || ndim > OS_MAX_DIMS) {
      fprintf(stderr, "cannot synthesise tensor %s (%lld values)\n", name, (long long)numel);
      exit(1);
    }
    if (pool_cursor + numel > POOL_FLOATS)
      pool_cursor = 0;
    t->name = strdup(name);
    t->dtype = OS_DTYPE_F32;
    t->ndim = ndim;
    memcpy(t->shape, shape, ndim * sizeof *shape);
    t->data = pool + pool_cursor;
    t->nbytes = numel * sizeof(float);
    pool_cursor += numel | 1; /* an odd step: neighbouring tensors differ */
    if (n_synthetic == cap_synthetic) {
      cap_synthetic = cap_synthetic ? 2 * cap_synthetic : 1024;
      synthetic = realloc(synthetic, cap_synthetic * sizeof *synthetic);
      if (!synthetic)
        exit(1);
    }
    synthetic[n_synthetic++] = t;
    onestep_error error = { 0 };
    if (os_weight_set_add(ws, name, t, &error) != ONESTEP_OK) {
      fprintf(stderr, "%s\n", error.message);
      exit(1);
    }
  }
  return __real_os_weights_take(ws, name, ndim, shape);
}

/* Matrices get the usual 1/sqrt(fan_in) scale so activations stay finite. */
static onestep_status
scale_by_fan_in(const char *name, float *data, int ndim, const int64_t *shape, void *user_data,
                onestep_error *error)
{
  if (ndim < 2)
    return ONESTEP_OK;
  int64_t numel = os_shape_numel(ndim, shape);
  float s = 1.0f / sqrtf((float)(numel / shape[0]));
  for (int64_t i = 0; i < numel; i++)
    data[i] *= s;
  return ONESTEP_OK;
}

os_weight_set *
bench_weight_set(const char *component, os_backend *be, bool scaled)
{
  os_weight_set *ws = os_weight_set_new(component, "random weights", be);
  if (!ws) {
    fprintf(stderr, "cannot create the %s weight set\n", component);
    exit(1);
  }
  if (scaled)
    os_weight_set_set_transform(ws, scale_by_fan_in, NULL);
  return ws;
}

int
bench_weights_count(void)
{
  return n_synthetic;
}

size_t
bench_weights_device_bytes_16bit(int first, int last)
{
  size_t bytes = 0;
  for (int i = first; i < last; i++)
    bytes += synthetic[i]->nbytes / (synthetic[i]->ndim >= 2 ? 2 : 1);
  return bytes;
}

onestep_status
bench_weights_write(const char *path, int first, int last, onestep_error *error)
{
  int n = last - first;
  os_st_write_tensor *out = calloc(n > 0 ? n : 1, sizeof *out);
  float **copies = calloc(n > 0 ? n : 1, sizeof *copies);
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (!out || !copies) {
    os_error_set(error, status, "out of host memory writing %s", path);
    goto done;
  }
  for (int i = 0; i < n; i++) {
    const os_st_tensor *t = synthetic[first + i];
    copies[i] = malloc(t->nbytes);
    if (!copies[i]) {
      os_error_set(error, status, "out of host memory writing %s", path);
      goto done;
    }
    memcpy(copies[i], t->data, t->nbytes);
    scale_by_fan_in(t->name, copies[i], t->ndim, t->shape, NULL, NULL);
    out[i].name = t->name;
    out[i].ndim = t->ndim;
    memcpy(out[i].shape, t->shape, sizeof t->shape);
    out[i].data = copies[i];
  }
  status = os_safetensors_write(path, out, n, error);
done:
  for (int i = 0; copies && i < n; i++)
    free(copies[i]);
  free(copies);
  free(out);
  return status;
}
