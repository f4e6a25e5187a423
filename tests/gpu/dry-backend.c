/* dry-backend.c: see dry-backend.h. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "dry-backend.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_HOST_RANGES 4

typedef struct {
  const char *start;
  size_t bytes;   /* mapped: 4 per element, as buffers are addressed */
  size_t counted; /* what the block would take on the device */
} range;

typedef struct {
  os_backend base;
  range *live;
  size_t n_live, cap_live;
  range host[MAX_HOST_RANGES];
  int n_host;
  size_t violations;
  char first[256];
  size_t *at_peak; /* block sizes live at the last peak */
  size_t n_at_peak, cap_at_peak;
  size_t allocations;   /* alloc calls so far */
  size_t fail_at;       /* the alloc call that returns NULL; SIZE_MAX: none */
  size_t bytes_per_16bit_element; /* what ACTIVATION and WEIGHT elements count */
} dry_backend;

static dry_backend *
dry(os_backend *be)
{
  return (dry_backend *)be;
}

static void
violation(os_backend *be, const char *fmt, const char *op, const char *arg)
{
  dry_backend *d = dry(be);
  if (d->violations++ == 0)
    snprintf(d->first, sizeof d->first, fmt, op, arg);
}

/* ---- memory ---- */

static void
record_peak(dry_backend *d)
{
  if (d->n_live > d->cap_at_peak) {
    size_t *sizes = realloc(d->at_peak, d->cap_live * sizeof *sizes);
    if (!sizes)
      return;
    d->at_peak = sizes;
    d->cap_at_peak = d->cap_live;
  }
  for (size_t i = 0; i < d->n_live; i++)
    d->at_peak[i] = d->live[i].counted;
  d->n_at_peak = d->n_live;
}

static void *
dry_alloc_counted(os_backend *be, size_t bytes, size_t counted)
{
  dry_backend *d = dry(be);
  if (d->allocations++ == d->fail_at)
    return NULL;
  if (d->n_live == d->cap_live) {
    size_t cap = d->cap_live ? 2 * d->cap_live : 256;
    range *live = realloc(d->live, cap * sizeof *live);
    if (!live)
      return NULL;
    d->live = live;
    d->cap_live = cap;
  }
  void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  d->live[d->n_live++] = (range){ p, bytes, counted };
  be->bytes_in_use += counted;
  if (be->bytes_in_use > be->peak_bytes) {
    be->peak_bytes = be->bytes_in_use;
    record_peak(d);
  }
  return p;
}

static void *
dry_alloc(os_backend *be, size_t bytes)
{
  return dry_alloc_counted(be, bytes, bytes);
}

static void *
dry_alloc_as(os_backend *be, size_t n, os_storage storage)
{
  if (n > SIZE_MAX / sizeof(float))
    return NULL;
  size_t element = storage == OS_STORAGE_FP32 ? sizeof(float) : dry(be)->bytes_per_16bit_element;
  return dry_alloc_counted(be, n * sizeof(float), n * element);
}

static void
dry_free(os_backend *be, void *ptr)
{
  dry_backend *d = dry(be);
  if (!ptr)
    return;
  for (size_t i = 0; i < d->n_live; i++) {
    if (d->live[i].start == ptr) {
      munmap(ptr, d->live[i].bytes ? d->live[i].bytes : 1);
      be->bytes_in_use -= d->live[i].counted;
      d->live[i] = d->live[--d->n_live];
      return;
    }
  }
  violation(be, "%s of %s that is not a live allocation", "free", "a pointer");
}

static bool
inside(const range *r, const char *p, size_t bytes)
{
  return p >= r->start && bytes <= r->bytes && (size_t)(p - r->start) <= r->bytes - bytes;
}

/* [p, p + floats) must lie in one live block or allowed host range. */
static void
check(os_backend *be, const char *op, const char *arg, const void *p, size_t floats)
{
  dry_backend *d = dry(be);
  size_t bytes = floats * sizeof(float);
  if (p) {
    for (size_t i = 0; i < d->n_live; i++)
      if (inside(&d->live[i], p, bytes))
        return;
    for (int i = 0; i < d->n_host; i++)
      if (inside(&d->host[i], p, bytes))
        return;
  }
  violation(be, "%s: %s is not inside live memory (freed, overrun or never allocated)", op, arg);
}

