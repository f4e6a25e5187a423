/* backend_grad.h: the backward half of the backend's op table, and the ops
 * that training adds (optimiser steps, losses, reductions).
 *
 * Each backward sits beside its forward in the backend's family file
 * (cpu_conv.c holds conv2d and conv2d_backward). Conventions, beyond those of
 * backend.h:
 * - Every gradient output ACCUMULATES (dx += ...), so that a tensor read by
 *   several ops collects all its gradients; callers zero gradients first.
 * - A gradient pointer may be NULL when that gradient is not wanted.
 * - Backwards recompute what they need from the forward's inputs (norm
 *   statistics, attention probabilities row by row), so forwards keep nothing
 *   and memory stays linear in tokens.
 * - Results do not depend on the thread count (sums run in fixed blocks). */
#ifndef ONESTEP_BACKEND_GRAD_H
#define ONESTEP_BACKEND_GRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct os_backend os_backend;

/* A 2D convolution's shape, shared by forward and backward:
 * x [N, Cin, H, W], weight [Cout, Cin, KH, KW], y [N, Cout, Ho, Wo] with
 * Ho = (H + pad_top + pad_bottom - KH) / stride + 1 (likewise Wo). */
typedef struct {
  int N, Cin, H, W, Cout, KH, KW, stride;
  int pad_top, pad_left, pad_bottom, pad_right;
} os_conv2d_shape;

static inline int
os_conv2d_out_h(const os_conv2d_shape *s)
{
  return (s->H + s->pad_top + s->pad_bottom - s->KH) / s->stride + 1;
}

static inline int
os_conv2d_out_w(const os_conv2d_shape *s)
{
  return (s->W + s->pad_left + s->pad_right - s->KW) / s->stride + 1;
}

/* Elementwise losses between pred and target (n values). */
typedef enum {
  OS_LOSS_SQUARED = 0,     /* (p - t)^2 */
  OS_LOSS_PSEUDO_HUBER = 1 /* sqrt((p - t)^2 + c^2) - c */
} os_loss_kind;

