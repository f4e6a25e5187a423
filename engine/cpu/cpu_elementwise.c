/* cpu_elementwise.c: activations and pointwise arithmetic, split over the
 * OpenMP workers by index. Arithmetic is plain loops the compiler vectorises;
 * activations use the explicit vectors of cpu_simd.h. The forwards run at
 * full resolution over many frames (hundreds of millions of values): they go
 * in units of work, with abort polls between them. */
#include "cpu_internal.h"

#include <stddef.h>
#include <stdlib.h>

#include "cpu_simd.h"

void
os_cpu_fill(os_backend *be, float *dst, float value, size_t n)
{
  int n_threads = os_cpu_threads(be);
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0; os_cpu_next_unit(&progress, n, OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for simd num_threads(n_threads) if (end - first >= OS_CPU_PARALLEL_MIN)
    for (int64_t i = first; i < end; i++)
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
  int64_t n_spans = (n + SPAN - 1) / SPAN;
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0;
       os_cpu_next_unit(&progress, n_spans, 3.0 * SPAN * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
    for (int64_t s = first; s < end; s++) {
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
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0;
       os_cpu_next_unit(&progress, n, 3.0 * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for simd num_threads(n_threads) if (end - first >= OS_CPU_PARALLEL_MIN)
    for (int64_t i = first; i < end; i++)
      y[i] = a[i] + b[i];
}

void
os_cpu_blend(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n)
{
  int n_threads = os_cpu_threads(be);
  float beta = 1.0f - alpha;
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0;
       os_cpu_next_unit(&progress, n, 3.0 * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for simd num_threads(n_threads) if (end - first >= OS_CPU_PARALLEL_MIN)
    for (int64_t i = first; i < end; i++)
      y[i] = alpha * a[i] + beta * b[i];
}

void
os_cpu_scale(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  int n_threads = os_cpu_threads(be);
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0;
       os_cpu_next_unit(&progress, n, 3.0 * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for simd num_threads(n_threads) if (end - first >= OS_CPU_PARALLEL_MIN)
    for (int64_t i = first; i < end; i++)
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
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0;
       os_cpu_next_unit(&progress, (int64_t)N * C, 2.0 * P * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
    for (int64_t nc = first; nc < end; nc++) {
      float value = v[nc];
      float *plane = x + (size_t)nc * P;
      for (int p = 0; p < P; p++)
        plane[p] += value;
    }
}

/* --- backwards: dx += dy * f'(x) --- */

/* The activations' backward vector loops, each over one span. */
typedef void (*activation_backward_span)(float *dx, const float *dy, const float *x, size_t n);

/* sigmoid(x) = 1 / (1 + e^-x), as the forwards compute it. */
static inline os_vf
os_vf_sigmoid(os_vf x)
{
  return 1.0f / (1.0f + os_vf_exp(-x));
}

/* Phi(x), the standard normal CDF, as 0.5 erfc(-x / sqrt 2) like os_vf_gelu. */
static inline os_vf
os_vf_normal_cdf(os_vf x)
{
  os_vi sign = (os_vi)x & (int32_t)0x80000000;
  os_vf tail = os_vf_erfc_nonnegative((os_vf)((os_vi)x ^ sign) * 0.70710678118654752f);
  return 0.5f * os_vf_select(sign != 0, tail, 2.0f - tail);
}

/* gelu'(x) = Phi(x) + x phi(x). */
static inline os_vf
os_vf_gelu_derivative(os_vf x)
{
  os_vf density = 0.39894228040143268f * os_vf_exp(-0.5f * x * x);
  return os_vf_normal_cdf(x) + x * density;
}

OS_CPU_VECTOR_CLONES static void
silu_backward_span(float *dx, const float *dy, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i += OS_LANES) {
    os_vf v = os_vf_load(x + i, n - i), s = os_vf_sigmoid(v);
    os_vf d = s * (1.0f + v * (1.0f - s));
    os_vf_store(dx + i, os_vf_load(dx + i, n - i) + os_vf_load(dy + i, n - i) * d, n - i);
  }
}

OS_CPU_VECTOR_CLONES static void
gelu_backward_span(float *dx, const float *dy, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i += OS_LANES) {
    os_vf d = os_vf_gelu_derivative(os_vf_load(x + i, n - i));
    os_vf_store(dx + i, os_vf_load(dx + i, n - i) + os_vf_load(dy + i, n - i) * d, n - i);
  }
}

/* d/dx x sigmoid(a x) = s + a x s (1 - s), s = sigmoid(a x). */
OS_CPU_VECTOR_CLONES static void
quick_gelu_backward_span(float *dx, const float *dy, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i += OS_LANES) {
    os_vf v = os_vf_load(x + i, n - i), s = os_vf_sigmoid(1.702f * v);
    os_vf d = s + 1.702f * v * s * (1.0f - s);
    os_vf_store(dx + i, os_vf_load(dx + i, n - i) + os_vf_load(dy + i, n - i) * d, n - i);
  }
}

static void
apply_activation_backward(os_backend *be, activation_backward_span kernel, float *dx,
                          const float *dy, const float *x, size_t n)
{
  int n_threads = os_cpu_threads(be);
  size_t n_spans = (n + SPAN - 1) / SPAN;
#pragma omp parallel for num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t s = 0; s < n_spans; s++) {
    size_t start = s * SPAN;
    kernel(dx + start, dy + start, x + start, n - start < SPAN ? n - start : SPAN);
  }
}

void
os_cpu_silu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
  apply_activation_backward(be, silu_backward_span, dx, dy, x, n);
}

void
os_cpu_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
  apply_activation_backward(be, gelu_backward_span, dx, dy, x, n);
}

void
os_cpu_quick_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                           size_t n)
{
  apply_activation_backward(be, quick_gelu_backward_span, dx, dy, x, n);
}

