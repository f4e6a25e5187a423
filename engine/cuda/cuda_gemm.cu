// cuda_gemm.cu: gemm, gemm_batched and linear through cuBLAS.
//
// The backend's matrices are row-major; cuBLAS is column-major. A row-major
// C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so every call
// swaps the operands and passes N, M instead of M, N.
//
// Precision (ONESTEP_CUDA_PRECISION): fp32 is exact single precision; tf32
// lets cuBLAS round operands to tf32 on the tensor cores; fp16 and bf16 feed
// 16-bit operands and accumulate in fp32. A buffer that stores the 16-bit type
// is passed to cuBLAS as it is; a float32 one is converted (a float32 weight
// once, cached; an activation per call). C is written in its own stored type
// (cuBLAS rounds the fp32 accumulator). Backward GEMMs are fp32 in every mode
// (os_cuda_gemm_fp32): gradients are not rounded.

#include "cuda_common.h"
#include "cuda_types.cuh"

// ----------------------------------------------------------------------------
// operand staging

__global__ void
convert_kernel(os_cuda_view dst, os_cuda_view src, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { os_store(dst, i, os_load(src, i)); }
}

void
os_cuda_convert(os_cuda_backend *cb, os_cuda_view dst, os_cuda_view src, size_t n)
{
  if (n == 0)
    return;
  convert_kernel<<<os_cuda_blocks(n), OS_CUDA_THREADS, 0, cb->stream>>>(dst, src, n);
  os_cuda_check_launch(cb, "conversion between stored types");
}

cudaDataType
os_cuda_operand_type(const os_cuda_backend *cb)
{
  switch (cb->precision) {
  case OS_CUDA_FP16:
    return CUDA_R_16F;
  case OS_CUDA_BF16:
    return CUDA_R_16BF;
  default:
    return CUDA_R_32F;
  }
}

size_t
os_cuda_type_size(cudaDataType type)
{
  return type == CUDA_R_32F ? 4 : 2;
}

bool
os_cuda_operand_prepare(os_cuda_backend *cb, os_cuda_operand *op, const float *src,
                        size_t extent, bool is_weight)
{
  os_cuda_view stored = os_cuda_view_of(cb, src);
  op->type = os_cuda_operand_type(cb);
  op->scratch = NULL;
  op->ptr = stored.ptr;
  if (os_cuda_dtype_cuda(stored.type) == op->type)
    return true;
  // A float32 buffer in fp16/bf16 mode (16-bit storage is always the operand type).
  if (is_weight) {
    op->ptr = os_cuda_derived_get(cb, src, extent, OS_DERIVED_OPERAND, 0, 0);
    return op->ptr != NULL;
  }
  op->scratch = os_cuda_scratch(cb, extent * os_cuda_type_size(op->type), "a GEMM operand");
  if (!op->scratch)
    return false;
  os_cuda_convert(cb, os_cuda_view{ op->scratch, os_cuda_storage_type(cb) }, stored, extent);
  op->ptr = op->scratch;
  return true;
}

void
os_cuda_operand_release(os_cuda_backend *cb, os_cuda_operand *op)
{
  if (op->scratch)
    os_cuda_free(&cb->base, op->scratch);
  op->scratch = NULL;
}

// Elements spanned by a row-major matrix of `rows` x `cols` with leading
// dimension ld, repeated `batch` times at `stride` (0 for a shared operand).
static size_t
extent_of(int rows, int cols, int ld, int64_t stride, int batch)
{
  return (size_t)(rows - 1) * ld + cols + (size_t)(batch - 1) * (size_t)stride;
}

// ----------------------------------------------------------------------------
// GEMM

static void
gemm_with(os_cuda_backend *cb, cublasComputeType_t compute, bool trans_a, bool trans_b, int M,
          int N, int K, float alpha, const os_cuda_operand *A, int lda, int64_t stride_a,
          const os_cuda_operand *B, int ldb, int64_t stride_b, float beta, float *C, int ldc,
          int64_t stride_c, int batch)
{
  if (M <= 0 || N <= 0 || batch <= 0)
    return;
  os_cuda_view c = os_cuda_view_of(cb, C);
  cublasStatus_t status = cublasGemmStridedBatchedEx(
      cb->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
      K, &alpha, B->ptr, B->type, ldb, stride_b, A->ptr, A->type, lda, stride_a, &beta, c.ptr,
      os_cuda_dtype_cuda(c.type), ldc, stride_c, batch, compute, CUBLAS_GEMM_DEFAULT);
  os_cuda_check_cublas(cb, status, "GEMM");
}

