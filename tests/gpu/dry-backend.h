/* dry-backend.h: a backend that computes nothing, for measuring the engine's
 * own device memory at full size in seconds.
 *
 * alloc hands out untouched address space (mmap with MAP_NORESERVE: nothing
 * becomes resident) and counts bytes_in_use/peak_bytes as the CPU backend
 * does (the bytes asked for); every op does nothing but check its buffers: each
 * must lie wholly inside one live allocation or an allowed host range (the
 * weights), and an output may not overlap an input unless backend.h allows
 * it (exactly in place). A use after free, an overrun or a forbidden alias
 * thus shows up at full size without computing anything. is_host is true so
 * that weights bind zero-copy from host memory. Blocks count 4 bytes per
 * element, or 2 for ACTIVATION and WEIGHT blocks in a 16-bit precision
 * (bench_dry_backend_set_precision), as the CUDA backend stores them; the
 * address space behind each stays 4 bytes per element, as buffers are
 * addressed. */
#ifndef BENCH_DRY_BACKEND_H
#define BENCH_DRY_BACKEND_H

#include <stddef.h>

#include "backend.h"

os_backend *bench_dry_backend_new(void);

/* The precision whose storage sizes bytes_in_use and peak_bytes count (fp32
 * until set; fp16 and bf16: 2 bytes per activation and weight element). */
void bench_dry_backend_set_precision(os_backend *be, onestep_precision precision);

/* Host memory that ops may read (the weight pool). */
void bench_dry_backend_allow_host(os_backend *be, const void *start, size_t bytes);

/* Live allocations right now (0 after a piece that frees what it allocates). */
size_t bench_dry_backend_live_blocks(const os_backend *be);

/* The sizes of the blocks that were live at the last new peak (in no order). */
size_t bench_dry_backend_blocks_at_peak(const os_backend *be, const size_t **sizes);

/* alloc calls so far; the one numbered `index` (counting from 0 at creation)
 * returns NULL, as out of memory: SIZE_MAX for none (the default). */
size_t bench_dry_backend_allocations(const os_backend *be);
void bench_dry_backend_fail_allocation(os_backend *be, size_t index);

/* Buffer checks that failed so far; the first one's description in *first. */
size_t bench_dry_backend_violations(const os_backend *be, const char **first);

#endif
