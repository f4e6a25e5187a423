#include "layers.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS(be) ((be)->ops)

/* ---- buffers ---- */

float *
os_alloc_floats(os_backend *be, size_t n)
{
  return OPS(be)->alloc_as(be, n ? n : 1, OS_STORAGE_FP32);
}

float *
os_alloc_activations(os_backend *be, size_t n)
{
  return OPS(be)->alloc_as(be, n ? n : 1, OS_STORAGE_ACTIVATION);
}

void
os_free_floats(os_backend *be, float *p)
{
  if (p)
    OPS(be)->free(be, p);
}

onestep_status
os_check_abort(os_backend *be)
{
  if (be->abort_cb && be->abort_cb(be->abort_user_data))
    return ONESTEP_ERR_ABORTED;
  return ONESTEP_OK;
}

/* ---- weights ---- */

void
os_format_name(char *out, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, size, fmt, ap);
  va_end(ap);
}

static const float *
take(os_weight_set *ws, const char *prefix, const char *suffix, int ndim, const int64_t *shape)
{
  char name[512];
  os_format_name(name, sizeof name, "%s%s", prefix, suffix);
  return os_weights_take(ws, name, ndim, shape);
}

void
os_bind_linear(os_weight_set *ws, os_linear_w *l, const char *prefix, int in, int out, bool bias)
{
  l->in = in;
  l->out = out;
  l->w = take(ws, prefix, ".weight", 2, (int64_t[]){out, in});
  l->b = bias ? take(ws, prefix, ".bias", 1, (int64_t[]){out}) : NULL;
}

void
os_bind_conv(os_weight_set *ws, os_conv_w *c, const char *prefix, int cin, int cout, int k,
             bool bias)
{
  c->cin = cin;
  c->cout = cout;
  c->kh = c->kw = k;
  c->w = take(ws, prefix, ".weight", 4, (int64_t[]){cout, cin, k, k});
  c->b = bias ? take(ws, prefix, ".bias", 1, (int64_t[]){cout}) : NULL;
}

void
os_bind_conv_temporal(os_weight_set *ws, os_conv_w *c, const char *prefix, int cin, int cout)
{
  c->cin = cin;
  c->cout = cout;
  c->kh = 3;
  c->kw = 1;
  c->w = take(ws, prefix, ".weight", 5, (int64_t[]){cout, cin, 3, 1, 1});
  c->b = take(ws, prefix, ".bias", 1, (int64_t[]){cout});
}

void
os_bind_norm(os_weight_set *ws, os_norm_w *n, const char *prefix, int channels)
{
  n->channels = channels;
  n->gamma = take(ws, prefix, ".weight", 1, (int64_t[]){channels});
  n->beta = take(ws, prefix, ".bias", 1, (int64_t[]){channels});
}

float
os_bind_mix_alpha(os_weight_set *ws, const char *name, bool switch_mix,
                  const float **mix_factor)
{
  *mix_factor = os_weights_take(ws, name, 1, (int64_t[]){1});
  if (!*mix_factor)
    return 0.0f; /* the set has latched the error */
  os_backend *be = os_weight_set_backend(ws);
  float m = 0.0f;
  OPS(be)->download(be, &m, *mix_factor, sizeof m);
  float alpha = 1.0f / (1.0f + expf(-m));
  return switch_mix ? 1.0f - alpha : alpha;
}

void
os_linear_forward(os_backend *be, const os_linear_w *l, float *y, const float *x, int T,
                  const float *residual)
{
  OPS(be)->linear(be, y, x, l->w, l->b, residual, T, l->in, l->out);
}

void
os_conv_forward(os_backend *be, const os_conv_w *c, float *y, const float *x, int N, int H, int W,
                const float *residual)
{
  int p = c->kh / 2;
  OPS(be)->conv2d(be, y, x, c->w, c->b, residual, N, c->cin, H, W, c->cout, c->kh, c->kw, 1, p, p,
                  p, p);
}

/* ---- embeddings ---- */

