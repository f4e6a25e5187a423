/* test_ops_backward_layers.c: the layers' backwards (linear, conv2d, temporal
 * conv, GroupNorm, LayerNorm, attention) against finite differences of
 * float64 forwards written here, and 1 vs 2 threads on larger shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "grad_test.h"

/* --- linear: y = x W^T + b --- */
typedef struct {
  int T, in, out;
} linear_shape;

static void
linear_reference(const void *ctx, double *const *in, double *y)
{
  const linear_shape *s = ctx;
  const double *x = in[0], *W = in[1], *b = in[2];
  for (int t = 0; t < s->T; t++)
    for (int o = 0; o < s->out; o++) {
      double sum = b[o];
      for (int i = 0; i < s->in; i++)
        sum += x[t * s->in + i] * W[o * s->in + i];
      y[t * s->out + o] = sum;
    }
}

static void
linear_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                float *const *in)
{
  const linear_shape *s = ctx;
  be->ops->grad->linear_backward(be, g[0], g[1], g[2], dy, in[0], in[1], s->T, s->in, s->out);
}

static grad_case
linear_case(const linear_shape *s)
{
  return (grad_case){
    .name = "linear", .ctx = s, .n_inputs = 3, .input_names = { "x", "W", "b" },
    .inputs = { grad_random((size_t)s->T * s->in, -1, 1),
                grad_random((size_t)s->out * s->in, -1, 1), grad_random(s->out, -1, 1) },
    .sizes = { (size_t)s->T * s->in, (size_t)s->out * s->in, s->out },
    .has_grad = { true, true, true }, .n_out = (size_t)s->T * s->out,
    .reference = linear_reference, .backward = linear_backward,
  };
}

/* --- conv2d --- */
static void
conv2d_reference(const void *ctx, double *const *in, double *y)
{
  const os_conv2d_shape *s = ctx;
  int Ho = os_conv2d_out_h(s), Wo = os_conv2d_out_w(s);
  for (int n = 0; n < s->N; n++)
    for (int o = 0; o < s->Cout; o++)
      for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
          double sum = in[2][o];
          for (int c = 0; c < s->Cin; c++)
            for (int kh = 0; kh < s->KH; kh++)
              for (int kw = 0; kw < s->KW; kw++) {
                int iy = oy * s->stride - s->pad_top + kh, ix = ox * s->stride - s->pad_left + kw;
                if (iy >= 0 && iy < s->H && ix >= 0 && ix < s->W)
                  sum += in[0][((n * s->Cin + c) * s->H + iy) * s->W + ix] *
                         in[1][((o * s->Cin + c) * s->KH + kh) * s->KW + kw];
              }
          y[((n * s->Cout + o) * Ho + oy) * Wo + ox] = sum;
        }
}

static void
conv2d_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                float *const *in)
{
  be->ops->grad->conv2d_backward(be, g[0], g[1], g[2], dy, in[0], in[1], ctx);
}

static grad_case
conv2d_case(const os_conv2d_shape *s)
{
  size_t nx = (size_t)s->N * s->Cin * s->H * s->W, nw = (size_t)s->Cout * s->Cin * s->KH * s->KW;
  return (grad_case){
    .name = "conv2d", .ctx = s, .n_inputs = 3, .input_names = { "x", "W", "b" },
    .inputs = { grad_random(nx, -1, 1), grad_random(nw, -1, 1), grad_random(s->Cout, -1, 1) },
    .sizes = { nx, nw, s->Cout }, .has_grad = { true, true, true },
    .n_out = (size_t)s->N * s->Cout * os_conv2d_out_h(s) * os_conv2d_out_w(s),
    .reference = conv2d_reference, .backward = conv2d_backward,
  };
}

/* --- temporal convolution (3,1,1), zero padding one frame each side --- */
typedef struct {
  int B, F, Cin, Cout, HW;
} temporal_shape;