typedef struct os_backend_grad_ops {
  /* --- layers (forwards in backend.h) --- */
  /* y = x W^T + b: dx[T,in] += dy W; dW[out,in] += dy^T x; db[out] += sum_t dy. */
  void (*linear_backward)(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                          const float *x, const float *W, int T, int in, int out);
  void (*conv2d_backward)(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                          const float *x, const float *W, const os_conv2d_shape *shape);
  /* The (3,1,1) temporal convolution of backend.h, W [Cout, Cin, 3]. */
  void (*conv_temporal_backward)(os_backend *be, float *dx, float *dW, float *db,
                                 const float *dy, const float *x, const float *W, int B, int F,
                                 int Cin, int Cout, int HW);
  /* GroupNorm (with the forward's arguments; statistics recomputed from x). */
  void (*group_norm_backward)(os_backend *be, float *dx, float *dgamma, float *dbeta,
                              const float *dy, const float *x, const float *gamma,
                              const float *beta, int N, int C, int HW, int G,
                              int frames_per_stat, float eps, bool silu);
  void (*layer_norm_backward)(os_backend *be, float *dx, float *dgamma, float *dbeta,
                              const float *dy, const float *x, const float *gamma, int T, int C,
                              float eps);
  /* Attention's backward with the forward's layout and strides (dq, dk, dv use
   * the strides of q, k, v; do_ that of the output); probabilities are
   * recomputed row by row. */
  void (*attention_backward)(os_backend *be, float *dq, float *dk, float *dv, const float *do_,
                             const float *q, const float *k, const float *v, int n_seq, int Sq,
                             int Sk, int heads, int head_dim, int q_stride, int k_stride,
                             int v_stride, int o_stride, float scale);

  /* --- elementwise --- dx += dy * f'(x) */
  void (*silu_backward)(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
  void (*gelu_backward)(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
  void (*quick_gelu_backward)(os_backend *be, float *dx, const float *dy, const float *x,
                              size_t n);
  /* geglu: x [T, 2C], dy [T, C], dx [T, 2C]. */
  void (*geglu_backward)(os_backend *be, float *dx, const float *dy, const float *x, int T, int C);
  /* y += alpha * x. */
  void (*axpy)(os_backend *be, float *y, const float *x, float alpha, size_t n);
  /* sum_i a_i * b_i, accumulated in double, returned to the host (synchronises). */
  double (*dot)(os_backend *be, const float *a, const float *b, size_t n);

  /* --- reductions and data movement (the backwards of backend.h's) --- */
  /* dv[g, c] += sum_r dx[g, r, c]: add_row_vector's backward. */
  void (*sum_rows)(os_backend *be, float *dv, const float *dx, int G, int R, int C);
  /* dv[n, c] += sum_p dx[n, c, p]: add_channel_vector's backward. */
  void (*sum_channel_planes)(os_backend *be, float *dv, const float *dx, int N, int C, int P);
  /* dx [N,C,H,W] += the sum of dy [N,C,Ho,Wo] over each source pixel. */
  void (*upsample_nearest_backward)(os_backend *be, float *dx, const float *dy, int N, int C,
                                    int H, int W, int Ho, int Wo);
  /* da [N,Ca,P] += dy's first Ca channels, db [N,Cb,P] += the rest (either may be NULL). */
  void (*split_channels)(os_backend *be, float *da, float *db, const float *dy, int Ca, int Cb,
                         int N, int P);

  /* --- the discriminator's layers (forwards in backend.h) --- */
  void (*leaky_relu_backward)(os_backend *be, float *dx, const float *dy, const float *x,
                              float slope, size_t n);
  /* dx [N, C*r*r, H, W] += dy [N, C, H*r, W*r] rearranged back. */
  void (*pixel_shuffle_backward)(os_backend *be, float *dx, const float *dy, int N, int C, int H,
                                 int W, int r);
  /* dx [N,C,H,W] += each output pixel's gradient spread with its bilinear weights. */
  void (*resize_bilinear_backward)(os_backend *be, float *dx, const float *dy, int N, int C,
                                   int H, int W, int Ho, int Wo);
  void (*batch_norm_local_backward)(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *gamma, int N,
                                    int C, int P, int group, float eps);
  /* dW += dy / sigma - (<dy, W> / sigma^2) u v^T: the gradient through sigma's
   * dependence on W, with u and v held constant (PyTorch's spectral_norm). */
  void (*spectral_normalize_backward)(os_backend *be, float *dW, const float *dy, const float *W,
                                      const float *u, const float *v, int rows, int cols);
  /* dx[n, c, p] += dy[n, p] e[n, c]; de[n, c] += sum_p dy[n, p] x[n, c, p]. */
  void (*channel_projection_backward)(os_backend *be, float *dx, float *de, const float *dy,
                                      const float *x, const float *e, int N, int C, int P);

  /* --- training --- */
  /* Returns sum_i loss(pred_i, target_i) (double, on the host) and, when grad
   * is not NULL, adds scale * dloss/dpred to grad. */
  double (*loss)(os_backend *be, float *grad, const float *pred, const float *target, size_t n,
                 os_loss_kind kind, float c, float scale);
  /* One Adam(W) step on n values, exactly as PyTorch's single-tensor
   * implementation: p *= 1 - lr * weight_decay; m = b1 m + (1 - b1) g;
   * v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
   * step counts from 1. weight_decay 0 is Adam. */
  void (*adamw_step)(os_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                     float lr, float beta1, float beta2, float eps, float weight_decay,
                     int64_t step);
  /* e = mu * e + (1 - mu) * p. */
  void (*ema_update)(os_backend *be, float *e, const float *p, float mu, size_t n);
  /* One power iteration of spectral normalisation, in place (no gradient):
   * v = normalize(W^T u), then u = normalize(W v), normalize(a) = a / max(|a|, eps),
   * W viewed as [rows, cols]. */
  void (*spectral_norm_power_iteration)(os_backend *be, float *u, float *v, const float *W,
                                        int rows, int cols, float eps);
} os_backend_grad_ops;

#endif
