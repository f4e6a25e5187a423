/* backend.h: the compute backend interface (plain C vtable).
 *
 * Every model layer is a plain function over explicit device buffers and
 * shapes that calls these ops, so the same model code runs on the CPU and the
 * CUDA backend, and a backward pass can later sit beside each forward.
 *
 * Conventions:
 * - Buffers are row-major, contiguous, and live in the backend's memory (host
 *   memory for the CPU backend, device memory for CUDA). Each buffer has a
 *   storage (os_storage below): float32, or the backend's 16-bit type. Every
 *   buffer is addressed in elements through float pointers whatever it
 *   stores: element i of buffer p is p + i, so model code computes offsets
 *   the same way for all. Only ops, upload, download and copy touch the
 *   values, converting to and from float32 as they go; their byte counts
 *   count 4 bytes per element. Ops compute in float32 (products accumulate
 *   in float32) and round what they write to the output's storage.
 * - Image tensors are [N, C, H, W] with N = B * F (batch-major: n = b*F + f).
 * - Token tensors are [T, C].
 * - Ops do not fail on valid arguments; a backend that hits a device error
 *   latches it and reports it from sync().
 * - Output buffers never alias inputs unless the op says so.
 */
#ifndef ONESTEP_BACKEND_H
#define ONESTEP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend_grad.h"
#include "onestep.h"

typedef struct os_backend os_backend;

/* What a buffer stores. A backend in fp16 or bf16 precision keeps activations
 * and frozen weights in that type; in fp32 and tf32 everything is float32.
 * Writing a 16-bit buffer rounds to nearest, ties to even, fp16 overflowing
 * to infinity (__float2half_rn, __float2bfloat16_rn), once per value written.
 * docs/precision.md lists which model buffer has which storage, and why. */
typedef enum os_storage {
  OS_STORAGE_FP32 = 0,   /* always float32: the residual stream and the inputs
                          * of normalisations, the time embedding, sampler
                          * state, trained parameters, weight vectors (biases,
                          * norm scales), host exchange */
  OS_STORAGE_ACTIVATION, /* the backend's activation type: temporaries inside a
                          * block, mostly the operands of products */
  OS_STORAGE_WEIGHT,     /* frozen weights of 2+ dimensions: the same 16-bit
                          * type, no float32 copy */
} os_storage;

