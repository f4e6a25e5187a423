/* tape_ops.c: each differentiable op's forward and backward, side by side. */
#include "tape_ops.h"

#include <math.h>
#include <string.h>

#define OPS(t) (os_tape_backend(t)->ops)
#define GRAD(t) (os_tape_backend(t)->ops->grad)
#define BE(t) os_tape_backend(t)
#define DATA(t, v) os_tape_data(t, v)

static bool
all_valid(int n, const os_tv *v)
{
  for (int i = 0; i < n; i++)
    if (v[i] == OS_TAPE_NONE)
      return false;
  return true;
}

/* ---- linear ---- */

static void
linear_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  GRAD(t)->linear_backward(BE(t), os_tape_grad_for(t, nd->in[0]), os_tape_grad_for(t, nd->in[1]),
                           os_tape_grad_for(t, nd->in[2]), dy, DATA(t, nd->in[0]),
                           DATA(t, nd->in[1]), nd->shape.i[0], nd->shape.i[1], nd->shape.i[2]);
}

os_tv
os_tape_linear(os_tape *t, os_tv x, os_tv W, os_tv b, int T, int in, int out)
{
  if (!all_valid(2, (os_tv[]){x, W}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)T * out);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->linear(BE(t), DATA(t, y), DATA(t, x), DATA(t, W), DATA(t, b), NULL, T, in, out);
  os_tape_node *nd = os_tape_record(t, linear_backward, y, 3, (os_tv[]){x, W, b});
  if (nd)
    memcpy(nd->shape.i, (int[]){T, in, out}, 3 * sizeof(int));
  return y;
}

/* ---- convolutions ---- */

static void
conv2d_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  GRAD(t)->conv2d_backward(BE(t), os_tape_grad_for(t, nd->in[0]), os_tape_grad_for(t, nd->in[1]),
                           os_tape_grad_for(t, nd->in[2]), dy, DATA(t, nd->in[0]),
                           DATA(t, nd->in[1]), &nd->shape.conv);
}

os_tv
os_tape_conv2d(os_tape *t, os_tv x, os_tv W, os_tv b, const os_conv2d_shape *s)
{
  if (!all_valid(2, (os_tv[]){x, W}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)s->N * s->Cout * os_conv2d_out_h(s) * os_conv2d_out_w(s));
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->conv2d(BE(t), DATA(t, y), DATA(t, x), DATA(t, W), DATA(t, b), NULL, s->N, s->Cin, s->H,
                 s->W, s->Cout, s->KH, s->KW, s->stride, s->pad_top, s->pad_left, s->pad_bottom,
                 s->pad_right);
  os_tape_node *nd = os_tape_record(t, conv2d_backward, y, 3, (os_tv[]){x, W, b});
  if (nd)
    nd->shape.conv = *s;
  return y;
}

static void
conv_temporal_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  GRAD(t)->conv_temporal_backward(BE(t), os_tape_grad_for(t, nd->in[0]),
                                  os_tape_grad_for(t, nd->in[1]), os_tape_grad_for(t, nd->in[2]),
                                  dy, DATA(t, nd->in[0]), DATA(t, nd->in[1]), i[0], i[1], i[2],
                                  i[3], i[4]);
}

os_tv
os_tape_conv_temporal(os_tape *t, os_tv x, os_tv W, os_tv b, int B, int F, int Cin, int Cout,
                      int HW)
{
  if (!all_valid(2, (os_tv[]){x, W}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)B * F * Cout * HW);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->conv_temporal(BE(t), DATA(t, y), DATA(t, x), DATA(t, W), DATA(t, b), B, F, Cin, Cout,
                        HW);
  os_tape_node *nd = os_tape_record(t, conv_temporal_backward, y, 3, (os_tv[]){x, W, b});
  if (nd)
    memcpy(nd->shape.i, (int[]){B, F, Cin, Cout, HW}, 5 * sizeof(int));
  return y;
}

