/* cpu_norm.c: GroupNorm, LayerNorm, BatchNormLocal and spectral normalisation.
 * Statistics are accumulated in double, two-pass (mean, then biased
 * variance), each by a single thread in a fixed order so results do not
 * depend on the thread count. */
#include "cpu_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* GroupNorm works in three passes over (image, group) spans, each in units
 * with abort polls between them (at full resolution one pass is seconds of
 * work): the spans' sums, then their squared deviations from the mean of
 * their statistics unit (frames_per_stat images), then the normalisation.
 * A unit's mean and variance add its frames' terms in frame order, as one
 * loop over the frames would. */
typedef struct {
  float *y;
  const float *x, *gamma, *beta;
  int C, HW, G, frames_per_stat;
  float eps;
  bool silu;
  double *span_terms; /* [N * G]: a pass's term of each (image, group) span */
  double *mean;       /* [N / frames_per_stat * G] */
  float *rstd;        /* [N / frames_per_stat * G] */
} group_norm_job;

static const float *
span_of(const group_norm_job *j, int image, int g)
{
  return j->x + ((size_t)image * j->C + (size_t)g * (j->C / j->G)) * j->HW;
}

/* The terms of one pass over all spans, in units; false when stopped. */
static bool
group_norm_pass(const group_norm_job *j, os_cpu_progress *progress, int n_threads, int N,
                int pass)
{
  int per_group = j->C / j->G;
  size_t span = (size_t)per_group * j->HW;
  double work = (double)span * (pass == 2 ? 2.0 : 1.0) * OS_CPU_VALUE_WORK;
  int64_t first, end = 0;
  while (os_cpu_next_unit(progress, (int64_t)N * j->G, work, &first, &end)) {
#pragma omp parallel for num_threads(n_threads) schedule(dynamic)
    for (int64_t i = first; i < end; i++) {
      int image = (int)(i / j->G), g = (int)(i % j->G);
      size_t stat = (size_t)(image / j->frames_per_stat) * j->G + g;
      if (pass == 0) {
        j->span_terms[i] = os_cpu_sum(span_of(j, image, g), span);
      } else if (pass == 1) {
        j->span_terms[i] = sum_squared_deviations(span_of(j, image, g), span, j->mean[stat]);
      } else {
        for (int c = g * per_group; c < (g + 1) * per_group; c++) {
          size_t offset = ((size_t)image * j->C + c) * j->HW;
          float scale = j->gamma ? j->rstd[stat] * j->gamma[c] : j->rstd[stat];
          normalize_span(j->y + offset, j->x + offset, j->HW, (float)j->mean[stat], scale,
                         j->beta ? j->beta[c] : 0.0f, j->silu);
        }
      }
    }
  }
  return !progress->stopped;
}

/* Sum over statistics unit stat's frames, in frame order, of the pass's terms. */
static double
stat_total(const group_norm_job *j, size_t stat)
{
  size_t first_image = stat / j->G * j->frames_per_stat, g = stat % j->G;
  double total = 0.0;
  for (int f = 0; f < j->frames_per_stat; f++)
    total += j->span_terms[(first_image + f) * j->G + g];
  return total;
}

void
os_cpu_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                  const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                  float eps, bool silu)
{
  size_t n_stats = (size_t)N / frames_per_stat * G;
  double count = (double)C / G * HW * frames_per_stat;
  group_norm_job j = { .y = y, .x = x, .gamma = gamma, .beta = beta, .C = C, .HW = HW, .G = G,
                       .frames_per_stat = frames_per_stat, .eps = eps, .silu = silu };
  double *scratch = os_cpu_scratch(be, sizeof(double) * ((size_t)N * G + 2 * n_stats));
  if (!scratch)
    return;
  j.span_terms = scratch;
  j.mean = scratch + (size_t)N * G;
  j.rstd = (float *)(j.mean + n_stats);
  int n_threads = os_cpu_threads(be);
  os_cpu_progress progress = os_cpu_progress_start(be);
  if (group_norm_pass(&j, &progress, n_threads, N, 0)) {
    for (size_t u = 0; u < n_stats; u++)
      j.mean[u] = stat_total(&j, u) / count;
    if (group_norm_pass(&j, &progress, n_threads, N, 1)) {
      for (size_t u = 0; u < n_stats; u++)
        j.rstd[u] = (float)(1.0 / sqrt(stat_total(&j, u) / count + eps));
      group_norm_pass(&j, &progress, n_threads, N, 2);
    }
  }
  free(scratch);
}

