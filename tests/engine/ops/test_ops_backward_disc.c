/* test_ops_backward_disc.c: the discriminator's ops (leaky ReLU, pixel
 * shuffle, bilinear resize, BatchNormLocal, spectral normalisation and its
 * power iteration, channel projection): each forward against a float64
 * reference written here, each backward against finite differences of it,
 * and 1 vs 2 threads on larger shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "grad_test.h"

/* A case of grad_test plus the forward under test (y [n_out]). */
typedef struct {
  grad_case grad;
  void (*forward)(os_backend *be, const void *ctx, float *y, float *const *in);
} op_case;

/* --- leaky ReLU --- */
typedef struct {
  size_t n;
  float slope;
} leaky_shape;

static void
leaky_reference(const void *ctx, double *const *in, double *y)
{
  const leaky_shape *s = ctx;
  for (size_t i = 0; i < s->n; i++)
    y[i] = in[0][i] >= 0 ? in[0][i] : s->slope * in[0][i];
}

static void
leaky_forward(os_backend *be, const void *ctx, float *y, float *const *in)
{
  const leaky_shape *s = ctx;
  be->ops->leaky_relu(be, y, in[0], s->slope, s->n);
}

static void
leaky_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
               float *const *in)
{
  const leaky_shape *s = ctx;
  be->ops->grad->leaky_relu_backward(be, g[0], dy, in[0], s->slope, s->n);
}

static op_case
leaky_case(const leaky_shape *s)
{
  float *x = grad_random(s->n, -3, 3);
  for (size_t i = 0; i < s->n; i++) /* away from the kink, where differences do not apply */
    x[i] += x[i] >= 0 ? 0.01f : -0.01f;
  return (op_case){
    { .name = s->slope ? "leaky_relu" : "relu", .ctx = s, .n_inputs = 1, .input_names = { "x" },
      .inputs = { x }, .sizes = { s->n }, .has_grad = { true }, .n_out = s->n,
      .reference = leaky_reference, .backward = leaky_backward },
    leaky_forward,
  };
}

/* --- pixel shuffle --- */
typedef struct {
  int N, C, H, W, r;
} shuffle_shape;

static void
shuffle_reference(const void *ctx, double *const *in, double *y)
{
  const shuffle_shape *s = ctx;
  int r = s->r, Ho = s->H * r, Wo = s->W * r;
  for (int n = 0; n < s->N; n++)
    for (int c = 0; c < s->C; c++)
      for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++)
          y[(((size_t)n * s->C + c) * Ho + oy) * Wo + ox] =
              in[0][((((size_t)n * s->C + c) * r + oy % r) * r + ox % r) * s->H * s->W +
                    (size_t)(oy / r) * s->W + ox / r];
}

static void
shuffle_forward(os_backend *be, const void *ctx, float *y, float *const *in)
{
  const shuffle_shape *s = ctx;
  be->ops->pixel_shuffle(be, y, in[0], s->N, s->C, s->H, s->W, s->r);
}

static void
shuffle_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                 float *const *in)
{
  const shuffle_shape *s = ctx;
  (void)in;
  be->ops->grad->pixel_shuffle_backward(be, g[0], dy, s->N, s->C, s->H, s->W, s->r);
}

static op_case
shuffle_case(const shuffle_shape *s)
{
  size_t n = (size_t)s->N * s->C * s->r * s->r * s->H * s->W;
  return (op_case){
    { .name = "pixel_shuffle", .ctx = s, .n_inputs = 1, .input_names = { "x" },
      .inputs = { grad_random(n, -1, 1) }, .sizes = { n }, .has_grad = { true }, .n_out = n,
      .reference = shuffle_reference, .backward = shuffle_backward },
    shuffle_forward,
  };
}

/* --- bilinear resize --- */
typedef struct {
  int N, C, H, W, Ho, Wo;
} resize_shape;

/* PyTorch's upsample_bilinear2d source index and weight, in double. */
static void
bilinear_source(int dst, int in, int out, int *i0, int *i1, double *l1)
{
  double src = (dst + 0.5) * in / out - 0.5;
  if (src < 0)
    src = 0;
  *i0 = (int)src;
  *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
  *l1 = src - *i0;
}