/* ---- normalisation ---- */

static void
group_norm_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  GRAD(t)->group_norm_backward(BE(t), os_tape_grad_for(t, nd->in[0]),
                               os_tape_grad_for(t, nd->in[1]), os_tape_grad_for(t, nd->in[2]),
                               dy, DATA(t, nd->in[0]), DATA(t, nd->in[1]), DATA(t, nd->in[2]),
                               i[0], i[1], i[2], i[3], i[4], nd->f[0], i[5]);
}

os_tv
os_tape_group_norm(os_tape *t, os_tv x, os_tv gamma, os_tv beta, int N, int C, int HW, int G,
                   int frames_per_stat, float eps, bool silu)
{
  if (!all_valid(3, (os_tv[]){x, gamma, beta}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)N * C * HW);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->group_norm(BE(t), DATA(t, y), DATA(t, x), DATA(t, gamma), DATA(t, beta), N, C, HW, G,
                     frames_per_stat, eps, silu);
  os_tape_node *nd = os_tape_record(t, group_norm_backward, y, 3, (os_tv[]){x, gamma, beta});
  if (nd) {
    memcpy(nd->shape.i, (int[]){N, C, HW, G, frames_per_stat, silu}, 6 * sizeof(int));
    nd->f[0] = eps;
  }
  return y;
}

static void
layer_norm_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  GRAD(t)->layer_norm_backward(BE(t), os_tape_grad_for(t, nd->in[0]),
                               os_tape_grad_for(t, nd->in[1]), os_tape_grad_for(t, nd->in[2]),
                               dy, DATA(t, nd->in[0]), DATA(t, nd->in[1]), nd->shape.i[0],
                               nd->shape.i[1], nd->f[0]);
}

os_tv
os_tape_layer_norm(os_tape *t, os_tv x, os_tv gamma, os_tv beta, int T, int C, float eps)
{
  if (!all_valid(3, (os_tv[]){x, gamma, beta}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)T * C);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->layer_norm(BE(t), DATA(t, y), DATA(t, x), DATA(t, gamma), DATA(t, beta), T, C, eps);
  os_tape_node *nd = os_tape_record(t, layer_norm_backward, y, 3, (os_tv[]){x, gamma, beta});
  if (nd) {
    memcpy(nd->shape.i, (int[]){T, C}, 2 * sizeof(int));
    nd->f[0] = eps;
  }
  return y;
}

/* ---- attention ---- */

static void
attention_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  int stride = i[3] * i[4];
  GRAD(t)->attention_backward(BE(t), os_tape_grad_for(t, nd->in[0]),
                              os_tape_grad_for(t, nd->in[1]), os_tape_grad_for(t, nd->in[2]), dy,
                              DATA(t, nd->in[0]), DATA(t, nd->in[1]), DATA(t, nd->in[2]), i[0],
                              i[1], i[2], i[3], i[4], stride, stride, stride, stride, nd->f[0]);
}

os_tv
os_tape_attention(os_tape *t, os_tv q, os_tv k, os_tv v, int n_seq, int Sq, int Sk, int heads,
                  int head_dim, float scale)
{
  if (!all_valid(3, (os_tv[]){q, k, v}))
    return OS_TAPE_NONE;
  int stride = heads * head_dim;
  os_tv o = os_tape_alloc(t, (size_t)n_seq * Sq * stride);
  if (o == OS_TAPE_NONE)
    return o;
  OPS(t)->attention(BE(t), DATA(t, o), DATA(t, q), DATA(t, k), DATA(t, v), n_seq, Sq, Sk, heads,
                    head_dim, stride, stride, stride, stride, scale);
  os_tape_node *nd = os_tape_record(t, attention_backward, o, 3, (os_tv[]){q, k, v});
  if (nd) {
    memcpy(nd->shape.i, (int[]){n_seq, Sq, Sk, heads, head_dim}, 5 * sizeof(int));
    nd->f[0] = scale;
  }
  return o;
}