/* The element count, mean and sum of squared deviations of one statistics
 * unit (group g of frames_per_stat images from first_image), two-pass in
 * double. */
typedef struct {
  double count, mean, deviations;
} group_moments;

static group_moments
moments_of_group(const float *x, int first_image, int g, int C, int HW, int G,
                 int frames_per_stat)
{
  int per_group = C / G;
  size_t span = (size_t)per_group * HW; /* one group of one image: contiguous */
  group_moments m = { (double)span * frames_per_stat, 0.0, 0.0 };
  double total = 0.0;
  for (int f = 0; f < frames_per_stat; f++)
    total += os_cpu_sum(x + ((size_t)(first_image + f) * C + g * per_group) * HW, span);
  m.mean = total / m.count;
  for (int f = 0; f < frames_per_stat; f++)
    m.deviations += sum_squared_deviations(
        x + ((size_t)(first_image + f) * C + g * per_group) * HW, span, m.mean);
  return m;
}

/* Normalises one statistics unit of x into y with its moments. */
static void
normalize_group(float *y, const float *x, const float *gamma, const float *beta,
                group_moments m, int first_image, int g, int C, int HW, int G,
                int frames_per_stat, float eps, bool silu)
{
  int per_group = C / G;
  float rstd = (float)(1.0 / sqrt(m.deviations / m.count + eps));
  for (int f = 0; f < frames_per_stat; f++)
    for (int c = g * per_group; c < (g + 1) * per_group; c++) {
      size_t offset = ((size_t)(first_image + f) * C + c) * HW;
      float scale = gamma ? rstd * gamma[c] : rstd;
      normalize_span(y + offset, x + offset, HW, (float)m.mean, scale, beta ? beta[c] : 0.0f,
                     silu);
    }
}

/* The running moments of a tiled GroupNorm's statistics (backend.h): three
 * doubles per (unit, group), copied in and out (the buffer is float-typed). */
_Static_assert(sizeof(group_moments) == OS_GROUP_NORM_STATS_FLOATS * sizeof(float),
               "the statistics layout of backend.h");

static group_moments
load_moments(const float *stats, int u)
{
  group_moments m;
  memcpy(&m, stats + (size_t)u * OS_GROUP_NORM_STATS_FLOATS, sizeof m);
  return m;
}

static void
store_moments(float *stats, int u, group_moments m)
{
  memcpy(stats + (size_t)u * OS_GROUP_NORM_STATS_FLOATS, &m, sizeof m);
}

void
os_cpu_group_norm_stats(os_backend *be, float *stats, const float *x, int N, int C, int HW,
                        int G, int frames_per_stat)
{
  int n_threads = os_cpu_threads(be);
  double group_values = (double)C / G * HW * frames_per_stat;
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0; os_cpu_next_unit(&progress, (int64_t)N / frames_per_stat * G,
                                                2.0 * group_values * OS_CPU_VALUE_WORK, &first,
                                                &end);)
#pragma omp parallel for num_threads(n_threads) schedule(dynamic)
    for (int64_t i = first; i < end; i++) {
      int u = (int)i;
      group_moments tile = moments_of_group(x, u / G * frames_per_stat, u % G, C, HW, G,
                                            frames_per_stat);
      group_moments run = load_moments(stats, u);
      if (run.count > 0.0) {
        /* Chan et al.'s merge of two sets' moments: no cancellation between
         * large sums, whatever the number of tiles. A first tile is kept as it
         * is, so that one tile over everything gives group_norm's moments. */
        double count = run.count + tile.count, delta = tile.mean - run.mean;
        tile.mean = run.mean + delta * (tile.count / count);
        tile.deviations += run.deviations + delta * delta * (run.count * tile.count / count);
        tile.count = count;
      }
      store_moments(stats, u, tile);
    }
}