static void
resize_reference(const void *ctx, double *const *in, double *y)
{
  const resize_shape *s = ctx;
  for (int nc = 0; nc < s->N * s->C; nc++)
    for (int oy = 0; oy < s->Ho; oy++)
      for (int ox = 0; ox < s->Wo; ox++) {
        int y0, y1, x0, x1;
        double ly, lx;
        bilinear_source(oy, s->H, s->Ho, &y0, &y1, &ly);
        bilinear_source(ox, s->W, s->Wo, &x0, &x1, &lx);
        const double *p = in[0] + (size_t)nc * s->H * s->W;
        y[((size_t)nc * s->Ho + oy) * s->Wo + ox] =
            (1 - ly) * ((1 - lx) * p[y0 * s->W + x0] + lx * p[y0 * s->W + x1]) +
            ly * ((1 - lx) * p[y1 * s->W + x0] + lx * p[y1 * s->W + x1]);
      }
}

static void
resize_forward(os_backend *be, const void *ctx, float *y, float *const *in)
{
  const resize_shape *s = ctx;
  be->ops->resize_bilinear(be, y, in[0], s->N, s->C, s->H, s->W, s->Ho, s->Wo);
}

static void
resize_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                float *const *in)
{
  const resize_shape *s = ctx;
  (void)in;
  be->ops->grad->resize_bilinear_backward(be, g[0], dy, s->N, s->C, s->H, s->W, s->Ho, s->Wo);
}

static op_case
resize_case(const resize_shape *s)
{
  size_t n = (size_t)s->N * s->C * s->H * s->W;
  return (op_case){
    { .name = "resize_bilinear", .ctx = s, .n_inputs = 1, .input_names = { "x" },
      .inputs = { grad_random(n, -1, 1) }, .sizes = { n }, .has_grad = { true },
      .n_out = (size_t)s->N * s->C * s->Ho * s->Wo, .reference = resize_reference,
      .backward = resize_backward },
    resize_forward,
  };
}

/* --- BatchNormLocal --- */
typedef struct {
  int N, C, P, group;
} bnl_shape;

static const float BNL_EPS = 1e-5f;

static void
bnl_reference(const void *ctx, double *const *in, double *y)
{
  const bnl_shape *s = ctx;
  size_t count = (size_t)s->group * s->P;
  for (int n0 = 0; n0 < s->N; n0 += s->group)
    for (int c = 0; c < s->C; c++) {
      double mean = 0, var = 0;
      for (int k = 0; k < s->group; k++)
        for (int p = 0; p < s->P; p++)
          mean += in[0][((size_t)(n0 + k) * s->C + c) * s->P + p];
      mean /= count;
      for (int k = 0; k < s->group; k++)
        for (int p = 0; p < s->P; p++) {
          double d = in[0][((size_t)(n0 + k) * s->C + c) * s->P + p] - mean;
          var += d * d;
        }
      var /= count;
      for (int k = 0; k < s->group; k++)
        for (int p = 0; p < s->P; p++) {
          size_t at = ((size_t)(n0 + k) * s->C + c) * s->P + p;
          y[at] = (in[0][at] - mean) / sqrt(var + BNL_EPS) * in[1][c] + in[2][c];
        }
    }
}

static void
bnl_forward(os_backend *be, const void *ctx, float *y, float *const *in)
{
  const bnl_shape *s = ctx;
  be->ops->batch_norm_local(be, y, in[0], in[1], in[2], s->N, s->C, s->P, s->group, BNL_EPS);
}

static void
bnl_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
             float *const *in)
{
  const bnl_shape *s = ctx;
  be->ops->grad->batch_norm_local_backward(be, g[0], g[1], g[2], dy, in[0], in[1], s->N, s->C,
                                           s->P, s->group, BNL_EPS);
}

static op_case
bnl_case(const bnl_shape *s)
{
  size_t n = (size_t)s->N * s->C * s->P;
  return (op_case){
    { .name = "batch_norm_local", .ctx = s, .n_inputs = 3,
      .input_names = { "x", "gamma", "beta" },
      .inputs = { grad_random(n, -2, 3), grad_random(s->C, 0.5f, 1.5f),
                  grad_random(s->C, -1, 1) },
      .sizes = { n, s->C, s->C }, .has_grad = { true, true, true }, .n_out = n,
      .reference = bnl_reference, .backward = bnl_backward },
    bnl_forward,
  };
}

/* --- spectral normalisation: y = W / (u^T W v), u and v constant --- */
typedef struct {
  int rows, cols;
} matrix_shape;

static void
spectral_reference(const void *ctx, double *const *in, double *y)
{
  const matrix_shape *s = ctx;
  double sigma = 0;
  for (int i = 0; i < s->rows; i++)
    for (int j = 0; j < s->cols; j++)
      sigma += in[1][i] * in[0][(size_t)i * s->cols + j] * in[2][j];
  for (size_t i = 0; i < (size_t)s->rows * s->cols; i++)
    y[i] = in[0][i] / sigma;
}

