/* philox.h: counter-based Gaussian noise, identical on every backend and
 * for any thread count (Philox4x32-10 + Box-Muller). */
#ifndef ONESTEP_PHILOX_H
#define ONESTEP_PHILOX_H

#include <stddef.h>
#include <stdint.h>

/* Named streams so that each use of noise is independent of the others. */
enum {
  OS_NOISE_IMAGE_AUG = 0,
  OS_NOISE_LATENTS = 1,
  OS_NOISE_STEP_BASE = 16, /* + step index, for samplers that draw fresh noise */
};

/* out[i] = the standard normal number at position offset + i of (seed, stream). */
void os_philox_normal(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

#endif
