// cuda_attention.cu: multi-head attention, non-causal, memory linear in tokens.
//
// Three paths:
// - tensor cores (cuda_attention_wmma.cu) in fp16/bf16 mode for head dims 64,
//   80 and 128 with at least 64 queries.
// - flash: an fp32 online-softmax kernel for head_dim <= 128 (the UNet's 64,
//   CLIP's 80, temporal attention over frames). One warp per query row; the
//   block's warps share each tile of 32 keys and values in shared memory. Lane
//   j scores key j of the tile, then every lane accumulates its own slice of
//   the output dims (d = lane + 32 t).
// - blocked GEMM: for larger heads (the VAE's single 512-wide head) and, in
//   fp16/bf16 mode, other long sequences, where cuBLAS on the tensor cores wins:
//   scores for a block of queries (all heads), row softmax, times V.

#include <math.h>

#include "cuda_common.h"
#include "cuda_reduce.cuh"

#define FLASH_WARPS 8      // query rows per block
#define FLASH_KEYS 32      // keys per tile: one per lane
#define FLASH_MAX_SLOTS 4  // head_dim <= 32 * 4
#define SCORES_BUDGET ((size_t)512 << 20)

typedef struct {
  int Sq, Sk, heads, head_dim;
  int q_stride, k_stride, v_stride, o_stride;
  float scale;
} attn_shape;

// ----------------------------------------------------------------------------
// flash path

template <int SLOTS>
__global__ void __launch_bounds__(FLASH_WARPS * 32)
flash_kernel(float *o, const float *q, const float *k, const float *v, attn_shape sh)
{
  extern __shared__ float smem[];
  const int D = sh.head_dim;
  const int kpad = D | 1; // odd row stride: lanes reading column d of K hit distinct banks
  float *Ks = smem;                       // [FLASH_KEYS][kpad]
  float *Vs = Ks + FLASH_KEYS * kpad;     // [FLASH_KEYS][D]
  float *Qs = Vs + FLASH_KEYS * D;        // [FLASH_WARPS][D]

  int q_blocks = (sh.Sq + FLASH_WARPS - 1) / FLASH_WARPS;
  int qb = blockIdx.x % q_blocks;
  int h = (blockIdx.x / q_blocks) % sh.heads;
  size_t s = blockIdx.x / ((size_t)q_blocks * sh.heads);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int row = qb * FLASH_WARPS + warp;
  bool active = row < sh.Sq;

  const float *qs = q + (s * sh.Sq) * sh.q_stride + (size_t)h * D;
  const float *ks = k + (s * sh.Sk) * sh.k_stride + (size_t)h * D;
  const float *vs = v + (s * sh.Sk) * sh.v_stride + (size_t)h * D;
  for (int d = lane; d < D; d += 32)
    Qs[warp * D + d] = active ? qs[(size_t)row * sh.q_stride + d] * sh.scale : 0.0f;

  float acc[SLOTS];
  for (int t = 0; t < SLOTS; t++)
    acc[t] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (int k0 = 0; k0 < sh.Sk; k0 += FLASH_KEYS) {
    __syncthreads(); // the previous tile is no longer read
    for (int i = threadIdx.x; i < FLASH_KEYS * D; i += blockDim.x) {
      int j = i / D, d = i % D;
      bool valid = k0 + j < sh.Sk;
      Ks[j * kpad + d] = valid ? ks[(size_t)(k0 + j) * sh.k_stride + d] : 0.0f;
      Vs[j * D + d] = valid ? vs[(size_t)(k0 + j) * sh.v_stride + d] : 0.0f;
    }
    __syncthreads();
    if (!active)
      continue;
    float score = 0.0f;
    const float *qrow = Qs + warp * D;
    const float *krow = Ks + lane * kpad;
    for (int d = 0; d < D; d++)
      score += qrow[d] * krow[d];
    if (k0 + lane >= sh.Sk)
      score = -INFINITY;
    float m_new = fmaxf(m, os_warp_max(score));
    float correction = expf(m - m_new);
    float p = expf(score - m_new);
    l = l * correction + os_warp_sum(p);
    m = m_new;
    for (int t = 0; t < SLOTS; t++)
      acc[t] *= correction;
    for (int j = 0; j < FLASH_KEYS; j++) {
      float pj = __shfl_sync(0xffffffffu, p, j);
      for (int t = 0; t < SLOTS; t++) {
        int d = lane + 32 * t;
        if (d < D)
          acc[t] += pj * Vs[j * D + d];
      }
    }
  }
  if (!active)
    return;
  float *orow = o + (s * sh.Sq + row) * sh.o_stride + (size_t)h * D;
  for (int t = 0; t < SLOTS; t++) {
    int d = lane + 32 * t;
    if (d < D)
      orow[d] = acc[t] / l;
  }
}