static void
spectral_forward(os_backend *be, const void *ctx, float *y, float *const *in)
{
  const matrix_shape *s = ctx;
  be->ops->spectral_normalize(be, y, in[0], in[1], in[2], s->rows, s->cols);
}

static void
spectral_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                  float *const *in)
{
  const matrix_shape *s = ctx;
  be->ops->grad->spectral_normalize_backward(be, g[0], dy, in[0], in[1], in[2], s->rows,
                                             s->cols);
}

static op_case
spectral_case(const matrix_shape *s)
{
  size_t n = (size_t)s->rows * s->cols;
  /* u, v of one sign and W mostly positive keep sigma well away from 0. */
  return (op_case){
    { .name = "spectral_normalize", .ctx = s, .n_inputs = 3, .input_names = { "W", "u", "v" },
      .inputs = { grad_random(n, -0.2f, 1), grad_random(s->rows, 0.1f, 1),
                  grad_random(s->cols, 0.1f, 1) },
      .sizes = { n, s->rows, s->cols }, .has_grad = { true, false, false }, .n_out = n,
      .reference = spectral_reference, .backward = spectral_backward },
    spectral_forward,
  };
}

/* --- channel projection: y[n, p] = sum_c x[n, c, p] e[n, c] --- */
typedef struct {
  int N, C, P;
} projection_shape;

static void
projection_reference(const void *ctx, double *const *in, double *y)
{
  const projection_shape *s = ctx;
  for (int n = 0; n < s->N; n++)
    for (int p = 0; p < s->P; p++) {
      double sum = 0;
      for (int c = 0; c < s->C; c++)
        sum += in[0][((size_t)n * s->C + c) * s->P + p] * in[1][(size_t)n * s->C + c];
      y[(size_t)n * s->P + p] = sum;
    }
}

static void
projection_forward(os_backend *be, const void *ctx, float *y, float *const *in)
{
  const projection_shape *s = ctx;
  be->ops->channel_projection(be, y, in[0], in[1], s->N, s->C, s->P);
}

static void
projection_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                    float *const *in)
{
  const projection_shape *s = ctx;
  be->ops->grad->channel_projection_backward(be, g[0], g[1], dy, in[0], in[1], s->N, s->C, s->P);
}

static op_case
projection_case(const projection_shape *s)
{
  size_t n = (size_t)s->N * s->C * s->P, ne = (size_t)s->N * s->C;
  return (op_case){
    { .name = "channel_projection", .ctx = s, .n_inputs = 2, .input_names = { "x", "e" },
      .inputs = { grad_random(n, -1, 1), grad_random(ne, -1, 1) }, .sizes = { n, ne },
      .has_grad = { true, true }, .n_out = (size_t)s->N * s->P,
      .reference = projection_reference, .backward = projection_backward },
    projection_forward,
  };
}

/* The forward against the reference (within float rounding), then the backward. */
static void
run_case(op_case c, os_backend *be1, os_backend *be2, bool threads_only)
{
  if (threads_only) {
    grad_check_threads(be1, be2, &c.grad);
  } else {
    double *in[GRAD_MAX_INPUTS] = { 0 };
    for (int i = 0; i < c.grad.n_inputs; i++)
      in[i] = ops_to_double(c.grad.inputs[i], c.grad.sizes[i]);
    double *want = ops_zeros_double(c.grad.n_out);
    float *got = ops_zeros(c.grad.n_out);
    c.grad.reference(c.grad.ctx, in, want);
    c.forward(be2, c.grad.ctx, got, c.grad.inputs);
    char what[120];
    snprintf(what, sizeof what, "%s: forward vs float64", c.grad.name);
    ops_check_scaled(what, got, want, c.grad.n_out, 1e-6);
    for (int i = 0; i < c.grad.n_inputs; i++)
      free(in[i]);
    free(want), free(got);
    grad_check(be2, &c.grad);
  }
  grad_case_free(&c.grad);
}

