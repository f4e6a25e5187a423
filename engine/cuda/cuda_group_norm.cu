// cuda_group_norm.cu: GroupNorm (+ optional SiLU) on x [N, C, HW].
//
// A statistic covers one group of C/G channels over frames_per_stat
// consecutive images: per image (frames_per_stat 1) or across the F frames of
// a batch element (frames_per_stat F, the temporal decoder). Groups hold up to
// tens of millions of values, so each is summed by many blocks into partial
// sums that a second kernel adds up in double, in a fixed order
// (deterministic, no atomics). One read of x gives both sums: values are
// shifted by K, the mean of the group's first 32 values, so that
// var = E[(x-K)^2] - E[x-K]^2 does not cancel (K is close to the mean).
//
// group_norm_stats and group_norm_apply split the op for tiles: the same
// shifted partial sums per tile, merged into running moments in double.
//
// The backward recomputes the statistics the same way, then per (image,
// channel) row the sums of dv and dv * xhat (v the normalised, scaled value
// before SiLU), which give both the statistics' terms of dx and, added over
// images, dgamma and dbeta: every sum in a fixed order, in double.

#include "cuda_activation.cuh"
#include "cuda_common.h"
#include "cuda_reduce.cuh"
#include "cuda_types.cuh"

#define CHUNK 16384 // elements per partial sum (at least)

typedef struct {
  int C, HW, G, frames_per_stat;
  size_t group_len; // (C / G) * HW: one image's part of a group
  size_t stat_len;  // group_len * frames_per_stat
  size_t chunk_len; // elements per partial sum
  int chunks;       // partial sums per statistic (at most 65535: grid.y)
} gn_shape;

// Element e of statistic s lives at stat_base(s)[f * C * HW + r] with
// f = e / group_len, r = e % group_len. x stores any type; statistics are fp32.
__device__ __forceinline__ os_cuda_view
stat_base(os_cuda_view x, const gn_shape sh, int s)
{
  int unit = s / sh.G, g = s % sh.G;
  return os_view_at(x, (size_t)unit * sh.frames_per_stat * sh.C * sh.HW + g * sh.group_len);
}

// One warp per statistic: the shift K = mean of its first (up to) 32 values,
// stored in stats[2s] until the finalize kernel replaces it by the mean.
__global__ void
gn_shift_kernel(float *stats, os_cuda_view x, gn_shape sh, int n_stats)
{
  int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (s >= n_stats)
    return;
  int n = sh.group_len < 32 ? (int)sh.group_len : 32;
  float v = lane < n ? os_load(stat_base(x, sh, s), lane) : 0.0f;
  v = os_warp_sum(v);
  if (lane == 0)
    stats[2 * s] = v / n;
}

// partial[2 (s * chunks + chunk) + {0, 1}] = sums over the chunk of (x - K)
// and (x - K)^2. Each thread walks its elements keeping (frame, offset) up
// to date instead of dividing.
__global__ void
gn_partial_kernel(float *partial, os_cuda_view x, const float *stats, gn_shape sh)
{
  int s = blockIdx.x, chunk = blockIdx.y;
  os_cuda_view base = stat_base(x, sh, s);
  size_t frame_stride = (size_t)sh.C * sh.HW;
  size_t begin = (size_t)chunk * sh.chunk_len;
  size_t end = begin + sh.chunk_len < sh.stat_len ? begin + sh.chunk_len : sh.stat_len;
  float shift = stats[2 * s];
  float sum = 0.0f, squares = 0.0f;
  size_t e = begin + threadIdx.x;
  size_t f = e / sh.group_len, r = e % sh.group_len;
  for (; e < end; e += blockDim.x) {
    float v = os_load(base, f * frame_stride + r) - shift;
    sum += v;
    squares += v * v;
    for (r += blockDim.x; r >= sh.group_len; r -= sh.group_len)
      f++;
  }
  sum = os_block_sum(sum);
  squares = os_block_sum(squares);
  if (threadIdx.x == 0) {
    size_t at = 2 * ((size_t)s * sh.chunks + chunk);
    partial[at] = sum;
    partial[at + 1] = squares;
  }
}