/* ---- activations ---- */

static void
silu_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  GRAD(t)->silu_backward(BE(t), os_tape_grad_for(t, nd->in[0]), dy, DATA(t, nd->in[0]),
                         os_tape_size(t, nd->in[0]));
}

os_tv
os_tape_silu(os_tape *t, os_tv x, size_t n)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->silu(BE(t), DATA(t, y), DATA(t, x), n);
  os_tape_record(t, silu_backward, y, 1, &x);
  return y;
}

static void
gelu_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  GRAD(t)->gelu_backward(BE(t), os_tape_grad_for(t, nd->in[0]), dy, DATA(t, nd->in[0]),
                         os_tape_size(t, nd->in[0]));
}

os_tv
os_tape_gelu(os_tape *t, os_tv x, size_t n)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->gelu(BE(t), DATA(t, y), DATA(t, x), n);
  os_tape_record(t, gelu_backward, y, 1, &x);
  return y;
}

static void
geglu_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  GRAD(t)->geglu_backward(BE(t), os_tape_grad_for(t, nd->in[0]), dy, DATA(t, nd->in[0]),
                          nd->shape.i[0], nd->shape.i[1]);
}

os_tv
os_tape_geglu(os_tape *t, os_tv x, int T, int C)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, (size_t)T * C);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->geglu(BE(t), DATA(t, y), DATA(t, x), T, C);
  os_tape_node *nd = os_tape_record(t, geglu_backward, y, 1, &x);
  if (nd)
    memcpy(nd->shape.i, (int[]){T, C}, 2 * sizeof(int));
  return y;
}

/* ---- sums and blends ---- */

/* Adds dy * scale to x's gradient when x needs one. */
static void
accumulate(os_tape *t, os_tv x, const float *dy, float scale)
{
  float *dx = os_tape_grad_for(t, x);
  if (dx)
    GRAD(t)->axpy(BE(t), dx, dy, scale, os_tape_size(t, x));
}

static void
add_scaled_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  accumulate(t, nd->in[0], dy, 1.0f);
  accumulate(t, nd->in[1], dy, nd->f[0]);
}