static void
flash(os_cuda_backend *cb, float *o, const float *q, const float *k, const float *v, int n_seq,
      const attn_shape *sh)
{
  int D = sh->head_dim;
  size_t smem = (size_t)(FLASH_KEYS * (D | 1) + FLASH_KEYS * D + FLASH_WARPS * D) * sizeof(float);
  size_t blocks = (size_t)((sh->Sq + FLASH_WARPS - 1) / FLASH_WARPS) * sh->heads * n_seq;
  int slots = (D + 31) / 32;
  dim3 grid((unsigned)blocks), block(FLASH_WARPS * 32);
  switch (slots) {
  case 1:
    flash_kernel<1><<<grid, block, smem, cb->stream>>>(o, q, k, v, *sh);
    break;
  case 2:
    flash_kernel<2><<<grid, block, smem, cb->stream>>>(o, q, k, v, *sh);
    break;
  case 3:
    flash_kernel<3><<<grid, block, smem, cb->stream>>>(o, q, k, v, *sh);
    break;
  default:
    flash_kernel<FLASH_MAX_SLOTS><<<grid, block, smem, cb->stream>>>(o, q, k, v, *sh);
    break;
  }
  os_cuda_check_launch(cb, "flash attention");
}

// ----------------------------------------------------------------------------
// blocked GEMM path

// In-place softmax of each row of length n (one block per row).
__global__ void
softmax_rows_kernel(float *scores, int n)
{
  float *row = scores + (size_t)blockIdx.x * n;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x)
    m = fmaxf(m, row[j]);
  m = os_block_max(m);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    float e = expf(row[j] - m);
    row[j] = e;
    sum += e;
  }
  float inv = 1.0f / os_block_sum(sum);
  for (int j = threadIdx.x; j < n; j += blockDim.x)
    row[j] *= inv;
}

static void
blocked(os_cuda_backend *cb, float *o, const float *q, const float *k, const float *v,
        int n_seq, const attn_shape *sh)
{
  os_backend *be = &cb->base;
  size_t row_bytes = (size_t)sh->heads * sh->Sk * sizeof(float);
  int rows = SCORES_BUDGET / row_bytes < (size_t)sh->Sq ? (int)(SCORES_BUDGET / row_bytes) : sh->Sq;
  if (rows < 1)
    rows = 1;
  float *scores = (float *)os_cuda_scratch(cb, row_bytes * rows, "attention scores");
  if (!scores)
    return;
  int D = sh->head_dim;
  for (int s = 0; s < n_seq; s++) {
    const float *qs = q + (size_t)s * sh->Sq * sh->q_stride;
    const float *ks = k + (size_t)s * sh->Sk * sh->k_stride;
    const float *vs = v + (size_t)s * sh->Sk * sh->v_stride;
    float *out_s = o + (size_t)s * sh->Sq * sh->o_stride;
    for (int r0 = 0; r0 < sh->Sq; r0 += rows) {
      int R = sh->Sq - r0 < rows ? sh->Sq - r0 : rows;
      // scores[h][i][j] = scale * q[r0 + i, h] . k[j, h]; heads sit D floats apart
      os_cuda_gemm_batched(be, false, true, R, sh->Sk, D, sh->scale,
                           qs + (size_t)r0 * sh->q_stride, sh->q_stride, D, ks, sh->k_stride, D,
                           0.0f, scores, sh->Sk, (int64_t)R * sh->Sk, sh->heads);
      softmax_rows_kernel<<<R * sh->heads, 256, 0, cb->stream>>>(scores, sh->Sk);
      os_cuda_check_launch(cb, "attention softmax");
      os_cuda_gemm_batched(be, false, false, R, D, sh->Sk, 1.0f, scores, sh->Sk,
                           (int64_t)R * sh->Sk, vs, sh->v_stride, D, 0.0f,
                           out_s + (size_t)r0 * sh->o_stride, sh->o_stride, D, sh->heads);
    }
  }
  os_cuda_free(be, scores);
}

void
os_cuda_attention(os_backend *be, float *o, const float *q, const float *k, const float *v,
                  int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride, int k_stride,
                  int v_stride, int o_stride, float scale)
{
  os_cuda_backend *cb = os_cuda(be);
  if (n_seq <= 0 || Sq <= 0 || heads <= 0 || head_dim <= 0)
    return;
  if (Sk <= 0) {
    os_cuda_latch(cb, ONESTEP_ERR_INVALID_ARGUMENT, "attention over %d keys", Sk);
    return;
  }
  bool low_precision = os_cuda_operand_type(cb) != CUDA_R_32F;
  bool long_blocked = cb->attention_blocked && low_precision && Sk >= 1024;
  // fp16/bf16 mode: tensor cores, unless the queries are too few to fill a tile
  if (!long_blocked && Sq >= 64 &&
      os_cuda_attention_tensor_cores(cb, o, q, k, v, n_seq, Sq, Sk, heads, head_dim, q_stride,
                                     k_stride, v_stride, o_stride, scale))
    return;
  attn_shape sh = { Sq, Sk, heads, head_dim, q_stride, k_stride, v_stride, o_stride, scale };
  if (head_dim <= 32 * FLASH_MAX_SLOTS && !(low_precision && Sk >= 1024))
    flash(cb, o, q, k, v, n_seq, &sh);
  else
    blocked(cb, o, q, k, v, n_seq, &sh);
}
