/* cpu_storage.c: the GPU's 16-bit storage reproduced on the CPU.
 *
 * In fp16 and bf16 precision the CUDA backend stores OS_STORAGE_ACTIVATION
 * and OS_STORAGE_WEIGHT buffers in that type: every value an op, upload, copy
 * or fill writes there is rounded once, from the op's float32 result. The CPU
 * backend keeps float32 everywhere; with storage emulation on, it rounds what
 * it writes into such buffers the same way, so the accuracy of the storage
 * plan (docs/precision.md) can be measured and tested without a GPU.
 *
 * Emulation swaps the backend's op table for a copy whose writing entries
 * call the exact op and then round the part of its output that lies in a
 * 16-bit block. Op outputs may start anywhere inside a block (chunks, strided
 * heads), so the blocks are kept in a registry sorted by address. Without
 * emulation the table, and so every result, is the exact one: it costs
 * nothing. Rounding a value twice gives the same value, so rounding whole
 * spans of a strided output, including elements the op did not write, changes
 * nothing that was already stored. The backward ops are not wrapped: training
 * runs in fp32, with float32 buffers. A forward op added to backend.h needs
 * its rounding entry in install_rounding_ops, or it would store exactly. */
#include "cpu_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  const float *start, *end;
} stored_block;

struct os_cpu_storage_emulation {
  onestep_precision precision;
  const os_backend_ops *exact;  /* the table without storage rounding */
  os_backend_ops rounding;      /* the table installed while emulating */
  stored_block *blocks;         /* 16-bit blocks, sorted by start */
  size_t n_blocks, cap_blocks;
};

static os_cpu_storage_emulation *
emulation(os_backend *be)
{
  return ((os_cpu_backend *)be)->storage;
}

#define EXACT(be) (emulation(be)->exact)

/* The first block that ends after p (n_blocks if none). */
static size_t
first_block_after(const os_cpu_storage_emulation *e, const float *p)
{
  size_t lo = 0, hi = e->n_blocks;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (e->blocks[mid].end <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Rounds the elements of [p, p + n) that lie in 16-bit blocks. */
static void
round_stored(os_backend *be, const float *p, size_t n)
{
  os_cpu_storage_emulation *e = emulation(be);
  const float *end = p + n;
  for (size_t i = first_block_after(e, p); i < e->n_blocks && e->blocks[i].start < end; i++) {
    float *from = (float *)(e->blocks[i].start > p ? e->blocks[i].start : p);
    const float *to = e->blocks[i].end < end ? e->blocks[i].end : end;
    size_t count = (size_t)(to - from);
    onestep_precision precision = e->precision;
#pragma omp parallel for num_threads(os_cpu_threads(be)) if (count >= OS_CPU_PARALLEL_MIN)
    for (size_t k = 0; k < count; k++)
      from[k] = os_cpu_round_to_precision(from[k], precision);
  }
}

/* ---- memory ---- */

static void *
rounding_alloc_as(os_backend *be, size_t n, os_storage storage)
{
  float *p = EXACT(be)->alloc_as(be, n, storage);
  if (!p || storage == OS_STORAGE_FP32 || n == 0) /* nothing of it to round */
    return p;
  os_cpu_storage_emulation *e = emulation(be);
  if (e->n_blocks == e->cap_blocks) {
    size_t cap = e->cap_blocks ? 2 * e->cap_blocks : 256;
    stored_block *grown = realloc(e->blocks, cap * sizeof *grown);
    if (!grown) {
      EXACT(be)->free(be, p);
      return NULL;
    }
    e->blocks = grown;
    e->cap_blocks = cap;
  }
  size_t at = first_block_after(e, p);
  memmove(e->blocks + at + 1, e->blocks + at, (e->n_blocks - at) * sizeof *e->blocks);
  e->blocks[at] = (stored_block){ p, p + n };
  e->n_blocks++;
  return p;
}

static void
rounding_free(os_backend *be, void *ptr)
{
  os_cpu_storage_emulation *e = emulation(be);
  size_t at = ptr ? first_block_after(e, ptr) : e->n_blocks;
  if (at < e->n_blocks && e->blocks[at].start == ptr) {
    e->n_blocks--;
    memmove(e->blocks + at, e->blocks + at + 1, (e->n_blocks - at) * sizeof *e->blocks);
  }
  EXACT(be)->free(be, ptr);
}

static void
rounding_upload(os_backend *be, void *dst, const void *src, size_t bytes)
{
  EXACT(be)->upload(be, dst, src, bytes);
  round_stored(be, dst, bytes / sizeof(float));
}

static void
rounding_copy(os_backend *be, void *dst, const void *src, size_t bytes)
{
  EXACT(be)->copy(be, dst, src, bytes);
  round_stored(be, dst, bytes / sizeof(float));
}

static void
rounding_fill(os_backend *be, float *dst, float value, size_t n)
{
  EXACT(be)->fill(be, dst, value, n);
  round_stored(be, dst, n);
}

/* ---- products ---- */

static void
rounding_gemm(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
  EXACT(be)->gemm(be, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  round_stored(be, C, os_cpu_matrix_extent(false, M, N, ldc, 0, 1));
}

static void
rounding_gemm_batched(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
                      float alpha, const float *A, int lda, int64_t stride_a, const float *B,
                      int ldb, int64_t stride_b, float beta, float *C, int ldc,
                      int64_t stride_c, int batch)
{
  EXACT(be)->gemm_batched(be, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb,
                          stride_b, beta, C, ldc, stride_c, batch);
  round_stored(be, C, os_cpu_matrix_extent(false, M, N, ldc, stride_c, batch));
}

static void
rounding_linear(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                const float *residual, int T, int in, int out)
{
  EXACT(be)->linear(be, y, x, W, bias, residual, T, in, out);
  round_stored(be, y, (size_t)T * out);
}

static void
rounding_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH, int KW,
                int stride, int pad_top, int pad_left, int pad_bottom, int pad_right)
{
  EXACT(be)->conv2d(be, y, x, W, bias, residual, N, Cin, H, Wd, Cout, KH, KW, stride, pad_top,
                    pad_left, pad_bottom, pad_right);
  size_t Ho = (size_t)(H + pad_top + pad_bottom - KH) / stride + 1;
  size_t Wo = (size_t)(Wd + pad_left + pad_right - KW) / stride + 1;
  round_stored(be, y, (size_t)N * Cout * Ho * Wo);
}

static void
rounding_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                       const float *bias, int B, int F, int Cin, int Cout, int HW)
{
  EXACT(be)->conv_temporal(be, y, x, W, bias, B, F, Cin, Cout, HW);
  round_stored(be, y, (size_t)B * F * Cout * HW);
}

static void
rounding_attention(os_backend *be, float *o, const float *q, const float *k, const float *v,
                   int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride,
                   int k_stride, int v_stride, int o_stride, float scale)
{
  EXACT(be)->attention(be, o, q, k, v, n_seq, Sq, Sk, heads, head_dim, q_stride, k_stride,
                       v_stride, o_stride, scale);
  round_stored(be, o, os_cpu_matrix_extent(false, n_seq * Sq, heads * head_dim, o_stride, 0, 1));
}

/* ---- norms ---- */

static void
rounding_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                    const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                    float eps, bool silu)
{
  EXACT(be)->group_norm(be, y, x, gamma, beta, N, C, HW, G, frames_per_stat, eps, silu);
  round_stored(be, y, (size_t)N * C * HW);
}

