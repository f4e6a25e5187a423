// cuda_alloc.cu: a caching allocator for device memory.
//
// Model code allocates and frees activations layer by layer; cudaMalloc and
// cudaFree are slow and cudaFree synchronizes the device, so freed blocks are
// kept in a size-sorted free list and handed out again (best fit, at most 1/8
// larger than asked). All users run on one stream, so a block freed after
// queuing work that reads it can be reused at once: later work is ordered
// after that read. When cudaMalloc fails the cache is released and the
// allocation retried once; after that alloc returns NULL.
//
// 16-bit blocks (alloc_as in fp16/bf16 mode) are pool blocks too, each with a
// handle: an address range reserved with mmap(PROT_NONE), twice the block's
// size (4 bytes per element), that model code addresses in elements as if it
// held floats. Nothing can be mapped there, and under unified addressing the
// driver reserves device allocations in the same address space, so a handle
// never equals or contains a device pointer. A handle stays with its device
// block through the cache, so reusing a block costs no system call. Live
// 16-bit blocks are kept sorted by handle for os_cuda_view_of's binary search.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cuda_common.h"

typedef struct {
  void *ptr;    // device memory
  size_t size;  // bytes of it
  void *handle; // the reserved range of 2 * size bytes that has addressed it, or NULL
} pool_block;

// A live 16-bit block: element i of [handle, handle + 2 * size) is at real + 2 i.
typedef struct {
  uintptr_t handle;
  size_t size;
  void *real;
} handle_block;

struct os_cuda_pool {
  // Live blocks: an open-addressing hash map from device pointer to block.
  pool_block *live;
  size_t live_cap, live_count;
  // Cached free blocks, sorted by size.
  pool_block *cached;
  size_t cached_count, cached_cap, cached_bytes;
  // Live 16-bit blocks, sorted by handle (disjoint ranges).
  handle_block *handles;
  size_t handle_count, handle_cap;
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
live_insert(os_cuda_pool *pool, pool_block block)
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
        live_insert(pool, old[i]);
    free(old);
  }
  size_t i = slot_of(pool, block.ptr);
  while (pool->live[i].ptr)
    i = (i + 1) & (pool->live_cap - 1);
  pool->live[i] = block;
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
  pool->live[hole] = pool_block{ NULL, 0, NULL };
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
cache_put(os_cuda_pool *pool, pool_block block)
{
  if (pool->cached_count == pool->cached_cap) {
    size_t cap = pool->cached_cap ? pool->cached_cap * 2 : 256;
    pool_block *grown = (pool_block *)realloc(pool->cached, cap * sizeof *grown);
    if (!grown)
      return false;
    pool->cached = grown;
    pool->cached_cap = cap;
  }
  size_t at = cached_lower_bound(pool, block.size);
  memmove(pool->cached + at + 1, pool->cached + at,
          (pool->cached_count - at) * sizeof *pool->cached);
  pool->cached[at] = block;
  pool->cached_count++;
  pool->cached_bytes += block.size;
  return true;
}

// A cached block of `size` to at most 1/8 more, removed from the cache.
static bool
cache_take(os_cuda_pool *pool, size_t size, pool_block *got)
{
  size_t at = cached_lower_bound(pool, size);
  if (at == pool->cached_count || pool->cached[at].size > size + size / 8)
    return false;
  *got = pool->cached[at];
  memmove(pool->cached + at, pool->cached + at + 1,
          (pool->cached_count - at - 1) * sizeof *pool->cached);
  pool->cached_count--;
  pool->cached_bytes -= got->size;
  return true;
}

// Returns a block's device memory and its handle's address range.
static void
release_block(pool_block block)
{
  cudaFree(block.ptr);
  if (block.handle)
    munmap(block.handle, 2 * block.size);
}

static void
cache_release(os_cuda_pool *pool)
{
  for (size_t i = 0; i < pool->cached_count; i++)
    release_block(pool->cached[i]);
  pool->cached_count = 0;
  pool->cached_bytes = 0;
}

// ----------------------------------------------------------------------------
// handles of live 16-bit blocks