// Statistic s's chunk partials (sum, sum of squares) added in double in a
// fixed order by the lanes of its warp; every lane gets the totals.
__device__ void
gn_partial_totals(const float *partial, gn_shape sh, int s, int lane, double *sum,
                  double *squares)
{
  double total = 0.0, total_squares = 0.0;
  for (int i = lane; i < sh.chunks; i += 32) {
    size_t at = 2 * ((size_t)s * sh.chunks + i);
    total += partial[at];
    total_squares += partial[at + 1];
  }
  *sum = os_warp_sum(total);
  *squares = os_warp_sum(total_squares);
}

// One warp per statistic adds its partials in double (fixed order) and
// turns them into stats[2s] = mean, stats[2s+1] = 1 / sqrt(var + eps).
__global__ void
gn_finalize_kernel(float *stats, const float *partial, gn_shape sh, int n_stats, float eps)
{
  int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (s >= n_stats)
    return;
  double sum, squares;
  gn_partial_totals(partial, sh, s, lane, &sum, &squares);
  if (lane == 0) {
    double n = (double)sh.stat_len;
    double d = sum / n; // mean - shift
    double var = squares / n - d * d;
    stats[2 * s] = (float)(stats[2 * s] + d);
    stats[2 * s + 1] = (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)eps));
  }
}

// The statistic of row (image, channel) `row`.
__device__ __forceinline__ int
row_stat(const gn_shape sh, unsigned row)
{
  unsigned c = row % sh.C, image = row / sh.C;
  return (int)(image / sh.frames_per_stat) * sh.G + (int)c / (sh.C / sh.G);
}

// One block per (image, channel) row of HW values.
__global__ void
gn_apply_kernel(os_cuda_view y, os_cuda_view x, const float *stats, os_cuda_view gamma,
                os_cuda_view beta, gn_shape sh, bool silu)
{
  unsigned row = blockIdx.x, c = row % sh.C;
  int s = row_stat(sh, row);
  float mean = stats[2 * s], rstd = stats[2 * s + 1];
  float a = rstd * (gamma.ptr ? os_load(gamma, c) : 1.0f);
  float b = beta.ptr ? os_load(beta, c) : 0.0f;
  os_cuda_view in = os_view_at(x, (size_t)row * sh.HW), out = os_view_at(y, (size_t)row * sh.HW);
  OS_CUDA_ROW_LOOP(p, (unsigned)sh.HW)
  {
    float v = (os_load(in, p) - mean) * a + b;
    os_store(out, p, silu ? silu_of(v) : v);
  }
}

// Tiled GroupNorm (group_norm_stats, group_norm_apply): running moments per
// statistic, three doubles (count, mean, sum of squared deviations) in the
// caller's statistics buffer.

// One warp per statistic turns the tile's shifted partial sums (shift[2s] =
// K) into its count, mean and squared deviations, and merges them into the
// running moments by Chan et al.'s formula (no cancellation between large
// sums however many tiles come); a first tile is taken as it is.
__global__ void
gn_merge_tile_kernel(double *moments, const float *shift, const float *partial, gn_shape sh,
                     int n_stats)
{
  int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (s >= n_stats)
    return;
  double sum, squares;
  gn_partial_totals(partial, sh, s, lane, &sum, &squares);
  if (lane == 0) {
    double n = (double)sh.stat_len, d = sum / n;
    double mean = shift[2 * s] + d, deviations = squares - n * d * d;
    if (deviations < 0.0)
      deviations = 0.0;
    double *run = moments + 3 * (size_t)s;
    if (run[0] > 0.0) {
      double count = run[0] + n, delta = mean - run[1];
      mean = run[1] + delta * (n / count);
      deviations += run[2] + delta * delta * (run[0] * n / count);
      n = count;
    }
    run[0] = n;
    run[1] = mean;
    run[2] = deviations;
  }
}

// stats[2s] = mean, stats[2s + 1] = 1 / sqrt(var + eps) from the running moments.
__global__ void
gn_moments_to_stats_kernel(float *stats, const double *moments, int n_stats, float eps)
{
  OS_CUDA_GRID_STRIDE(s, (size_t)n_stats)
  {
    const double *run = moments + 3 * s;
    stats[2 * s] = (float)run[1];
    stats[2 * s + 1] = (float)(1.0 / sqrt(run[2] / run[0] + (double)eps));
  }
}

// ----------------------------------------------------------------------------
// backward kernels

// dv = dy * d(SiLU)/dv at v = xhat gamma + beta (dy itself without SiLU).
__device__ __forceinline__ float
pre_silu_grad(float dy, float xhat, float gamma, float beta, bool silu)
{
  return silu ? dy * silu_grad_of(xhat * gamma + beta) : dy;
}