typedef struct os_backend_ops {
  const char *name; /* "cpu" or "cuda" */
  bool is_host;     /* buffers are host pointers (weights may then point into an mmap) */

  /* --- memory --- */
  void *(*alloc)(os_backend *be, size_t bytes);   /* float32; NULL when out of memory */
  /* n elements stored as `storage`; NULL when out of memory. */
  void *(*alloc_as)(os_backend *be, size_t n, os_storage storage);
  void (*free)(os_backend *be, void *ptr);
  void (*upload)(os_backend *be, void *dst, const void *src, size_t bytes);
  void (*download)(os_backend *be, void *dst, const void *src, size_t bytes);
  void (*copy)(os_backend *be, void *dst, const void *src, size_t bytes);
  void (*fill)(os_backend *be, float *dst, float value, size_t n);
  /* Waits for queued work; returns ONESTEP_OK or the latched device error. */
  onestep_status (*sync)(os_backend *be, onestep_error *error);
  void (*destroy)(os_backend *be);

  /* --- GEMM --- */
  /* C[M,N] = alpha * op(A) op(B) + beta * C, row-major; op(A) is [M,K]
   * (A stored [K,M] when trans_a), op(B) is [K,N] (B stored [N,K] when trans_b). */
  void (*gemm)(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
               float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc);
  /* The same for `batch` independent products at fixed strides (elements). */
  void (*gemm_batched)(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
                       float alpha, const float *A, int lda, int64_t stride_a,
                       const float *B, int ldb, int64_t stride_b, float beta,
                       float *C, int ldc, int64_t stride_c, int batch);

  /* --- layers --- */
  /* y[T,out] = x[T,in] W[out,in]^T + bias[out] (bias may be NULL)
   * + residual[T,out] (may be NULL, may equal y). */
  void (*linear)(os_backend *be, float *y, const float *x, const float *W,
                 const float *bias, const float *residual, int T, int in, int out);

  /* y[N,Cout,Ho,Wo] = conv(x[N,Cin,H,W], W[Cout,Cin,KH,KW]) + bias[Cout] (may be NULL)
   * + residual[N,Cout,Ho,Wo] (may be NULL, never equal to y).
   * Zero padding pad_top/left/bottom/right; Ho = (H + pt + pb - KH) / stride + 1. */
  void (*conv2d)(os_backend *be, float *y, const float *x, const float *W,
                 const float *bias, const float *residual, int N, int Cin, int H,
                 int Wd, int Cout, int KH, int KW, int stride, int pad_top,
                 int pad_left, int pad_bottom, int pad_right);

  /* Temporal convolution, kernel (3,1,1), zero padding one frame each side:
   * x [B,F,Cin,HW], W [Cout,Cin,3] (the [Cout,Cin,3,1,1] tensor), y [B,F,Cout,HW]:
   * y[b,f,o,p] = bias[o] + sum_{k,i} W[o,i,k] x[b,f+k-1,i,p]. */
  void (*conv_temporal)(os_backend *be, float *y, const float *x, const float *W,
                        const float *bias, int B, int F, int Cin, int Cout, int HW);

  /* GroupNorm on x [B*F, C, HW] with G groups; statistics per (image, group)
   * when frames_per_stat == 1, or per (batch element, group) across all F
   * frames when frames_per_stat == F. Optional fused SiLU. May run in place. */
  void (*group_norm)(os_backend *be, float *y, const float *x, const float *gamma,
                     const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                     float eps, bool silu);

  /* LayerNorm over the last dim of x [T,C]. May run in place. */
  void (*layer_norm)(os_backend *be, float *y, const float *x, const float *gamma,
                     const float *beta, int T, int C, float eps);

  /* Multi-head attention, non-causal, no mask, memory linear in tokens.
   * Element (seq s, token i, head h, dim d) of q is at
   * q[s*Sq*q_stride + i*q_stride + h*head_dim + d]; k, v, o likewise with
   * their own token strides and Sk (o uses Sq). Scores are scaled by `scale`. */
  void (*attention)(os_backend *be, float *o, const float *q, const float *k,
                    const float *v, int n_seq, int Sq, int Sk, int heads, int head_dim,
                    int q_stride, int k_stride, int v_stride, int o_stride, float scale);

  /* --- elementwise --- (all may run in place: y == x) */
  void (*silu)(os_backend *be, float *y, const float *x, size_t n);
  void (*gelu)(os_backend *be, float *y, const float *x, size_t n);       /* exact erf */
  void (*quick_gelu)(os_backend *be, float *y, const float *x, size_t n); /* x*sigmoid(1.702x) */
  /* y[T,C] = x[T, :C] * gelu(x[T, C:2C]) */
  void (*geglu)(os_backend *be, float *y, const float *x, int T, int C);
  void (*add)(os_backend *be, float *y, const float *a, const float *b, size_t n);
  /* y = alpha * a + (1 - alpha) * b */
  void (*blend)(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n);
  /* y = alpha * x */
  void (*scale)(os_backend *be, float *y, const float *x, float alpha, size_t n);
  /* x[g, r, c] += v[g, c] for x [G, R, C] (per-channel bias per group of rows). */
  void (*add_row_vector)(os_backend *be, float *x, const float *v, int G, int R, int C);
  /* x[n, c, p] += v[n, c] for x [N, C, P] (per-image channel bias). */
  void (*add_channel_vector)(os_backend *be, float *x, const float *v, int N, int C, int P);

  /* --- data movement --- */
  /* y[a][c][b][i] = x[a][b][c][i] for x [A, Bd, Cd, I]. */
  void (*permute_0213)(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I);
  /* Nearest-neighbour resize x [N,C,H,W] -> y [N,C,Ho,Wo], src = floor(dst * in / out). */
  void (*upsample_nearest)(os_backend *be, float *y, const float *x, int N, int C, int H,
                           int W, int Ho, int Wo);
  /* y [N, Ca+Cb, P] = concat(a [N,Ca,P], b [N,Cb,P]) along channels. */
  void (*concat_channels)(os_backend *be, float *y, const float *a, int Ca, const float *b,
                          int Cb, int N, int P);

  /* --- the discriminator's layers (training.md section 5) --- */
  /* y = x for x >= 0, slope * x below (slope 0: ReLU). May run in place. */
  void (*leaky_relu)(os_backend *be, float *y, const float *x, float slope, size_t n);
  /* PixelShuffle(r): x [N, C*r*r, H, W] -> y [N, C, H*r, W*r],
   * y[n, c, h*r + i, w*r + j] = x[n, (c*r + i)*r + j, h, w]. */
  void (*pixel_shuffle)(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                        int r);
  /* Bilinear resize x [N,C,H,W] -> y [N,C,Ho,Wo] as PyTorch's interpolate with a
   * size, align_corners false, no antialias: src = max((dst + 0.5) * in / out - 0.5, 0). */
  void (*resize_bilinear)(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                          int Ho, int Wo);
  /* StyleGAN-T's BatchNormLocal on x [N, C, P]: per channel, statistics over
   * each virtual batch of `group` consecutive samples (group divides N) and
   * all P positions, biased variance; y = gamma * (x - mean) / sqrt(var + eps) + beta. */
  void (*batch_norm_local)(os_backend *be, float *y, const float *x, const float *gamma,
                           const float *beta, int N, int C, int P, int group, float eps);
  /* y = W / sigma with sigma = u^T W v, W viewed as [rows, cols] (u [rows], v [cols]). */
  void (*spectral_normalize)(os_backend *be, float *y, const float *W, const float *u,
                             const float *v, int rows, int cols);
  /* Projection on a per-sample vector: y[n, p] = sum_c x[n, c, p] * e[n, c] for x [N, C, P]. */
  void (*channel_projection)(os_backend *be, float *y, const float *x, const float *e, int N,
                             int C, int P);

  /* Backward and training ops (backend_grad.h); NULL where the backend cannot train. */
  const os_backend_grad_ops *grad;
} os_backend_ops;