void
os_cpu_group_norm_apply(os_backend *be, float *y, const float *x, const float *stats,
                        const float *gamma, const float *beta, int N, int C, int HW, int G,
                        int frames_per_stat, float eps, bool silu)
{
  int n_threads = os_cpu_threads(be);
  double group_values = (double)C / G * HW * frames_per_stat;
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0; os_cpu_next_unit(&progress, (int64_t)N / frames_per_stat * G,
                                                2.0 * group_values * OS_CPU_VALUE_WORK, &first,
                                                &end);)
#pragma omp parallel for num_threads(n_threads) schedule(dynamic)
    for (int64_t u = first; u < end; u++)
      normalize_group(y, x, gamma, beta, load_moments(stats, (int)u), (int)u / G * frames_per_stat,
                      (int)u % G, C, HW, G, frames_per_stat, eps, silu);
}

void
os_cpu_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                  const float *beta, int T, int C, float eps)
{
  int n_threads = os_cpu_threads(be);
  /* Over all tokens of many frames: rows in units, with abort polls between. */
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0;
       os_cpu_next_unit(&progress, T, 3.0 * C * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for num_threads(n_threads) if ((size_t)T * C >= OS_CPU_PARALLEL_MIN)
    for (int64_t t = first; t < end; t++) {
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

/* --- backwards ---
 * With xhat = (x - mean) rstd, z = xhat gamma + beta and y = z or silu(z),
 * dz = dy or dy silu'(z); then dgamma += sum dz xhat, dbeta += sum dz and
 * dx += rstd (gamma dz - mean(gamma dz) - xhat mean(gamma dz xhat)), the
 * means over the statistics' unit. */

/* dz and xhat for 8 values of one channel, z recomputed as the forward does. */
static inline void
norm_dz_xhat(os_vf *dz, os_vf *xhat, const float *dy, const float *x, size_t left, float mean,
             float rstd, float scale, float shift, bool silu)
{
  os_vf centred = os_vf_load(x, left) - mean, up = os_vf_load(dy, left);
  if (silu) {
    os_vf z = centred * scale + shift, s = 1.0f / (1.0f + os_vf_exp(-z));
    up = up * (s * (1.0f + z * (1.0f - s)));
  }
  *dz = up;
  *xhat = centred * rstd;
}

/* sums[0] += sum dz, sums[1] += sum dz xhat over one channel's n values, in
 * double per lane (lanes past n load zeros: dz = 0 there). */
OS_CPU_VECTOR_CLONES static void
norm_channel_sums(double sums[2], const float *dy, const float *x, size_t n, float mean,
                  float rstd, float scale, float shift, bool silu)
{
  double lane_dz[OS_LANES] = { 0 }, lane_dz_xhat[OS_LANES] = { 0 };
  for (size_t i = 0; i < n; i += OS_LANES) {
    os_vf dz, xhat;
    norm_dz_xhat(&dz, &xhat, dy + i, x + i, n - i, mean, rstd, scale, shift, silu);
    os_vf product = dz * xhat;
    for (int j = 0; j < OS_LANES; j++) {
      lane_dz[j] += dz[j];
      lane_dz_xhat[j] += product[j];
    }
  }
  for (int j = 0; j < OS_LANES; j++) {
    sums[0] += lane_dz[j];
    sums[1] += lane_dz_xhat[j];
  }
}

/* dx += dz * scale - (offset + xhat * slope) over one channel (scale = gamma rstd). */
OS_CPU_VECTOR_CLONES static void
norm_channel_dx(float *dx, const float *dy, const float *x, size_t n, float mean, float rstd,
                float scale, float shift, bool silu, float offset, float slope)
{
  for (size_t i = 0; i < n; i += OS_LANES) {
    os_vf dz, xhat;
    norm_dz_xhat(&dz, &xhat, dy + i, x + i, n - i, mean, rstd, scale, shift, silu);
    os_vf_store(dx + i, os_vf_load(dx + i, n - i) + (dz * scale - (offset + xhat * slope)),
                n - i);
  }
}

void
os_cpu_group_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *gamma,
                           const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                           float eps, bool silu)
{
  int per_group = C / G, n_stats = N / frames_per_stat;
  size_t span = (size_t)per_group * HW;
  int n_units = n_stats * G;
  /* Per (statistics unit, channel): sum dz and sum dz xhat, for dgamma and
   * dbeta (added over units in order afterwards) and for dx. */
  double *sums = os_cpu_scratch(be, sizeof(double) * 2 * n_stats * C);
  if (!sums)
    return;
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
    float rstd = (float)(1.0 / sqrt(deviations / count + eps)), mean_f = (float)mean;
    double *unit_sums = sums + 2 * ((size_t)(u / G) * C + g * per_group);
    double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
    for (int c = g * per_group; c < (g + 1) * per_group; c++) {
      double *channel = unit_sums + 2 * (c - g * per_group);
      channel[0] = channel[1] = 0.0;
      float scale = gamma ? rstd * gamma[c] : rstd, shift = beta ? beta[c] : 0.0f;
      for (int f = 0; f < frames_per_stat; f++) {
        size_t offset = ((size_t)(first_image + f) * C + c) * HW;
        norm_channel_sums(channel, dy + offset, x + offset, HW, mean_f, rstd, scale, shift,
                          silu);
      }
      double gamma_c = gamma ? gamma[c] : 1.0;
      sum_dxhat += gamma_c * channel[0];
      sum_dxhat_xhat += gamma_c * channel[1];
    }
    if (!dx)
      continue;
    float offset = (float)(rstd * sum_dxhat / count), slope = (float)(rstd * sum_dxhat_xhat / count);
    for (int c = g * per_group; c < (g + 1) * per_group; c++) {
      float scale = gamma ? rstd * gamma[c] : rstd, shift = beta ? beta[c] : 0.0f;
      for (int f = 0; f < frames_per_stat; f++) {
        size_t at = ((size_t)(first_image + f) * C + c) * HW;
        norm_channel_dx(dx + at, dy + at, x + at, HW, mean_f, rstd, scale, shift, silu, offset,
                        slope);
      }
    }
  }
  for (int c = 0; c < C; c++) {
    double d_beta = 0.0, d_gamma = 0.0;
    for (int b = 0; b < n_stats; b++) {
      d_beta += sums[2 * ((size_t)b * C + c)];
      d_gamma += sums[2 * ((size_t)b * C + c) + 1];
    }
    if (dbeta)
      dbeta[c] += (float)d_beta;
    if (dgamma)
      dgamma[c] += (float)d_gamma;
  }
  free(sums);
}

/* LayerNorm's dgamma and dbeta sum over rows in blocks of rows fixed by T
 * (at most this many blocks), whose partial sums are added in order. */
#define LAYER_NORM_MAX_BLOCKS 256
#define LAYER_NORM_MIN_BLOCK_ROWS 16

void
os_cpu_layer_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *gamma, int T, int C,
                           float eps)
{
  if (T <= 0 || C <= 0)
    return;
  int block_rows = (T + LAYER_NORM_MAX_BLOCKS - 1) / LAYER_NORM_MAX_BLOCKS;
  if (block_rows < LAYER_NORM_MIN_BLOCK_ROWS)
    block_rows = LAYER_NORM_MIN_BLOCK_ROWS;
  int n_blocks = (T + block_rows - 1) / block_rows;
  bool params = dgamma || dbeta;
  /* Per block: C partial sums of dy xhat, then C of dy. */
  double *partial = params ? os_cpu_scratch(be, sizeof(double) * 2 * n_blocks * C) : NULL;
  if (params && !partial)
    return;
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic) \
    if ((size_t)T * C >= OS_CPU_PARALLEL_MIN)
  for (int block = 0; block < n_blocks; block++) {
    double *d_gamma = params ? partial + 2 * (size_t)block * C : NULL;
    double *d_beta = params ? d_gamma + C : NULL;
    if (params)
      for (int c = 0; c < 2 * C; c++)
        d_gamma[c] = 0.0;
    int t1 = (block + 1) * block_rows < T ? (block + 1) * block_rows : T;
    for (int t = block * block_rows; t < t1; t++) {
      const float *xr = x + (size_t)t * C, *dyr = dy + (size_t)t * C;
      double mean = os_cpu_sum(xr, C) / C;
      float rstd = (float)(1.0 / sqrt(sum_squared_deviations(xr, C, mean) / C + eps));
      float mean_f = (float)mean;
      double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
      for (int c = 0; c < C; c++) {
        float xhat = (xr[c] - mean_f) * rstd;
        double dxhat = (double)dyr[c] * (gamma ? gamma[c] : 1.0f);
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * xhat;
        if (params) {
          d_gamma[c] += (double)dyr[c] * xhat;
          d_beta[c] += dyr[c];
        }
      }
      if (!dx)
        continue;
      float *dxr = dx + (size_t)t * C;
      float offset = (float)(rstd * sum_dxhat / C), slope = (float)(rstd * sum_dxhat_xhat / C);
      for (int c = 0; c < C; c++) {
        float xhat = (xr[c] - mean_f) * rstd, gamma_rstd = gamma ? gamma[c] * rstd : rstd;
        dxr[c] += dyr[c] * gamma_rstd - (offset + xhat * slope);
      }
    }
  }
  if (!params)
    return;
  for (int c = 0; c < C; c++) {
    double d_gamma = 0.0, d_beta = 0.0;
    for (int block = 0; block < n_blocks; block++) {
      d_gamma += partial[2 * (size_t)block * C + c];
      d_beta += partial[(2 * (size_t)block + 1) * C + c];
    }
    if (dgamma)
      dgamma[c] += (float)d_gamma;
    if (dbeta)
      dbeta[c] += (float)d_beta;
  }
  free(partial);
}

