/* cpu_rounding.c: the GPU's 16-bit (and tf32) operand rounding, reproduced on
 * the CPU.
 *
 * In fp16, bf16 and tf32 mode the CUDA backend rounds the operands of its
 * matrix products to the narrower type and accumulates in fp32. The CPU backend
 * can round the same operands before its fp32 products, so the numerical effect
 * of a precision on a whole model can be studied (and tested) where there is
 * no GPU. It only ever makes results less exact and slower: it is a tool for
 * checking the mixed-precision design, not a speed setting. */
#include "cpu_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t
float_bits(float f)
{
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float
bits_float(uint32_t u)
{
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Keeps the top 32 - dropped bits; ties to even (bf16, like __float2bfloat16)
 * or away from zero (tf32, like cvt.rna.tf32.f32). NaN and infinity pass. */
static inline float
round_mantissa(float x, int dropped, bool ties_even)
{
  uint32_t u = float_bits(x);
  if ((u & 0x7F800000u) == 0x7F800000u)
    return x;
  uint32_t half = 1u << (dropped - 1);
  uint32_t bias = ties_even ? half - 1 + ((u >> dropped) & 1u) : half;
  u += bias;
  return bits_float(u & ~((1u << dropped) - 1));
}

float
os_cpu_round_to_precision(float x, onestep_precision precision)
{
  switch (precision) {
  case ONESTEP_PRECISION_FP16:
    return (float)(_Float16)x; /* ties to even, overflow to infinity: __float2half_rn */
  case ONESTEP_PRECISION_BF16:
    return round_mantissa(x, 16, true);
  case ONESTEP_PRECISION_TF32:
    return round_mantissa(x, 13, false);
  default:
    return x;
  }
}

const float *
os_cpu_rounded_operand(os_backend *be, const float *src, size_t n, float **owned)
{
  *owned = NULL;
  onestep_precision precision = ((os_cpu_backend *)be)->operand_precision;
  if (precision == ONESTEP_PRECISION_FP32 || precision == ONESTEP_PRECISION_AUTO || !src || !n)
    return src;
  float *copy = os_cpu_scratch(be, sizeof(float) * n);
  if (!copy)
    return NULL;
#pragma omp parallel for num_threads(os_cpu_threads(be)) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    copy[i] = os_cpu_round_to_precision(src[i], precision);
  *owned = copy;
  return copy;
}

size_t
os_cpu_matrix_extent(bool transposed, int rows, int cols, int ld, int64_t stride, int batch)
{
  /* stored [rows, cols], or [cols, rows] when transposed, rows ld apart */
  int stored_rows = transposed ? cols : rows, stored_cols = transposed ? rows : cols;
  if (stored_rows <= 0 || stored_cols <= 0 || batch <= 0)
    return 0;
  return (size_t)(batch - 1) * (size_t)stride + (size_t)(stored_rows - 1) * ld + stored_cols;
}

void
os_backend_cpu_set_operand_precision(os_backend *be, onestep_precision precision)
{
  ((os_cpu_backend *)be)->operand_precision = precision;
}