struct os_backend {
  const os_backend_ops *ops;
  size_t bytes_in_use, peak_bytes; /* maintained by alloc/free */
  char name[160];                  /* for people, e.g. the GPU's name and precision */
  /* Polled by model code between layers; NULL means never abort. */
  bool (*abort_cb)(void *user_data);
  void *abort_user_data;
};

/* CPU backend with n_threads workers (0: all cores). */
os_backend *os_backend_cpu_new(int n_threads, onestep_error *error);

/* Makes the CPU backend round the operands of its matrix products (GEMMs,
 * linear layers, convolutions, attention's Q, K and V) as the CUDA backend
 * does in that precision, accumulating in fp32 as before: a way to study a
 * precision's effect on whole models without a GPU. FP32 and AUTO: exact. */
void os_backend_cpu_set_operand_precision(os_backend *be, onestep_precision precision);

/* Makes the CPU backend store as the CUDA backend does in that precision:
 * in fp16 and bf16, every value written into an OS_STORAGE_ACTIVATION or
 * OS_STORAGE_WEIGHT buffer (by an op, upload, copy or fill) is rounded to
 * that type, round to nearest even, fp16 overflowing to infinity; float32
 * buffers and the backward ops stay exact. Only buffers allocated after the
 * call are rounded: call it right after creating the backend. Other
 * precisions: exact storage, bit for bit the results without the call. */
void os_backend_cpu_set_storage_precision(os_backend *be, onestep_precision precision);

/* CUDA backend, loaded at run time from the backend module; NULL with a clear
 * error when the module, the driver or a GPU is missing. ONESTEP_PRECISION_AUTO
 * means fp16; the environment variable ONESTEP_CUDA_PRECISION (fp32, tf32,
 * fp16, bf16), when set, overrides the precision for tests and benchmarks. */
os_backend *os_backend_cuda_new(onestep_precision precision, onestep_error *error);

#endif
