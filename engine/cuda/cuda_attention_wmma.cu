// cuda_attention_wmma.cu: flash attention on the tensor cores (WMMA), for
// fp16/bf16 mode and head dims that are multiples of 16 up to 128 (the
// UNet's 64, CLIP's 80).
//
// A block takes 16 query rows per warp of one (sequence, head): 8 warps for
// head_dim 64 (K and V tiles are then shared by 128 rows, halving their
// reads), 4 warps for the wider heads (shared memory stays under 99 KiB, the
// limit on consumer GPUs). Per tile of 32 keys: S = Q K^T (16-bit operands, fp32
// accumulation, Q held in fragments for the whole block) into shared memory;
// an online softmax in fp32 and base 2, two lanes per row, then the output
// accumulator is rescaled and O += P V. The next tile's K and V are loaded
// into registers while the current one is computed.
// WMMA accumulator fragments have no documented element layout, so O lives
// in shared memory (fp32) between tiles instead of in registers. Q, K and V
// are read in their stored types: 16-bit ones as they are (no conversion
// pass), float32 ones rounded to 16 bits while loading into shared memory.
// O is written in its stored type.

#include <mma.h>

#include "cuda_common.h"
#include "cuda_types.cuh"

using namespace nvcuda;

#define TC_ROWS 16 // query rows per warp (the WMMA tile)
#define TC_BK 32   // keys per tile

// Shared-memory row strides: padded (against bank conflicts) and kept to
// WMMA's rules (multiples of 16 bytes, fragment pointers 32-byte aligned).
template <int D, int WARPS> struct tc_layout {
  static constexpr int bq = WARPS * TC_ROWS; // query rows per block
  static constexpr int ldh = D + 8;      // Q, K, V rows (16-bit)
  static constexpr int lds = TC_BK + 4;  // S rows (fp32)
  static constexpr int ldp = TC_BK + 8;  // P rows (16-bit)
  static constexpr int ldo = D + 4;      // O rows (fp32)
  static constexpr size_t q_bytes = (size_t)bq * ldh * 2;
  static constexpr size_t kv_bytes = (size_t)TC_BK * ldh * 2;
  static constexpr size_t s_bytes = (size_t)WARPS * TC_ROWS * lds * 4;
  static constexpr size_t p_bytes = (size_t)WARPS * TC_ROWS * ldp * 2;
  static constexpr size_t o_bytes = (size_t)WARPS * TC_ROWS * ldo * 4;
  static constexpr size_t total = q_bytes + 2 * kv_bytes + s_bytes + p_bytes + o_bytes;
};

typedef struct {
  int Sq, Sk, heads;
  int q_stride, k_stride, v_stride, o_stride;
  float scale;
} tc_shape;

// log2(e): scores are kept in base-2 units (Q is pre-scaled by it), so every
// exponential is one exp2f.
#define TC_LOG2E 1.4426950408889634f