void
os_cuda_gemm_typed(os_cuda_backend *cb, bool trans_a, bool trans_b, int M, int N, int K,
                   float alpha, const os_cuda_operand *A, int lda, int64_t stride_a,
                   const os_cuda_operand *B, int ldb, int64_t stride_b, float beta, float *C,
                   int ldc, int64_t stride_c, int batch)
{
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  if (A->type == CUDA_R_32F && cb->precision == OS_CUDA_TF32)
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  gemm_with(cb, compute, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
            beta, C, ldc, stride_c, batch);
}

void
os_cuda_gemm_fp32(os_cuda_backend *cb, bool trans_a, bool trans_b, int M, int N, int K,
                  float alpha, const float *A, int lda, int64_t stride_a, const float *B, int ldb,
                  int64_t stride_b, float beta, float *C, int ldc, int64_t stride_c, int batch)
{
  os_cuda_operand a = { A, CUDA_R_32F, NULL }, b = { B, CUDA_R_32F, NULL };
  gemm_with(cb, CUBLAS_COMPUTE_32F, trans_a, trans_b, M, N, K, alpha, &a, lda, stride_a, &b, ldb,
            stride_b, beta, C, ldc, stride_c, batch);
}

// The shared path of gemm, gemm_batched and linear; a_is_weight marks A as a
// constant weight whose converted copy may be cached.
static void
gemm_f32(os_cuda_backend *cb, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
         const float *A, int lda, int64_t stride_a, bool a_is_weight, const float *B, int ldb,
         int64_t stride_b, bool b_is_weight, float beta, float *C, int ldc, int64_t stride_c,
         int batch)
{
  if (M <= 0 || N <= 0 || batch <= 0)
    return;
  os_cuda_operand a, b;
  size_t extent_a = trans_a ? extent_of(K, M, lda, stride_a, batch)
                            : extent_of(M, K, lda, stride_a, batch);
  size_t extent_b = trans_b ? extent_of(N, K, ldb, stride_b, batch)
                            : extent_of(K, N, ldb, stride_b, batch);
  if (!os_cuda_operand_prepare(cb, &a, A, extent_a, a_is_weight))
    return;
  if (os_cuda_operand_prepare(cb, &b, B, extent_b, b_is_weight)) {
    os_cuda_gemm_typed(cb, trans_a, trans_b, M, N, K, alpha, &a, lda, stride_a, &b, ldb,
                       stride_b, beta, C, ldc, stride_c, batch);
    os_cuda_operand_release(cb, &b);
  }
  os_cuda_operand_release(cb, &a);
}

void
os_cuda_gemm(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
  gemm_f32(os_cuda(be), trans_a, trans_b, M, N, K, alpha, A, lda, 0, false, B, ldb, 0, false,
           beta, C, ldc, 0, 1);
}

void
os_cuda_gemm_batched(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
                     float alpha, const float *A, int lda, int64_t stride_a, const float *B,
                     int ldb, int64_t stride_b, float beta, float *C, int ldc, int64_t stride_c,
                     int batch)
{
  gemm_f32(os_cuda(be), trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, false, B, ldb,
           stride_b, false, beta, C, ldc, stride_c, batch);
}

void
os_cuda_linear(os_backend *be, float *y, const float *x, const float *W, const float *bias,
               const float *residual, int T, int in, int out)
{
  os_cuda_backend *cb = os_cuda(be);
  float beta = 0.0f;
  if (residual) {
    if (residual != y)
      be->ops->copy(be, y, residual, (size_t)T * out * sizeof(float));
    beta = 1.0f;
  }
  // y[T,out] = x[T,in] W[out,in]^T
  gemm_f32(cb, false, true, T, out, in, 1.0f, x, in, 0, false, W, in, 0, true, beta, y, out, 0,
           1);
  if (bias)
    os_cuda_add_row_vector(be, y, bias, 1, T, out);
}

void
os_cuda_linear_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                        const float *x, const float *W, int T, int in, int out)
{
  os_cuda_backend *cb = os_cuda(be);
  if (dx) // dx[T,in] += dy[T,out] W[out,in]
    os_cuda_gemm_fp32(cb, false, false, T, in, out, 1.0f, dy, out, 0, W, in, 0, 1.0f, dx, in, 0,
                      1);
  if (dW) // dW[out,in] += dy^T x
    os_cuda_gemm_fp32(cb, true, false, out, in, T, 1.0f, dy, out, 0, x, in, 0, 1.0f, dW, in, 0,
                      1);
  if (db)
    os_cuda_sum_rows(be, db, dy, 1, T, out);
}
