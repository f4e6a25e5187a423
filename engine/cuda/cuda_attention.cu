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
//
// The forward reads q, k, v and writes o in their stored types (views); scores
// and softmax statistics are fp32. The backward is fp32 in every mode, and reproducible: every gradient
// element has one owner adding in a fixed order. Two paths, as the forward's:
// - flash (head_dim <= 128): FlashAttention-2's backward without atomics. The
//   flash kernel, asked for row statistics instead of the output, gives each
//   query's log-sum-exp and D = dO . O; then one kernel with a warp per query
//   row sums dQ over all keys, and one with a warp per key row sums dK and dV
//   over all queries, each recomputing the probabilities tile by tile.
// - blocked GEMM (wider heads: the VAE's 512): per block of queries, P as in
//   the forward, dV += P^T dO, dS = P (dO V^T - rowsum), dQ += scale dS K,
//   dK += scale dS^T Q, all cuBLAS fp32.

#include <math.h>

#include "cuda_common.h"
#include "cuda_reduce.cuh"
#include "cuda_types.cuh"

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

// The kernel instantiated for the head dim's number of 32-wide slots.
#define FOR_SLOTS(slots, LAUNCH)                                                               \
  switch (slots) {                                                                             \
  case 1:                                                                                      \
    LAUNCH(1);                                                                                 \
    break;                                                                                     \
  case 2:                                                                                      \
    LAUNCH(2);                                                                                 \
    break;                                                                                     \
  case 3:                                                                                      \
    LAUNCH(3);                                                                                 \
    break;                                                                                     \
  default:                                                                                     \
    LAUNCH(FLASH_MAX_SLOTS);                                                                   \
    break;                                                                                     \
  }