static void
check_optional(os_backend *be, const char *op, const char *arg, const void *p, size_t floats)
{
  if (p)
    check(be, op, arg, p, floats);
}

/* An output may not overlap an input; where the op runs in place, it may
 * start exactly at it. */
static void
check_alias(os_backend *be, const char *op, const char *arg, const void *out, size_t out_floats,
            const void *in, size_t in_floats, bool in_place_ok)
{
  const float *o = out, *i = in;
  if (!o || !i || (in_place_ok && o == i))
    return;
  if (o < i + in_floats && i < o + out_floats)
    violation(be, "%s: the output overlaps %s", op, arg);
}

static void
dry_upload(os_backend *be, void *dst, const void *src, size_t bytes)
{
  check(be, "upload", "dst", dst, bytes / sizeof(float));
}

/* Host memory gets zeros so that code reading it back stays defined. */
static void
dry_download(os_backend *be, void *dst, const void *src, size_t bytes)
{
  check(be, "download", "src", src, bytes / sizeof(float));
  memset(dst, 0, bytes);
}

static void
dry_copy(os_backend *be, void *dst, const void *src, size_t bytes)
{
  size_t n = bytes / sizeof(float);
  check(be, "copy", "dst", dst, n);
  check(be, "copy", "src", src, n);
  check_alias(be, "copy", "src", dst, n, src, n, false);
}

static void
dry_fill(os_backend *be, float *dst, float value, size_t n)
{
  check(be, "fill", "dst", dst, n);
}

static onestep_status
dry_sync(os_backend *be, onestep_error *error)
{
  return ONESTEP_OK;
}

static void
dry_destroy(os_backend *be)
{
  dry_backend *d = dry(be);
  for (size_t i = 0; i < d->n_live; i++)
    munmap((void *)d->live[i].start, d->live[i].bytes ? d->live[i].bytes : 1);
  free(d->live);
  free(d->at_peak);
  free(d);
}

/* ---- GEMM ---- */

/* Floats spanned by a row-major [rows, cols] matrix with leading dimension ld. */
static size_t
matrix_extent(int rows, int cols, int ld)
{
  return rows > 0 && cols > 0 ? (size_t)(rows - 1) * ld + cols : 0;
}

static void
check_gemm(os_backend *be, const char *op, const float *A, size_t a_floats, const float *B,
           size_t b_floats, const float *C, size_t c_floats)
{
  check(be, op, "A", A, a_floats);
  check(be, op, "B", B, b_floats);
  check(be, op, "C", C, c_floats);
  check_alias(be, op, "A", C, c_floats, A, a_floats, false);
  check_alias(be, op, "B", C, c_floats, B, b_floats, false);
}

static void
dry_gemm(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
  size_t a = trans_a ? matrix_extent(K, M, lda) : matrix_extent(M, K, lda);
  size_t b = trans_b ? matrix_extent(N, K, ldb) : matrix_extent(K, N, ldb);
  check_gemm(be, "gemm", A, a, B, b, C, matrix_extent(M, N, ldc));
}

static void
dry_gemm_batched(os_backend *be, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, int64_t stride_a, const float *B, int ldb,
                 int64_t stride_b, float beta, float *C, int ldc, int64_t stride_c, int batch)
{
  size_t a = trans_a ? matrix_extent(K, M, lda) : matrix_extent(M, K, lda);
  size_t b = trans_b ? matrix_extent(N, K, ldb) : matrix_extent(K, N, ldb);
  size_t extra = batch > 0 ? (size_t)(batch - 1) : 0;
  check_gemm(be, "gemm_batched", A, a + extra * stride_a, B, b + extra * stride_b, C,
             matrix_extent(M, N, ldc) + extra * stride_c);
}

/* ---- layers ---- */

static void
dry_linear(os_backend *be, float *y, const float *x, const float *W, const float *bias,
           const float *residual, int T, int in, int out)
{
  size_t ny = (size_t)T * out, nx = (size_t)T * in;
  check(be, "linear", "y", y, ny);
  check(be, "linear", "x", x, nx);
  check(be, "linear", "W", W, (size_t)out * in);
  check_optional(be, "linear", "bias", bias, out);
  check_optional(be, "linear", "residual", residual, ny);
  check_alias(be, "linear", "x", y, ny, x, nx, false);
  check_alias(be, "linear", "residual", y, ny, residual, ny, true);
}

