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

#include "cuda_common.h"
#include "cuda_reduce.cuh"

#define CHUNK 16384 // elements per partial sum (at least)

typedef struct {
  int C, HW, G, frames_per_stat;
  size_t group_len; // (C / G) * HW: one image's part of a group
  size_t stat_len;  // group_len * frames_per_stat
  size_t chunk_len; // elements per partial sum
  int chunks;       // partial sums per statistic (at most 65535: grid.y)
} gn_shape;

// Element e of statistic s lives at stat_base(s)[f * C * HW + r] with
// f = e / group_len, r = e % group_len.
__device__ __forceinline__ const float *
stat_base(const float *x, const gn_shape sh, int s)
{
  int unit = s / sh.G, g = s % sh.G;
  return x + (size_t)unit * sh.frames_per_stat * sh.C * sh.HW + g * sh.group_len;
}

// One warp per statistic: the shift K = mean of its first (up to) 32 values,
// stored in stats[2s] until the finalize kernel replaces it by the mean.
__global__ void
gn_shift_kernel(float *stats, const float *x, gn_shape sh, int n_stats)
{
  int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (s >= n_stats)
    return;
  int n = sh.group_len < 32 ? (int)sh.group_len : 32;
  float v = lane < n ? stat_base(x, sh, s)[lane] : 0.0f;
  v = os_warp_sum(v);
  if (lane == 0)
    stats[2 * s] = v / n;
}

// partial[2 (s * chunks + chunk) + {0, 1}] = sums over the chunk of (x - K)
// and (x - K)^2. Each thread walks its elements keeping (frame, offset) up
// to date instead of dividing.
__global__ void
gn_partial_kernel(float *partial, const float *x, const float *stats, gn_shape sh)
{
  int s = blockIdx.x, chunk = blockIdx.y;
  const float *base = stat_base(x, sh, s);
  size_t frame_stride = (size_t)sh.C * sh.HW;
  size_t begin = (size_t)chunk * sh.chunk_len;
  size_t end = begin + sh.chunk_len < sh.stat_len ? begin + sh.chunk_len : sh.stat_len;
  float shift = stats[2 * s];
  float sum = 0.0f, squares = 0.0f;
  size_t e = begin + threadIdx.x;
  size_t f = e / sh.group_len, r = e % sh.group_len;
  for (; e < end; e += blockDim.x) {
    float v = base[f * frame_stride + r] - shift;
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

// One warp per statistic adds its partials in double (fixed order) and
// turns them into stats[2s] = mean, stats[2s+1] = 1 / sqrt(var + eps).
__global__ void
gn_finalize_kernel(float *stats, const float *partial, gn_shape sh, int n_stats, float eps)
{
  int s = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (s >= n_stats)
    return;
  double sum = 0.0, squares = 0.0;
  for (int i = lane; i < sh.chunks; i += 32) {
    size_t at = 2 * ((size_t)s * sh.chunks + i);
    sum += partial[at];
    squares += partial[at + 1];
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    squares += __shfl_xor_sync(0xffffffffu, squares, offset);
  }
  if (lane == 0) {
    double n = (double)sh.stat_len;
    double d = sum / n; // mean - shift
    double var = squares / n - d * d;
    stats[2 * s] = (float)(stats[2 * s] + d);
    stats[2 * s + 1] = (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)eps));
  }
}

// One block per (image, channel) row of HW values.
__global__ void
gn_apply_kernel(float *y, const float *x, const float *stats, const float *gamma,
                const float *beta, gn_shape sh, bool silu)
{
  unsigned row = blockIdx.x;
  unsigned c = row % sh.C, image = row / sh.C;
  int s = (int)(image / sh.frames_per_stat) * sh.G + (int)c / (sh.C / sh.G);
  float mean = stats[2 * s], rstd = stats[2 * s + 1];
  float a = rstd * (gamma ? gamma[c] : 1.0f);
  float b = beta ? beta[c] : 0.0f;
  const float *in = x + (size_t)row * sh.HW;
  float *out = y + (size_t)row * sh.HW;
  OS_CUDA_ROW_LOOP(p, (unsigned)sh.HW)
  {
    float v = (in[p] - mean) * a + b;
    out[p] = silu ? v / (1.0f + expf(-v)) : v;
  }
}

void
os_cuda_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                   const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                   float eps, bool silu)
{
  os_cuda_backend *cb = os_cuda(be);
  if (N <= 0 || C <= 0 || HW <= 0)
    return;
  if (G <= 0 || C % G != 0 || frames_per_stat <= 0 || N % frames_per_stat != 0) {
    os_cuda_latch(cb, ONESTEP_ERR_INVALID_ARGUMENT,
                  "group_norm: %d channels in %d groups over %d images, %d per statistic", C, G,
                  N, frames_per_stat);
    return;
  }
  gn_shape sh;
  sh.C = C;
  sh.HW = HW;
  sh.G = G;
  sh.frames_per_stat = frames_per_stat;
  sh.group_len = (size_t)(C / G) * HW;
  sh.stat_len = sh.group_len * frames_per_stat;
  sh.chunk_len = CHUNK;
  if ((sh.stat_len + sh.chunk_len - 1) / sh.chunk_len > 65535)
    sh.chunk_len = (sh.stat_len + 65534) / 65535;
  sh.chunks = (int)((sh.stat_len + sh.chunk_len - 1) / sh.chunk_len);
  int n_stats = N / frames_per_stat * G;

  float *partial = (float *)os_cuda_scratch(cb, (size_t)n_stats * sh.chunks * 2 * sizeof(float),
                                            "group_norm partial sums");
  float *stats = (float *)os_cuda_scratch(cb, (size_t)n_stats * 2 * sizeof(float),
                                          "group_norm statistics");
  if (partial && stats) {
    int warps = 8, stat_blocks = (n_stats + warps - 1) / warps;
    gn_shift_kernel<<<stat_blocks, warps * 32, 0, cb->stream>>>(stats, x, sh, n_stats);
    gn_partial_kernel<<<dim3(n_stats, sh.chunks), 256, 0, cb->stream>>>(partial, x, stats, sh);
    gn_finalize_kernel<<<stat_blocks, warps * 32, 0, cb->stream>>>(stats, partial, sh, n_stats,
                                                                   eps);
    gn_apply_kernel<<<(unsigned)((size_t)N * C), os_cuda_row_threads(HW), 0, cb->stream>>>(
        y, x, stats, gamma, beta, sh, silu);
    os_cuda_check_launch(cb, "group_norm");
  }
  os_cuda_free(be, partial);
  os_cuda_free(be, stats);
}
