/* cpu_norm.c: GroupNorm and LayerNorm. Statistics are accumulated in double,
 * two-pass (mean, then biased variance), each by a single thread in a fixed
 * order so results do not depend on the thread count. */
#include "cpu_internal.h"

#include <math.h>

#include "cpu_simd.h"

/* Sum of (x - mean)^2 in double, in a fixed order like os_cpu_sum. */
static double
sum_squared_deviations(const float *x, size_t n, double mean)
{
  double lane[8] = { 0 };
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) {
      double d = x[i + j] - mean;
      lane[j] += d * d;
    }
  double total = 0.0;
  for (; i < n; i++) {
    double d = x[i] - mean;
    total += d * d;
  }
  for (int j = 0; j < 8; j++)
    total += lane[j];
  return total;
}

/* y = (x - mean) * scale + shift, optionally followed by SiLU. */
OS_CPU_VECTOR_CLONES static void
normalize_span(float *y, const float *x, size_t n, float mean, float scale, float shift,
               bool silu)
{
  if (silu) {
    for (size_t i = 0; i < n; i += OS_LANES)
      os_vf_store(y + i, os_vf_silu((os_vf_load(x + i, n - i) - mean) * scale + shift), n - i);
  } else {
#pragma omp simd
    for (size_t i = 0; i < n; i++)
      y[i] = (x[i] - mean) * scale + shift;
  }
}

void
os_cpu_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                  const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                  float eps, bool silu)
{
  int per_group = C / G;
  size_t span = (size_t)per_group * HW; /* one group of one image: contiguous */
  int n_units = N / frames_per_stat * G;
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic)
  for (int u = 0; u < n_units; u++) {
    int g = u % G, first_image = u / G * frames_per_stat;
    size_t count = span * frames_per_stat;
    double total = 0.0;
    for (int f = 0; f < frames_per_stat; f++)
      total += os_cpu_sum(x + ((size_t)(first_image + f) * C + g * per_group) * HW, span);
    double mean = total / count, deviations = 0.0;
    for (int f = 0; f < frames_per_stat; f++)
      deviations += sum_squared_deviations(
          x + ((size_t)(first_image + f) * C + g * per_group) * HW, span, mean);
    float rstd = (float)(1.0 / sqrt(deviations / count + eps));
    for (int f = 0; f < frames_per_stat; f++)
      for (int c = g * per_group; c < (g + 1) * per_group; c++) {
        size_t offset = ((size_t)(first_image + f) * C + c) * HW;
        float scale = gamma ? rstd * gamma[c] : rstd;
        normalize_span(y + offset, x + offset, HW, (float)mean, scale, beta ? beta[c] : 0.0f,
                       silu);
      }
  }
}

void
os_cpu_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                  const float *beta, int T, int C, float eps)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)T * C >= OS_CPU_PARALLEL_MIN)
  for (int t = 0; t < T; t++) {
    const float *xr = x + (size_t)t * C;
    float *yr = y + (size_t)t * C;
    double mean = os_cpu_sum(xr, C) / C;
    float rstd = (float)(1.0 / sqrt(sum_squared_deviations(xr, C, mean) / C + eps));
    float mean_f = (float)mean;
    for (int c = 0; c < C; c++) {
      float v = (xr[c] - mean_f) * rstd;
      yr[c] = (gamma ? v * gamma[c] : v) + (beta ? beta[c] : 0.0f);
    }
  }
}