/* --- BatchNormLocal --- */

/* Mean and 1 / sqrt(var + eps) of channel c over the samples of one virtual
 * batch (first sample n0): `group` planes of P values, P * C apart. */
static void
virtual_batch_stats(const float *x, int n0, int c, int C, int P, int group, float eps,
                    double *mean, double *rstd)
{
  double total = 0.0, squares = 0.0;
  for (int k = 0; k < group; k++)
    total += os_cpu_sum(x + ((size_t)(n0 + k) * C + c) * P, P);
  *mean = total / ((double)group * P);
  for (int k = 0; k < group; k++)
    squares += sum_squared_deviations(x + ((size_t)(n0 + k) * C + c) * P, P, *mean);
  *rstd = 1.0 / sqrt(squares / ((double)group * P) + eps);
}

void
os_cpu_batch_norm_local(os_backend *be, float *y, const float *x, const float *gamma,
                        const float *beta, int N, int C, int P, int group, float eps)
{
  int n_threads = os_cpu_threads(be);
  int n_units = N / group * C;
#pragma omp parallel for num_threads(n_threads) if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int unit = 0; unit < n_units; unit++) {
    int c = unit % C, n0 = unit / C * group;
    double mean, rstd;
    virtual_batch_stats(x, n0, c, C, P, group, eps, &mean, &rstd);
    float scale = (float)(gamma[c] * rstd);
    for (int k = 0; k < group; k++) {
      size_t at = ((size_t)(n0 + k) * C + c) * P;
      normalize_span(y + at, x + at, (size_t)P, (float)mean, scale, beta[c], false);
    }
  }
}