os_tv
os_tape_add_scaled(os_tape *t, os_tv a, os_tv b, float scale, size_t n)
{
  if (!all_valid(2, (os_tv[]){a, b}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  if (scale == 1.0f) {
    OPS(t)->add(BE(t), DATA(t, y), DATA(t, a), DATA(t, b), n);
  } else {
    OPS(t)->copy(BE(t), DATA(t, y), DATA(t, a), n * sizeof(float));
    GRAD(t)->axpy(BE(t), DATA(t, y), DATA(t, b), scale, n);
  }
  os_tape_node *nd = os_tape_record(t, add_scaled_backward, y, 2, (os_tv[]){a, b});
  if (nd)
    nd->f[0] = scale;
  return y;
}

os_tv
os_tape_add(os_tape *t, os_tv a, os_tv b, size_t n)
{
  return os_tape_add_scaled(t, a, b, 1.0f, n);
}

static void
scale_slices_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  float *dx = os_tape_grad_for(t, nd->in[0]);
  int n_slices = nd->shape.i[0];
  size_t len = os_tape_size(t, nd->in[0]) / n_slices;
  for (int i = 0; i < n_slices && dx; i++)
    GRAD(t)->axpy(BE(t), dx + i * len, dy + i * len, nd->f[i], len);
}

os_tv
os_tape_scale_slices(os_tape *t, os_tv x, const float *scales, int n_slices, size_t n)
{
  if (x == OS_TAPE_NONE)
    return x;
  if (n_slices < 1 || n_slices > OS_TAPE_MAX_ARGS || n % n_slices)
    return os_tape_fail(t, "scale_slices (too many slices)");
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  size_t len = n / n_slices;
  for (int i = 0; i < n_slices; i++)
    OPS(t)->scale(BE(t), DATA(t, y) + i * len, DATA(t, x) + i * len, scales[i], len);
  os_tape_node *nd = os_tape_record(t, scale_slices_backward, y, 1, &x);
  if (nd) {
    nd->shape.i[0] = n_slices;
    memcpy(nd->f, scales, (size_t)n_slices * sizeof(float));
  }
  return y;
}

/* alpha and d alpha / d m from the mix factor's current value. */
static float
blend_alpha(os_tape *t, os_tv m, bool switched, double *dalpha_dm)
{
  float value = 0.0f;
  OPS(t)->download(BE(t), &value, DATA(t, m), sizeof value);
  double s = 1.0 / (1.0 + exp(-(double)value));
  *dalpha_dm = (switched ? -1.0 : 1.0) * s * (1.0 - s);
  return (float)(switched ? 1.0 - s : s);
}

static void
blend_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  float alpha = nd->f[0];
  size_t n = os_tape_size(t, nd->in[0]);
  accumulate(t, nd->in[0], dy, alpha);
  accumulate(t, nd->in[1], dy, 1.0f - alpha);
  float *dm = os_tape_grad_for(t, nd->in[2]);
  if (dm) {
    /* <dy, a - b> in one sum: two sums would cancel when the sides agree. */
    float *diff = OPS(t)->alloc(BE(t), n * sizeof(float));
    if (!diff) {
      os_tape_fail(t, "a blend's gradient");
      return;
    }
    OPS(t)->copy(BE(t), diff, DATA(t, nd->in[0]), n * sizeof(float));
    GRAD(t)->axpy(BE(t), diff, DATA(t, nd->in[1]), -1.0f, n);
    double dalpha = GRAD(t)->dot(BE(t), dy, diff, n);
    OPS(t)->free(BE(t), diff);
    float g = 0.0f;
    OPS(t)->download(BE(t), &g, dm, sizeof g);
    g += (float)(dalpha * nd->f[1]);
    OPS(t)->upload(BE(t), dm, &g, sizeof g);
  }
}

os_tv
os_tape_blend(os_tape *t, os_tv a, os_tv b, os_tv m, bool switched, size_t n)
{
  if (!all_valid(3, (os_tv[]){a, b, m}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  double dalpha_dm;
  float alpha = blend_alpha(t, m, switched, &dalpha_dm);
  OPS(t)->blend(BE(t), DATA(t, y), DATA(t, a), DATA(t, b), alpha, n);
  os_tape_node *nd = os_tape_record(t, blend_backward, y, 3, (os_tv[]){a, b, m});
  if (nd) {
    nd->f[0] = alpha;
    nd->f[1] = (float)dalpha_dm;
  }
  return y;
}

/* ---- broadcasts ---- */

static void
add_row_vector_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  if (nd->in[0] != OS_TAPE_NONE)
    accumulate(t, nd->in[0], dy, 1.0f);
  float *dv = os_tape_grad_for(t, nd->in[1]);
  if (dv)
    GRAD(t)->sum_rows(BE(t), dv, dy, i[0], i[1], i[2]);
}

os_tv
os_tape_add_row_vector(os_tape *t, os_tv x, os_tv v, int G, int R, int C)
{
  if (v == OS_TAPE_NONE)
    return v;
  size_t n = (size_t)G * R * C;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  if (x == OS_TAPE_NONE)
    OPS(t)->fill(BE(t), DATA(t, y), 0.0f, n);
  else
    OPS(t)->copy(BE(t), DATA(t, y), DATA(t, x), n * sizeof(float));
  OPS(t)->add_row_vector(BE(t), DATA(t, y), DATA(t, v), G, R, C);
  os_tape_node *nd = os_tape_record(t, add_row_vector_backward, y, 2, (os_tv[]){x, v});
  if (nd)
    memcpy(nd->shape.i, (int[]){G, R, C}, 3 * sizeof(int));
  return y;
}

static void
add_channel_vector_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  accumulate(t, nd->in[0], dy, 1.0f);
  float *dv = os_tape_grad_for(t, nd->in[1]);
  if (dv)
    GRAD(t)->sum_channel_planes(BE(t), dv, dy, i[0], i[1], i[2]);
}