// With row_stats, the backward's first pass: instead of the output row, it
// writes row_stats[(s heads + h) Sq + row] = (log-sum-exp, dO . O), dO with
// o_stride.
template <int SLOTS>
__global__ void __launch_bounds__(FLASH_WARPS * 32)
flash_kernel(os_cuda_view o, os_cuda_view q, os_cuda_view k, os_cuda_view v, attn_shape sh,
             const float *d_o, float2 *row_stats)
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

  os_cuda_view qs = os_view_at(q, (s * sh.Sq) * sh.q_stride + (size_t)h * D);
  os_cuda_view ks = os_view_at(k, (s * sh.Sk) * sh.k_stride + (size_t)h * D);
  os_cuda_view vs = os_view_at(v, (s * sh.Sk) * sh.v_stride + (size_t)h * D);
  for (int d = lane; d < D; d += 32)
    Qs[warp * D + d] = active ? os_load(qs, (size_t)row * sh.q_stride + d) * sh.scale : 0.0f;

  float acc[SLOTS];
  for (int t = 0; t < SLOTS; t++)
    acc[t] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (int k0 = 0; k0 < sh.Sk; k0 += FLASH_KEYS) {
    __syncthreads(); // the previous tile is no longer read
    for (int i = threadIdx.x; i < FLASH_KEYS * D; i += blockDim.x) {
      int j = i / D, d = i % D;
      bool valid = k0 + j < sh.Sk;
      Ks[j * kpad + d] = valid ? os_load(ks, (size_t)(k0 + j) * sh.k_stride + d) : 0.0f;
      Vs[j * D + d] = valid ? os_load(vs, (size_t)(k0 + j) * sh.v_stride + d) : 0.0f;
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
  size_t out_at = (s * sh.Sq + row) * sh.o_stride + (size_t)h * D;
  if (row_stats) {
    float dot = 0.0f;
    for (int t = 0; t < SLOTS; t++) {
      int d = lane + 32 * t;
      if (d < D)
        dot += d_o[out_at + d] * (acc[t] / l);
    }
    dot = os_warp_sum(dot);
    if (lane == 0)
      row_stats[(s * sh.heads + h) * sh.Sq + row] = make_float2(m + logf(l), dot);
    return;
  }
  for (int t = 0; t < SLOTS; t++) {
    int d = lane + 32 * t;
    if (d < D)
      os_store(o, out_at + d, acc[t] / l);
  }
}

// Blocks of FLASH_WARPS rows of `rows`, for every head and sequence.
static dim3
flash_grid(int rows, int n_seq, const attn_shape *sh)
{
  return dim3((unsigned)((size_t)((rows + FLASH_WARPS - 1) / FLASH_WARPS) * sh->heads * n_seq));
}

static void
flash(os_cuda_backend *cb, float *o, const float *q, const float *k, const float *v, int n_seq,
      const attn_shape *sh, const float *d_o, float2 *row_stats)
{
  int D = sh->head_dim;
  size_t smem = (size_t)(FLASH_KEYS * (D | 1) + FLASH_KEYS * D + FLASH_WARPS * D) * sizeof(float);
  dim3 grid = flash_grid(sh->Sq, n_seq, sh), block(FLASH_WARPS * 32);
  os_cuda_view ov = os_cuda_view_of(cb, o), qv = os_cuda_view_of(cb, q),
               kv = os_cuda_view_of(cb, k), vv = os_cuda_view_of(cb, v);
#define FLASH_LAUNCH(S)                                                                        \
  flash_kernel<S><<<grid, block, smem, cb->stream>>>(ov, qv, kv, vv, *sh, d_o, row_stats)
  FOR_SLOTS((D + 31) / 32, FLASH_LAUNCH)
#undef FLASH_LAUNCH
  os_cuda_check_launch(cb, "flash attention");
}

// ----------------------------------------------------------------------------
// flash backward

// by_key false: a warp per query row (q_i, dO_i) over tiles of 32 keys
// (K, V): grad_a = dQ. by_key true: a warp per key row (k_j, v_j) over tiles
// of 32 queries (Q, dO and their row statistics): grad_a = dK, grad_b = dV.
// Either way lane j scores column j of the tile: s = scale q.k, dp = dO.v,
// p = exp(s - lse), ds = p (dp - D); then every lane adds ds times the
// tile's A rows (K or Q) and, by key, p times its B rows (dO) into its dims.
// Scores are q scale . k in the forward's order of operations, so the
// probabilities are the forward's.
template <int SLOTS, bool by_key>
__global__ void __launch_bounds__(FLASH_WARPS * 32)
flash_backward_kernel(float *grad_a, float *grad_b, const float *q, const float *k,
                      const float *v, const float *d_o, const float2 *row_stats, attn_shape sh)
{
  extern __shared__ float smem[];
  const int D = sh.head_dim, pad = D | 1;
  float *As = smem;                      // [FLASH_KEYS][pad]: K (scaled Q by key)
  float *Bs = As + FLASH_KEYS * pad;     // [FLASH_KEYS][pad]: V (dO by key)
  float *R1s = Bs + FLASH_KEYS * pad;    // [FLASH_WARPS][D]: scaled q (k by key)
  float *R2s = R1s + FLASH_WARPS * D;    // [FLASH_WARPS][D]: dO (v by key)
  float2 *col_stats = (float2 *)(R2s + FLASH_WARPS * D); // [FLASH_KEYS], by key

  int n_rows = by_key ? sh.Sk : sh.Sq, n_cols = by_key ? sh.Sq : sh.Sk;
  int row_blocks = (n_rows + FLASH_WARPS - 1) / FLASH_WARPS;
  int rb = blockIdx.x % row_blocks;
  int h = (blockIdx.x / row_blocks) % sh.heads;
  size_t s = blockIdx.x / ((size_t)row_blocks * sh.heads);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int row = rb * FLASH_WARPS + warp;
  bool active = row < n_rows;

  const float *qs = q + (s * sh.Sq) * sh.q_stride + (size_t)h * D;
  const float *dos = d_o + (s * sh.Sq) * sh.o_stride + (size_t)h * D;
  const float *ks = k + (s * sh.Sk) * sh.k_stride + (size_t)h * D;
  const float *vs = v + (s * sh.Sk) * sh.v_stride + (size_t)h * D;
  const float2 *stats = row_stats + (s * sh.heads + h) * sh.Sq;
  const float *r1 = by_key ? ks : qs, *r2 = by_key ? vs : dos;
  const float *col_a = by_key ? qs : ks, *col_b = by_key ? dos : vs;
  int r1_stride = by_key ? sh.k_stride : sh.q_stride, r2_stride = by_key ? sh.v_stride : sh.o_stride;
  int a_stride = by_key ? sh.q_stride : sh.k_stride, b_stride = by_key ? sh.o_stride : sh.v_stride;
  float r1_scale = by_key ? 1.0f : sh.scale, a_scale = by_key ? sh.scale : 1.0f;

  for (int d = lane; d < D; d += 32) {
    R1s[warp * D + d] = active ? r1[(size_t)row * r1_stride + d] * r1_scale : 0.0f;
    R2s[warp * D + d] = active ? r2[(size_t)row * r2_stride + d] : 0.0f;
  }
  float2 own = !by_key && active ? stats[row] : make_float2(0.0f, 0.0f);

  float acc_a[SLOTS], acc_b[SLOTS];
  for (int t = 0; t < SLOTS; t++)
    acc_a[t] = acc_b[t] = 0.0f;

  for (int c0 = 0; c0 < n_cols; c0 += FLASH_KEYS) {
    __syncthreads(); // the previous tile is no longer read
    for (int i = threadIdx.x; i < FLASH_KEYS * D; i += blockDim.x) {
      int j = i / D, d = i % D;
      bool valid = c0 + j < n_cols;
      As[j * pad + d] = valid ? col_a[(size_t)(c0 + j) * a_stride + d] * a_scale : 0.0f;
      Bs[j * pad + d] = valid ? col_b[(size_t)(c0 + j) * b_stride + d] : 0.0f;
    }
    if (by_key && threadIdx.x < FLASH_KEYS)
      col_stats[threadIdx.x] =
          c0 + threadIdx.x < n_cols ? stats[c0 + threadIdx.x] : make_float2(0.0f, 0.0f);
    __syncthreads();
    if (!active)
      continue;
    float score = 0.0f, dp = 0.0f;
    const float *r1row = R1s + warp * D, *r2row = R2s + warp * D;
    const float *arow = As + lane * pad, *brow = Bs + lane * pad;
    for (int d = 0; d < D; d++) {
      score += r1row[d] * arow[d];
      dp += r2row[d] * brow[d];
    }
    float2 query = by_key ? col_stats[lane] : own;
    float p = 0.0f, ds = 0.0f;
    if (c0 + lane < n_cols) {
      p = expf(score - query.x);
      ds = p * (dp - query.y);
    }
    for (int j = 0; j < FLASH_KEYS; j++) {
      float pj = __shfl_sync(0xffffffffu, p, j), dsj = __shfl_sync(0xffffffffu, ds, j);
      for (int t = 0; t < SLOTS; t++) {
        int d = lane + 32 * t;
        if (d < D) {
          acc_a[t] += dsj * As[j * pad + d];
          if (by_key)
            acc_b[t] += pj * Bs[j * pad + d];
        }
      }
    }
  }
  if (!active)
    return;
  // by key, ds was multiplied by scaled queries already; dQ takes the scale here
  float out_scale = by_key ? 1.0f : sh.scale;
  float *a_row = grad_a ? grad_a + (s * (by_key ? sh.Sk : sh.Sq) + row) * r1_stride + (size_t)h * D
                        : NULL;
  float *b_row = by_key && grad_b ? grad_b + (s * sh.Sk + row) * sh.v_stride + (size_t)h * D : NULL;
  for (int t = 0; t < SLOTS; t++) {
    int d = lane + 32 * t;
    if (d >= D)
      continue;
    if (a_row)
      a_row[d] += out_scale * acc_a[t];
    if (b_row)
      b_row[d] += acc_b[t];
  }
}

template <bool by_key>
static void
flash_backward(os_cuda_backend *cb, float *grad_a, float *grad_b, const float *q, const float *k,
               const float *v, const float *d_o, const float2 *row_stats, int n_seq,
               const attn_shape *sh)
{
  int D = sh->head_dim;
  size_t smem = (size_t)(2 * FLASH_KEYS * (D | 1) + 2 * FLASH_WARPS * D) * sizeof(float) +
                FLASH_KEYS * sizeof(float2);
  dim3 grid = flash_grid(by_key ? sh->Sk : sh->Sq, n_seq, sh), block(FLASH_WARPS * 32);
#define FLASH_BACKWARD_LAUNCH(S)                                                               \
  flash_backward_kernel<S, by_key><<<grid, block, smem, cb->stream>>>(grad_a, grad_b, q, k, v,   \
                                                                     d_o, row_stats, *sh)
  FOR_SLOTS((D + 31) / 32, FLASH_BACKWARD_LAUNCH)
#undef FLASH_BACKWARD_LAUNCH
  os_cuda_check_launch(cb, by_key ? "attention backward dK dV" : "attention backward dQ");
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

// dS = P (dP - sum_j P dP) in place of dP, rows of length n (one block per row).
__global__ void
softmax_backward_rows_kernel(float *dp, const float *p, int n)
{
  const float *prow = p + (size_t)blockIdx.x * n;
  float *drow = dp + (size_t)blockIdx.x * n;
  double dot = 0.0;
  for (int j = threadIdx.x; j < n; j += blockDim.x)
    dot += (double)prow[j] * drow[j];
  float row_dot = (float)os_block_sum(dot);
  for (int j = threadIdx.x; j < n; j += blockDim.x)
    drow[j] = prow[j] * (drow[j] - row_dot);
}

// Query rows per block whose scores for every head (`buffers` copies of
// them) fit the budget.
static int
blocked_rows(const attn_shape *sh, int buffers)
{
  size_t row_bytes = (size_t)buffers * sh->heads * sh->Sk * sizeof(float);
  size_t rows = SCORES_BUDGET / row_bytes;
  return rows < 1 ? 1 : rows < (size_t)sh->Sq ? (int)rows : sh->Sq;
}

static void
blocked(os_cuda_backend *cb, float *o, const float *q, const float *k, const float *v,
        int n_seq, const attn_shape *sh)
{
  os_backend *be = &cb->base;
  int rows = blocked_rows(sh, 1);
  size_t row_bytes = (size_t)sh->heads * sh->Sk * sizeof(float);
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
    flash(cb, o, q, k, v, n_seq, &sh, NULL, NULL);
  else
    blocked(cb, o, q, k, v, n_seq, &sh);
}

static void
blocked_backward(os_cuda_backend *cb, float *dq, float *dk, float *dv, const float *d_o,
                 const float *q, const float *k, const float *v, int n_seq, const attn_shape *sh)
{
  int rows = blocked_rows(sh, 2), D = sh->head_dim, H = sh->heads, Sk = sh->Sk;
  size_t block_floats = (size_t)rows * H * Sk;
  float *probs = (float *)os_cuda_scratch(cb, 2 * block_floats * sizeof(float),
                                          "attention backward scores");
  if (!probs)
    return;
  float *grads = probs + block_floats;
  for (int s = 0; s < n_seq; s++) {
    const float *qs = q + (size_t)s * sh->Sq * sh->q_stride;
    const float *dos = d_o + (size_t)s * sh->Sq * sh->o_stride;
    const float *ks = k + (size_t)s * Sk * sh->k_stride;
    const float *vs = v + (size_t)s * Sk * sh->v_stride;
    for (int r0 = 0; r0 < sh->Sq; r0 += rows) {
      int R = sh->Sq - r0 < rows ? sh->Sq - r0 : rows;
      int64_t per_head = (int64_t)R * Sk;
      const float *q_block = qs + (size_t)r0 * sh->q_stride;
      const float *do_block = dos + (size_t)r0 * sh->o_stride;
      // P[h] = softmax(scale Q K^T), heads D floats apart in the token rows
      os_cuda_gemm_fp32(cb, false, true, R, Sk, D, sh->scale, q_block, sh->q_stride, D, ks,
                        sh->k_stride, D, 0.0f, probs, Sk, per_head, H);
      softmax_rows_kernel<<<R * H, 256, 0, cb->stream>>>(probs, Sk);
      os_cuda_check_launch(cb, "attention backward softmax");
      if (dv)
        os_cuda_gemm_fp32(cb, true, false, Sk, D, R, 1.0f, probs, Sk, per_head, do_block,
                          sh->o_stride, D, 1.0f, dv + (size_t)s * Sk * sh->v_stride,
                          sh->v_stride, D, H);
      if (!dq && !dk)
        continue;
      os_cuda_gemm_fp32(cb, false, true, R, Sk, D, 1.0f, do_block, sh->o_stride, D, vs,
                        sh->v_stride, D, 0.0f, grads, Sk, per_head, H);
      softmax_backward_rows_kernel<<<R * H, 256, 0, cb->stream>>>(grads, probs, Sk);
      os_cuda_check_launch(cb, "attention backward dS");
      if (dq)
        os_cuda_gemm_fp32(cb, false, false, R, D, Sk, sh->scale, grads, Sk, per_head, ks,
                          sh->k_stride, D, 1.0f,
                          dq + ((size_t)s * sh->Sq + r0) * sh->q_stride, sh->q_stride, D, H);
      if (dk)
        os_cuda_gemm_fp32(cb, true, false, Sk, D, R, sh->scale, grads, Sk, per_head, q_block,
                          sh->q_stride, D, 1.0f, dk + (size_t)s * Sk * sh->k_stride,
                          sh->k_stride, D, H);
    }
  }
  os_cuda_free(&cb->base, probs);
}

void
os_cuda_attention_backward(os_backend *be, float *dq, float *dk, float *dv, const float *d_o,
                           const float *q, const float *k, const float *v, int n_seq, int Sq,
                           int Sk, int heads, int head_dim, int q_stride, int k_stride,
                           int v_stride, int o_stride, float scale)
{
  os_cuda_backend *cb = os_cuda(be);
  if (n_seq <= 0 || Sq <= 0 || heads <= 0 || head_dim <= 0 || (!dq && !dk && !dv))
    return;
  if (Sk <= 0) {
    os_cuda_latch(cb, ONESTEP_ERR_INVALID_ARGUMENT, "attention_backward over %d keys", Sk);
    return;
  }
  attn_shape sh = { Sq, Sk, heads, head_dim, q_stride, k_stride, v_stride, o_stride, scale };
  if (head_dim > 32 * FLASH_MAX_SLOTS) {
    blocked_backward(cb, dq, dk, dv, d_o, q, k, v, n_seq, &sh);
    return;
  }
  float2 *row_stats = (float2 *)os_cuda_scratch(cb, (size_t)n_seq * heads * Sq * sizeof(float2),
                                                "attention row statistics");
  if (!row_stats)
    return;
  flash(cb, NULL, q, k, v, n_seq, &sh, d_o, row_stats);
  if (dq)
    flash_backward<false>(cb, dq, NULL, q, k, v, d_o, row_stats, n_seq, &sh);
  if (dk || dv)
    flash_backward<true>(cb, dk, dv, q, k, v, d_o, row_stats, n_seq, &sh);
  os_cuda_free(be, row_stats);
}