// The index of the first block whose handle lies above `address`.
static size_t
handle_upper_bound(const os_cuda_pool *pool, uintptr_t address)
{
  size_t lo = 0, hi = pool->handle_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (pool->handles[mid].handle <= address)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// The block whose handle range contains `address`, or NULL.
static const handle_block *
handle_containing(const os_cuda_pool *pool, uintptr_t address)
{
  size_t at = handle_upper_bound(pool, address);
  if (at == 0)
    return NULL;
  const handle_block *block = &pool->handles[at - 1];
  return address - block->handle < 2 * block->size ? block : NULL;
}

static bool
handle_insert(os_cuda_pool *pool, handle_block block)
{
  if (pool->handle_count == pool->handle_cap) {
    size_t cap = pool->handle_cap ? pool->handle_cap * 2 : 256;
    handle_block *grown = (handle_block *)realloc(pool->handles, cap * sizeof *grown);
    if (!grown)
      return false;
    pool->handles = grown;
    pool->handle_cap = cap;
  }
  size_t at = handle_upper_bound(pool, block.handle);
  memmove(pool->handles + at + 1, pool->handles + at,
          (pool->handle_count - at) * sizeof *pool->handles);
  pool->handles[at] = block;
  pool->handle_count++;
  return true;
}

// The index of the block whose handle starts at ptr, or SIZE_MAX.
static size_t
handle_index(const os_cuda_pool *pool, const void *ptr)
{
  size_t at = handle_upper_bound(pool, (uintptr_t)ptr);
  return at > 0 && pool->handles[at - 1].handle == (uintptr_t)ptr ? at - 1 : SIZE_MAX;
}

static void
handle_remove(os_cuda_pool *pool, size_t index)
{
  memmove(pool->handles + index, pool->handles + index + 1,
          (pool->handle_count - index - 1) * sizeof *pool->handles);
  pool->handle_count--;
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
      release_block(pool->live[i]);
  free(pool->live);
  free(pool->cached);
  free(pool->handles);
  free(pool);
}

// A block of at least `bytes` from the cache, else from cudaMalloc (after
// releasing the cache if the device is full); false when the device is full.
static bool
take_block(os_cuda_pool *pool, size_t bytes, pool_block *block)
{
  size_t size = round_size(bytes);
  if (cache_take(pool, size, block))
    return true;
  *block = pool_block{ NULL, size, NULL };
  if (cudaMalloc(&block->ptr, size) == cudaSuccess)
    return true;
  cudaGetLastError(); // out of memory is not sticky: clear it
  cache_release(pool);
  if (cudaMalloc(&block->ptr, size) == cudaSuccess)
    return true;
  cudaGetLastError();
  return false;
}

// Registers a taken block as live and counts it; false (block released) when
// the host is out of memory.
static bool
make_live(os_backend *be, os_cuda_pool *pool, pool_block block)
{
  if (!live_insert(pool, block)) {
    release_block(block);
    return false;
  }
  be->bytes_in_use += block.size;
  if (be->bytes_in_use > be->peak_bytes)
    be->peak_bytes = be->bytes_in_use;
  return true;
}

void *
os_cuda_alloc(os_backend *be, size_t bytes)
{
  os_cuda_pool *pool = os_cuda(be)->pool;
  pool_block block;
  if (!take_block(pool, bytes, &block) || !make_live(be, pool, block))
    return NULL;
  return block.ptr;
}

// n 16-bit elements behind a handle of 4 n bytes.
static void *
alloc_16bit(os_backend *be, size_t n)
{
  os_cuda_pool *pool = os_cuda(be)->pool;
  pool_block block;
  if (!take_block(pool, 2 * n, &block))
    return NULL;
  if (!block.handle) {
    void *range = mmap(NULL, 2 * block.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    if (range == MAP_FAILED) {
      release_block(block);
      return NULL;
    }
    block.handle = range;
  }
  if (!handle_insert(pool, handle_block{ (uintptr_t)block.handle, block.size, block.ptr })) {
    release_block(block);
    return NULL;
  }
  if (!make_live(be, pool, block)) {
    handle_remove(pool, handle_index(pool, block.handle));
    return NULL;
  }
  return block.handle;
}

void *
os_cuda_alloc_as(os_backend *be, size_t n, os_storage storage)
{
  os_cuda_backend *cb = os_cuda(be);
  if (n > SIZE_MAX / sizeof(float))
    return NULL;
  if (storage == OS_STORAGE_FP32 || os_cuda_storage_type(cb) == OS_CUDA_STORE_F32)
    return os_cuda_alloc(be, n * sizeof(float));
  return alloc_16bit(be, n);
}

os_cuda_view
os_cuda_view_of(os_cuda_backend *cb, const float *p)
{
  const os_cuda_pool *pool = cb->pool;
  uintptr_t address = (uintptr_t)p;
  // Fast path: no 16-bit block, or p outside all of their handles.
  if (pool->handle_count == 0 || address < pool->handles[0].handle)
    return os_cuda_view{ (void *)p, OS_CUDA_STORE_F32 };
  const handle_block *block = handle_containing(pool, address);
  if (!block)
    return os_cuda_view{ (void *)p, OS_CUDA_STORE_F32 };
  size_t element = (address - block->handle) / sizeof(float);
  return os_cuda_view{ (char *)block->real + 2 * element, os_cuda_storage_type(cb) };
}

bool
os_cuda_has_16bit_buffers(const os_cuda_backend *cb)
{
  return cb->pool->handle_count > 0;
}

void
os_cuda_free(os_backend *be, void *ptr)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_pool *pool = cb->pool;
  if (!ptr)
    return;
  // A 16-bit block is freed through its handle; its device pointer is the key below.
  size_t index = handle_index(pool, ptr);
  bool is_handle = index != SIZE_MAX;
  void *real = is_handle ? pool->handles[index].real : ptr;
  size_t slot = live_find(pool, real);
  if (slot == SIZE_MAX) {
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "CUDA free of %p, which the backend did not allocate",
                  ptr);
    return;
  }
  if (is_handle)
    handle_remove(pool, index);
  pool_block block = pool->live[slot];
  live_remove(pool, slot);
  be->bytes_in_use -= block.size;
  // Derived copies are keyed by the pointer model code used: the handle's range.
  os_cuda_derived_invalidate(cb, ptr, is_handle ? 2 * block.size : block.size);
  if (!cache_put(pool, block)) {
    cudaStreamSynchronize(cb->stream); // queued work may still read it
    release_block(block);
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