static void
temporal_reference(const void *ctx, double *const *in, double *y)
{
  const temporal_shape *s = ctx;
  for (int b = 0; b < s->B; b++)
    for (int f = 0; f < s->F; f++)
      for (int o = 0; o < s->Cout; o++)
        for (int p = 0; p < s->HW; p++) {
          double sum = in[2][o];
          for (int k = 0; k < 3; k++) {
            int src = f + k - 1;
            if (src < 0 || src >= s->F)
              continue;
            for (int i = 0; i < s->Cin; i++)
              sum += in[1][(o * s->Cin + i) * 3 + k] *
                     in[0][(((size_t)b * s->F + src) * s->Cin + i) * s->HW + p];
          }
          y[(((size_t)b * s->F + f) * s->Cout + o) * s->HW + p] = sum;
        }
}

static void
temporal_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                  float *const *in)
{
  const temporal_shape *s = ctx;
  be->ops->grad->conv_temporal_backward(be, g[0], g[1], g[2], dy, in[0], in[1], s->B, s->F,
                                        s->Cin, s->Cout, s->HW);
}

static grad_case
temporal_case(const temporal_shape *s)
{
  size_t nx = (size_t)s->B * s->F * s->Cin * s->HW, nw = (size_t)s->Cout * s->Cin * 3;
  return (grad_case){
    .name = "conv_temporal", .ctx = s, .n_inputs = 3, .input_names = { "x", "W", "b" },
    .inputs = { grad_random(nx, -1, 1), grad_random(nw, -1, 1), grad_random(s->Cout, -1, 1) },
    .sizes = { nx, nw, s->Cout }, .has_grad = { true, true, true },
    .n_out = (size_t)s->B * s->F * s->Cout * s->HW,
    .reference = temporal_reference, .backward = temporal_backward,
  };
}

/* --- GroupNorm (statistics per image or per frames_per_stat images) --- */
typedef struct {
  int N, C, HW, G, frames_per_stat;
  bool silu;
} group_norm_shape;

static void
group_norm_reference(const void *ctx, double *const *in, double *y)
{
  const group_norm_shape *s = ctx;
  int per_group = s->C / s->G, frames = s->frames_per_stat;
  size_t count = (size_t)frames * per_group * s->HW;
  for (int b = 0; b < s->N / frames; b++)
    for (int g = 0; g < s->G; g++) {
      double sum = 0.0, sq = 0.0;
      for (int pass = 0; pass < 3; pass++)
        for (int f = 0; f < frames; f++)
          for (int c = g * per_group; c < (g + 1) * per_group; c++)
            for (int p = 0; p < s->HW; p++) {
              size_t at = (((size_t)b * frames + f) * s->C + c) * s->HW + p;
              double mean = sum / count, d = in[0][at] - mean;
              if (pass == 0) {
                sum += in[0][at];
              } else if (pass == 1) {
                sq += d * d;
              } else {
                double v = d / sqrt(sq / count + 1e-5) * in[1][c] + in[2][c];
                y[at] = s->silu ? v / (1.0 + exp(-v)) : v;
              }
            }
    }
}

static void
group_norm_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                    float *const *in)
{
  const group_norm_shape *s = ctx;
  be->ops->grad->group_norm_backward(be, g[0], g[1], g[2], dy, in[0], in[1], in[2], s->N, s->C,
                                     s->HW, s->G, s->frames_per_stat, 1e-5f, s->silu);
}

static grad_case
group_norm_case(const group_norm_shape *s)
{
  size_t n = (size_t)s->N * s->C * s->HW;
  return (grad_case){
    .name = s->silu ? "group_norm+silu" : "group_norm", .ctx = s, .n_inputs = 3,
    .input_names = { "x", "gamma", "beta" },
    /* An offset mean, as in the forward's test. */
    .inputs = { grad_random(n, 1, 3), grad_random(s->C, 0.5f, 1.5f), grad_random(s->C, -1, 1) },
    .sizes = { n, s->C, s->C }, .has_grad = { true, true, true }, .n_out = n,
    .reference = group_norm_reference, .backward = group_norm_backward,
  };
}

/* --- LayerNorm --- */
typedef struct {
  int T, C;
} layer_norm_shape;