os_tv
os_tape_add_channel_vector(os_tape *t, os_tv x, os_tv v, int N, int C, int P)
{
  if (!all_valid(2, (os_tv[]){x, v}))
    return OS_TAPE_NONE;
  size_t n = (size_t)N * C * P;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->copy(BE(t), DATA(t, y), DATA(t, x), n * sizeof(float));
  OPS(t)->add_channel_vector(BE(t), DATA(t, y), DATA(t, v), N, C, P);
  os_tape_node *nd = os_tape_record(t, add_channel_vector_backward, y, 2, (os_tv[]){x, v});
  if (nd)
    memcpy(nd->shape.i, (int[]){N, C, P}, 3 * sizeof(int));
  return y;
}

/* ---- layout ---- */

static void
permute_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  float *dx = os_tape_grad_for(t, nd->in[0]);
  if (!dx)
    return;
  const int *i = nd->shape.i;
  size_t n = os_tape_size(t, nd->in[0]);
  float *tmp = OPS(t)->alloc(BE(t), n * sizeof(float));
  if (!tmp) {
    os_tape_fail(t, "a permute's gradient");
    return;
  }
  OPS(t)->permute_0213(BE(t), tmp, dy, i[0], i[2], i[1], i[3]); /* the inverse permutation */
  GRAD(t)->axpy(BE(t), dx, tmp, 1.0f, n);
  OPS(t)->free(BE(t), tmp);
}

os_tv
os_tape_permute_0213(os_tape *t, os_tv x, int A, int B, int C, int I)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, (size_t)A * B * C * I);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->permute_0213(BE(t), DATA(t, y), DATA(t, x), A, B, C, I);
  os_tape_node *nd = os_tape_record(t, permute_backward, y, 1, &x);
  if (nd)
    memcpy(nd->shape.i, (int[]){A, B, C, I}, 4 * sizeof(int));
  return y;
}

static void
upsample_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  float *dx = os_tape_grad_for(t, nd->in[0]);
  if (dx)
    GRAD(t)->upsample_nearest_backward(BE(t), dx, dy, i[0], i[1], i[2], i[3], i[4], i[5]);
}

os_tv
os_tape_upsample_nearest(os_tape *t, os_tv x, int N, int C, int H, int W, int Ho, int Wo)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, (size_t)N * C * Ho * Wo);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->upsample_nearest(BE(t), DATA(t, y), DATA(t, x), N, C, H, W, Ho, Wo);
  os_tape_node *nd = os_tape_record(t, upsample_backward, y, 1, &x);
  if (nd)
    memcpy(nd->shape.i, (int[]){N, C, H, W, Ho, Wo}, 6 * sizeof(int));
  return y;
}

static void
concat_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  GRAD(t)->split_channels(BE(t), os_tape_grad_for(t, nd->in[0]), os_tape_grad_for(t, nd->in[1]),
                          dy, i[0], i[1], i[2], i[3]);
}

os_tv
os_tape_concat_channels(os_tape *t, os_tv a, int Ca, os_tv b, int Cb, int N, int P)
{
  if (!all_valid(2, (os_tv[]){a, b}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)N * (Ca + Cb) * P);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->concat_channels(BE(t), DATA(t, y), DATA(t, a), Ca, DATA(t, b), Cb, N, P);
  os_tape_node *nd = os_tape_record(t, concat_backward, y, 2, (os_tv[]){a, b});
  if (nd)
    memcpy(nd->shape.i, (int[]){Ca, Cb, N, P}, 4 * sizeof(int));
  return y;
}

