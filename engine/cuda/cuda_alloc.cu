// cuda_alloc.cu: a caching allocator for device memory.
//
// Model code allocates and frees activations layer by layer; cudaMalloc and
// cudaFree are slow and cudaFree synchronizes the device, so freed blocks are
// kept in a size-sorted free list and handed out again (best fit, at most 1/8
// larger than asked). All users run on one stream, so a block freed after
// queuing work that reads it can be reused at once: later work is ordered
// after that read. When cudaMalloc fails the cache is released and the
// allocation retried once; after that alloc returns NULL.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"

typedef struct {
  void *ptr;
  size_t size;
} pool_block;

struct os_cuda_pool {
  // Live blocks: an open-addressing hash map from pointer to block size.
  pool_block *live;
  size_t live_cap, live_count;
  // Cached free blocks, sorted by size.
  pool_block *cached;
  size_t cached_count, cached_cap, cached_bytes;
};

// Small requests round to 512 bytes, large ones to 64 KiB, so that the same
// activation shapes map to the same block sizes.
static size_t
round_size(size_t bytes)
{
  size_t granule = bytes < ((size_t)1 << 20) ? 512 : ((size_t)64 << 10);
  if (bytes == 0)
    bytes = 1;
  return (bytes + granule - 1) / granule * granule;
}

// ----------------------------------------------------------------------------
// live map

static size_t
slot_of(const os_cuda_pool *pool, const void *ptr)
{
  uint64_t h = (uint64_t)(uintptr_t)ptr >> 9;
  h *= 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20) & (pool->live_cap - 1);
}

static bool
live_insert(os_cuda_pool *pool, void *ptr, size_t size)
{
  if ((pool->live_count + 1) * 2 > pool->live_cap) {
    size_t old_cap = pool->live_cap;
    pool_block *old = pool->live;
    size_t cap = old_cap ? old_cap * 2 : 1024;
    pool_block *grown = (pool_block *)calloc(cap, sizeof *grown);
    if (!grown)
      return false;
    pool->live = grown;
    pool->live_cap = cap;
    pool->live_count = 0;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].ptr)
        live_insert(pool, old[i].ptr, old[i].size);
    free(old);
  }
  size_t i = slot_of(pool, ptr);
  while (pool->live[i].ptr)
    i = (i + 1) & (pool->live_cap - 1);
  pool->live[i].ptr = ptr;
  pool->live[i].size = size;
  pool->live_count++;
  return true;
}

static size_t
live_find(const os_cuda_pool *pool, const void *ptr)
{
  if (!pool->live_cap)
    return SIZE_MAX;
  for (size_t i = slot_of(pool, ptr); pool->live[i].ptr; i = (i + 1) & (pool->live_cap - 1))
    if (pool->live[i].ptr == ptr)
      return i;
  return SIZE_MAX;
}

// Removes slot i, shifting later members of its probe run back (no tombstones).
static void
live_remove(os_cuda_pool *pool, size_t i)
{
  size_t mask = pool->live_cap - 1;
  size_t hole = i;
  for (size_t j = (i + 1) & mask; pool->live[j].ptr; j = (j + 1) & mask) {
    size_t home = slot_of(pool, pool->live[j].ptr);
    // Move j into the hole unless its home lies cyclically in (hole, j].
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      pool->live[hole] = pool->live[j];
      hole = j;
    }
  }
  pool->live[hole].ptr = NULL;
  pool->live[hole].size = 0;
  pool->live_count--;
}

// ----------------------------------------------------------------------------
// cache of free blocks

