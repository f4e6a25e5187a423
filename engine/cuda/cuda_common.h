/* cuda_common.h: the CUDA backend's private state and the helpers shared by
 * its .cu files (one op family per file, as in llm.c's llmc/).
 *
 * All work is queued on one stream; nothing here blocks except sync() and
 * download(). Device and cuBLAS errors are latched (first one wins) and
 * reported by sync(). */
#ifndef ONESTEP_CUDA_COMMON_H
#define ONESTEP_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <library_types.h>

#include "backend.h"

/* ---------------------------------------------------------------------------- */
/* state */

/* How GEMM operands are fed to the tensor cores (ONESTEP_CUDA_PRECISION).
 * Accumulation is fp32 in every mode; only the operands are rounded. */
typedef enum {
  OS_CUDA_FP32 = 0, /* exact fp32 (golden checks) */
  OS_CUDA_TF32,     /* fp32 operands rounded to tf32 inside cuBLAS */
  OS_CUDA_FP16,     /* operands converted to half */
  OS_CUDA_BF16,     /* operands converted to bfloat16 */
} os_cuda_precision;

/* Launches (kernels, GEMMs) the host may queue ahead of the GPU. */
#define OS_CUDA_MAX_QUEUED 32

typedef struct os_cuda_pool os_cuda_pool;
typedef struct os_cuda_derived_cache os_cuda_derived_cache;
typedef struct os_cuda_profile os_cuda_profile;
typedef struct os_cuda_cudnn os_cuda_cudnn;

typedef struct {
  os_backend base;
  int device;
  char device_name[256];
  cudaStream_t stream;
  cublasHandle_t cublas;
  void *cublas_workspace;
  os_cuda_precision precision;
  /* Long low-precision attention through cuBLAS (scores, softmax, times V)
   * instead of the tensor-core flash kernel; ONESTEP_CUDA_ATTENTION=blocked. */
  bool attention_blocked;
  os_cuda_pool *pool;             /* caching allocator (cuda_alloc.cu) */
  os_cuda_derived_cache *derived; /* converted copies of weights (cuda_derived.cu) */
  onestep_status latched;         /* first error since the last sync() */
  char latched_message[512];
  /* One event per queued launch, reused round-robin: before a launch takes a
   * slot, the launch that held it must have finished, so the host never runs
   * more than OS_CUDA_MAX_QUEUED launches ahead of the GPU and an abort seen
   * between layers stops the GPU within a few milliseconds of work. */
  cudaEvent_t queued[OS_CUDA_MAX_QUEUED];
  unsigned long long launches;
  os_cuda_profile *profile; /* per-op times (cuda_profile.cu), NULL unless asked for */
  os_cuda_cudnn *cudnn;     /* loaded by the first conv2d_backward (cuda_cudnn.cu) */
} os_cuda_backend;

static inline os_cuda_backend *
os_cuda(os_backend *be)
{
  return (os_cuda_backend *)be;
}

/* ---------------------------------------------------------------------------- */
/* errors (cuda_backend.cu) */