void
os_sinusoid_embedding(float *out, const float *t, int n, int dim)
{
  /* Float32 arithmetic in the reference's order, so the phases match it. */
  int half = dim / 2;
  const float neg_log_period = (float)-log(10000.0);
  for (int i = 0; i < n; i++) {
    float *row = out + (size_t)i * dim;
    for (int j = 0; j < half; j++) {
      float freq = expf((neg_log_period * (float)j) / (float)half);
      float arg = t[i] * freq;
      row[j] = cosf(arg);
      row[half + j] = sinf(arg);
    }
    if (dim % 2)
      row[dim - 1] = 0.0f;
  }
}

void
os_bind_timestep_embedding(os_weight_set *ws, os_timestep_embedding_w *e, const char *prefix,
                           int in, int hidden, int out)
{
  char name[512];
  os_format_name(name, sizeof name, "%s.linear_1", prefix);
  os_bind_linear(ws, &e->linear_1, name, in, hidden, true);
  os_format_name(name, sizeof name, "%s.linear_2", prefix);
  os_bind_linear(ws, &e->linear_2, name, hidden, out, true);
}

onestep_status
os_timestep_embedding_forward(os_backend *be, const os_timestep_embedding_w *e, float *y,
                              const float *x, int T)
{
  float *h = os_alloc_floats(be, (size_t)T * e->linear_1.out);
  if (!h)
    return ONESTEP_ERR_OUT_OF_MEMORY;
  os_linear_forward(be, &e->linear_1, h, x, T, NULL);
  OPS(be)->silu(be, h, h, (size_t)T * e->linear_1.out);
  os_linear_forward(be, &e->linear_2, y, h, T, NULL);
  os_free_floats(be, h);
  return ONESTEP_OK;
}

/* ---- resnets ---- */

void
os_bind_resnet2d(os_weight_set *ws, os_resnet2d_w *r, const char *prefix, int cin, int cout,
                 int temb_dim, int groups, float eps)
{
  char name[512];
  r->cin = cin;
  r->cout = cout;
  r->groups = groups;
  r->eps = eps;
  r->has_temb = temb_dim > 0;
  r->has_shortcut = cin != cout;
  os_format_name(name, sizeof name, "%s.norm1", prefix);
  os_bind_norm(ws, &r->norm1, name, cin);
  os_format_name(name, sizeof name, "%s.conv1", prefix);
  os_bind_conv(ws, &r->conv1, name, cin, cout, 3, true);
  if (r->has_temb) {
    os_format_name(name, sizeof name, "%s.time_emb_proj", prefix);
    os_bind_linear(ws, &r->time_emb_proj, name, temb_dim, cout, true);
  }
  os_format_name(name, sizeof name, "%s.norm2", prefix);
  os_bind_norm(ws, &r->norm2, name, cout);
  os_format_name(name, sizeof name, "%s.conv2", prefix);
  os_bind_conv(ws, &r->conv2, name, cout, cout, 3, true);
  if (r->has_shortcut) {
    os_format_name(name, sizeof name, "%s.conv_shortcut", prefix);
    os_bind_conv(ws, &r->conv_shortcut, name, cin, cout, 1, true);
  }
}

/* Adds Linear(temb_silu) [N, C] to every pixel of h [N, C, P]. */
static onestep_status
add_time_embedding(os_backend *be, const os_linear_w *proj, float *h, const float *temb_silu,
                   int N, int P)
{
  float *t = os_alloc_floats(be, (size_t)N * proj->out);
  if (!t)
    return ONESTEP_ERR_OUT_OF_MEMORY;
  os_linear_forward(be, proj, t, temb_silu, N, NULL);
  OPS(be)->add_channel_vector(be, h, t, N, proj->out, P);
  os_free_floats(be, t);
  return ONESTEP_OK;
}

/* Images per chunk for layers that work image by image, so that their
 * temporaries stay near the budget whatever the frame count (the VAE decoder's
 * full-resolution layers would otherwise hold several frames x 576 x 1024 x C). */
static size_t image_chunk_budget = OS_IMAGE_CHUNK_FLOATS;

void
os_layers_set_image_chunk_budget(size_t floats)
{
  image_chunk_budget = floats ? floats : OS_IMAGE_CHUNK_FLOATS;
}

static int
images_per_chunk(int N, size_t floats_per_image)
{
  size_t n = floats_per_image ? image_chunk_budget / floats_per_image : (size_t)N;
  return n < 1 ? 1 : n < (size_t)N ? (int)n : N;
}