static void
layer_norm_reference(const void *ctx, double *const *in, double *y)
{
  const layer_norm_shape *s = ctx;
  for (int t = 0; t < s->T; t++) {
    const double *x = in[0] + (size_t)t * s->C;
    double mean = 0.0, var = 0.0;
    for (int c = 0; c < s->C; c++)
      mean += x[c] / s->C;
    for (int c = 0; c < s->C; c++)
      var += (x[c] - mean) * (x[c] - mean) / s->C;
    for (int c = 0; c < s->C; c++)
      y[(size_t)t * s->C + c] = (x[c] - mean) / sqrt(var + 1e-5) * in[1][c] + in[2][c];
  }
}

static void
layer_norm_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                    float *const *in)
{
  const layer_norm_shape *s = ctx;
  be->ops->grad->layer_norm_backward(be, g[0], g[1], g[2], dy, in[0], in[1], s->T, s->C, 1e-5f);
}

static grad_case
layer_norm_case(const layer_norm_shape *s)
{
  size_t n = (size_t)s->T * s->C;
  return (grad_case){
    .name = "layer_norm", .ctx = s, .n_inputs = 3, .input_names = { "x", "gamma", "beta" },
    .inputs = { grad_random(n, -2, 3), grad_random(s->C, 0.5f, 1.5f), grad_random(s->C, -1, 1) },
    .sizes = { n, s->C, s->C }, .has_grad = { true, true, true }, .n_out = n,
    .reference = layer_norm_reference, .backward = layer_norm_backward,
  };
}

/* --- attention, with backend.h's strided layout --- */
typedef struct {
  int n_seq, Sq, Sk, heads, hd, q_stride, k_stride, v_stride, o_stride;
  float scale;
} attention_shape;

static void
attention_reference(const void *ctx, double *const *in, double *y)
{
  const attention_shape *s = ctx;
  double *p = malloc(sizeof(double) * s->Sk);
  for (int n = 0; n < s->n_seq; n++)
    for (int h = 0; h < s->heads; h++)
      for (int i = 0; i < s->Sq; i++) {
        const double *q = in[0] + ((size_t)n * s->Sq + i) * s->q_stride + h * s->hd;
        double max = -INFINITY, sum = 0.0;
        for (int j = 0; j < s->Sk; j++) {
          const double *k = in[1] + ((size_t)n * s->Sk + j) * s->k_stride + h * s->hd;
          double dot = 0.0;
          for (int d = 0; d < s->hd; d++)
            dot += q[d] * k[d];
          p[j] = (double)s->scale * dot;
          max = fmax(max, p[j]);
        }
        for (int j = 0; j < s->Sk; j++)
          sum += p[j] = exp(p[j] - max);
        double *o = y + ((size_t)n * s->Sq + i) * s->o_stride + h * s->hd;
        for (int d = 0; d < s->hd; d++) {
          double acc = 0.0;
          for (int j = 0; j < s->Sk; j++)
            acc += p[j] * in[2][((size_t)n * s->Sk + j) * s->v_stride + h * s->hd + d];
          o[d] = acc / sum;
        }
      }
  free(p);
}

static void
attention_backward(os_backend *be, const void *ctx, float *const *g, const float *dy,
                   float *const *in)
{
  const attention_shape *s = ctx;
  be->ops->grad->attention_backward(be, g[0], g[1], g[2], dy, in[0], in[1], in[2], s->n_seq,
                                    s->Sq, s->Sk, s->heads, s->hd, s->q_stride, s->k_stride,
                                    s->v_stride, s->o_stride, s->scale);
}

static grad_case
attention_case(const attention_shape *s)
{
  size_t nq = (size_t)s->n_seq * s->Sq * s->q_stride, nk = (size_t)s->n_seq * s->Sk * s->k_stride,
         nv = (size_t)s->n_seq * s->Sk * s->v_stride;
  return (grad_case){
    .name = "attention", .ctx = s, .n_inputs = 3, .input_names = { "q", "k", "v" },
    /* Wide enough scores that the softmax is far from uniform. */
    .inputs = { grad_random(nq, -2, 2), grad_random(nk, -2, 2), grad_random(nv, -1, 1) },
    .sizes = { nq, nk, nv }, .has_grad = { true, true, true },
    .n_out = (size_t)s->n_seq * s->Sq * s->o_stride,
    .reference = attention_reference, .backward = attention_backward,
  };
}