static void
drop_channels_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  float *dx = os_tape_grad_for(t, nd->in[0]);
  const int *i = nd->shape.i; /* N, C, skip, P */
  size_t kept = (size_t)(i[1] - i[2]) * i[3];
  for (int n = 0; n < i[0] && dx; n++)
    GRAD(t)->axpy(BE(t), dx + ((size_t)n * i[1] + i[2]) * i[3], dy + n * kept, 1.0f, kept);
}

os_tv
os_tape_drop_channels(os_tape *t, os_tv x, int N, int C, int skip, int P)
{
  if (x == OS_TAPE_NONE)
    return x;
  size_t kept = (size_t)(C - skip) * P;
  os_tv y = os_tape_alloc(t, N * kept);
  if (y == OS_TAPE_NONE)
    return y;
  for (int n = 0; n < N; n++)
    OPS(t)->copy(BE(t), DATA(t, y) + n * kept, DATA(t, x) + ((size_t)n * C + skip) * P,
                 kept * sizeof(float));
  os_tape_node *nd = os_tape_record(t, drop_channels_backward, y, 1, &x);
  if (nd)
    memcpy(nd->shape.i, (int[]){N, C, skip, P}, 4 * sizeof(int));
  return y;
}

/* ---- the discriminator's layers ---- */

static void
leaky_relu_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  float *dx = os_tape_grad_for(t, nd->in[0]);
  if (dx)
    GRAD(t)->leaky_relu_backward(BE(t), dx, dy, DATA(t, nd->in[0]), nd->f[0],
                                 os_tape_size(t, nd->in[0]));
}

os_tv
os_tape_leaky_relu(os_tape *t, os_tv x, float slope, size_t n)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, n);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->leaky_relu(BE(t), DATA(t, y), DATA(t, x), slope, n);
  os_tape_node *nd = os_tape_record(t, leaky_relu_backward, y, 1, &x);
  if (nd)
    nd->f[0] = slope;
  return y;
}

static void
pixel_shuffle_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  float *dx = os_tape_grad_for(t, nd->in[0]);
  if (dx)
    GRAD(t)->pixel_shuffle_backward(BE(t), dx, dy, i[0], i[1], i[2], i[3], i[4]);
}

os_tv
os_tape_pixel_shuffle(os_tape *t, os_tv x, int N, int C, int H, int W, int r)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, (size_t)N * C * H * W * r * r);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->pixel_shuffle(BE(t), DATA(t, y), DATA(t, x), N, C, H, W, r);
  os_tape_node *nd = os_tape_record(t, pixel_shuffle_backward, y, 1, &x);
  if (nd)
    memcpy(nd->shape.i, (int[]){N, C, H, W, r}, 5 * sizeof(int));
  return y;
}

static void
resize_bilinear_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  float *dx = os_tape_grad_for(t, nd->in[0]);
  if (dx)
    GRAD(t)->resize_bilinear_backward(BE(t), dx, dy, i[0], i[1], i[2], i[3], i[4], i[5]);
}

os_tv
os_tape_resize_bilinear(os_tape *t, os_tv x, int N, int C, int H, int W, int Ho, int Wo)
{
  if (x == OS_TAPE_NONE)
    return x;
  os_tv y = os_tape_alloc(t, (size_t)N * C * Ho * Wo);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->resize_bilinear(BE(t), DATA(t, y), DATA(t, x), N, C, H, W, Ho, Wo);
  os_tape_node *nd = os_tape_record(t, resize_bilinear_backward, y, 1, &x);
  if (nd)
    memcpy(nd->shape.i, (int[]){N, C, H, W, Ho, Wo}, 6 * sizeof(int));
  return y;
}

static void
batch_norm_local_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  GRAD(t)->batch_norm_local_backward(BE(t), os_tape_grad_for(t, nd->in[0]),
                                     os_tape_grad_for(t, nd->in[1]),
                                     os_tape_grad_for(t, nd->in[2]), dy, DATA(t, nd->in[0]),
                                     DATA(t, nd->in[1]), i[0], i[1], i[2], i[3], nd->f[0]);
}