/* The resnet over chunks of images; with `resize`, each chunk's input is first
 * resized and convolved from x at the resize's size (the decoder's upsampler). */
static onestep_status
resnet2d_chunks(os_backend *be, const os_resnet2d_w *r, float *y, const float *x, int N, int H,
                int W, const float *temb_silu, const os_resize_input *resize)
{
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  int P = H * W;
  /* t holds the resized input (then read by its conv), GN(x) for conv1, then
   * the shortcut (conv1 has read t by then); v the resized input's conv. */
  int t_channels = r->cin > r->cout ? r->cin : r->cout;
  /* Storage (docs/precision.md): float32 for what carries the residual stream
   * or feeds a GroupNorm: t when it holds the shortcut or, in place, the
   * block's output; h (conv1's output plus the time embedding); v (the
   * resized input). Otherwise t only holds GN(x), conv1's operand. */
  bool t_carries_residual = r->has_shortcut || y == x;
  /* Without a resize, chunks as when the shortcut had its own buffer: other
   * chunks would change the CPU's GEMM sums in the last bits. */
  int chunk = images_per_chunk(N, (size_t)((resize ? 2 : 1) * r->cin + 2 * r->cout) * P);
  size_t t_n = (size_t)chunk * t_channels * P;
  float *t = t_carries_residual ? os_alloc_floats(be, t_n) : os_alloc_activations(be, t_n);
  float *h = os_alloc_floats(be, (size_t)chunk * r->cout * P);
  float *v = resize ? os_alloc_floats(be, (size_t)chunk * r->cin * P) : NULL;
  if (!t || !h || (resize && !v))
    goto done;

  /* Every step works image by image, so chunks of images give the same result. */
  for (int n0 = 0; n0 < N; n0 += chunk) {
    /* Polled between chunks and after conv1 as well: at full resolution on
     * a CPU one decoder block is many seconds of work, a chunk a fraction of
     * it. */
    if (n0 > 0 && (status = os_check_abort(be)) != ONESTEP_OK)
      goto done;
    int n = N - n0 < chunk ? N - n0 : chunk;
    const float *xc = x + (size_t)n0 * r->cin * P;
    float *yc = y + (size_t)n0 * r->cout * P;
    if (resize) {
      OPS(be)->upsample_nearest(be, t, x + (size_t)n0 * r->cin * resize->H * resize->W, n, r->cin,
                                resize->H, resize->W, H, W);
      os_conv_forward(be, resize->conv, v, t, n, H, W, NULL);
      xc = v;
    }
    OPS(be)->group_norm(be, t, xc, r->norm1.gamma, r->norm1.beta, n, r->cin, P, r->groups, 1,
                        r->eps, true);
    os_conv_forward(be, &r->conv1, h, t, n, H, W, NULL);
    if ((status = os_check_abort(be)) != ONESTEP_OK)
      goto done;
    if (r->has_temb && temb_silu) {
      status = add_time_embedding(be, &r->time_emb_proj, h,
                                  temb_silu + (size_t)n0 * r->time_emb_proj.in, n, P);
      if (status != ONESTEP_OK)
        goto done;
    }
    OPS(be)->group_norm(be, h, h, r->norm2.gamma, r->norm2.beta, n, r->cout, P, r->groups, 1,
                        r->eps, true);
    if (r->has_shortcut)
      os_conv_forward(be, &r->conv_shortcut, t, xc, n, H, W, NULL);
    if (y == x) { /* in place: conv2 may not write over its residual */
      os_conv_forward(be, &r->conv2, t, h, n, H, W, xc);
      OPS(be)->copy(be, yc, t, (size_t)n * r->cout * P * sizeof(float));
    } else {
      os_conv_forward(be, &r->conv2, yc, h, n, H, W, r->has_shortcut ? t : xc);
    }
  }
  status = ONESTEP_OK;
done:
  os_free_floats(be, t);
  os_free_floats(be, h);
  os_free_floats(be, v);
  return status;
}

onestep_status
os_resnet2d_forward(os_backend *be, const os_resnet2d_w *r, float *y, const float *x, int N,
                    int H, int W, const float *temb_silu)
{
  return resnet2d_chunks(be, r, y, x, N, H, W, temb_silu, NULL);
}

