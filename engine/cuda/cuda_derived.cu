// cuda_derived.cu: cached converted copies of weights (16-bit copies of
// float32 weights for the GEMMs, the temporal convolution's taps regrouped
// per tap), both in the GEMM operand type.
//
// Weights are converted once, on first use, instead of at every call. An
// entry is dropped when its source memory is freed or overwritten through
// upload/copy/fill, so a test that reuses a buffer never sees stale data.
// Weights stored in 16 bits (OS_STORAGE_WEIGHT in fp16/bf16 mode) are GEMM
// operands as they are: only their temporal taps are cached, in 16 bits, so no
// float32 copy of them ever exists on the device.

#include <stdint.h>
#include <stdlib.h>

#include "cuda_common.h"
#include "cuda_types.cuh"

typedef struct {
  const float *src;
  size_t src_bytes;
  os_derived_kind kind;
  void *data;
} derived_entry;

struct os_cuda_derived_cache {
  derived_entry *entries;
  size_t count, cap;
  uintptr_t lo, hi; // bounds of all sources, for a quick miss in invalidate
};

os_cuda_derived_cache *
os_cuda_derived_new(void)
{
  return (os_cuda_derived_cache *)calloc(1, sizeof(os_cuda_derived_cache));
}

void
os_cuda_derived_destroy(os_cuda_backend *cb)
{
  if (!cb->derived)
    return;
  // The data blocks are pool blocks; the pool frees them with everything else.
  free(cb->derived->entries);
  free(cb->derived);
  cb->derived = NULL;
}

void
os_cuda_derived_invalidate(os_cuda_backend *cb, const void *ptr, size_t bytes)
{
  os_cuda_derived_cache *cache = cb->derived;
  uintptr_t a = (uintptr_t)ptr, b = a + bytes;
  if (!cache || cache->count == 0 || b <= cache->lo || a >= cache->hi)
    return;
  // Freeing an entry's data may drop entries derived from it, so rescan after each.
  for (size_t i = 0; i < cache->count;) {
    uintptr_t s = (uintptr_t)cache->entries[i].src;
    if (s < b && a < s + cache->entries[i].src_bytes) {
      void *data = cache->entries[i].data;
      cache->entries[i] = cache->entries[--cache->count];
      os_cuda_free(&cb->base, data);
      i = 0;
    } else {
      i++;
    }
  }
  if (cache->count == 0)
    cache->lo = cache->hi = 0;
}

// ----------------------------------------------------------------------------
// builders

// [Cout, Cin, 3] -> [Cout, 3, Cin]: row o is the three taps' input weights
// side by side, the A operand of the temporal convolution's single GEMM.
__global__ void
temporal_taps_kernel(os_cuda_view dst, os_cuda_view src, int cout, int cin)
{
  size_t n = (size_t)cout * cin;
  OS_CUDA_GRID_STRIDE(i, n)
  {
    size_t o = i / cin, ci = i % cin;
    for (int k = 0; k < 3; k++)
      os_store(dst, (o * 3 + k) * cin + ci, os_load(src, i * 3 + k));
  }
}

static void *
build(os_cuda_backend *cb, const float *src, size_t n, os_derived_kind kind, int cout, int cin)
{
  os_cuda_dtype type = os_cuda_storage_type(cb); // the operand type, as a stored type
  void *data = os_cuda_scratch(cb, n * os_cuda_dtype_size(type), "a converted weight");
  if (!data)
    return NULL;
  os_cuda_view from = os_cuda_view_of(cb, src), to = { data, type };
  switch (kind) {
  case OS_DERIVED_OPERAND:
    os_cuda_convert(cb, to, from, n);
    break;
  case OS_DERIVED_TEMPORAL_TAPS:
    temporal_taps_kernel<<<os_cuda_blocks((size_t)cout * cin), OS_CUDA_THREADS, 0, cb->stream>>>(
        to, from, cout, cin);
    os_cuda_check_launch(cb, "temporal_taps_kernel");
    break;
  }
  return data;
}

const void *
os_cuda_derived_get(os_cuda_backend *cb, const float *src, size_t n, os_derived_kind kind,
                    int cout, int cin)
{
  os_cuda_derived_cache *cache = cb->derived;
  for (size_t i = 0; i < cache->count; i++)
    if (cache->entries[i].src == src && cache->entries[i].kind == kind &&
        cache->entries[i].src_bytes == n * sizeof(float))
      return cache->entries[i].data;

  if (cache->count == cache->cap) {
    size_t cap = cache->cap ? cache->cap * 2 : 256;
    derived_entry *grown = (derived_entry *)realloc(cache->entries, cap * sizeof *grown);
    if (!grown) {
      os_cuda_latch(cb, ONESTEP_ERR_OUT_OF_MEMORY, "out of host memory caching a weight");
      return NULL;
    }
    cache->entries = grown;
    cache->cap = cap;
  }
  void *data = build(cb, src, n, kind, cout, cin);
  if (!data)
    return NULL;
  uintptr_t a = (uintptr_t)src, b = a + n * sizeof(float);
  if (cache->count == 0 || a < cache->lo)
    cache->lo = a;
  if (cache->count == 0 || b > cache->hi)
    cache->hi = b;
  cache->entries[cache->count++] = (derived_entry){ src, n * sizeof(float), kind, data };
  return data;
}
