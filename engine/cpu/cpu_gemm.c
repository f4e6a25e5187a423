/* cpu_gemm.c: GEMM, batched GEMM and linear layers through OpenBLAS. */
#include "cpu_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

/* Below this many multiply-adds per product, a batch is spread over OpenMP
 * workers one whole product each; above it, each product is split. */
#define SMALL_PRODUCT_MACS (1 << 22)
/* Blocks narrower than this lose more to repacking than they gain. */
#define MIN_BLOCK_COLS 128
#define MIN_BLOCK_ROWS 64

static void
sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
      const float *B, int ldb, float beta, float *C, int ldc)
{
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
              ldc);
}

/* Number of blocks for a dimension: one per core of the machine (not per
 * worker of this backend, so that any thread count gives the same blocks),
 * fewer when blocks would get too small. */
static int
block_count(int extent, int min_block)
{
  int cores = omp_get_num_procs();
  int most = (extent + min_block - 1) / min_block;
  return most < cores ? most : cores;
}

/* C = alpha op(A) op(B) + beta C, split along M or N into blocks that depend
 * only on the shape and the machine's core count; each block is one
 * single-threaded sgemm. A product of more than a unit of work goes in units
 * of whole register tiles (16 rows or columns) along that dimension, each
 * in blocks, with abort polls between them; a smaller one is one unit.
 * Called outside OpenMP regions only. */
static void
parallel_sgemm(os_cpu_progress *progress, int n_threads, bool trans_a, bool trans_b, int M, int N,
               int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc)
{
  os_cpu_blas_single_thread();
  bool split_rows = M > N;
  int extent = split_rows ? M : N;
  double tile_work = 16.0 * (split_rows ? N : M) * K;
  for (int64_t first_tile, end_tile = 0;
       os_cpu_next_unit(progress, (extent + 15) / 16, tile_work, &first_tile, &end_tile);) {
    int first = (int)first_tile * 16;
    int unit = (end_tile * 16 < extent ? (int)end_tile * 16 : extent) - first;
    int n_blocks = block_count(unit, split_rows ? MIN_BLOCK_ROWS : MIN_BLOCK_COLS);
    int block = (unit + n_blocks - 1) / n_blocks;
    block = (block + 15) / 16 * 16; /* whole register tiles of the kernels */
    n_blocks = (unit + block - 1) / block;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_blocks > 1)
    for (int b = 0; b < n_blocks; b++) {
      int start = first + b * block;
      int len = first + unit - start < block ? first + unit - start : block;
      if (split_rows)
        sgemm(trans_a, trans_b, len, N, K, alpha,
              A + (trans_a ? (size_t)start : (size_t)start * lda), lda, B, ldb, beta,
              C + (size_t)start * ldc, ldc);
      else
        sgemm(trans_a, trans_b, M, len, K, alpha, A, lda,
              B + (trans_b ? (size_t)start * ldb : (size_t)start), ldb, beta, C + start, ldc);
    }
  }
}

/* A and B as the products see them: rounded copies when the backend rounds
 * operands (cpu_rounding.c), else the originals. */
typedef struct {
  const float *A, *B;
  float *owned_a, *owned_b;
} rounded_operands;

static void
free_rounded_operands(rounded_operands *r)
{
  free(r->owned_a);
  free(r->owned_b);
}

static bool
round_operands(os_backend *be, rounded_operands *r, bool trans_a, bool trans_b, int M, int N,
               int K, const float *A, int lda, int64_t stride_a, const float *B, int ldb,
               int64_t stride_b, int batch)
{
  r->A = os_cpu_rounded_operand(be, A, os_cpu_matrix_extent(trans_a, M, K, lda, stride_a, batch),
                                &r->owned_a);
  r->B = os_cpu_rounded_operand(be, B, os_cpu_matrix_extent(trans_b, K, N, ldb, stride_b, batch),
                                &r->owned_b);
  if ((A && !r->A) || (B && !r->B)) {
    free_rounded_operands(r);
    return false;
  }
  return true;
}