/* y = hidden * gelu(gate): d hidden += dy gelu(gate), d gate += dy hidden gelu'(gate). */
OS_CPU_VECTOR_CLONES static void
geglu_backward_row(float *d_hidden, float *d_gate, const float *dy, const float *hidden,
                   const float *gate, int C)
{
  for (int c = 0; c < C; c += OS_LANES) {
    os_vf g = os_vf_load(gate + c, C - c), up = os_vf_load(dy + c, C - c);
    os_vf_store(d_hidden + c, os_vf_load(d_hidden + c, C - c) + up * os_vf_gelu(g), C - c);
    os_vf_store(d_gate + c,
                os_vf_load(d_gate + c, C - c) +
                    up * os_vf_load(hidden + c, C - c) * os_vf_gelu_derivative(g),
                C - c);
  }
}

void
os_cpu_geglu_backward(os_backend *be, float *dx, const float *dy, const float *x, int T, int C)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)T * C >= OS_CPU_PARALLEL_MIN)
  for (int t = 0; t < T; t++) {
    size_t row = (size_t)t * 2 * C;
    geglu_backward_row(dx + row, dx + row + C, dy + (size_t)t * C, x + row, x + row + C, C);
  }
}

void
os_cpu_axpy(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] += alpha * x[i];
}

/* sum a_i b_i in double over one span, in a fixed order like os_cpu_sum. */
static double
dot_span(const float *a, const float *b, size_t n)
{
  double lane[8] = { 0 };
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++)
      lane[j] += (double)a[i + j] * b[i + j];
  double total = 0.0;
  for (; i < n; i++)
    total += (double)a[i] * b[i];
  for (int j = 0; j < 8; j++)
    total += lane[j];
  return total;
}

double
os_cpu_dot(os_backend *be, const float *a, const float *b, size_t n)
{
  /* Partial sums of fixed spans, added in span order: the same for any
   * thread count. */
  size_t n_spans = (n + SPAN - 1) / SPAN;
  double *partial = os_cpu_scratch(be, sizeof(double) * n_spans);
  if (!partial)
    return 0.0;
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t s = 0; s < n_spans; s++) {
    size_t start = s * SPAN;
    partial[s] = dot_span(a + start, b + start, n - start < SPAN ? n - start : SPAN);
  }
  double total = 0.0;
  for (size_t s = 0; s < n_spans; s++)
    total += partial[s];
  free(partial);
  return total;
}

/* Columns per task of sum_rows: each task owns its columns' sums. */
#define SUM_ROWS_COLUMNS 64

void
os_cpu_sum_rows(os_backend *be, float *dv, const float *dx, int G, int R, int C)
{
  int chunks = (C + SUM_ROWS_COLUMNS - 1) / SUM_ROWS_COLUMNS;
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)G * R * C >= OS_CPU_PARALLEL_MIN)
  for (int task = 0; task < G * chunks; task++) {
    int g = task / chunks, c0 = task % chunks * SUM_ROWS_COLUMNS;
    int width = C - c0 < SUM_ROWS_COLUMNS ? C - c0 : SUM_ROWS_COLUMNS;
    double sums[SUM_ROWS_COLUMNS] = { 0 };
    const float *rows = dx + (size_t)g * R * C + c0;
    for (int r = 0; r < R; r++)
      for (int c = 0; c < width; c++)
        sums[c] += rows[(size_t)r * C + c];
    for (int c = 0; c < width; c++)
      dv[(size_t)g * C + c0 + c] += (float)sums[c];
  }
}

void
os_cpu_sum_channel_planes(os_backend *be, float *dv, const float *dx, int N, int C, int P)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int nc = 0; nc < N * C; nc++)
    dv[nc] += (float)os_cpu_sum(dx + (size_t)nc * P, P);
}

void
os_cpu_sum_channels(os_backend *be, float *dv, const float *dx, int N, int C, size_t P)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int c = 0; c < C; c++) {
    double total = 0.0;
    for (int n = 0; n < N; n++)
      total += os_cpu_sum(dx + ((size_t)n * C + c) * P, P);
    dv[c] += (float)total;
  }
}

/* --- the discriminator's activation and projection --- */

void
os_cpu_leaky_relu(os_backend *be, float *y, const float *x, float slope, size_t n)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] >= 0.0f ? x[i] : slope * x[i];
}

void
os_cpu_leaky_relu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                           float slope, size_t n)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    dx[i] += x[i] >= 0.0f ? dy[i] : slope * dy[i];
}

void
os_cpu_channel_projection(os_backend *be, float *y, const float *x, const float *e, int N, int C,
                          int P)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int np = 0; np < N * P; np++) {
    int n = np / P, p = np % P;
    const float *xn = x + (size_t)n * C * P + p;
    double total = 0.0;
    for (int c = 0; c < C; c++)
      total += (double)xn[(size_t)c * P] * e[(size_t)n * C + c];
    y[np] = (float)total;
  }
}

void
os_cpu_channel_projection_backward(os_backend *be, float *dx, float *de, const float *dy,
                                   const float *x, const float *e, int N, int C, int P)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int nc = 0; nc < N * C; nc++) {
    const float *dyn = dy + (size_t)(nc / C) * P;
    if (dx) {
      float scale = e[nc];
      float *row = dx + (size_t)nc * P;
      for (int p = 0; p < P; p++)
        row[p] += dyn[p] * scale;
    }
    if (de)
      de[nc] += (float)dot_span(dyn, x + (size_t)nc * P, (size_t)P);
  }
}
