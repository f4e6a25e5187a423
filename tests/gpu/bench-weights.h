/* bench-weights.h: random weights for the benchmark, created on demand.
 *
 * bench-gpu is linked with -Wl,--wrap=os_weights_take: every tensor the model
 * code asks for is first registered, with exactly the requested name and
 * shape, cut from one pool of random values. The bench thus needs no copy of
 * the models' naming rules, and can also write the tensors out as a model
 * folder for the end-to-end pipeline run. */
#ifndef BENCH_WEIGHTS_H
#define BENCH_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"
#include "weights.h"

/* Fills the random pool; call once before binding models. */
void bench_weights_init(void);

/* The pool's host memory, which every synthesised tensor points into. */
void bench_weights_pool(const void **start, size_t *bytes);

/* A weight set whose missing tensors are synthesised; `scaled` applies the
 * usual 1/sqrt(fan_in) to matrices at upload (off for the zero-copy
 * --bind-only check on the CPU). */
os_weight_set *bench_weight_set(const char *component, os_backend *be, bool scaled);

/* Number of tensors synthesised so far: bind one model between two calls to
 * get its range. */
int bench_weights_count(void);

/* Device bytes of tensors [first, last) as the weight loader stores them in
 * a 16-bit precision: matrices and kernels (2+ dims) at 2 bytes per value,
 * vectors in float32 (engine/core/weights.c). */
size_t bench_weights_device_bytes_16bit(int first, int last);

/* Writes tensors [first, last) (scaled) as an F32 safetensors file. */
onestep_status bench_weights_write(const char *path, int first, int last, onestep_error *error);

#endif