template <typename T, int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
flash_wmma_kernel(os_cuda_view o, os_cuda_view q, os_cuda_view k, os_cuda_view v, tc_shape sh)
{
  typedef tc_layout<D, WARPS> L;
  constexpr int threads = WARPS * 32;
  constexpr int kv_per_thread = TC_BK * D / threads; // K (and V) elements a thread loads per tile
  static_assert(TC_BK * D % threads == 0, "K/V tiles must split evenly over the threads");
  extern __shared__ __align__(32) unsigned char smem[];
  T *Qs = (T *)smem;
  T *Ks = (T *)(smem + L::q_bytes);
  T *Vs = (T *)(smem + L::q_bytes + L::kv_bytes);
  float *S = (float *)(smem + L::q_bytes + 2 * L::kv_bytes);
  T *Pm = (T *)(smem + L::q_bytes + 2 * L::kv_bytes + L::s_bytes);
  float *O = (float *)(smem + L::q_bytes + 2 * L::kv_bytes + L::s_bytes + L::p_bytes);

  int q_blocks = (sh.Sq + L::bq - 1) / L::bq;
  int qb = blockIdx.x % q_blocks;
  int h = (blockIdx.x / q_blocks) % sh.heads;
  size_t s = blockIdx.x / ((size_t)q_blocks * sh.heads);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int q0 = qb * L::bq;

  os_cuda_view qs = os_view_at(q, (s * sh.Sq) * sh.q_stride + (size_t)h * D);
  os_cuda_view ks = os_view_at(k, (s * sh.Sk) * sh.k_stride + (size_t)h * D);
  os_cuda_view vs = os_view_at(v, (s * sh.Sk) * sh.v_stride + (size_t)h * D);

  // K and V of the tile at key k0 into registers (zero past the last key):
  // issued a tile ahead, so global latency overlaps the current tile's math.
  float k_next[kv_per_thread], v_next[kv_per_thread];
  auto load_kv = [&](int k0) {
#pragma unroll
    for (int t = 0; t < kv_per_thread; t++) {
      int i = threadIdx.x + t * threads, j = i / D, d = i % D;
      bool valid = k0 + j < sh.Sk;
      k_next[t] = valid ? os_load(ks, (size_t)(k0 + j) * sh.k_stride + d) : 0.0f;
      v_next[t] = valid ? os_load(vs, (size_t)(k0 + j) * sh.v_stride + d) : 0.0f;
    }
  };
  load_kv(0);

  // Q tile (pre-scaled, in base-2 units), and a zeroed output accumulator.
  float q_scale = sh.scale * TC_LOG2E;
  for (int i = threadIdx.x; i < L::bq * D; i += blockDim.x) {
    int r = i / D, d = i % D;
    float x = q0 + r < sh.Sq ? os_load(qs, (size_t)(q0 + r) * sh.q_stride + d) * q_scale : 0.0f;
    Qs[r * L::ldh + d] = os_from_float<T>(x);
  }
  float *Ow = O + warp * TC_ROWS * L::ldo;
  float *Sw = S + warp * TC_ROWS * L::lds;
  T *Pw = Pm + warp * TC_ROWS * L::ldp;
  for (int i = lane; i < TC_ROWS * L::ldo; i += 32)
    Ow[i] = 0.0f;
  __syncthreads();
  // The warp's Q rows stay in fragments for every tile.
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++)
    wmma::load_matrix_sync(qf[kk], Qs + warp * TC_ROWS * L::ldh + kk * 16, L::ldh);

  // Two lanes per row: lanes 2r and 2r+1 own row r's softmax, each taking
  // every other column (interleaved, which spreads them over the banks).
  int row = lane / 2, side = lane % 2;
  float m = -INFINITY, l = 0.0f;

  for (int k0 = 0; k0 < sh.Sk; k0 += TC_BK) {
    __syncthreads(); // previous K/V tile fully read
#pragma unroll
    for (int t = 0; t < kv_per_thread; t++) {
      int i = threadIdx.x + t * threads, j = i / D, d = i % D;
      Ks[j * L::ldh + d] = os_from_float<T>(k_next[t]);
      Vs[j * L::ldh + d] = os_from_float<T>(v_next[t]);
    }
    __syncthreads();
    if (k0 + TC_BK < sh.Sk)
      load_kv(k0 + TC_BK);

    // S[16 x BK] = Q_w[16 x D] K^T
    for (int n = 0; n < TC_BK / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
        wmma::load_matrix_sync(b, Ks + n * 16 * L::ldh + kk * 16, L::ldh);
        wmma::mma_sync(acc, qf[kk], b, acc);
      }
      wmma::store_matrix_sync(Sw + n * 16, acc, L::lds, wmma::mem_row_major);
    }
    __syncwarp();

    // online softmax of this row's 32 scores (16 per lane), fp32
    float *srow = Sw + row * L::lds;
    float tile_max = -INFINITY;
    for (int c = side; c < TC_BK; c += 2) {
      if (k0 + c >= sh.Sk)
        srow[c] = -INFINITY;
      tile_max = fmaxf(tile_max, srow[c]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    float m_new = fmaxf(m, tile_max);
    float correction = exp2f(m - m_new);
    float sum = 0.0f;
    T *prow = Pw + row * L::ldp;
    for (int c = side; c < TC_BK; c += 2) {
      float p = exp2f(srow[c] - m_new);
      prow[c] = os_from_float<T>(p);
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * correction + sum;
    m = m_new;
    // rescale the output rows: lane j takes columns j, j+32, ... of every row
    for (int r = 0; r < TC_ROWS; r++) {
      float row_correction = __shfl_sync(0xffffffffu, correction, 2 * r);
      for (int d = lane; d < D; d += 32)
        Ow[r * L::ldo + d] *= row_correction;
    }
    __syncwarp();

    // O_w[16 x D] += P[16 x BK] V[BK x D]
    for (int n = 0; n < D / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, Ow + n * 16, L::ldo, wmma::mem_row_major);
      for (int kk = 0; kk < TC_BK / 16; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
        wmma::load_matrix_sync(a, Pw + kk * 16, L::ldp);
        wmma::load_matrix_sync(b, Vs + kk * 16 * L::ldh + n * 16, L::ldh);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(Ow + n * 16, acc, L::ldo, wmma::mem_row_major);
    }
    __syncwarp();
  }

  // Each row's sum lives in its lanes 2r, 2r+1; the warp writes row by row,
  // coalesced.
  for (int r = 0; r < TC_ROWS; r++) {
    float row_sum = __shfl_sync(0xffffffffu, l, 2 * r);
    int qr = q0 + warp * TC_ROWS + r;
    if (qr >= sh.Sq)
      break;
    os_cuda_view out = os_view_at(o, (s * sh.Sq + qr) * sh.o_stride + (size_t)h * D);
    for (int d = lane; d < D; d += 32)
      os_store(out, d, Ow[r * L::ldo + d] / row_sum);
  }
}

template <typename T, int D>
static void
launch(os_cuda_backend *cb, os_cuda_view o, os_cuda_view q, os_cuda_view k, os_cuda_view v,
       int n_seq, const tc_shape *sh)
{
  constexpr int warps = D == 64 ? 8 : 4;
  typedef tc_layout<D, warps> L;
  // Above the default 48 KiB of dynamic shared memory; allowed from sm_80 on.
  cudaFuncSetAttribute(flash_wmma_kernel<T, D, warps>,
                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)L::total);
  size_t blocks = (size_t)((sh->Sq + L::bq - 1) / L::bq) * sh->heads * n_seq;
  flash_wmma_kernel<T, D, warps><<<(unsigned)blocks, warps * 32, L::total, cb->stream>>>(
      o, q, k, v, *sh);
  os_cuda_check_launch(cb, "tensor-core flash attention");
}