static size_t
cached_lower_bound(const os_cuda_pool *pool, size_t size)
{
  size_t lo = 0, hi = pool->cached_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (pool->cached[mid].size < size)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static bool
cache_put(os_cuda_pool *pool, void *ptr, size_t size)
{
  if (pool->cached_count == pool->cached_cap) {
    size_t cap = pool->cached_cap ? pool->cached_cap * 2 : 256;
    pool_block *grown = (pool_block *)realloc(pool->cached, cap * sizeof *grown);
    if (!grown)
      return false;
    pool->cached = grown;
    pool->cached_cap = cap;
  }
  size_t at = cached_lower_bound(pool, size);
  memmove(pool->cached + at + 1, pool->cached + at,
          (pool->cached_count - at) * sizeof *pool->cached);
  pool->cached[at].ptr = ptr;
  pool->cached[at].size = size;
  pool->cached_count++;
  pool->cached_bytes += size;
  return true;
}

static void *
cache_take(os_cuda_pool *pool, size_t size, size_t *got)
{
  size_t at = cached_lower_bound(pool, size);
  if (at == pool->cached_count || pool->cached[at].size > size + size / 8)
    return NULL;
  void *ptr = pool->cached[at].ptr;
  *got = pool->cached[at].size;
  memmove(pool->cached + at, pool->cached + at + 1,
          (pool->cached_count - at - 1) * sizeof *pool->cached);
  pool->cached_count--;
  pool->cached_bytes -= *got;
  return ptr;
}

static void
cache_release(os_cuda_pool *pool)
{
  for (size_t i = 0; i < pool->cached_count; i++)
    cudaFree(pool->cached[i].ptr);
  pool->cached_count = 0;
  pool->cached_bytes = 0;
}

// ----------------------------------------------------------------------------
// the allocator

os_cuda_pool *
os_cuda_pool_new(void)
{
  return (os_cuda_pool *)calloc(1, sizeof(os_cuda_pool));
}

void
os_cuda_pool_free_all(os_cuda_pool *pool)
{
  cache_release(pool);
  for (size_t i = 0; i < pool->live_cap; i++)
    if (pool->live[i].ptr)
      cudaFree(pool->live[i].ptr);
  free(pool->live);
  free(pool->cached);
  free(pool);
}

void *
os_cuda_alloc(os_backend *be, size_t bytes)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_pool *pool = cb->pool;
  size_t size = round_size(bytes);
  void *ptr = cache_take(pool, size, &size); // size: the cached block's, when one fits
  if (!ptr) {
    if (cudaMalloc(&ptr, size) != cudaSuccess) {
      cudaGetLastError(); // out of memory is not sticky: clear it
      cache_release(pool);
      if (cudaMalloc(&ptr, size) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
      }
    }
  }
  if (!live_insert(pool, ptr, size)) {
    cudaFree(ptr);
    return NULL;
  }
  be->bytes_in_use += size;
  if (be->bytes_in_use > be->peak_bytes)
    be->peak_bytes = be->bytes_in_use;
  return ptr;
}

void *
os_cuda_alloc_as(os_backend *be, size_t n, os_storage storage)
{
  (void)storage;
  if (n > SIZE_MAX / sizeof(float))
    return NULL;
  return os_cuda_alloc(be, n * sizeof(float));
}

os_cuda_view
os_cuda_view_of(os_cuda_backend *cb, const float *p)
{
  (void)cb;
  return os_cuda_view{ (void *)p, OS_CUDA_STORE_F32 };
}

void
os_cuda_free(os_backend *be, void *ptr)
{
  os_cuda_backend *cb = os_cuda(be);
  if (!ptr)
    return;
  size_t slot = live_find(cb->pool, ptr);
  if (slot == SIZE_MAX) {
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "CUDA free of %p, which the backend did not allocate",
                  ptr);
    return;
  }
  size_t size = cb->pool->live[slot].size;
  live_remove(cb->pool, slot);
  be->bytes_in_use -= size;
  os_cuda_derived_invalidate(cb, ptr, size);
  if (!cache_put(cb->pool, ptr, size)) {
    cudaStreamSynchronize(cb->stream); // queued work may still read it
    cudaFree(ptr);
  }
}

void *
os_cuda_scratch(os_cuda_backend *cb, size_t bytes, const char *what)
{
  void *ptr = os_cuda_alloc(&cb->base, bytes);
  if (!ptr)
    os_cuda_latch(cb, ONESTEP_ERR_OUT_OF_MEMORY, "out of GPU memory for %s (%.1f MiB)", what,
                  bytes / (1024.0 * 1024.0));
  return ptr;
}