void
os_cpu_batch_norm_local_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                 const float *dy, const float *x, const float *gamma, int N,
                                 int C, int P, int group, float eps)
{
  int n_threads = os_cpu_threads(be);
  int n_units = N / group * C;
  /* Per unit: sum dy and sum dy * xhat, added into dgamma / dbeta in unit order. */
  double *sums = os_cpu_scratch(be, sizeof(double) * 2 * n_units);
  if (!sums)
    return;
  double count = (double)group * P;
#pragma omp parallel for num_threads(n_threads) if ((size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int unit = 0; unit < n_units; unit++) {
    int c = unit % C, n0 = unit / C * group;
    double mean, rstd, sum_dy = 0.0, sum_dy_xhat = 0.0;
    virtual_batch_stats(x, n0, c, C, P, group, eps, &mean, &rstd);
    for (int k = 0; k < group; k++) {
      size_t at = ((size_t)(n0 + k) * C + c) * P;
      for (int p = 0; p < P; p++) {
        sum_dy += dy[at + p];
        sum_dy_xhat += dy[at + p] * ((x[at + p] - mean) * rstd);
      }
    }
    sums[2 * unit] = sum_dy;
    sums[2 * unit + 1] = sum_dy_xhat;
    if (!dx)
      continue;
    double mean_dy = sum_dy / count, mean_dy_xhat = sum_dy_xhat / count;
    double scale = gamma[c] * rstd;
    for (int k = 0; k < group; k++) {
      size_t at = ((size_t)(n0 + k) * C + c) * P;
      for (int p = 0; p < P; p++) {
        double xhat = (x[at + p] - mean) * rstd;
        dx[at + p] += (float)(scale * (dy[at + p] - mean_dy - xhat * mean_dy_xhat));
      }
    }
  }
  for (int unit = 0; unit < n_units; unit++) {
    if (dbeta)
      dbeta[unit % C] += (float)sums[2 * unit];
    if (dgamma)
      dgamma[unit % C] += (float)sums[2 * unit + 1];
  }
  free(sums);
}

