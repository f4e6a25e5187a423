/* philox.c: Philox4x32-10 (Salmon et al., SC'11) and Box-Muller normals.
 *
 * Position p of (seed, stream) lives in block p / 4, lane p % 4: the counter
 * is (block lo, block hi, stream lo, stream hi) and the key is the seed. Lanes
 * (0,1) and (2,3) each form one Box-Muller pair, so every output depends only
 * on (seed, stream, p), whatever way a caller splits the range. */
#include "philox.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

static inline void
mul_hi_lo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
  uint64_t product = (uint64_t)a * b;
  *hi = (uint32_t)(product >> 32);
  *lo = (uint32_t)product;
}

void
os_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
  uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(PHILOX_M0, x0, &hi0, &lo0);
    mul_hi_lo(PHILOX_M1, x2, &hi1, &lo1);
    x0 = hi1 ^ x1 ^ k0;
    x1 = lo1;
    x2 = hi0 ^ x3 ^ k1;
    x3 = lo0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

/* Uniform in (0, 1), never 0 or 1, so log() below stays finite. */
static inline double
open_uniform(uint32_t bits)
{
  return ((double)bits + 0.5) * 0x1p-32;
}

static void
normal_block(uint64_t seed, uint64_t stream, uint64_t block, float z[4])
{
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                           (uint32_t)(stream >> 32)};
  uint32_t bits[4];
  os_philox4x32_10(ctr, key, bits);
  for (int pair = 0; pair < 2; pair++) {
    double radius = sqrt(-2.0 * log(open_uniform(bits[2 * pair])));
    double angle = 2.0 * M_PI * open_uniform(bits[2 * pair + 1]);
    z[2 * pair] = (float)(radius * cos(angle));
    z[2 * pair + 1] = (float)(radius * sin(angle));
  }
}

void
os_philox_normal(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n)
{
  size_t i = 0;
  while (i < n) {
    uint64_t position = offset + i;
    float z[4];
    normal_block(seed, stream, position / 4, z);
    for (unsigned lane = (unsigned)(position % 4); lane < 4 && i < n; lane++)
      out[i++] = z[lane];
  }
}

void
os_philox_uniform(uint64_t seed, uint64_t stream, uint64_t offset, double *out, size_t n)
{
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (size_t i = 0; i < n; i++) {
    uint64_t position = offset + i, block = position / 4;
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    uint32_t bits[4];
    os_philox4x32_10(ctr, key, bits);
    out[i] = open_uniform(bits[position % 4]);
  }
}