void
os_cpu_gemm(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
  if (M <= 0 || N <= 0)
    return;
  rounded_operands r;
  if (!round_operands(be, &r, trans_a, trans_b, M, N, K, A, lda, 0, B, ldb, 0, 1))
    return;
  os_cpu_progress progress = os_cpu_progress_start(be);
  parallel_sgemm(&progress, os_cpu_threads(be), trans_a, trans_b, M, N, K, alpha, r.A, lda, r.B,
                 ldb, beta, C, ldc);
  free_rounded_operands(&r);
}

void
os_cpu_gemm_batched(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
                    float alpha, const float *A, int lda, int64_t stride_a, const float *B,
                    int ldb, int64_t stride_b, float beta, float *C, int ldc,
                    int64_t stride_c, int batch)
{
  os_cpu_progress progress = os_cpu_progress_start(be);
  os_cpu_gemm_batched_in(&progress, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb,
                         stride_b, beta, C, ldc, stride_c, batch);
}

void
os_cpu_gemm_batched_in(os_cpu_progress *progress, bool trans_a, bool trans_b, int M, int N,
                       int K, float alpha, const float *A, int lda, int64_t stride_a,
                       const float *B, int ldb, int64_t stride_b, float beta, float *C, int ldc,
                       int64_t stride_c, int batch)
{
  os_backend *be = progress->be;
  if (M <= 0 || N <= 0 || batch <= 0 || progress->stopped)
    return;
  rounded_operands r;
  if (!round_operands(be, &r, trans_a, trans_b, M, N, K, A, lda, stride_a, B, ldb, stride_b,
                      batch))
    return;
  A = r.A;
  B = r.B;
  int n_threads = os_cpu_threads(be);
  double product_work = (double)M * N * K;
  if (product_work < SMALL_PRODUCT_MACS) {
    os_cpu_blas_single_thread();
    for (int64_t first, end = 0; os_cpu_next_unit(progress, batch, product_work, &first, &end);)
#pragma omp parallel for num_threads(n_threads) schedule(dynamic) if (end - first > 1)
      for (int64_t i = first; i < end; i++)
        sgemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb,
              beta, C + i * stride_c, ldc);
  } else {
    for (int i = 0; i < batch && !progress->stopped; i++)
      parallel_sgemm(progress, n_threads, trans_a, trans_b, M, N, K, alpha, A + i * stride_a,
                     lda, B + i * stride_b, ldb, beta, C + i * stride_c, ldc);
  }
  free_rounded_operands(&r);
}

void
os_cpu_linear(os_backend *be, float *y, const float *x, const float *W, const float *bias,
              const float *residual, int T, int in, int out)
{
  if (T <= 0 || out <= 0)
    return;
  float beta = 0.0f;
  if (residual == y) {
    /* y already holds the residual: bias goes in first, the product on top. */
    if (bias)
      os_cpu_add_row_vector(be, y, bias, 1, T, out);
    beta = 1.0f;
  } else if (bias) {
    /* Like PyTorch's addmm: C starts as the broadcast bias. */
    int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)T * out >= OS_CPU_PARALLEL_MIN)
    for (int t = 0; t < T; t++) {
      float *row = y + (size_t)t * out;
      for (int o = 0; o < out; o++)
        row[o] = bias[o];
    }
    beta = 1.0f;
  }
  os_cpu_gemm(be, false, true, T, out, in, 1.0f, x, in, W, in, beta, y, out);
  if (residual && residual != y)
    os_cpu_add(be, y, y, residual, (size_t)T * out);
}

void
os_cpu_linear_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                       const float *x, const float *W, int T, int in, int out)
{
  if (T <= 0 || out <= 0 || in <= 0)
    return;
  if (dx) /* dx[T,in] += dy[T,out] W[out,in] */
    os_cpu_gemm(be, false, false, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
  if (dW) /* dW[out,in] += dy^T x: each element one sum over all T in one sgemm */
    os_cpu_gemm(be, true, false, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in);
  if (db)
    os_cpu_sum_rows(be, db, dy, 1, T, out);
}