void os_cuda_latch(os_cuda_backend *cb, onestep_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Called after every kernel launch and cuBLAS call: latches the pending
 * error, if any (`what` names the op), and bounds the queue (see `queued`). */
void os_cuda_check_launch(os_cuda_backend *cb, const char *what);
void os_cuda_check_cublas(os_cuda_backend *cb, cublasStatus_t status, const char *what);

/* ---------------------------------------------------------------------------- */
/* memory (cuda_alloc.cu) */

os_cuda_pool *os_cuda_pool_new(void);
/* Frees cached and live blocks (at destroy). */
void os_cuda_pool_free_all(os_cuda_pool *pool);
/* Stream-ordered: a block freed after queuing work that reads it may be
 * handed out again at once, since every user of it runs on the same stream. */
void *os_cuda_alloc(os_backend *be, size_t bytes);
/* n elements stored as `storage`: float32, or the precision's 16-bit type for
 * ACTIVATION and WEIGHT in fp16/bf16 mode. A 16-bit block is handed out as a
 * handle: an address range of 4 bytes per element reserved in the host's
 * address space (PROT_NONE, so nothing can live there, and under unified
 * addressing no device allocation can overlap it), backed by a device block
 * of 2 bytes per element. Model code does its element arithmetic on the
 * handle; os_cuda_view_of turns a pointer into it into the device address. */
void *os_cuda_alloc_as(os_backend *be, size_t n, os_storage storage);

/* What a buffer pointer handed to an op refers to: the device address of that
 * element and the type stored there (backend.h: buffers are addressed in
 * elements through float pointers whatever they store). NULL stays NULL. */
typedef enum { OS_CUDA_STORE_F32 = 0, OS_CUDA_STORE_F16, OS_CUDA_STORE_BF16 } os_cuda_dtype;
typedef struct {
  void *ptr;
  os_cuda_dtype type;
} os_cuda_view;
os_cuda_view os_cuda_view_of(os_cuda_backend *cb, const float *p);
/* Whether any live buffer stores 16 bits (a quick answer for the ops that need float32). */
bool os_cuda_has_16bit_buffers(const os_cuda_backend *cb);
void os_cuda_free(os_backend *be, void *ptr);

/* The type ACTIVATION and WEIGHT buffers store: fp16 or bf16 in those
 * precisions, float32 in fp32 and tf32. */
static inline os_cuda_dtype
os_cuda_storage_type(const os_cuda_backend *cb)
{
  return cb->precision == OS_CUDA_FP16   ? OS_CUDA_STORE_F16
         : cb->precision == OS_CUDA_BF16 ? OS_CUDA_STORE_BF16
                                         : OS_CUDA_STORE_F32;
}

static inline size_t
os_cuda_dtype_size(os_cuda_dtype type)
{
  return type == OS_CUDA_STORE_F32 ? 4 : 2;
}

static inline cudaDataType
os_cuda_dtype_cuda(os_cuda_dtype type)
{
  return type == OS_CUDA_STORE_F16    ? CUDA_R_16F
         : type == OS_CUDA_STORE_BF16 ? CUDA_R_16BF
                                      : CUDA_R_32F;
}

/* A scratch buffer for one op; latches OUT_OF_MEMORY and returns NULL on
 * failure. It is plain device memory of `bytes` bytes, never a handle: passed
 * to an op or os_cuda_view_of, it reads as float32. */
void *os_cuda_scratch(os_cuda_backend *cb, size_t bytes, const char *what);

/* ---------------------------------------------------------------------------- */
/* derived weights (cuda_derived.cu): converted copies of constant operands,
 * cached by source pointer and dropped when the source is freed or written by
 * upload/copy/fill or by the ops that update weights in place (axpy,
 * adamw_step, ema_update). Only weight arguments (linear/conv W) go through
 * here. A weight stored in the precision's 16-bit type is its own operand, so
 * only float32 weights (LoRA-merged or trained) get a converted copy; the
 * temporal taps are regrouped from either. */

typedef enum {
  OS_DERIVED_OPERAND = 0,   /* a float32 weight in the GEMM operand type */
  OS_DERIVED_TEMPORAL_TAPS, /* [Cout,Cin,3] -> [Cout,3,Cin], in the GEMM operand type */
} os_derived_kind;

os_cuda_derived_cache *os_cuda_derived_new(void);
void os_cuda_derived_destroy(os_cuda_backend *cb);
/* Drops entries whose source overlaps [ptr, ptr + bytes) (handle bytes: 4 per element). */
void os_cuda_derived_invalidate(os_cuda_backend *cb, const void *ptr, size_t bytes);
/* The derived copy of the n elements at src, building it on first use; NULL
 * (error latched) when out of memory. Its elements are of os_cuda_operand_type. */
const void *os_cuda_derived_get(os_cuda_backend *cb, const float *src, size_t n,
                                os_derived_kind kind, int cout, int cin);

/* ---------------------------------------------------------------------------- */
/* GEMM (cuda_gemm.cu) */

/* A GEMM operand as cuBLAS will read it: the buffer itself when it already
 * stores the operand type, else converted into it; `scratch` is owned and
 * released by os_cuda_operand_release. */
typedef struct {
  const void *ptr;
  cudaDataType type;
  void *scratch;
} os_cuda_operand;

/* Prepares `extent` elements at src (any buffer pointer) for the current
 * precision; float32 weights are converted once and cached, other float32
 * buffers into scratch. */
bool os_cuda_operand_prepare(os_cuda_backend *cb, os_cuda_operand *op, const float *src,
                             size_t extent, bool is_weight);
void os_cuda_operand_release(os_cuda_backend *cb, os_cuda_operand *op);
/* The operand shifted by `elements` of its type (it owns no scratch). */
static inline os_cuda_operand
os_cuda_operand_at(const os_cuda_operand *op, size_t elements)
{
  os_cuda_operand shifted = *op;
  shifted.ptr = (const char *)op->ptr + elements * (op->type == CUDA_R_32F ? 4 : 2);
  shifted.scratch = NULL;
  return shifted;
}
/* The element type GEMM operands are fed in (CUDA_R_32F unless fp16/bf16). */
cudaDataType os_cuda_operand_type(const os_cuda_backend *cb);
size_t os_cuda_type_size(cudaDataType type);
/* dst[i] = src[i] for n elements, converting between the stored types (a
 * plain copy when they agree), on the stream. */
void os_cuda_convert(os_cuda_backend *cb, os_cuda_view dst, os_cuda_view src, size_t n);

/* Row-major strided-batched GEMM on prepared operands (see backend.h's gemm);
 * C is any buffer pointer, written in its stored type. */
void os_cuda_gemm_typed(os_cuda_backend *cb, bool trans_a, bool trans_b, int M, int N, int K,
                        float alpha, const os_cuda_operand *A, int lda, int64_t stride_a,
                        const os_cuda_operand *B, int ldb, int64_t stride_b, float beta,
                        float *C, int ldc, int64_t stride_c, int batch);

/* The same on fp32 buffers in exact fp32 whatever the precision (backward ops). */
void os_cuda_gemm_fp32(os_cuda_backend *cb, bool trans_a, bool trans_b, int M, int N, int K,
                       float alpha, const float *A, int lda, int64_t stride_a, const float *B,
                       int ldb, int64_t stride_b, float beta, float *C, int ldc, int64_t stride_c,
                       int batch);

void os_cuda_gemm(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta, float *C,
                  int ldc);
void os_cuda_gemm_batched(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
                          float alpha, const float *A, int lda, int64_t stride_a,
                          const float *B, int ldb, int64_t stride_b, float beta, float *C,
                          int ldc, int64_t stride_c, int batch);
void os_cuda_linear(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                    const float *residual, int T, int in, int out);
void os_cuda_linear_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                             const float *x, const float *W, int T, int in, int out);

