/* test_ops_backward_pointwise.c: the activations' backwards, the reductions
 * and data movement that are the backwards of backend.h's broadcasts,
 * resize and concatenation, axpy and dot; and that the CPU table fills
 * every slot. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grad_test.h"

/* --- activations, elementwise over n values --- */
typedef struct {
  size_t n;
  int T, C; /* geglu: x [T, 2C] */
  double (*f)(double);
  void (*backward)(os_backend *be, float *dx, const float *dy, const float *x, size_t n);
} activation_shape;

static double
silu_d(double x)
{
  return x / (1.0 + exp(-x));
}

static double
gelu_d(double x)
{
  return 0.5 * x * erfc(-x / sqrt(2.0));
}

static double
quick_gelu_d(double x)
{
  return x / (1.0 + exp(-1.702 * x));
}

static void
activation_reference(const void *ctx, double *const *in, double *y)
{
  const activation_shape *s = ctx;
  for (size_t i = 0; i < s->n; i++)
    y[i] = s->f(in[0][i]);
}

static void
activation_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                    float *const *in)
{
  const activation_shape *s = ctx;
  s->backward(be, g[0], dy, in[0], s->n);
}

static grad_case
activation_case(const char *name, const activation_shape *s)
{
  return (grad_case){
    .name = name, .ctx = s, .n_inputs = 1, .input_names = { "x" },
    .inputs = { grad_random(s->n, -6, 6) }, .sizes = { s->n }, .has_grad = { true },
    .n_out = s->n, .reference = activation_reference, .backward = activation_backward,
  };
}

static void
geglu_reference(const void *ctx, double *const *in, double *y)
{
  const activation_shape *s = ctx;
  for (int t = 0; t < s->T; t++)
    for (int c = 0; c < s->C; c++)
      y[t * s->C + c] = in[0][t * 2 * s->C + c] * gelu_d(in[0][t * 2 * s->C + s->C + c]);
}

static void
geglu_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
               float *const *in)
{
  const activation_shape *s = ctx;
  be->ops->grad->geglu_backward(be, g[0], dy, in[0], s->T, s->C);
}

static grad_case
geglu_case(const activation_shape *s)
{
  size_t n = (size_t)s->T * 2 * s->C;
  return (grad_case){
    .name = "geglu", .ctx = s, .n_inputs = 1, .input_names = { "x" },
    .inputs = { grad_random(n, -4, 4) }, .sizes = { n }, .has_grad = { true },
    .n_out = (size_t)s->T * s->C, .reference = geglu_reference, .backward = geglu_backward,
  };
}

/* --- sum_rows: the backward of add_row_vector, y[g, r, c] = v[g, c] (+ x) --- */
typedef struct {
  int G, R, C;
} rows_shape;

static void
row_vector_reference(const void *ctx, double *const *in, double *y)
{
  const rows_shape *s = ctx;
  for (int g = 0; g < s->G; g++)
    for (int r = 0; r < s->R; r++)
      for (int c = 0; c < s->C; c++)
        y[((size_t)g * s->R + r) * s->C + c] = in[0][g * s->C + c];
}

static void
sum_rows_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                  float *const *in)
{
  const rows_shape *s = ctx;
  (void)in;
  be->ops->grad->sum_rows(be, g[0], dy, s->G, s->R, s->C);
}

static grad_case
sum_rows_case(const rows_shape *s)
{
  size_t nv = (size_t)s->G * s->C;
  return (grad_case){
    .name = "sum_rows", .ctx = s, .n_inputs = 1, .input_names = { "v" },
    .inputs = { grad_random(nv, -1, 1) }, .sizes = { nv }, .has_grad = { true },
    .n_out = nv * s->R, .reference = row_vector_reference, .backward = sum_rows_backward,
  };
}

/* --- sum_channel_planes: the backward of add_channel_vector --- */
static void
channel_vector_reference(const void *ctx, double *const *in, double *y)
{
  const rows_shape *s = ctx; /* G = N, R = C, C = P */
  for (size_t nc = 0; nc < (size_t)s->G * s->R; nc++)
    for (int p = 0; p < s->C; p++)
      y[nc * s->C + p] = in[0][nc];
}