// sums[2 row] = sum_p dv, sums[2 row + 1] = sum_p dv xhat; one block per row.
__global__ void
gn_backward_rows_kernel(double *sums, const float *dy, const float *x, const float *stats,
                        const float *gamma, const float *beta, gn_shape sh, bool silu)
{
  unsigned row = blockIdx.x, c = row % sh.C;
  int s = row_stat(sh, row);
  float mean = stats[2 * s], rstd = stats[2 * s + 1];
  float gc = gamma ? gamma[c] : 1.0f, bc = beta ? beta[c] : 0.0f;
  const float *in = x + (size_t)row * sh.HW, *grad = dy + (size_t)row * sh.HW;
  double dv_sum = 0.0, dv_xhat_sum = 0.0;
  OS_CUDA_ROW_LOOP(p, (unsigned)sh.HW)
  {
    float xhat = (in[p] - mean) * rstd;
    float dv = pre_silu_grad(grad[p], xhat, gc, bc, silu);
    dv_sum += dv;
    dv_xhat_sum += (double)dv * xhat;
  }
  dv_sum = os_block_sum(dv_sum);
  dv_xhat_sum = os_block_sum(dv_xhat_sum);
  if (threadIdx.x == 0) {
    sums[2 * row] = dv_sum;
    sums[2 * row + 1] = dv_xhat_sum;
  }
}

// One warp per statistic: with dxhat = dv gamma, coef[2s] = mean(dxhat) and
// coef[2s + 1] = mean(dxhat xhat) over the statistic's elements.
__global__ void
gn_backward_stats_kernel(float *coef, const double *sums, const float *gamma, gn_shape sh,
                         int n_stats)
{
  int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (s >= n_stats)
    return;
  int unit = s / sh.G, g = s % sh.G, group_channels = sh.C / sh.G;
  int rows = sh.frames_per_stat * group_channels;
  double dxhat = 0.0, dxhat_xhat = 0.0;
  for (int t = lane; t < rows; t += 32) {
    int f = t / group_channels, c = g * group_channels + t % group_channels;
    size_t row = (size_t)(unit * sh.frames_per_stat + f) * sh.C + c;
    double gc = gamma ? gamma[c] : 1.0;
    dxhat += gc * sums[2 * row];
    dxhat_xhat += gc * sums[2 * row + 1];
  }
  dxhat = os_warp_sum(dxhat);
  dxhat_xhat = os_warp_sum(dxhat_xhat);
  if (lane == 0) {
    coef[2 * s] = (float)(dxhat / sh.stat_len);
    coef[2 * s + 1] = (float)(dxhat_xhat / sh.stat_len);
  }
}

// dbeta[c] += sum over images of sum dv, dgamma[c] += of sum dv xhat; in image order.
__global__ void
gn_backward_params_kernel(float *dgamma, float *dbeta, const double *sums, int N, int C)
{
  OS_CUDA_GRID_STRIDE(c, (size_t)C)
  {
    double dv = 0.0, dv_xhat = 0.0;
    for (int n = 0; n < N; n++) {
      dv += sums[2 * ((size_t)n * C + c)];
      dv_xhat += sums[2 * ((size_t)n * C + c) + 1];
    }
    if (dbeta)
      dbeta[c] += (float)dv;
    if (dgamma)
      dgamma[c] += (float)dv_xhat;
  }
}