/* ---------------------------------------------------------------------------- */
/* other ops, one file each; each backward beside its forward (backend_grad.h) */

void os_cuda_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                    const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH,
                    int KW, int stride, int pad_top, int pad_left, int pad_bottom,
                    int pad_right);
void os_cuda_conv2d_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                             const float *x, const float *W, const os_conv2d_shape *shape);
void os_cuda_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                           const float *bias, int B, int F, int Cin, int Cout, int HW);
void os_cuda_conv_temporal_backward(os_backend *be, float *dx, float *dW, float *db,
                                    const float *dy, const float *x, const float *W, int B, int F,
                                    int Cin, int Cout, int HW);
void os_cuda_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                        const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                        float eps, bool silu);
void os_cuda_group_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                 const float *dy, const float *x, const float *gamma,
                                 const float *beta, int N, int C, int HW, int G,
                                 int frames_per_stat, float eps, bool silu);
void os_cuda_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                        const float *beta, int T, int C, float eps);
void os_cuda_layer_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                 const float *dy, const float *x, const float *gamma, int T,
                                 int C, float eps);
void os_cuda_attention(os_backend *be, float *o, const float *q, const float *k, const float *v,
                       int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride,
                       int k_stride, int v_stride, int o_stride, float scale);
void os_cuda_attention_backward(os_backend *be, float *dq, float *dk, float *dv, const float *d_o,
                                const float *q, const float *k, const float *v, int n_seq, int Sq,
                                int Sk, int heads, int head_dim, int q_stride, int k_stride,
                                int v_stride, int o_stride, float scale);
/* cuda_attention_wmma.cu: false when the precision or head_dim does not suit it. */
bool os_cuda_attention_tensor_cores(os_cuda_backend *cb, float *o, const float *q, const float *k,
                                    const float *v, int n_seq, int Sq, int Sk, int heads,
                                    int head_dim, int q_stride, int k_stride, int v_stride,
                                    int o_stride, float scale);

/* cuda_elementwise.cu */
void os_cuda_fill(os_backend *be, float *dst, float value, size_t n);
void os_cuda_silu(os_backend *be, float *y, const float *x, size_t n);
void os_cuda_gelu(os_backend *be, float *y, const float *x, size_t n);
void os_cuda_quick_gelu(os_backend *be, float *y, const float *x, size_t n);
void os_cuda_geglu(os_backend *be, float *y, const float *x, int T, int C);
void os_cuda_add(os_backend *be, float *y, const float *a, const float *b, size_t n);
void os_cuda_blend(os_backend *be, float *y, const float *a, const float *b, float alpha,
                   size_t n);