static void
sum_channel_planes_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                            float *const *in)
{
  const rows_shape *s = ctx;
  (void)in;
  be->ops->grad->sum_channel_planes(be, g[0], dy, s->G, s->R, s->C);
}

static grad_case
sum_channel_planes_case(const rows_shape *s)
{
  size_t nv = (size_t)s->G * s->R;
  return (grad_case){
    .name = "sum_channel_planes", .ctx = s, .n_inputs = 1, .input_names = { "v" },
    .inputs = { grad_random(nv, -1, 1) }, .sizes = { nv }, .has_grad = { true },
    .n_out = nv * s->C, .reference = channel_vector_reference,
    .backward = sum_channel_planes_backward,
  };
}

/* --- upsample_nearest --- */
typedef struct {
  int N, C, H, W, Ho, Wo;
} resize_shape;

/* PyTorch's nearest index, as the forward computes it. */
static int
nearest_source(int dst, int in, int out)
{
  int src = (int)floorf((float)dst * ((float)in / (float)out));
  return src < in - 1 ? src : in - 1;
}

static void
upsample_reference(const void *ctx, double *const *in, double *y)
{
  const resize_shape *s = ctx;
  for (int nc = 0; nc < s->N * s->C; nc++)
    for (int oy = 0; oy < s->Ho; oy++)
      for (int ox = 0; ox < s->Wo; ox++)
        y[((size_t)nc * s->Ho + oy) * s->Wo + ox] =
            in[0][((size_t)nc * s->H + nearest_source(oy, s->H, s->Ho)) * s->W +
                  nearest_source(ox, s->W, s->Wo)];
}

static void
upsample_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                  float *const *in)
{
  const resize_shape *s = ctx;
  (void)in;
  be->ops->grad->upsample_nearest_backward(be, g[0], dy, s->N, s->C, s->H, s->W, s->Ho, s->Wo);
}

static grad_case
upsample_case(const resize_shape *s)
{
  size_t n = (size_t)s->N * s->C * s->H * s->W;
  return (grad_case){
    .name = "upsample_nearest", .ctx = s, .n_inputs = 1, .input_names = { "x" },
    .inputs = { grad_random(n, -1, 1) }, .sizes = { n }, .has_grad = { true },
    .n_out = (size_t)s->N * s->C * s->Ho * s->Wo, .reference = upsample_reference,
    .backward = upsample_backward,
  };
}

/* --- split_channels: the backward of concat_channels --- */
typedef struct {
  int Ca, Cb, N, P;
} concat_shape;

static void
concat_reference(const void *ctx, double *const *in, double *y)
{
  const concat_shape *s = ctx;
  size_t a_len = (size_t)s->Ca * s->P, b_len = (size_t)s->Cb * s->P;
  for (int n = 0; n < s->N; n++) {
    memcpy(y + n * (a_len + b_len), in[0] + n * a_len, sizeof(double) * a_len);
    memcpy(y + n * (a_len + b_len) + a_len, in[1] + n * b_len, sizeof(double) * b_len);
  }
}

static void
split_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
               float *const *in)
{
  const concat_shape *s = ctx;
  (void)in;
  be->ops->grad->split_channels(be, g[0], g[1], dy, s->Ca, s->Cb, s->N, s->P);
}

static grad_case
split_case(const concat_shape *s)
{
  size_t na = (size_t)s->N * s->Ca * s->P, nb = (size_t)s->N * s->Cb * s->P;
  return (grad_case){
    .name = "split_channels", .ctx = s, .n_inputs = 2, .input_names = { "a", "b" },
    .inputs = { grad_random(na, -1, 1), grad_random(nb, -1, 1) }, .sizes = { na, nb },
    .has_grad = { true, true }, .n_out = na + nb, .reference = concat_reference,
    .backward = split_backward,
  };
}

static void
run_case(grad_case c, os_backend *be1, os_backend *be2, bool threads_only)
{
  if (threads_only)
    grad_check_threads(be1, be2, &c);
  else
    grad_check(be2, &c);
  grad_case_free(&c);
}