bool
os_cuda_attention_tensor_cores(os_cuda_backend *cb, float *o, const float *q, const float *k,
                               const float *v, int n_seq, int Sq, int Sk, int heads,
                               int head_dim, int q_stride, int k_stride, int v_stride,
                               int o_stride, float scale)
{
  cudaDataType type = os_cuda_operand_type(cb);
  if (type == CUDA_R_32F || (head_dim != 64 && head_dim != 80 && head_dim != 128))
    return false;
  tc_shape sh = { Sq, Sk, heads, q_stride, k_stride, v_stride, o_stride, scale };
  os_cuda_view ov = os_cuda_view_of(cb, o), qv = os_cuda_view_of(cb, q),
               kv = os_cuda_view_of(cb, k), vv = os_cuda_view_of(cb, v);
#define DISPATCH(T)                                                                            \
  switch (head_dim) {                                                                          \
  case 64:                                                                                     \
    launch<T, 64>(cb, ov, qv, kv, vv, n_seq, &sh);                                             \
    break;                                                                                     \
  case 80:                                                                                     \
    launch<T, 80>(cb, ov, qv, kv, vv, n_seq, &sh);                                             \
    break;                                                                                     \
  default:                                                                                     \
    launch<T, 128>(cb, ov, qv, kv, vv, n_seq, &sh);                                            \
    break;                                                                                     \
  }
  if (type == CUDA_R_16F)
    DISPATCH(__half)
  else
    DISPATCH(__nv_bfloat16)
#undef DISPATCH
  return true;
}