static void
test_shapes(os_backend *be1, os_backend *be2, bool large)
{
  int k = large ? 8 : 1; /* past OS_CPU_PARALLEL_MIN for the thread checks */
  leaky_shape leaky = { (size_t)grad_random_int(20, 60) * k * k * k * k, 0.2f };
  run_case(leaky_case(&leaky), be1, be2, large);
  leaky_shape relu = { leaky.n, 0.0f };
  run_case(leaky_case(&relu), be1, be2, large);

  shuffle_shape shuffles[] = { { 2, 3, 3, 5, 2 }, { 1, 3, 2, 3, 4 } };
  for (size_t i = 0; i < sizeof shuffles / sizeof shuffles[0]; i++) {
    shuffles[i].C *= k;
    shuffles[i].H *= k;
    run_case(shuffle_case(&shuffles[i]), be1, be2, large);
  }

  /* The discriminator's 8/7 downscale, an upscale, and uneven ratios per side. */
  resize_shape resizes[] = {
    { 2, 3, 16, 24, 14, 21 }, { 1, 2, 3, 4, 7, 9 }, { 2, 2, 9, 5, 4, 11 },
  };
  for (size_t i = 0; i < sizeof resizes / sizeof resizes[0]; i++) {
    resizes[i].C *= k * k;
    run_case(resize_case(&resizes[i]), be1, be2, large);
  }

  /* Virtual batches of 3 over 6 samples, of 8 (StyleGAN-T's cap), and of 1. */
  bnl_shape bnls[] = { { 6, 3, 5, 3 }, { 8, 2, 3, 8 }, { 2, 3, 7, 1 } };
  for (size_t i = 0; i < sizeof bnls / sizeof bnls[0]; i++) {
    bnls[i].C *= k;
    bnls[i].P *= k * k;
    run_case(bnl_case(&bnls[i]), be1, be2, large);
  }

  matrix_shape matrices[] = { { 4, 9 }, { grad_random_int(2, 6), grad_random_int(1, 12) } };
  for (size_t i = 0; i < sizeof matrices / sizeof matrices[0]; i++) {
    matrices[i].rows *= k * k;
    matrices[i].cols *= k * 2;
    run_case(spectral_case(&matrices[i]), be1, be2, large);
  }

  projection_shape projections[] = { { 2, 5, 7 }, { 3, grad_random_int(1, 9), 4 } };
  for (size_t i = 0; i < sizeof projections / sizeof projections[0]; i++) {
    projections[i].C *= k;
    projections[i].P *= k * k * 2;
    run_case(projection_case(&projections[i]), be1, be2, large);
  }
}

/* One power iteration against float64, twice in a row (u, v persist), and
 * the same bits on 1 and 2 threads. */
static void
test_power_iteration(os_backend *be1, os_backend *be2)
{
  int rows = 48, cols = 432;
  float *W = grad_random((size_t)rows * cols, -1, 1);
  float *u1 = grad_random(rows, -1, 1), *v1 = grad_random(cols, -1, 1);
  float *u2 = ops_zeros(rows), *v2 = ops_zeros(cols);
  double *u = ops_to_double(u1, rows), *v = ops_zeros_double(cols);
  for (int i = 0; i < rows; i++)
    u2[i] = u1[i];
  for (int iteration = 0; iteration < 2; iteration++) {
    double norm = 0;
    for (int j = 0; j < cols; j++) {
      v[j] = 0;
      for (int i = 0; i < rows; i++)
        v[j] += (double)W[(size_t)i * cols + j] * u[i];
      norm += v[j] * v[j];
    }
    for (int j = 0; j < cols; j++)
      v[j] /= fmax(sqrt(norm), 1e-12);
    norm = 0;
    for (int i = 0; i < rows; i++) {
      u[i] = 0;
      for (int j = 0; j < cols; j++)
        u[i] += (double)W[(size_t)i * cols + j] * v[j];
      norm += u[i] * u[i];
    }
    for (int i = 0; i < rows; i++)
      u[i] /= fmax(sqrt(norm), 1e-12);
    be1->ops->grad->spectral_norm_power_iteration(be1, u1, v1, W, rows, cols, 1e-12f);
    be2->ops->grad->spectral_norm_power_iteration(be2, u2, v2, W, rows, cols, 1e-12f);
    char what[120];
    snprintf(what, sizeof what, "spectral_norm_power_iteration %d: u", iteration + 1);
    ops_check_scaled(what, u1, u, rows, 1e-6);
    snprintf(what, sizeof what, "spectral_norm_power_iteration %d: v", iteration + 1);
    ops_check_scaled(what, v1, v, cols, 1e-6);
  }
  ops_check_exact("spectral_norm_power_iteration: u, same bits on 2 threads", u2, u1, rows);
  ops_check_exact("spectral_norm_power_iteration: v, same bits on 2 threads", v2, v1, cols);
  free(W), free(u1), free(v1), free(u2), free(v2), free(u), free(v);
}

int
main(int argc, char **argv)
{
  grad_test_seed(argc, argv);
  os_backend *be1 = ops_test_backend(1), *be2 = ops_test_backend(2);
  test_shapes(be1, be2, false);
  test_shapes(be1, be2, true);
  test_power_iteration(be1, be2);
  be1->ops->destroy(be1);
  be2->ops->destroy(be2);
  return ops_test_finish("test-ops-backward-disc");
}