/* --- spectral normalisation --- */

/* out[i] = sum_j W[i, j] v[j] in double, row by row. */
static void
matrix_vector(os_backend *be, double *out, const float *W, const double *v, int rows, int cols)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)rows * cols >= OS_CPU_PARALLEL_MIN)
  for (int i = 0; i < rows; i++) {
    const float *row = W + (size_t)i * cols;
    double total = 0.0;
    for (int j = 0; j < cols; j++)
      total += row[j] * v[j];
    out[i] = total;
  }
}

/* sigma = u^T W v, in double. */
static bool
spectral_sigma(os_backend *be, const float *W, const float *u, const float *v, int rows,
               int cols, double *sigma)
{
  double *v_d = os_cpu_scratch(be, sizeof(double) * cols);
  double *wv = os_cpu_scratch(be, sizeof(double) * rows);
  bool ok = v_d && wv;
  if (ok) {
    for (int j = 0; j < cols; j++)
      v_d[j] = v[j];
    matrix_vector(be, wv, W, v_d, rows, cols);
    *sigma = 0.0;
    for (int i = 0; i < rows; i++)
      *sigma += u[i] * wv[i];
  }
  free(v_d);
  free(wv);
  return ok;
}

void
os_cpu_spectral_normalize(os_backend *be, float *y, const float *W, const float *u,
                          const float *v, int rows, int cols)
{
  double sigma;
  if (!spectral_sigma(be, W, u, v, rows, cols, &sigma))
    return;
  size_t n = (size_t)rows * cols;
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = (float)(W[i] / sigma);
}

void
os_cpu_spectral_normalize_backward(os_backend *be, float *dW, const float *dy, const float *W,
                                   const float *u, const float *v, int rows, int cols)
{
  double sigma;
  if (!spectral_sigma(be, W, u, v, rows, cols, &sigma))
    return;
  size_t n = (size_t)rows * cols;
  double along = os_cpu_dot(be, dy, W, n) / (sigma * sigma);
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (int i = 0; i < rows; i++) {
    double ui = along * u[i];
    for (int j = 0; j < cols; j++) {
      size_t at = (size_t)i * cols + j;
      dW[at] += (float)(dy[at] / sigma - ui * v[j]);
    }
  }
}

/* a / max(|a|, eps) over n values, in place. */
static void
normalize_vector(double *a, int n, double eps)
{
  double norm = 0.0;
  for (int i = 0; i < n; i++)
    norm += a[i] * a[i];
  norm = fmax(sqrt(norm), eps);
  for (int i = 0; i < n; i++)
    a[i] /= norm;
}

void
os_cpu_spectral_norm_power_iteration(os_backend *be, float *u, float *v, const float *W,
                                     int rows, int cols, float eps)
{
  double *u_d = os_cpu_scratch(be, sizeof(double) * rows);
  double *v_d = os_cpu_scratch(be, sizeof(double) * cols);
  if (u_d && v_d) {
    /* v = W^T u: column sums, accumulated row by row in a fixed order. */
    for (int j = 0; j < cols; j++)
      v_d[j] = 0.0;
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++)
        v_d[j] += (double)W[(size_t)i * cols + j] * u[i];
    normalize_vector(v_d, cols, eps);
    matrix_vector(be, u_d, W, v_d, rows, cols);
    normalize_vector(u_d, rows, eps);
    for (int j = 0; j < cols; j++)
      v[j] = (float)v_d[j];
    for (int i = 0; i < rows; i++)
      u[i] = (float)u_d[i];
  }
  free(u_d);
  free(v_d);
}