static void
bind_temporal_resnet(os_weight_set *ws, os_temporal_resnet_w *r, const char *prefix, int channels,
                     int temb_dim, float eps)
{
  char name[512];
  r->channels = channels;
  r->groups = 32;
  r->eps = eps;
  r->has_temb = temb_dim > 0;
  os_format_name(name, sizeof name, "%s.norm1", prefix);
  os_bind_norm(ws, &r->norm1, name, channels);
  os_format_name(name, sizeof name, "%s.conv1", prefix);
  os_bind_conv_temporal(ws, &r->conv1, name, channels, channels);
  if (r->has_temb) {
    os_format_name(name, sizeof name, "%s.time_emb_proj", prefix);
    os_bind_linear(ws, &r->time_emb_proj, name, temb_dim, channels, true);
  }
  os_format_name(name, sizeof name, "%s.norm2", prefix);
  os_bind_norm(ws, &r->norm2, name, channels);
  os_format_name(name, sizeof name, "%s.conv2", prefix);
  os_bind_conv_temporal(ws, &r->conv2, name, channels, channels);
}

/* The temporal convolution of the N = B*F frames of buf held at slots
 * [0, N) (shift +1) or [1, N + 1) (shift -1) of an (N+1)-frame buffer, into
 * the same buffer one slot up or down: windows of `chunk` frames plus their
 * neighbours go through tmp, and the order of the windows (last first when
 * moving up) overwrites only frames no later window reads. Each kept frame
 * sees the same neighbours, and the same sums, as in one call over all.
 * The abort callback is polled between windows. */
static onestep_status
conv_temporal_shifted(os_backend *be, const os_conv_w *conv, float *buf, int shift, int B, int F,
                      int C, int P, int chunk, float *tmp)
{
  size_t frame = (size_t)C * P;
  const float *src = shift > 0 ? buf : buf + frame;
  float *dst = shift > 0 ? buf + frame : buf;
  int per_batch = (F + chunk - 1) / chunk, windows = B * per_batch;
  for (int i = 0; i < windows; i++) {
    onestep_status status = i > 0 ? os_check_abort(be) : ONESTEP_OK;
    if (status != ONESTEP_OK)
      return status;
    int k = shift > 0 ? windows - 1 - i : i;
    int b = k / per_batch, f0 = (k % per_batch) * chunk;
    int f1 = f0 + chunk < F ? f0 + chunk : F;
    int w0 = f0 > 0 ? f0 - 1 : 0, w1 = f1 < F ? f1 + 1 : F;
    size_t first = (size_t)b * F;
    OPS(be)->conv_temporal(be, tmp, src + (first + w0) * frame, conv->w, conv->b, 1, w1 - w0, C,
                           C, P);
    OPS(be)->copy(be, dst + (first + f0) * frame, tmp + (size_t)(f0 - w0) * frame,
                  (size_t)(f1 - f0) * frame * sizeof(float));
  }
  return ONESTEP_OK;
}

/* The temporal resnet and the AlphaBlender, in place on xs [B*F, C, P]:
 * xs <- alpha * xs + (1 - alpha) * (xs + conv2(act(GN(conv1(act(GN(xs))) + temb)))),
 * statistics across frames. Beyond the image chunk budget the convolutions
 * run in place too (conv_temporal_shifted): one (N+1)-frame buffer and a
 * window of a few frames instead of two whole temporaries. */
