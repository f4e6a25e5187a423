/* cpu_elementwise.c: activations and pointwise arithmetic, split over the
 * OpenMP workers by index. Arithmetic is plain loops the compiler vectorises;
 * activations use the explicit vectors of cpu_simd.h. */
#include "cpu_internal.h"

#include <stddef.h>

#include "cpu_simd.h"

void
os_cpu_fill(os_backend *be, float *dst, float value, size_t n)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    dst[i] = value;
}

/* The activations' vector loops, each over one span of a tensor. */
typedef void (*activation_span)(float *y, const float *x, size_t n);

OS_CPU_VECTOR_CLONES static void
silu_span(float *y, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i += OS_LANES)
    os_vf_store(y + i, os_vf_silu(os_vf_load(x + i, n - i)), n - i);
}

OS_CPU_VECTOR_CLONES static void
gelu_span(float *y, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i += OS_LANES)
    os_vf_store(y + i, os_vf_gelu(os_vf_load(x + i, n - i)), n - i);
}

/* x * sigmoid(1.702 x), with sigmoid as 1 / (1 + e^-z) like PyTorch. */
OS_CPU_VECTOR_CLONES static void
quick_gelu_span(float *y, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i += OS_LANES) {
    os_vf v = os_vf_load(x + i, n - i);
    os_vf_store(y + i, v * (1.0f / (1.0f + os_vf_exp(-1.702f * v))), n - i);
  }
}

/* Spans shared out to the workers; a multiple of OS_LANES. */
#define SPAN 16384

static void
apply_activation(os_backend *be, activation_span kernel, float *y, const float *x, size_t n)
{
  int n_threads = os_cpu_threads(be);
  size_t n_spans = (n + SPAN - 1) / SPAN;
#pragma omp parallel for num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t s = 0; s < n_spans; s++) {
    size_t start = s * SPAN;
    kernel(y + start, x + start, n - start < SPAN ? n - start : SPAN);
  }
}

void
os_cpu_silu(os_backend *be, float *y, const float *x, size_t n)
{
  apply_activation(be, silu_span, y, x, n);
}

void
os_cpu_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  apply_activation(be, gelu_span, y, x, n);
}

void
os_cpu_quick_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  apply_activation(be, quick_gelu_span, y, x, n);
}

/* out = hidden * gelu(gate) over one row of C. */
OS_CPU_VECTOR_CLONES static void
geglu_row(float *out, const float *hidden, const float *gate, int C)
{
  for (int c = 0; c < C; c += OS_LANES)
    os_vf_store(out + c, os_vf_load(hidden + c, C - c) * os_vf_gelu(os_vf_load(gate + c, C - c)),
                C - c);
}

void
os_cpu_geglu(os_backend *be, float *y, const float *x, int T, int C)
{
  int n_threads = os_cpu_threads(be);
  /* In place, output row t lands on input rows t/2..t: safe in increasing
   * row order only, so that case stays on one thread. */
  bool parallel = y != x && (size_t)T * C >= OS_CPU_PARALLEL_MIN;
#pragma omp parallel for num_threads(n_threads) if (parallel)
  for (int t = 0; t < T; t++)
    geglu_row(y + (size_t)t * C, x + (size_t)t * 2 * C, x + (size_t)t * 2 * C + C, C);
}

void
os_cpu_add(os_backend *be, float *y, const float *a, const float *b, size_t n)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

void
os_cpu_blend(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n)
{
  int n_threads = os_cpu_threads(be);
  float beta = 1.0f - alpha;
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = alpha * a[i] + beta * b[i];
}

void
os_cpu_scale(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = alpha * x[i];
}

void
os_cpu_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)G * R * C >= OS_CPU_PARALLEL_MIN)
  for (int gr = 0; gr < G * R; gr++) {
    const float *vg = v + (size_t)(gr / R) * C;
    float *row = x + (size_t)gr * C;
    for (int c = 0; c < C; c++)
      row[c] += vg[c];
  }
}

void
os_cpu_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int nc = 0; nc < N * C; nc++) {
    float value = v[nc];
    float *plane = x + (size_t)nc * P;
    for (int p = 0; p < P; p++)
      plane[p] += value;
  }
}