static void
dry_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
           const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH, int KW,
           int stride, int pad_top, int pad_left, int pad_bottom, int pad_right)
{
  int Ho = (H + pad_top + pad_bottom - KH) / stride + 1;
  int Wo = (Wd + pad_left + pad_right - KW) / stride + 1;
  size_t ny = (size_t)N * Cout * Ho * Wo, nx = (size_t)N * Cin * H * Wd;
  check(be, "conv2d", "y", y, ny);
  check(be, "conv2d", "x", x, nx);
  check(be, "conv2d", "W", W, (size_t)Cout * Cin * KH * KW);
  check_optional(be, "conv2d", "bias", bias, Cout);
  check_optional(be, "conv2d", "residual", residual, ny);
  check_alias(be, "conv2d", "x", y, ny, x, nx, false);
  check_alias(be, "conv2d", "residual", y, ny, residual, ny, false);
}

static void
dry_conv_temporal(os_backend *be, float *y, const float *x, const float *W, const float *bias,
                  int B, int F, int Cin, int Cout, int HW)
{
  size_t ny = (size_t)B * F * Cout * HW, nx = (size_t)B * F * Cin * HW;
  check(be, "conv_temporal", "y", y, ny);
  check(be, "conv_temporal", "x", x, nx);
  check(be, "conv_temporal", "W", W, (size_t)Cout * Cin * 3);
  check(be, "conv_temporal", "bias", bias, Cout);
  check_alias(be, "conv_temporal", "x", y, ny, x, nx, false);
}

static void
dry_group_norm(os_backend *be, float *y, const float *x, const float *gamma, const float *beta,
               int N, int C, int HW, int G, int frames_per_stat, float eps, bool silu)
{
  size_t n = (size_t)N * C * HW;
  check(be, "group_norm", "y", y, n);
  check(be, "group_norm", "x", x, n);
  check(be, "group_norm", "gamma", gamma, C);
  check(be, "group_norm", "beta", beta, C);
  check_alias(be, "group_norm", "x", y, n, x, n, true);
}

static void
dry_layer_norm(os_backend *be, float *y, const float *x, const float *gamma, const float *beta,
               int T, int C, float eps)
{
  size_t n = (size_t)T * C;
  check(be, "layer_norm", "y", y, n);
  check(be, "layer_norm", "x", x, n);
  check(be, "layer_norm", "gamma", gamma, C);
  check(be, "layer_norm", "beta", beta, C);
  check_alias(be, "layer_norm", "x", y, n, x, n, true);
}

static void
dry_attention(os_backend *be, float *o, const float *q, const float *k, const float *v,
              int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride, int k_stride,
              int v_stride, int o_stride, float scale)
{
  int width = heads * head_dim;
  size_t nq = matrix_extent(n_seq * Sq, width, q_stride);
  size_t nk = matrix_extent(n_seq * Sk, width, k_stride);
  size_t nv = matrix_extent(n_seq * Sk, width, v_stride);
  size_t no = matrix_extent(n_seq * Sq, width, o_stride);
  check(be, "attention", "o", o, no);
  check(be, "attention", "q", q, nq);
  check(be, "attention", "k", k, nk);
  check(be, "attention", "v", v, nv);
  check_alias(be, "attention", "q", o, no, q, nq, false);
  check_alias(be, "attention", "k", o, no, k, nk, false);
  check_alias(be, "attention", "v", o, no, v, nv, false);
}

/* ---- elementwise ---- */

static void
check_unary(os_backend *be, const char *op, float *y, const float *x, size_t n)
{
  check(be, op, "y", y, n);
  check(be, op, "x", x, n);
  check_alias(be, op, "x", y, n, x, n, true);
}

static void
dry_silu(os_backend *be, float *y, const float *x, size_t n)
{
  check_unary(be, "silu", y, x, n);
}

static void
dry_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  check_unary(be, "gelu", y, x, n);
}

static void
dry_quick_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  check_unary(be, "quick_gelu", y, x, n);
}

static void
dry_scale(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  check_unary(be, "scale", y, x, n);
}

static void
dry_geglu(os_backend *be, float *y, const float *x, int T, int C)
{
  size_t ny = (size_t)T * C, nx = 2 * ny;
  check(be, "geglu", "y", y, ny);
  check(be, "geglu", "x", x, nx);
  check_alias(be, "geglu", "x", y, ny, x, nx, true);
}

