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

/* One Philox4x32-10 block (Random123's philox4x32_10): out = bijection(ctr) under key. */
void os_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* out[i] = the standard normal number at position offset + i of (seed, stream). */
void os_philox_normal(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

/* out[i] = the uniform number in (0, 1) at position offset + i of (seed, stream). */
void os_philox_uniform(uint64_t seed, uint64_t stream, uint64_t offset, double *out, size_t n);

#endif