/* grad_check (with finite differences) on be, or only the thread check. */
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
  int r = large ? 8 : 1; /* larger shapes for the thread checks */
  linear_shape lin = { grad_random_int(3, 9) * r * r, grad_random_int(4, 9) * r,
                       grad_random_int(3, 8) * r };
  run_case(linear_case(&lin), be1, be2, large);

  /* stride 2 with asymmetric padding, 3x3 plain, 1x1 pointwise, 2x2 odd */
  os_conv2d_shape convs[] = {
    { 2, grad_random_int(2, 3) * r, grad_random_int(6, 9) * r, grad_random_int(5, 8) * r,
      grad_random_int(2, 4) * r, 3, 3, 2, 0, 1, 1, 0 },
    { 1, 2 * r, 5 * r, grad_random_int(4, 7) * r, 3 * r, 3, 3, 1, 1, 1, 1, 1 },
    { 2, grad_random_int(2, 5) * r, 4 * r, grad_random_int(3, 6) * r, 3 * r, 1, 1, 1, 0, 0, 0, 0 },
    { 1, 3, 5 * r, 7 * r, 2 * r, 2, 3, 2, 1, 2, 0, 1 },
  };
  for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++)
    run_case(conv2d_case(&convs[i]), be1, be2, large);

  for (int F = 1; F <= 3; F += 2) {
    temporal_shape t = { 2, large ? F + 2 : F, grad_random_int(2, 4) * r,
                         grad_random_int(2, 4) * r, grad_random_int(3, 6) * r };
    run_case(temporal_case(&t), be1, be2, large);
  }

  for (int silu = 0; silu < 2; silu++)
    for (int frames = 1; frames <= 3; frames += 2) {
      group_norm_shape g = { 2 * 3, 6 * r, grad_random_int(3, 8) * r, 3, frames, silu };
      run_case(group_norm_case(&g), be1, be2, large);
    }

  layer_norm_shape ln = { grad_random_int(2, 5) * r * r * 8, grad_random_int(5, 12) * r };
  run_case(layer_norm_case(&ln), be1, be2, large);

  /* Sq != Sk, several heads, padded token strides; on large shapes several
   * query and key tiles. */
  int heads = grad_random_int(2, 3), hd = grad_random_int(3, 5) * (large ? 4 : 1);
  attention_shape a = {
    2, grad_random_int(3, 6) * r * r * 4, grad_random_int(4, 7) * r * r * 16, heads, hd,
    heads * hd + 3, heads * hd + 1, heads * hd, heads * hd + 2, 1.0f / sqrtf((float)hd),
  };
  run_case(attention_case(&a), be1, be2, large);
  /* Attention across frames: a few keys (the row-by-row path). */
  int frames = grad_random_int(2, 14);
  attention_shape temporal = { 3 * r, frames, frames + 1, heads, hd, heads * hd,
                               heads * hd + 2, heads * hd + 1, heads * hd, 0.4f };
  run_case(attention_case(&temporal), be1, be2, large);
  /* Cross-attention to a single key. */
  attention_shape one_key = { 3, grad_random_int(2, 5) * r, 1, 2, 4, 8, 8, 8, 8, 0.5f };
  run_case(attention_case(&one_key), be1, be2, large);
}

int
main(int argc, char **argv)
{
  grad_test_seed(argc, argv);
  os_backend *be1 = ops_test_backend(1), *be2 = ops_test_backend(2);
  test_shapes(be1, be2, false);
  test_shapes(be1, be2, true);
  be1->ops->destroy(be1);
  be2->ops->destroy(be2);
  return ops_test_finish("test-ops-backward-layers");
}