// dx += rstd (dv gamma - mean(dxhat) - xhat mean(dxhat xhat)); one block per row.
__global__ void
gn_backward_apply_kernel(float *dx, const float *dy, const float *x, const float *stats,
                         const float *coef, const float *gamma, const float *beta, gn_shape sh,
                         bool silu)
{
  unsigned row = blockIdx.x, c = row % sh.C;
  int s = row_stat(sh, row);
  float mean = stats[2 * s], rstd = stats[2 * s + 1];
  float mean_dxhat = coef[2 * s], mean_dxhat_xhat = coef[2 * s + 1];
  float gc = gamma ? gamma[c] : 1.0f, bc = beta ? beta[c] : 0.0f;
  size_t base = (size_t)row * sh.HW;
  OS_CUDA_ROW_LOOP(p, (unsigned)sh.HW)
  {
    float xhat = (x[base + p] - mean) * rstd;
    float dv = pre_silu_grad(dy[base + p], xhat, gc, bc, silu);
    dx[base + p] += rstd * (dv * gc - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

// The shape of a call, or false (error latched) when the arguments do not fit.
static bool
make_shape(os_cuda_backend *cb, gn_shape *sh, int N, int C, int HW, int G, int frames_per_stat)
{
  if (G <= 0 || C % G != 0 || frames_per_stat <= 0 || N % frames_per_stat != 0) {
    os_cuda_latch(cb, ONESTEP_ERR_INVALID_ARGUMENT,
                  "group_norm: %d channels in %d groups over %d images, %d per statistic", C, G,
                  N, frames_per_stat);
    return false;
  }
  sh->C = C;
  sh->HW = HW;
  sh->G = G;
  sh->frames_per_stat = frames_per_stat;
  sh->group_len = (size_t)(C / G) * HW;
  sh->stat_len = sh->group_len * frames_per_stat;
  sh->chunk_len = CHUNK;
  if ((sh->stat_len + sh->chunk_len - 1) / sh->chunk_len > 65535)
    sh->chunk_len = (sh->stat_len + 65534) / 65535;
  sh->chunks = (int)((sh->stat_len + sh->chunk_len - 1) / sh->chunk_len);
  return true;
}

#define STAT_WARPS 8 // statistics per block of the one-warp-per-statistic kernels

static unsigned
stat_blocks(int n_stats)
{
  return (unsigned)((n_stats + STAT_WARPS - 1) / STAT_WARPS);
}

// stats[2s] = mean, stats[2s + 1] = 1 / sqrt(var + eps) of every statistic.
static bool
compute_stats(os_cuda_backend *cb, float *stats, const float *x, const gn_shape *sh, int n_stats,
              float eps)
{
  float *partial = (float *)os_cuda_scratch(cb, (size_t)n_stats * sh->chunks * 2 * sizeof(float),
                                            "group_norm partial sums");
  if (!partial)
    return false;
  os_cuda_view xv = os_cuda_view_of(cb, x);
  gn_shift_kernel<<<stat_blocks(n_stats), STAT_WARPS * 32, 0, cb->stream>>>(stats, xv, *sh,
                                                                            n_stats);
  gn_partial_kernel<<<dim3(n_stats, sh->chunks), 256, 0, cb->stream>>>(partial, xv, stats, *sh);
  gn_finalize_kernel<<<stat_blocks(n_stats), STAT_WARPS * 32, 0, cb->stream>>>(stats, partial, *sh,
                                                                               n_stats, eps);
  os_cuda_check_launch(cb, "group_norm statistics");
  os_cuda_free(&cb->base, partial);
  return true;
}

void
os_cuda_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                   const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                   float eps, bool silu)
{
  os_cuda_backend *cb = os_cuda(be);
  gn_shape sh;
  if (N <= 0 || C <= 0 || HW <= 0 || !make_shape(cb, &sh, N, C, HW, G, frames_per_stat))
    return;
  int n_stats = N / frames_per_stat * G;
  float *stats = (float *)os_cuda_scratch(cb, (size_t)n_stats * 2 * sizeof(float),
                                          "group_norm statistics");
  if (stats && compute_stats(cb, stats, x, &sh, n_stats, eps)) {
    gn_apply_kernel<<<(unsigned)((size_t)N * C), os_cuda_row_threads(HW), 0, cb->stream>>>(
        os_cuda_view_of(cb, y), os_cuda_view_of(cb, x), stats, os_cuda_view_of(cb, gamma),
        os_cuda_view_of(cb, beta), sh, silu);
    os_cuda_check_launch(cb, "group_norm");
  }
  os_cuda_free(be, stats);
}

void
os_cuda_group_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x, const float *gamma,
                            const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                            float eps, bool silu)
{
  os_cuda_backend *cb = os_cuda(be);
  gn_shape sh;
  if (N <= 0 || C <= 0 || HW <= 0 || (!dx && !dgamma && !dbeta) ||
      !make_shape(cb, &sh, N, C, HW, G, frames_per_stat))
    return;
  int n_stats = N / frames_per_stat * G;
  unsigned rows = (unsigned)((size_t)N * C), threads = os_cuda_row_threads(HW);
  float *stats = (float *)os_cuda_scratch(cb, (size_t)n_stats * 4 * sizeof(float),
                                          "group_norm statistics");
  double *sums = (double *)os_cuda_scratch(cb, (size_t)rows * 2 * sizeof(double),
                                           "group_norm row sums");
  float *coef = stats ? stats + 2 * (size_t)n_stats : NULL;
  if (stats && sums && compute_stats(cb, stats, x, &sh, n_stats, eps)) {
    gn_backward_rows_kernel<<<rows, threads, 0, cb->stream>>>(sums, dy, x, stats, gamma, beta,
                                                              sh, silu);
    if (dgamma || dbeta)
      gn_backward_params_kernel<<<os_cuda_blocks(C), OS_CUDA_THREADS, 0, cb->stream>>>(
          dgamma, dbeta, sums, N, C);
    if (dx) {
      gn_backward_stats_kernel<<<stat_blocks(n_stats), STAT_WARPS * 32, 0, cb->stream>>>(
          coef, sums, gamma, sh, n_stats);
      gn_backward_apply_kernel<<<rows, threads, 0, cb->stream>>>(dx, dy, x, stats, coef, gamma,
                                                                 beta, sh, silu);
    }
    os_cuda_check_launch(cb, "group_norm_backward");
  }
  os_cuda_free(be, stats);
  os_cuda_free(be, sums);
}

// The running moments behind a statistics buffer (float32 storage, so a
// plain device address: backend.h's layout of three doubles).
static double *
moments_of(os_cuda_backend *cb, const float *stats)
{
  return (double *)os_cuda_view_of(cb, stats).ptr;
}

void
os_cuda_group_norm_stats(os_backend *be, float *stats, const float *x, int N, int C, int HW, int G,
                         int frames_per_stat)
{
  os_cuda_backend *cb = os_cuda(be);
  gn_shape sh;
  if (N <= 0 || C <= 0 || HW <= 0 || !make_shape(cb, &sh, N, C, HW, G, frames_per_stat))
    return;
  int n_stats = N / frames_per_stat * G;
  float *shift = (float *)os_cuda_scratch(cb, (size_t)n_stats * 2 * sizeof(float),
                                          "group_norm_stats shifts");
  float *partial = (float *)os_cuda_scratch(cb, (size_t)n_stats * sh.chunks * 2 * sizeof(float),
                                            "group_norm_stats partial sums");
  if (shift && partial) {
    os_cuda_view xv = os_cuda_view_of(cb, x);
    gn_shift_kernel<<<stat_blocks(n_stats), STAT_WARPS * 32, 0, cb->stream>>>(shift, xv, sh,
                                                                              n_stats);
    gn_partial_kernel<<<dim3(n_stats, sh.chunks), 256, 0, cb->stream>>>(partial, xv, shift, sh);
    gn_merge_tile_kernel<<<stat_blocks(n_stats), STAT_WARPS * 32, 0, cb->stream>>>(
        moments_of(cb, stats), shift, partial, sh, n_stats);
    os_cuda_check_launch(cb, "group_norm_stats");
  }
  os_cuda_free(be, shift);
  os_cuda_free(be, partial);
}

void
os_cuda_group_norm_apply(os_backend *be, float *y, const float *x, const float *stats,
                         const float *gamma, const float *beta, int N, int C, int HW, int G,
                         int frames_per_stat, float eps, bool silu)
{
  os_cuda_backend *cb = os_cuda(be);
  gn_shape sh;
  if (N <= 0 || C <= 0 || HW <= 0 || !make_shape(cb, &sh, N, C, HW, G, frames_per_stat))
    return;
  int n_stats = N / frames_per_stat * G;
  float *mean_rstd = (float *)os_cuda_scratch(cb, (size_t)n_stats * 2 * sizeof(float),
                                              "group_norm_apply statistics");
  if (mean_rstd) {
    gn_moments_to_stats_kernel<<<os_cuda_blocks(n_stats), OS_CUDA_THREADS, 0, cb->stream>>>(
        mean_rstd, moments_of(cb, stats), n_stats, eps);
    gn_apply_kernel<<<(unsigned)((size_t)N * C), os_cuda_row_threads(HW), 0, cb->stream>>>(
        os_cuda_view_of(cb, y), os_cuda_view_of(cb, x), mean_rstd, os_cuda_view_of(cb, gamma),
        os_cuda_view_of(cb, beta), sh, silu);
    os_cuda_check_launch(cb, "group_norm_apply");
  }
  os_cuda_free(be, mean_rstd);
}