static void
rounding_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                    const float *beta, int T, int C, float eps)
{
  EXACT(be)->layer_norm(be, y, x, gamma, beta, T, C, eps);
  round_stored(be, y, (size_t)T * C);
}

static void
rounding_batch_norm_local(os_backend *be, float *y, const float *x, const float *gamma,
                          const float *beta, int N, int C, int P, int group, float eps)
{
  EXACT(be)->batch_norm_local(be, y, x, gamma, beta, N, C, P, group, eps);
  round_stored(be, y, (size_t)N * C * P);
}

static void
rounding_spectral_normalize(os_backend *be, float *y, const float *W, const float *u,
                            const float *v, int rows, int cols)
{
  EXACT(be)->spectral_normalize(be, y, W, u, v, rows, cols);
  round_stored(be, y, (size_t)rows * cols);
}

/* ---- elementwise ---- */

static void
rounding_silu(os_backend *be, float *y, const float *x, size_t n)
{
  EXACT(be)->silu(be, y, x, n);
  round_stored(be, y, n);
}

static void
rounding_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  EXACT(be)->gelu(be, y, x, n);
  round_stored(be, y, n);
}

static void
rounding_quick_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  EXACT(be)->quick_gelu(be, y, x, n);
  round_stored(be, y, n);
}

static void
rounding_geglu(os_backend *be, float *y, const float *x, int T, int C)
{
  EXACT(be)->geglu(be, y, x, T, C);
  round_stored(be, y, (size_t)T * C);
}

static void
rounding_add(os_backend *be, float *y, const float *a, const float *b, size_t n)
{
  EXACT(be)->add(be, y, a, b, n);
  round_stored(be, y, n);
}

static void
rounding_blend(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n)
{
  EXACT(be)->blend(be, y, a, b, alpha, n);
  round_stored(be, y, n);
}

static void
rounding_scale(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  EXACT(be)->scale(be, y, x, alpha, n);
  round_stored(be, y, n);
}