static onestep_status
temporal_resnet_blend(os_backend *be, const os_temporal_resnet_w *r, float alpha, float *xs, int B,
                      int F, int P, const float *temb_silu)
{
  int C = r->channels, N = B * F;
  size_t frame = (size_t)C * P, n = (size_t)N * frame;
  bool in_place = n > image_chunk_budget;
  /* Frames kept per window: each window also computes its two neighbours'
   * outputs and drops them, so at least 4 (at most 50% more work). */
  size_t window_frames = image_chunk_budget / frame;
  int chunk = window_frames > 6 ? (int)window_frames - 2 : 4;
  if (chunk > F)
    chunk = F;
  /* h: the hidden state, then the branch; t: GN(xs) and conv2's output, or the window.
   * h is float32 (docs/precision.md): GroupNorm's input after the time
   * embedding, and then the residual sum xs + branch that the blend reads. */
  float *h = os_alloc_floats(be, in_place ? n + frame : n);
  float *t = os_alloc_activations(be, in_place ? (size_t)(chunk + 2) * frame : n);
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (!h || !t)
    goto done;
  if (in_place) {
    OPS(be)->group_norm(be, h + frame, xs, r->norm1.gamma, r->norm1.beta, N, C, P, r->groups, F,
                        r->eps, true);
    if ((status = conv_temporal_shifted(be, &r->conv1, h, -1, B, F, C, P, chunk, t)) !=
        ONESTEP_OK)
      goto done;
  } else {
    OPS(be)->group_norm(be, t, xs, r->norm1.gamma, r->norm1.beta, N, C, P, r->groups, F, r->eps,
                        true);
    OPS(be)->conv_temporal(be, h, t, r->conv1.w, r->conv1.b, B, F, C, C, P);
  }
  if ((status = os_check_abort(be)) != ONESTEP_OK)
    goto done;
  if (r->has_temb && temb_silu &&
      (status = add_time_embedding(be, &r->time_emb_proj, h, temb_silu, N, P)) != ONESTEP_OK)
    goto done;
  OPS(be)->group_norm(be, h, h, r->norm2.gamma, r->norm2.beta, N, C, P, r->groups, F, r->eps,
                      true);
  float *branch = h;
  if (in_place) {
    if ((status = conv_temporal_shifted(be, &r->conv2, h, +1, B, F, C, P, chunk, t)) !=
        ONESTEP_OK)
      goto done;
    branch = h + frame;
    OPS(be)->add(be, branch, xs, branch, n);
  } else {
    OPS(be)->conv_temporal(be, t, h, r->conv2.w, r->conv2.b, B, F, C, C, P);
    OPS(be)->add(be, h, xs, t, n);
  }
  OPS(be)->blend(be, xs, xs, branch, alpha, n);
  status = ONESTEP_OK;
done:
  os_free_floats(be, h);
  os_free_floats(be, t);
  return status;
}

void
os_bind_st_resblock(os_weight_set *ws, os_st_resblock_w *r, const char *prefix, int cin, int cout,
                    int temb_dim, float eps, float temporal_eps, bool switch_mix)
{
  char name[512];
  os_format_name(name, sizeof name, "%s.spatial_res_block", prefix);
  os_bind_resnet2d(ws, &r->spatial, name, cin, cout, temb_dim, 32, eps);
  os_format_name(name, sizeof name, "%s.temporal_res_block", prefix);
  bind_temporal_resnet(ws, &r->temporal, name, cout, temb_dim, temporal_eps);
  os_format_name(name, sizeof name, "%s.time_mixer.mix_factor", prefix);
  r->spatial_alpha = os_bind_mix_alpha(ws, name, switch_mix, &r->mix_factor);
  r->switch_mix = switch_mix;
}

onestep_status
os_st_resblock_forward(os_backend *be, const os_st_resblock_w *r, float **y, float *x,
                       bool consume_x, int B, int F, int H, int W, const float *temb_silu,
                       const os_resize_input *resize)
{
  int N = B * F, P = H * W;
  size_t n = (size_t)N * r->spatial.cout * P;
  float *xs = NULL;
  *y = NULL;
  onestep_status status = os_check_abort(be);
  if (status == ONESTEP_OK) {
    /* An input of the output's size that is ours to free takes the spatial result. */
    bool in_place = consume_x && !resize && r->spatial.cin == r->spatial.cout;
    xs = in_place ? x : os_alloc_floats(be, n);
    status = xs ? resnet2d_chunks(be, &r->spatial, xs, x, N, H, W, temb_silu, resize)
                : ONESTEP_ERR_OUT_OF_MEMORY;
    if (in_place)
      consume_x = false; /* freed as xs */
  }
  /* The input's last reader was the spatial half. */
  if (consume_x)
    os_free_floats(be, x);
  /* The temporal branch and the blend update the spatial result in place. */
  if (status == ONESTEP_OK)
    status = os_check_abort(be);
  if (status == ONESTEP_OK)
    status = temporal_resnet_blend(be, &r->temporal, r->spatial_alpha, xs, B, F, P, temb_silu);
  if (status == ONESTEP_OK) {
    *y = xs;
    xs = NULL;
  }
  os_free_floats(be, xs);
  return status;
}

/* ---- sampling ---- */