static void
check_binary(os_backend *be, const char *op, float *y, const float *a, const float *b, size_t n)
{
  check(be, op, "y", y, n);
  check(be, op, "a", a, n);
  check(be, op, "b", b, n);
  check_alias(be, op, "a", y, n, a, n, true);
  check_alias(be, op, "b", y, n, b, n, true);
}

static void
dry_add(os_backend *be, float *y, const float *a, const float *b, size_t n)
{
  check_binary(be, "add", y, a, b, n);
}

static void
dry_blend(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n)
{
  check_binary(be, "blend", y, a, b, n);
}

static void
dry_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C)
{
  size_t nx = (size_t)G * R * C, nv = (size_t)G * C;
  check(be, "add_row_vector", "x", x, nx);
  check(be, "add_row_vector", "v", v, nv);
  check_alias(be, "add_row_vector", "v", x, nx, v, nv, false);
}

static void
dry_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P)
{
  size_t nx = (size_t)N * C * P, nv = (size_t)N * C;
  check(be, "add_channel_vector", "x", x, nx);
  check(be, "add_channel_vector", "v", v, nv);
  check_alias(be, "add_channel_vector", "v", x, nx, v, nv, false);
}

/* ---- data movement ---- */

static void
dry_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I)
{
  size_t n = (size_t)A * Bd * Cd * I;
  check(be, "permute_0213", "y", y, n);
  check(be, "permute_0213", "x", x, n);
  check_alias(be, "permute_0213", "x", y, n, x, n, false);
}

static void
dry_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H, int W, int Ho,
                     int Wo)
{
  size_t ny = (size_t)N * C * Ho * Wo, nx = (size_t)N * C * H * W;
  check(be, "upsample_nearest", "y", y, ny);
  check(be, "upsample_nearest", "x", x, nx);
  check_alias(be, "upsample_nearest", "x", y, ny, x, nx, false);
}

static void
dry_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b, int Cb,
                    int N, int P)
{
  size_t ny = (size_t)N * (Ca + Cb) * P, na = (size_t)N * Ca * P, nb = (size_t)N * Cb * P;
  check(be, "concat_channels", "y", y, ny);
  check(be, "concat_channels", "a", a, na);
  check(be, "concat_channels", "b", b, nb);
  check_alias(be, "concat_channels", "a", y, ny, a, na, false);
  check_alias(be, "concat_channels", "b", y, ny, b, nb, false);
}

/* ---- backward and training: nothing computed, like the rest ---- */

static void
dry_linear_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                    const float *x, const float *W, int T, int in, int out)
{
}

static void
dry_conv2d_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                    const float *x, const float *W, const os_conv2d_shape *shape)
{
}

static void
dry_conv_temporal_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                           const float *x, const float *W, int B, int F, int Cin, int Cout, int HW)
{
}

static void
dry_group_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                        const float *x, const float *gamma, const float *beta, int N, int C, int HW,
                        int G, int frames_per_stat, float eps, bool silu)
{
}

static void
dry_layer_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta, const float *dy,
                        const float *x, const float *gamma, int T, int C, float eps)
{
}

static void
dry_attention_backward(os_backend *be, float *dq, float *dk, float *dv, const float *do_,
                       const float *q, const float *k, const float *v, int n_seq, int Sq, int Sk,
                       int heads, int head_dim, int q_stride, int k_stride, int v_stride,
                       int o_stride, float scale)
{
}

static void
dry_silu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
}

static void
dry_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
}

static void
dry_quick_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
}

static void
dry_geglu_backward(os_backend *be, float *dx, const float *dy, const float *x, int T, int C)
{
}

static void
dry_axpy(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
}

static double
dry_dot(os_backend *be, const float *a, const float *b, size_t n)
{
  return 0.0;
}

static void
dry_sum_rows(os_backend *be, float *dv, const float *dx, int G, int R, int C)
{
}

static void
dry_sum_channel_planes(os_backend *be, float *dv, const float *dx, int N, int C, int P)
{
}

static void
dry_upsample_nearest_backward(os_backend *be, float *dx, const float *dy, int N, int C, int H,
                              int W, int Ho, int Wo)
{
}

static void
dry_split_channels(os_backend *be, float *da, float *db, const float *dy, int Ca, int Cb, int N,
                   int P)
{
}