static void
rounding_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C)
{
  EXACT(be)->add_row_vector(be, x, v, G, R, C);
  round_stored(be, x, (size_t)G * R * C);
}

static void
rounding_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P)
{
  EXACT(be)->add_channel_vector(be, x, v, N, C, P);
  round_stored(be, x, (size_t)N * C * P);
}

static void
rounding_leaky_relu(os_backend *be, float *y, const float *x, float slope, size_t n)
{
  EXACT(be)->leaky_relu(be, y, x, slope, n);
  round_stored(be, y, n);
}

static void
rounding_channel_projection(os_backend *be, float *y, const float *x, const float *e, int N,
                            int C, int P)
{
  EXACT(be)->channel_projection(be, y, x, e, N, C, P);
  round_stored(be, y, (size_t)N * P);
}

/* ---- data movement ---- */

static void
rounding_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I)
{
  EXACT(be)->permute_0213(be, y, x, A, Bd, Cd, I);
  round_stored(be, y, (size_t)A * Bd * Cd * I);
}

static void
rounding_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                          int Ho, int Wo)
{
  EXACT(be)->upsample_nearest(be, y, x, N, C, H, W, Ho, Wo);
  round_stored(be, y, (size_t)N * C * Ho * Wo);
}

static void
rounding_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b,
                         int Cb, int N, int P)
{
  EXACT(be)->concat_channels(be, y, a, Ca, b, Cb, N, P);
  round_stored(be, y, (size_t)N * (Ca + Cb) * P);
}

static void
rounding_pixel_shuffle(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                       int r)
{
  EXACT(be)->pixel_shuffle(be, y, x, N, C, H, W, r);
  round_stored(be, y, (size_t)N * C * H * r * W * r);
}

static void
rounding_resize_bilinear(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                         int Ho, int Wo)
{
  EXACT(be)->resize_bilinear(be, y, x, N, C, H, W, Ho, Wo);
  round_stored(be, y, (size_t)N * C * Ho * Wo);
}

/* The exact table with every entry that writes backend memory rounding. */
static void
install_rounding_ops(os_cpu_storage_emulation *e)
{
  os_backend_ops *t = &e->rounding;
  *t = *e->exact;
  t->alloc_as = rounding_alloc_as;
  t->free = rounding_free;
  t->upload = rounding_upload;
  t->copy = rounding_copy;
  t->fill = rounding_fill;
  t->gemm = rounding_gemm;
  t->gemm_batched = rounding_gemm_batched;
  t->linear = rounding_linear;
  t->conv2d = rounding_conv2d;
  t->conv_temporal = rounding_conv_temporal;
  t->group_norm = rounding_group_norm;
  t->layer_norm = rounding_layer_norm;
  t->attention = rounding_attention;
  t->silu = rounding_silu;
  t->gelu = rounding_gelu;
  t->quick_gelu = rounding_quick_gelu;
  t->geglu = rounding_geglu;
  t->add = rounding_add;
  t->blend = rounding_blend;
  t->scale = rounding_scale;
  t->add_row_vector = rounding_add_row_vector;
  t->add_channel_vector = rounding_add_channel_vector;
  t->permute_0213 = rounding_permute_0213;
  t->upsample_nearest = rounding_upsample_nearest;
  t->concat_channels = rounding_concat_channels;
  t->leaky_relu = rounding_leaky_relu;
  t->pixel_shuffle = rounding_pixel_shuffle;
  t->resize_bilinear = rounding_resize_bilinear;
  t->batch_norm_local = rounding_batch_norm_local;
  t->spectral_normalize = rounding_spectral_normalize;
  t->channel_projection = rounding_channel_projection;
}

void
os_backend_cpu_set_storage_precision(os_backend *be, onestep_precision precision)
{
  os_cpu_backend *cpu = (os_cpu_backend *)be;
  bool sixteen_bit = precision == ONESTEP_PRECISION_FP16 || precision == ONESTEP_PRECISION_BF16;
  if (cpu->storage) { /* back to exact, forgetting the blocks */
    be->ops = cpu->storage->exact;
    os_cpu_storage_emulation_free(cpu->storage);
    cpu->storage = NULL;
  }
  if (!sixteen_bit)
    return;
  os_cpu_storage_emulation *e = calloc(1, sizeof *e);
  if (!e) {
    cpu->out_of_memory = true; /* reported by sync(); the backend stays exact */
    return;
  }
  e->precision = precision;
  e->exact = be->ops;
  install_rounding_ops(e);
  cpu->storage = e;
  be->ops = &e->rounding;
}

void
os_cpu_storage_emulation_free(os_cpu_storage_emulation *e)
{
  if (e)
    free(e->blocks);
  free(e);
}