os_tv
os_tape_batch_norm_local(os_tape *t, os_tv x, os_tv gamma, os_tv beta, int N, int C, int P,
                         int group, float eps)
{
  if (!all_valid(3, (os_tv[]){x, gamma, beta}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)N * C * P);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->batch_norm_local(BE(t), DATA(t, y), DATA(t, x), DATA(t, gamma), DATA(t, beta), N, C, P,
                           group, eps);
  os_tape_node *nd = os_tape_record(t, batch_norm_local_backward, y, 3, (os_tv[]){x, gamma, beta});
  if (nd) {
    memcpy(nd->shape.i, (int[]){N, C, P, group}, 4 * sizeof(int));
    nd->f[0] = eps;
  }
  return y;
}

static void
spectral_norm_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  float *dW = os_tape_grad_for(t, nd->in[0]);
  if (dW)
    GRAD(t)->spectral_normalize_backward(BE(t), dW, dy, DATA(t, nd->in[0]), DATA(t, nd->in[1]),
                                         DATA(t, nd->in[2]), nd->shape.i[0], nd->shape.i[1]);
}

/* A tape-owned copy of n backend floats (a constant). */
static os_tv
snapshot(os_tape *t, const float *src, size_t n)
{
  os_tv v = os_tape_alloc(t, n);
  if (v != OS_TAPE_NONE)
    OPS(t)->copy(BE(t), DATA(t, v), src, n * sizeof(float));
  return v;
}

os_tv
os_tape_spectral_norm(os_tape *t, os_tv W, float *u, float *v, int rows, int cols, float eps)
{
  if (W == OS_TAPE_NONE)
    return W;
  GRAD(t)->spectral_norm_power_iteration(BE(t), u, v, DATA(t, W), rows, cols, eps);
  /* Later forwards advance u and v again: the backward needs this one's. */
  os_tv u_now = snapshot(t, u, (size_t)rows), v_now = snapshot(t, v, (size_t)cols);
  os_tv y = os_tape_alloc(t, (size_t)rows * cols);
  if (!all_valid(3, (os_tv[]){u_now, v_now, y}))
    return OS_TAPE_NONE;
  OPS(t)->spectral_normalize(BE(t), DATA(t, y), DATA(t, W), u, v, rows, cols);
  os_tape_node *nd = os_tape_record(t, spectral_norm_backward, y, 3, (os_tv[]){W, u_now, v_now});
  if (nd)
    memcpy(nd->shape.i, (int[]){rows, cols}, 2 * sizeof(int));
  return y;
}

static void
channel_projection_backward(os_tape *t, const os_tape_node *nd, const float *dy)
{
  const int *i = nd->shape.i;
  GRAD(t)->channel_projection_backward(BE(t), os_tape_grad_for(t, nd->in[0]),
                                       os_tape_grad_for(t, nd->in[1]), dy, DATA(t, nd->in[0]),
                                       DATA(t, nd->in[1]), i[0], i[1], i[2]);
}

os_tv
os_tape_channel_projection(os_tape *t, os_tv x, os_tv e, int N, int C, int P)
{
  if (!all_valid(2, (os_tv[]){x, e}))
    return OS_TAPE_NONE;
  os_tv y = os_tape_alloc(t, (size_t)N * P);
  if (y == OS_TAPE_NONE)
    return y;
  OPS(t)->channel_projection(BE(t), DATA(t, y), DATA(t, x), DATA(t, e), N, C, P);
  os_tape_node *nd = os_tape_record(t, channel_projection_backward, y, 2, (os_tv[]){x, e});
  if (nd)
    memcpy(nd->shape.i, (int[]){N, C, P}, 3 * sizeof(int));
  return y;
}
