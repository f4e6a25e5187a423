/* cpu_simd.h: 4-wide float vectors (GCC/Clang vector extensions, so the
 * same code becomes SSE on x86-64 and NEON on ARM) for the transcendental
 * loops that the compiler will not vectorise by itself, plus a fixed-order
 * double-precision sum. */
#ifndef ONESTEP_CPU_SIMD_H
#define ONESTEP_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float os_f4 __attribute__((vector_size(16)));
typedef int32_t os_i4 __attribute__((vector_size(16)));

/* Loads min(4, left) floats, zero-filling the rest; stores likewise. The
 * fixed-size memcpy compiles to one unaligned vector move; the tail goes
 * through a small array so the vector itself never spills to memory. */
static inline os_f4
os_f4_load(const float *p, size_t left)
{
  os_f4 v;
  if (left >= 4) {
    memcpy(&v, p, sizeof v);
  } else {
    float lanes[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    memcpy(lanes, p, sizeof(float) * left);
    memcpy(&v, lanes, sizeof v);
  }
  return v;
}

static inline void
os_f4_store(float *p, os_f4 v, size_t left)
{
  if (left >= 4) {
    memcpy(p, &v, sizeof v);
  } else {
    float lanes[4];
    memcpy(lanes, &v, sizeof v);
    memcpy(p, lanes, sizeof(float) * left);
  }
}

static inline os_f4
os_f4_splat(float x)
{
  return (os_f4){ x, x, x, x };
}

/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros). */
static inline os_f4
os_f4_select(os_i4 mask, os_f4 a, os_f4 b)
{
  return (os_f4)(((os_i4)a & mask) | ((os_i4)b & ~mask));
}

/* e^x to about 1 ulp (Cephes' expf: Cody-Waite reduction by ln 2, then a
 * degree-6 polynomial). Inputs are clamped to the normal range: below -87.3
 * it gives ~1e-38 instead of 0, which no float sum can tell apart. */
static inline os_f4
os_f4_exp(os_f4 x)
{
  x = os_f4_select(x < 88.7f, x, os_f4_splat(88.7f));
  x = os_f4_select(x > -87.3f, x, os_f4_splat(-87.3f));
  /* x / ln 2 rounded to the nearest integer by the 1.5 * 2^23 trick. */
  os_f4 n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  os_f4 r = x - n * 0.693359375f - n * -2.12194440e-4f;
  os_f4 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  os_i4 exponent = (__builtin_convertvector(n, os_i4) + 127) << 23;
  return p * (os_f4)exponent;
}

/* erfc(z) for z >= 0 with relative error below ~2e-7 everywhere: the
 * Chebyshev fit erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), from
 * Numerical Recipes (section 6.2). */
static inline os_f4
os_f4_erfc_nonnegative(os_f4 z)
{
  os_f4 t = 1.0f / (1.0f + 0.5f * z);
  os_f4 p = t * 0.17087277f - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * os_f4_exp(p - z * z);
}

/* GELU with erf, 0.5 x (1 + erf(x / sqrt 2)), written as 0.5 x erfc(-x / sqrt 2)
 * so that negative x, where 1 + erf cancels, keeps its relative accuracy. */
static inline os_f4
os_f4_gelu(os_f4 x)
{
  os_i4 sign = (os_i4)x & (int32_t)0x80000000;
  os_f4 z = (os_f4)((os_i4)x ^ sign) * 0.70710678118654752f; /* |x| / sqrt 2 */
  os_f4 tail = os_f4_erfc_nonnegative(z);                    /* erfc(|x| / sqrt 2) */
  return 0.5f * x * os_f4_select(sign != 0, tail, 2.0f - tail);
}

/* x * sigmoid(x), written as PyTorch's CPU kernel computes it. */
static inline os_f4
os_f4_silu(os_f4 x)
{
  return x / (1.0f + os_f4_exp(-x));
}

/* The scalar forms: lane 0 of the vector ones, so results never depend on
 * whether an element fell in a vector or in a loop's tail. */
static inline float
os_cpu_exp(float x)
{
  return os_f4_exp(os_f4_splat(x))[0];
}

/* Largest of n >= 1 floats. */
static inline float
os_cpu_max(const float *x, size_t n)
{
  float max = x[0];
  size_t i = 0;
  if (n >= 4) {
    os_f4 lanes = os_f4_load(x, 4);
    for (i = 4; i + 4 <= n; i += 4) {
      os_f4 v = os_f4_load(x + i, 4);
      lanes = os_f4_select(v > lanes, v, lanes);
    }
    max = lanes[0];
    for (int j = 1; j < 4; j++)
      max = lanes[j] > max ? lanes[j] : max;
  }
  for (; i < n; i++)
    max = x[i] > max ? x[i] : max;
  return max;
}

/* Sum of n floats in double, in a fixed order (independent partial sums,
 * which the compiler can vectorise without reassociating anything). */
static inline double
os_cpu_sum(const float *x, size_t n)
{
  double lane[8] = { 0 };
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++)
      lane[j] += x[i + j];
  double total = 0.0;
  for (; i < n; i++)
    total += x[i];
  for (int j = 0; j < 8; j++)
    total += lane[j];
  return total;
}

#endif