static double
dry_loss(os_backend *be, float *grad, const float *pred, const float *target, size_t n,
         os_loss_kind kind, float c, float scale)
{
  return 0.0;
}

static void
dry_adamw_step(os_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr,
               float beta1, float beta2, float eps, float weight_decay, int64_t step)
{
}

static void
dry_ema_update(os_backend *be, float *e, const float *p, float mu, size_t n)
{
}

static const os_backend_grad_ops dry_grad_ops = {
    .linear_backward = dry_linear_backward,
    .conv2d_backward = dry_conv2d_backward,
    .conv_temporal_backward = dry_conv_temporal_backward,
    .group_norm_backward = dry_group_norm_backward,
    .layer_norm_backward = dry_layer_norm_backward,
    .attention_backward = dry_attention_backward,
    .silu_backward = dry_silu_backward,
    .gelu_backward = dry_gelu_backward,
    .quick_gelu_backward = dry_quick_gelu_backward,
    .geglu_backward = dry_geglu_backward,
    .axpy = dry_axpy,
    .dot = dry_dot,
    .sum_rows = dry_sum_rows,
    .sum_channel_planes = dry_sum_channel_planes,
    .upsample_nearest_backward = dry_upsample_nearest_backward,
    .split_channels = dry_split_channels,
    .loss = dry_loss,
    .adamw_step = dry_adamw_step,
    .ema_update = dry_ema_update,
};

static const os_backend_ops dry_ops = {
  .name = "dry",
  .is_host = true,
  .alloc = dry_alloc,
  .alloc_as = dry_alloc_as,
  .free = dry_free,
  .upload = dry_upload,
  .download = dry_download,
  .copy = dry_copy,
  .fill = dry_fill,
  .sync = dry_sync,
  .destroy = dry_destroy,
  .gemm = dry_gemm,
  .gemm_batched = dry_gemm_batched,
  .linear = dry_linear,
  .conv2d = dry_conv2d,
  .conv_temporal = dry_conv_temporal,
  .group_norm = dry_group_norm,
  .layer_norm = dry_layer_norm,
  .attention = dry_attention,
  .silu = dry_silu,
  .gelu = dry_gelu,
  .quick_gelu = dry_quick_gelu,
  .geglu = dry_geglu,
  .add = dry_add,
  .blend = dry_blend,
  .scale = dry_scale,
  .add_row_vector = dry_add_row_vector,
  .add_channel_vector = dry_add_channel_vector,
  .permute_0213 = dry_permute_0213,
  .upsample_nearest = dry_upsample_nearest,
  .concat_channels = dry_concat_channels,
  .grad = &dry_grad_ops,
};

os_backend *
bench_dry_backend_new(void)
{
  dry_backend *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->base.ops = &dry_ops;
  d->fail_at = SIZE_MAX;
  d->bytes_per_16bit_element = sizeof(float);
  snprintf(d->base.name, sizeof d->base.name, "dry run (no compute)");
  return &d->base;
}

void
bench_dry_backend_allow_host(os_backend *be, const void *start, size_t bytes)
{
  dry_backend *d = dry(be);
  if (d->n_host < MAX_HOST_RANGES)
    d->host[d->n_host++] = (range){ start, bytes };
}

size_t
bench_dry_backend_live_blocks(const os_backend *be)
{
  return ((const dry_backend *)be)->n_live;
}

size_t
bench_dry_backend_violations(const os_backend *be, const char **first)
{
  const dry_backend *d = (const dry_backend *)be;
  if (first)
    *first = d->first;
  return d->violations;
}

size_t
bench_dry_backend_blocks_at_peak(const os_backend *be, const size_t **sizes)
{
  const dry_backend *d = (const dry_backend *)be;
  *sizes = d->at_peak;
  return d->n_at_peak;
}

size_t
bench_dry_backend_allocations(const os_backend *be)
{
  return ((const dry_backend *)be)->allocations;
}

void
bench_dry_backend_fail_allocation(os_backend *be, size_t index)
{
  dry(be)->fail_at = index;
}

void
bench_dry_backend_set_precision(os_backend *be, onestep_precision precision)
{
  bool half = precision == ONESTEP_PRECISION_FP16 || precision == ONESTEP_PRECISION_BF16;
  dry(be)->bytes_per_16bit_element = half ? 2 : sizeof(float);
}