void os_cuda_scale(os_backend *be, float *y, const float *x, float alpha, size_t n);
void os_cuda_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C);
void os_cuda_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P);
/* y[n, c, p] += bias[c] (bias may be NULL) + residual[n, c, p] (may be NULL):
 * the epilogue of convolutions. */
void os_cuda_bias_residual(os_cuda_backend *cb, float *y, const float *bias,
                           const float *residual, int N, int C, int P);
void os_cuda_silu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
void os_cuda_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
void os_cuda_quick_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                                 size_t n);
void os_cuda_geglu_backward(os_backend *be, float *dx, const float *dy, const float *x, int T,
                            int C);
void os_cuda_axpy(os_backend *be, float *y, const float *x, float alpha, size_t n);
double os_cuda_dot(os_backend *be, const float *a, const float *b, size_t n);
void os_cuda_sum_rows(os_backend *be, float *dv, const float *dx, int G, int R, int C);
void os_cuda_sum_channel_planes(os_backend *be, float *dv, const float *dx, int N, int C, int P);
/* db[c] += sum over n and p of dy[n, c, p]: the bias gradient of convolutions. */
void os_cuda_channel_sums(os_cuda_backend *cb, float *db, const float *dy, int N, int C, int P);

/* Whole-buffer sums returned to the host (dot, loss): each of a fixed number
 * of blocks writes a partial sum in double, which the host adds in order. */
#define OS_CUDA_REDUCE_BLOCKS 256u
unsigned os_cuda_reduce_blocks(size_t n);
/* Waits for the partials and returns their sum (NaN with the error latched). */
double os_cuda_sum_partials(os_cuda_backend *cb, const double *partial, unsigned blocks);

/* cuda_optim.cu */
double os_cuda_loss(os_backend *be, float *grad, const float *pred, const float *target,
                    size_t n, os_loss_kind kind, float c, float scale);
void os_cuda_adamw_step(os_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                        float lr, float beta1, float beta2, float eps, float weight_decay,
                        int64_t step);
void os_cuda_ema_update(os_backend *be, float *e, const float *p, float mu, size_t n);

/* cuda_layout.cu */
void os_cuda_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I);
void os_cuda_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H,
                              int W, int Ho, int Wo);
void os_cuda_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b,
                             int Cb, int N, int P);
void os_cuda_upsample_nearest_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                       int H, int W, int Ho, int Wo);
void os_cuda_split_channels(os_backend *be, float *da, float *db, const float *dy, int Ca, int Cb,
                            int N, int P);

/* ---------------------------------------------------------------------------- */
/* profiling (cuda_profile.cu), with ONESTEP_CUDA_PROFILE=1 */

os_cuda_profile *os_cuda_profile_new(void);
/* The op table with every compute op timed by CUDA events. */
const os_backend_ops *os_cuda_profiled_ops(const os_backend_ops *plain);
/* Prints the per-op totals to stderr and frees the profile (at destroy). */
void os_cuda_profile_report(os_cuda_backend *cb);

/* ---------------------------------------------------------------------------- */
/* launch helpers */

#define OS_CUDA_THREADS 256

static inline unsigned
os_cuda_blocks(size_t n)
{
  /* Grid-stride loops cover the rest; this keeps every launch legal. */
  size_t blocks = (n + OS_CUDA_THREADS - 1) / OS_CUDA_THREADS;
  if (blocks > 65535u * 8u)
    blocks = 65535u * 8u;
  return blocks ? (unsigned)blocks : 1u;
}

/* Row-shaped launches: one block per row of `len` contiguous elements, so
 * a kernel derives a row's indices once instead of dividing per element
 * (64-bit division would make these memory-bound kernels compute-bound). */
static inline unsigned
os_cuda_row_threads(size_t len)
{
  return len >= 256 ? 256 : len > 64 ? 128 : 64;
}

#define OS_CUDA_ROW_LOOP(j, len) for (unsigned j = threadIdx.x; j < (len); j += blockDim.x)

#define OS_CUDA_GRID_STRIDE(i, n)                                                        \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                \
       i += (size_t)gridDim.x * blockDim.x)

#endif