static void
test_shapes(os_backend *be1, os_backend *be2, bool large)
{
  const os_backend_grad_ops *g = be1->ops->grad;
  int r = large ? 64 : 1; /* past OS_CPU_PARALLEL_MIN for the thread checks */
  size_t n = (size_t)grad_random_int(20, 60) * r * r;
  activation_shape silu = { .n = n, .f = silu_d, .backward = g->silu_backward };
  activation_shape gelu = { .n = n, .f = gelu_d, .backward = g->gelu_backward };
  activation_shape quick = { .n = n, .f = quick_gelu_d, .backward = g->quick_gelu_backward };
  run_case(activation_case("silu", &silu), be1, be2, large);
  run_case(activation_case("gelu", &gelu), be1, be2, large);
  run_case(activation_case("quick_gelu", &quick), be1, be2, large);
  activation_shape geglu = { .T = grad_random_int(2, 5) * r, .C = grad_random_int(3, 11) * r };
  run_case(geglu_case(&geglu), be1, be2, large);

  rows_shape rows = { grad_random_int(1, 3), grad_random_int(2, 7) * r,
                      grad_random_int(3, 70) * (large ? 8 : 1) };
  run_case(sum_rows_case(&rows), be1, be2, large);
  rows_shape planes = { 2, grad_random_int(2, 5), grad_random_int(3, 20) * r * 8 };
  run_case(sum_channel_planes_case(&planes), be1, be2, large);

  /* 2x, a non-integer ratio, and a downscale (some pixels unread). */
  int k = large ? 16 : 1;
  resize_shape resizes[] = {
    { 2, 3 * k, 3, 4, 6, 8 }, { 1, 2 * k, 3, 5, 7, 11 }, { 2, 2 * k, 6, 5, 4, 3 },
  };
  for (size_t i = 0; i < sizeof resizes / sizeof resizes[0]; i++) {
    if (large)
      resizes[i].H *= 4, resizes[i].W *= 4, resizes[i].Ho *= 4, resizes[i].Wo *= 4;
    run_case(upsample_case(&resizes[i]), be1, be2, large);
  }
  concat_shape concat = { grad_random_int(1, 4), grad_random_int(1, 4), 2,
                          grad_random_int(3, 9) * r * 8 };
  run_case(split_case(&concat), be1, be2, large);
}

static void
test_axpy_dot(os_backend *be1, os_backend *be2)
{
  size_t n = (size_t)grad_random_int(100000, 200000);
  float *x = grad_random(n, -1, 1), *y = grad_random(n, -1, 1);
  double *want = ops_zeros_double(n);
  for (size_t i = 0; i < n; i++)
    want[i] = y[i] + (double)0.3f * x[i];
  be2->ops->grad->axpy(be2, y, x, 0.3f, n);
  ops_check_pointwise("axpy y += 0.3 x", y, want, n, 2e-7); /* two roundings */
  double dot = 0.0;
  for (size_t i = 0; i < n; i++)
    dot += (double)x[i] * y[i];
  double got1 = be1->ops->grad->dot(be1, x, y, n), got2 = be2->ops->grad->dot(be2, x, y, n);
  char what[120];
  snprintf(what, sizeof what, "dot of %zu values: %.17g vs %.17g", n, got2, dot);
  ops_check(what, fabs(got2 - dot) <= 1e-12 * fabs(dot) + 1e-12);
  ops_check("dot: same bits on 1 and 2 threads", memcmp(&got1, &got2, sizeof got1) == 0);
  free(x), free(y), free(want);
}

/* Every slot of the CPU backend's table is filled (the table is a struct of
 * function pointers only). */
static void
test_table_complete(os_backend *be)
{
  const os_backend_grad_ops *g = be->ops->grad;
  bool complete = g != NULL;
  if (g) {
    typedef void (*slot)(void);
    slot slots[sizeof *g / sizeof(slot)];
    _Static_assert(sizeof *g % sizeof(slot) == 0, "the table holds function pointers only");
    memcpy(slots, g, sizeof slots);
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
      complete = complete && slots[i] != NULL;
  }
  ops_check("the CPU grad table fills every slot", complete);
}

int
main(int argc, char **argv)
{
  grad_test_seed(argc, argv);
  os_backend *be1 = ops_test_backend(1), *be2 = ops_test_backend(2);
  test_table_complete(be1);
  test_shapes(be1, be2, false);
  test_shapes(be1, be2, true);
  test_axpy_dot(be1, be2);
  be1->ops->destroy(be1);
  be2->ops->destroy(be2);
  return ops_test_finish("test-ops-backward-pointwise");
}