void
os_bind_downsample(os_weight_set *ws, os_downsample_w *d, const char *prefix, int channels,
                   bool asymmetric_pad)
{
  char name[512];
  os_format_name(name, sizeof name, "%s.conv", prefix);
  os_bind_conv(ws, &d->conv, name, channels, channels, 3, true);
  d->asymmetric_pad = asymmetric_pad;
}

void
os_downsample_out_size(const os_downsample_w *d, int H, int W, int *Ho, int *Wo)
{
  /* Both paddings add 2 rows/cols in total for the UNet, 1 for the VAE. */
  int pad = d->asymmetric_pad ? 1 : 2;
  *Ho = (H + pad - 3) / 2 + 1;
  *Wo = (W + pad - 3) / 2 + 1;
}

void
os_downsample_forward(os_backend *be, const os_downsample_w *d, float *y, const float *x, int N,
                      int H, int W)
{
  const os_conv_w *c = &d->conv;
  if (d->asymmetric_pad)
    OPS(be)->conv2d(be, y, x, c->w, c->b, NULL, N, c->cin, H, W, c->cout, 3, 3, 2, 0, 0, 1, 1);
  else
    OPS(be)->conv2d(be, y, x, c->w, c->b, NULL, N, c->cin, H, W, c->cout, 3, 3, 2, 1, 1, 1, 1);
}

onestep_status
os_upsample_forward(os_backend *be, const os_conv_w *conv, float *y, const float *x, int N, int H,
                    int W, int Ho, int Wo)
{
  size_t in = (size_t)conv->cin * H * W, up = (size_t)conv->cin * Ho * Wo;
  int chunk = images_per_chunk(N, up);
  float *u = os_alloc_activations(be, (size_t)chunk * up);
  if (!u)
    return ONESTEP_ERR_OUT_OF_MEMORY;
  for (int n0 = 0; n0 < N; n0 += chunk) {
    int n = N - n0 < chunk ? N - n0 : chunk;
    OPS(be)->upsample_nearest(be, u, x + n0 * in, n, conv->cin, H, W, Ho, Wo);
    os_conv_forward(be, conv, y + (size_t)n0 * conv->cout * Ho * Wo, u, n, Ho, Wo, NULL);
  }
  os_free_floats(be, u);
  return ONESTEP_OK;
}

/* ---- attention and feed-forward ---- */

void
os_bind_attention(os_weight_set *ws, os_attention_w *a, const char *prefix, int dim, int kv_dim,
                  int heads, bool qkv_bias, const char *q_name, const char *k_name,
                  const char *v_name, const char *out_name)
{
  char name[512];
  a->dim = dim;
  a->heads = heads;
  a->head_dim = dim / heads;
  os_format_name(name, sizeof name, "%s.%s", prefix, q_name);
  os_bind_linear(ws, &a->to_q, name, dim, dim, qkv_bias);
  os_format_name(name, sizeof name, "%s.%s", prefix, k_name);
  os_bind_linear(ws, &a->to_k, name, kv_dim, dim, qkv_bias);
  os_format_name(name, sizeof name, "%s.%s", prefix, v_name);
  os_bind_linear(ws, &a->to_v, name, kv_dim, dim, qkv_bias);
  os_format_name(name, sizeof name, "%s.%s", prefix, out_name);
  os_bind_linear(ws, &a->to_out, name, dim, dim, true);
}

/* Layers that work token by token (attention projections, feed-forward)
 * bound their temporaries by this many floats; 0: the backend's default. */
static size_t token_chunk_budget;

void
os_layers_set_token_chunk_budget(size_t floats)
{
  token_chunk_budget = floats;
}

/* The host default is near 64 MB (cache-friendly); a GPU gets fewer, larger GEMMs. */
static size_t
token_budget(const os_backend *be)
{
  if (token_chunk_budget)
    return token_chunk_budget;
  return be->ops->is_host ? OS_HOST_TOKEN_CHUNK_FLOATS : OS_DEVICE_TOKEN_CHUNK_FLOATS;
}

/* Units (sequences or rows) per chunk when each needs floats_per_unit of
 * temporaries; at least `min_units`. */
static int
units_per_chunk(const os_backend *be, int total, size_t floats_per_unit, int min_units)
{
  size_t units = token_budget(be) / floats_per_unit;
  if (units < (size_t)min_units)
    units = min_units;
  return units < (size_t)total ? (int)units : total;
}

