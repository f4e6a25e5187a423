/* cpu_internal.h: the CPU backend's private state and its op functions,
 * shared between the files of engine/cpu/ (one file per family of ops). */
#ifndef ONESTEP_CPU_INTERNAL_H
#define ONESTEP_CPU_INTERNAL_H

#include "backend.h"

typedef struct os_cpu_storage_emulation os_cpu_storage_emulation;

typedef struct {
  os_backend base;
  int n_threads;     /* OpenMP and OpenBLAS worker count, >= 1 */
  bool out_of_memory; /* a scratch allocation failed; reported by sync() */
  onestep_precision operand_precision; /* GPU rounding reproduced (cpu_rounding.c) */
  os_cpu_storage_emulation *storage;   /* GPU 16-bit storage reproduced, or NULL (cpu_storage.c) */
} os_cpu_backend;

static inline int
os_cpu_threads(const os_backend *be)
{
  return ((const os_cpu_backend *)be)->n_threads;
}

/* malloc for an op's scratch space; on failure latches the error for sync()
 * and returns NULL (the op then leaves its output unfinished). */
void *os_cpu_scratch(os_backend *be, size_t bytes);

/* Long ops stop early on an abort. An op runs its work in units of about
 * os_cpu_unit_work() multiply-adds (or their equivalent in exponentials or
 * memory traffic), sized from the shapes: the threads share out a unit's
 * items, and the calling thread, between two units, polls the backend's
 * abort callback once a unit's work has run since its last poll. The number
 * and places of the polls therefore depend on the shapes only, never on
 * timing, the thread count or the scheduling, and an op computes the same
 * with and without a callback. An op that stops leaves its output
 * unfinished: the model code's next os_check_abort reports the abort (the
 * pipeline latches it) and the output is never used. */
#define OS_CPU_UNIT_WORK ((double)(1 << 29))
/* A value read or written once costs about as much as this many multiply-adds
 * (a float through memory against sgemm's rate), one with an exponential
 * twice that. */
#define OS_CPU_VALUE_WORK 16.0

/* The unit of work; tests lower it to split small shapes (0 restores it). */
double os_cpu_unit_work(void);
void os_cpu_set_unit_work(double work);

typedef struct {
  os_backend *be;
  double since_poll; /* work run since the last poll (or the op's start) */
  bool stopped;      /* the callback asked to stop: the op skips what is left */
} os_cpu_progress;

static inline os_cpu_progress
os_cpu_progress_start(os_backend *be)
{
  return (os_cpu_progress){ .be = be };
}

/* Before `work` more of the op: polls the callback when a unit's work has
 * run since the last poll. True when the op is to stop. */
bool os_cpu_stop_before(os_cpu_progress *p, double work);

/* Before a loop of `work` in all: one of more than a quarter of a unit
 * polls before it starts too, so that a chain of ops just under a unit
 * between two checks of the model code polls, and after an abort the long
 * ops run until the next check stop at once rather than each run a unit. */
void os_cpu_starting(os_cpu_progress *p, double work);

/* The next unit of a loop over n_items items of item_work each: whole items
 * [*begin, *end), at least one, about a unit's work (the first unit after
 * os_cpu_starting). *end starts at 0; false once the loop is done or
 * stopped. Called outside OpenMP regions. */
bool os_cpu_next_unit(os_cpu_progress *p, int64_t n_items, double item_work, int64_t *begin,
                      int64_t *end);

/* Elementwise loops below this size run on one thread: forking costs more. */
#define OS_CPU_PARALLEL_MIN 32768

/* OpenBLAS's own threading changes its K blocking with the thread count, so
 * its results would depend on it. The backend therefore always calls it
 * single-threaded (set before each use: the setting is process-wide) and
 * spreads products over OpenMP workers in blocks that do not depend on the
 * thread count. */
void os_cpu_blas_single_thread(void);

/* cpu_rounding.c */
/* x rounded as the GPU rounds matrix-product operands in that precision. */
float os_cpu_round_to_precision(float x, onestep_precision precision);
/* src itself when the backend does not round operands; otherwise a rounded
 * scratch copy of its n values, also stored in *owned for the caller to free
 * (NULL when out of memory: the error is latched for sync()). */
const float *os_cpu_rounded_operand(os_backend *be, const float *src, size_t n, float **owned);
/* Values spanned by `batch` matrices op = [rows, cols], `stride` apart. */
size_t os_cpu_matrix_extent(bool transposed, int rows, int cols, int ld, int64_t stride,
                            int batch);

/* cpu_storage.c */
void os_cpu_storage_emulation_free(os_cpu_storage_emulation *e); /* NULL is fine */

/* cpu_gemm.c */
void os_cpu_gemm(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C,
                 int ldc);
void os_cpu_gemm_batched(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K,
                         float alpha, const float *A, int lda, int64_t stride_a,
                         const float *B, int ldb, int64_t stride_b, float beta, float *C,
                         int ldc, int64_t stride_c, int batch);
/* The same as one step of a longer op: its units and polls carry on from
 * progress (the op stops once progress has). */
void os_cpu_gemm_batched_in(os_cpu_progress *progress, bool trans_a, bool trans_b, int M, int N,
                            int K, float alpha, const float *A, int lda, int64_t stride_a,
                            const float *B, int ldb, int64_t stride_b, float beta, float *C,
                            int ldc, int64_t stride_c, int batch);
void os_cpu_linear(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                   const float *residual, int T, int in, int out);
void os_cpu_linear_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                            const float *x, const float *W, int T, int in, int out);

/* cpu_conv.c */
void os_cpu_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                   const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH,
                   int KW, int stride, int pad_top, int pad_left, int pad_bottom,
                   int pad_right);
