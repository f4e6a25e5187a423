/* cpu_simd.h: 8-wide float vectors (GCC/Clang vector extensions: AVX on
 * x86-64 where enabled, pairs of SSE or NEON registers otherwise) for the
 * transcendental loops that the compiler will not vectorise by itself, plus
 * fixed-order reductions. */
#ifndef ONESTEP_CPU_SIMD_H
#define ONESTEP_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* These 32-byte vectors only pass between static functions of one file, so
 * GCC's note that their calling convention differs with AVX is moot (for the
 * rest of each file that includes this private header). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define OS_LANES 8
typedef float os_vf __attribute__((vector_size(4 * OS_LANES)));
typedef int32_t os_vi __attribute__((vector_size(4 * OS_LANES)));

/* Functions holding the hot vector loops are compiled twice, for AVX2 and
 * for the x86-64 baseline, and the loader picks the one the CPU supports.
 * Both give identical results: the same IEEE operations, and ISO C mode
 * never fuses a multiply and an add. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OS_CPU_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define OS_CPU_VECTOR_CLONES
#endif

/* Loads min(OS_LANES, left) floats, zero-filling the rest; stores likewise. The
 * fixed-size memcpy compiles to one unaligned vector move; the tail goes
 * through a small array so the vector itself never spills to memory. */
static inline os_vf
os_vf_load(const float *p, size_t left)
{
  os_vf v;
  if (left >= OS_LANES) {
    memcpy(&v, p, sizeof v);
  } else {
    float lanes[OS_LANES] = { 0.0f };
    memcpy(lanes, p, sizeof(float) * left);
    memcpy(&v, lanes, sizeof v);
  }
  return v;
}

static inline void
os_vf_store(float *p, os_vf v, size_t left)
{
  if (left >= OS_LANES) {
    memcpy(p, &v, sizeof v);
  } else {
    float lanes[OS_LANES];
    memcpy(lanes, &v, sizeof v);
    memcpy(p, lanes, sizeof(float) * left);
  }
}

static inline os_vf
os_vf_splat(float x)
{
  return (os_vf){ 0.0f } + x;
}

/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros). */
static inline os_vf
os_vf_select(os_vi mask, os_vf a, os_vf b)
{
  return (os_vf)(((os_vi)a & mask) | ((os_vi)b & ~mask));
}

/* e^x to about 1 ulp (Cephes' expf: Cody-Waite reduction by ln 2, then a
 * degree-6 polynomial). Inputs are clamped to the normal range: below -87.3
 * it gives ~1e-38 instead of 0, which no float sum can tell apart. */
static inline os_vf
os_vf_exp(os_vf x)
{
  x = os_vf_select(x < 88.7f, x, os_vf_splat(88.7f));
  x = os_vf_select(x > -87.3f, x, os_vf_splat(-87.3f));
  /* x / ln 2 rounded to the nearest integer by the 1.5 * 2^23 trick. */
  os_vf n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  os_vf r = x - n * 0.693359375f - n * -2.12194440e-4f;
  os_vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  os_vi exponent = (__builtin_convertvector(n, os_vi) + 127) << 23;
  return p * (os_vf)exponent;
}

/* erfc(z) for z >= 0 with relative error below ~2e-7 everywhere: the
 * Chebyshev fit erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), from
 * Numerical Recipes (section 6.2). */
static inline os_vf
os_vf_erfc_nonnegative(os_vf z)
{
  os_vf t = 1.0f / (1.0f + 0.5f * z);
  os_vf p = t * 0.17087277f - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * os_vf_exp(p - z * z);
}

/* GELU with erf, 0.5 x (1 + erf(x / sqrt 2)), written as 0.5 x erfc(-x / sqrt 2)
 * so that negative x, where 1 + erf cancels, keeps its relative accuracy. */
static inline os_vf
os_vf_gelu(os_vf x)
{
  os_vi sign = (os_vi)x & (int32_t)0x80000000;
  os_vf z = (os_vf)((os_vi)x ^ sign) * 0.70710678118654752f; /* |x| / sqrt 2 */
  os_vf tail = os_vf_erfc_nonnegative(z);                    /* erfc(|x| / sqrt 2) */
  return 0.5f * x * os_vf_select(sign != 0, tail, 2.0f - tail);
}

/* x * sigmoid(x), written as PyTorch's CPU kernel computes it. */
static inline os_vf
os_vf_silu(os_vf x)
{
  return x / (1.0f + os_vf_exp(-x));
}

/* Sum of the lanes as a tree (halves, then quarters, then pairs): a fixed
 * order with a short dependency chain. */
static inline float
os_vf_sum(os_vf v)
{
  float l[OS_LANES];
  memcpy(l, &v, sizeof l);
  _Static_assert(OS_LANES == 8, "the tree below adds eight lanes");
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* The scalar forms: lane 0 of the vector ones, so results never depend on
 * whether an element fell in a vector or in a loop's tail. */
static inline float
os_cpu_exp(float x)
{
  return os_vf_exp(os_vf_splat(x))[0];
}

/* Largest of n >= 1 floats. */
static inline float
os_cpu_max(const float *x, size_t n)
{
  float max = x[0];
  size_t i = 0;
  if (n >= OS_LANES) {
    os_vf lanes = os_vf_load(x, OS_LANES);
    for (i = OS_LANES; i + OS_LANES <= n; i += OS_LANES) {
      os_vf v = os_vf_load(x + i, OS_LANES);
      lanes = os_vf_select(v > lanes, v, lanes);
    }
    max = lanes[0];
    for (int j = 1; j < OS_LANES; j++)
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