onestep_status
os_self_attention_forward(os_backend *be, const os_attention_w *a, float *y, float *xn, int n_seq,
                          int S)
{
  int C = a->dim;
  /* q, k and v for a chunk of whole sequences (attention does not cross them). */
  int seqs = units_per_chunk(be, n_seq, (size_t)3 * S * C, 1);
  size_t n = (size_t)seqs * S * C;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  float *q = os_alloc_activations(be, n), *k = os_alloc_activations(be, n);
  float *v = os_alloc_activations(be, n);
  if (!q || !k || !v)
    goto done;
  for (int s0 = 0; s0 < n_seq; s0 += seqs) {
    int ns = n_seq - s0 < seqs ? n_seq - s0 : seqs;
    float *xc = xn + (size_t)s0 * S * C;
    os_linear_forward(be, &a->to_q, q, xc, ns * S, NULL);
    os_linear_forward(be, &a->to_k, k, xc, ns * S, NULL);
    os_linear_forward(be, &a->to_v, v, xc, ns * S, NULL);
    /* The projections were the chunk's last readers of xn: it takes the output. */
    OPS(be)->attention(be, xc, q, k, v, ns, S, S, a->heads, a->head_dim, C, C, C, C,
                       1.0f / sqrtf((float)a->head_dim));
    /* Over thousands of tokens the backend may stop the attention midway on
     * an abort: its unfinished output goes no further. */
    if ((status = os_check_abort(be)) != ONESTEP_OK)
      goto done;
  }
  os_linear_forward(be, &a->to_out, y, xn, n_seq * S, y);
  status = ONESTEP_OK;
done:
  os_free_floats(be, q);
  os_free_floats(be, k);
  os_free_floats(be, v);
  return status;
}

onestep_status
os_single_token_cross_attention_forward(os_backend *be, const os_attention_w *a, float *y,
                                        const float *ctx, int G, int R)
{
  float *v = os_alloc_activations(be, (size_t)G * a->dim);
  float *o = os_alloc_activations(be, (size_t)G * a->dim);
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (v && o) {
    os_linear_forward(be, &a->to_v, v, ctx, G, NULL);
    os_linear_forward(be, &a->to_out, o, v, G, NULL);
    OPS(be)->add_row_vector(be, y, o, G, R, a->dim);
    status = ONESTEP_OK;
  }
  os_free_floats(be, v);
  os_free_floats(be, o);
  return status;
}

void
os_bind_geglu_ff(os_weight_set *ws, os_geglu_ff_w *f, const char *prefix, int dim, int inner)
{
  char name[512];
  f->dim = dim;
  f->inner = inner;
  os_format_name(name, sizeof name, "%s.net.0.proj", prefix);
  os_bind_linear(ws, &f->proj, name, dim, 2 * inner, true);
  os_format_name(name, sizeof name, "%s.net.2", prefix);
  os_bind_linear(ws, &f->out, name, inner, dim, true);
}

onestep_status
os_geglu_ff_forward(os_backend *be, const os_geglu_ff_w *f, float *y, const float *xn, int T,
                    const float *residual)
{
  /* Token rows per chunk so that the [rows, 2*inner] expansion stays bounded. */
  int rows = units_per_chunk(be, T, (size_t)3 * f->inner, 64);
  float *h = os_alloc_activations(be, (size_t)rows * 2 * f->inner);
  float *g = os_alloc_activations(be, (size_t)rows * f->inner);
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (!h || !g)
    goto done;
  for (int t0 = 0; t0 < T; t0 += rows) {
    /* Over many tokens each chunk's products take a while on a CPU. */
    if ((status = os_check_abort(be)) != ONESTEP_OK)
      goto done;
    int n = T - t0 < rows ? T - t0 : rows;
    size_t off = (size_t)t0 * f->dim;
    os_linear_forward(be, &f->proj, h, xn + off, n, NULL);
    OPS(be)->geglu(be, g, h, n, f->inner);
    os_linear_forward(be, &f->out, y + off, g, n, residual ? residual + off : NULL);
  }
  status = ONESTEP_OK;
done:
  os_free_floats(be, h);
  os_free_floats(be, g);
  return status;
}