void os_cpu_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                          const float *bias, int B, int F, int Cin, int Cout, int HW);
void os_cpu_conv2d_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                            const float *x, const float *W, const os_conv2d_shape *shape);
void os_cpu_conv_temporal_backward(os_backend *be, float *dx, float *dW, float *db,
                                   const float *dy, const float *x, const float *W, int B,
                                   int F, int Cin, int Cout, int HW);

/* cpu_norm.c */
void os_cpu_group_norm(os_backend *be, float *y, const float *x, const float *gamma,
                       const float *beta, int N, int C, int HW, int G, int frames_per_stat,
                       float eps, bool silu);
void os_cpu_group_norm_stats(os_backend *be, float *stats, const float *x, int N, int C, int HW,
                             int G, int frames_per_stat);
void os_cpu_group_norm_apply(os_backend *be, float *y, const float *x, const float *stats,
                             const float *gamma, const float *beta, int N, int C, int HW, int G,
                             int frames_per_stat, float eps, bool silu);
void os_cpu_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                       const float *beta, int T, int C, float eps);
void os_cpu_group_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *x, const float *gamma,
                                const float *beta, int N, int C, int HW, int G,
                                int frames_per_stat, float eps, bool silu);
void os_cpu_layer_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *x, const float *gamma, int T,
                                int C, float eps);
void os_cpu_batch_norm_local(os_backend *be, float *y, const float *x, const float *gamma,
                             const float *beta, int N, int C, int P, int group, float eps);
void os_cpu_batch_norm_local_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                      const float *dy, const float *x, const float *gamma, int N,
                                      int C, int P, int group, float eps);
void os_cpu_spectral_normalize(os_backend *be, float *y, const float *W, const float *u,
                               const float *v, int rows, int cols);
void os_cpu_spectral_normalize_backward(os_backend *be, float *dW, const float *dy,
                                        const float *W, const float *u, const float *v, int rows,
                                        int cols);
void os_cpu_spectral_norm_power_iteration(os_backend *be, float *u, float *v, const float *W,
                                          int rows, int cols, float eps);

/* cpu_attention.c */
void os_cpu_attention(os_backend *be, float *o, const float *q, const float *k, const float *v,
                      int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride,
                      int k_stride, int v_stride, int o_stride, float scale);
void os_cpu_attention_backward(os_backend *be, float *dq, float *dk, float *dv,
                               const float *do_, const float *q, const float *k,
                               const float *v, int n_seq, int Sq, int Sk, int heads,
                               int head_dim, int q_stride, int k_stride, int v_stride,
                               int o_stride, float scale);

/* cpu_elementwise.c */
void os_cpu_fill(os_backend *be, float *dst, float value, size_t n);
void os_cpu_silu(os_backend *be, float *y, const float *x, size_t n);
void os_cpu_gelu(os_backend *be, float *y, const float *x, size_t n);
void os_cpu_quick_gelu(os_backend *be, float *y, const float *x, size_t n);
void os_cpu_geglu(os_backend *be, float *y, const float *x, int T, int C);
void os_cpu_add(os_backend *be, float *y, const float *a, const float *b, size_t n);
void os_cpu_blend(os_backend *be, float *y, const float *a, const float *b, float alpha,
                  size_t n);
void os_cpu_scale(os_backend *be, float *y, const float *x, float alpha, size_t n);
void os_cpu_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C);
void os_cpu_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P);
void os_cpu_silu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
void os_cpu_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
void os_cpu_quick_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                                size_t n);
void os_cpu_geglu_backward(os_backend *be, float *dx, const float *dy, const float *x, int T,
                           int C);
void os_cpu_axpy(os_backend *be, float *y, const float *x, float alpha, size_t n);
double os_cpu_dot(os_backend *be, const float *a, const float *b, size_t n);
void os_cpu_sum_rows(os_backend *be, float *dv, const float *dx, int G, int R, int C);
void os_cpu_sum_channel_planes(os_backend *be, float *dv, const float *dx, int N, int C, int P);
/* dv[c] += sum over n and p of dx[n, c, p] (a bias's gradient over images). */
void os_cpu_sum_channels(os_backend *be, float *dv, const float *dx, int N, int C, size_t P);
void os_cpu_leaky_relu(os_backend *be, float *y, const float *x, float slope, size_t n);
void os_cpu_leaky_relu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                                float slope, size_t n);
void os_cpu_channel_projection(os_backend *be, float *y, const float *x, const float *e, int N,
                               int C, int P);
void os_cpu_channel_projection_backward(os_backend *be, float *dx, float *de, const float *dy,
                                        const float *x, const float *e, int N, int C, int P);

/* cpu_layout.c */
void os_cpu_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int inner);
void os_cpu_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H,
                             int W, int Ho, int Wo);
void os_cpu_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b,
                            int Cb, int N, int P);
void os_cpu_copy_columns(os_backend *be, float *y, int ldy, const float *x, int ldx, int rows,
                         int cols);
void os_cpu_upsample_nearest_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                      int H, int W, int Ho, int Wo);
void os_cpu_split_channels(os_backend *be, float *da, float *db, const float *dy, int Ca, int Cb,
                           int N, int P);
void os_cpu_pixel_shuffle(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                          int r);
void os_cpu_pixel_shuffle_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                   int H, int W, int r);
void os_cpu_resize_bilinear(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                            int Ho, int Wo);
void os_cpu_resize_bilinear_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                     int H, int W, int Ho, int Wo);

/* cpu_optim.c */
double os_cpu_loss(os_backend *be, float *grad, const float *pred, const float *target,
                   size_t n, os_loss_kind kind, float c, float scale);
void os_cpu_adamw_step(os_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       int64_t step);
void os_cpu_ema_update(os_backend *be, float *e, const float *p, float mu, size_t n);

#endif
