/* dinov2.c: see dinov2.h. Layer order as the official DinoVisionTransformer
 * (pre-norm blocks: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))));
 * tensor names as Hugging Face's Dinov2Model. */
#include "dinov2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_json.h"
#include "error.h"
#include "layers.h"
#include "safetensors.h"
#include "tape_ops.h"
#include "weights.h"

static const double IMAGENET_MEAN[3] = { 0.485, 0.456, 0.406 };
static const double IMAGENET_STD[3] = { 0.229, 0.224, 0.225 };
/* The official code's offset of the interpolation scale ((n + 0.1) / M). */
static const double POSITION_OFFSET = 0.1;
static const double BICUBIC_A = -0.75;

typedef struct {
  os_norm_w norm1, norm2;
  os_linear_w query, key, value, fc1;
  os_linear_w dense, fc2;       /* as bound */
  const float *scale1, *scale2; /* layer_scale1 / 2 */
  /* output.dense and mlp.fc2 with their layer scales folded in (owned). */
  float *dense_w, *dense_b, *fc2_w, *fc2_b;
} dinov2_block;

struct os_dinov2 {
  os_backend *be;
  os_safetensors *st;
  os_weight_set *ws;
  int width, depth, heads, patch, mlp_hidden, grid; /* grid: the stored positions' side M */
  float ln_eps;
  int taps[OS_DINOV2_MAX_TAPS], n_taps;
  float *patch_w, *patch_b; /* patch embedding with the preprocessing folded in (owned) */
  const float *cls_token;
  float *positions_host;    /* the stored [1 + M*M, width] */
  float *positions;         /* interpolated [1 + hp*wp, width] for the last grid (owned) */
  int positions_hp, positions_wp;
  dinov2_block *blocks;
};

/* ---- loading ---- */

static float *
download(os_backend *be, const float *src, size_t n)
{
  float *host = malloc((n ? n : 1) * sizeof(float));
  if (host)
    be->ops->download(be, host, src, n * sizeof(float));
  return host;
}

/* A backend copy of n host floats, or NULL. */
static float *
upload(os_backend *be, const float *host, size_t n)
{
  float *dev = be->ops->alloc(be, (n ? n : 1) * sizeof(float));
  if (dev)
    be->ops->upload(be, dev, host, n * sizeof(float));
  return dev;
}

/* ls(W x + b) = (diag(ls) W) x + ls * b: the frozen layer scale folded into
 * the linear layer before it. */
static bool
fold_layer_scale(os_backend *be, const os_linear_w *l, const float *scale, float **w_out,
                 float **b_out)
{
  size_t n = (size_t)l->out * l->in;
  float *w = download(be, l->w, n), *b = download(be, l->b, l->out);
  float *s = download(be, scale, l->out);
  bool ok = w && b && s;
  if (ok) {
    for (int o = 0; o < l->out; o++) {
      for (int i = 0; i < l->in; i++)
        w[(size_t)o * l->in + i] *= s[o];
      b[o] *= s[o];
    }
    *w_out = upload(be, w, n);
    *b_out = upload(be, b, l->out);
    ok = *w_out && *b_out;
  }
  free(w), free(b), free(s);
  return ok;
}

/* conv(a_c x + b_c) = conv'(x) with W'[o,c] = a_c W[o,c], bias'[o] = bias[o] +
 * sum_{c,k} b_c W[o,c,k], for a_c x + b_c = ((x + 1) / 2 - mean_c) / std_c. */
static bool
fold_preprocessing(os_dinov2 *d, const os_conv_w *c)
{
  size_t per_channel = (size_t)c->kh * c->kw, n = (size_t)c->cout * c->cin * per_channel;
  float *w = download(d->be, c->w, n), *b = download(d->be, c->b, c->cout);
  bool ok = w && b;
  if (ok) {
    for (int o = 0; o < c->cout; o++) {
      double bias = b[o];
      for (int ch = 0; ch < c->cin; ch++) {
        double scale = 0.5 / IMAGENET_STD[ch], shift = (0.5 - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch];
        float *wk = w + ((size_t)o * c->cin + ch) * per_channel;
        for (size_t k = 0; k < per_channel; k++) {
          bias += shift * wk[k];
          wk[k] = (float)(scale * wk[k]);
        }
      }
      b[o] = (float)bias;
    }
    d->patch_w = upload(d->be, w, n);
    d->patch_b = upload(d->be, b, c->cout);
    ok = d->patch_w && d->patch_b;
  }
  free(w), free(b);
  return ok;
}

static onestep_status
read_config(os_dinov2 *d, const char *dir, onestep_error *error)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  os_json_file f;
  if (os_json_open(&f, path, error) != ONESTEP_OK)
    return error->code;
  const char *type = os_json_string(&f, "model_type", "dinov2");
  d->width = os_json_int_min(&f, "hidden_size", 384, 1);
  d->depth = os_json_int_min(&f, "num_hidden_layers", 12, 1);
  d->heads = os_json_int_min(&f, "num_attention_heads", 6, 1);
  d->patch = os_json_int_min(&f, "patch_size", 14, 1);
  int image_size = os_json_int_min(&f, "image_size", 518, 1);
  int mlp_ratio = os_json_int_min(&f, "mlp_ratio", 4, 1);
  int channels = os_json_int(&f, "num_channels", 3);
  d->ln_eps = (float)os_json_number(&f, "layer_norm_eps", 1e-6);
  const char *act = os_json_string(&f, "hidden_act", "gelu");
  bool swiglu = os_json_bool(&f, "use_swiglu_ffn", false), qkv_bias = os_json_bool(&f, "qkv_bias", true);
  if (f.status == ONESTEP_OK) {
    if (strcmp(type, "dinov2") != 0)
      os_json_fail(&f, ONESTEP_ERR_MODEL, "model_type \"%s\" is not dinov2", type);
    else if (strcmp(act, "gelu") != 0 || swiglu || !qkv_bias || channels != 3)
      os_json_fail(&f, ONESTEP_ERR_MODEL,
                   "only DINOv2 with an exact-GELU MLP, qkv biases and 3 channels is supported");
    else if (d->width % d->heads)
      os_json_fail(&f, ONESTEP_ERR_MODEL, "hidden_size %d is not a multiple of %d heads",
                   d->width, d->heads);
  }
  d->mlp_hidden = d->width * mlp_ratio;
  d->grid = image_size / d->patch;
  onestep_status status = f.status;
  os_json_close(&f);
  return status;
}

static void
bind_blocks(os_dinov2 *d)
{
  char name[256];
  int D = d->width;
  for (int l = 0; l < d->depth; l++) {
    dinov2_block *b = &d->blocks[l];
#define NAME(suffix) (os_format_name(name, sizeof name, "encoder.layer.%d." suffix, l), name)
    os_bind_norm(d->ws, &b->norm1, NAME("norm1"), D);
    os_bind_linear(d->ws, &b->query, NAME("attention.attention.query"), D, D, true);
    os_bind_linear(d->ws, &b->key, NAME("attention.attention.key"), D, D, true);
    os_bind_linear(d->ws, &b->value, NAME("attention.attention.value"), D, D, true);
    os_bind_linear(d->ws, &b->dense, NAME("attention.output.dense"), D, D, true);
    b->scale1 = os_weights_take(d->ws, NAME("layer_scale1.lambda1"), 1, (int64_t[]){D});
    os_bind_norm(d->ws, &b->norm2, NAME("norm2"), D);
    os_bind_linear(d->ws, &b->fc1, NAME("mlp.fc1"), D, d->mlp_hidden, true);
    os_bind_linear(d->ws, &b->fc2, NAME("mlp.fc2"), d->mlp_hidden, D, true);
    b->scale2 = os_weights_take(d->ws, NAME("layer_scale2.lambda1"), 1, (int64_t[]){D});
#undef NAME
  }
}

/* Replaces each block's output.dense and mlp.fc2 by copies with the layer
 * scales folded in. */
static bool
fold_blocks(os_dinov2 *d)
{
  bool ok = true;
  for (int l = 0; l < d->depth; l++) {
    dinov2_block *b = &d->blocks[l];
    ok = ok && fold_layer_scale(d->be, &b->dense, b->scale1, &b->dense_w, &b->dense_b) &&
         fold_layer_scale(d->be, &b->fc2, b->scale2, &b->fc2_w, &b->fc2_b);
  }
  return ok;
}

static onestep_status
bind(os_dinov2 *d, const char *dir, onestep_error *error)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (!(d->st = os_safetensors_open(path, error)))
    return error->code;
  d->ws = os_weight_set_new("dinov2", path, d->be);
  d->blocks = calloc((size_t)d->depth, sizeof *d->blocks);
  if (!d->ws || !d->blocks)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  onestep_status status = os_weight_set_add_file(d->ws, d->st, error);
  if (status != ONESTEP_OK)
    return status;
  int D = d->width, positions = d->grid * d->grid + 1;
  os_conv_w patch;
  os_bind_conv(d->ws, &patch, "embeddings.patch_embeddings.projection", 3, D, d->patch, true);
  d->cls_token = os_weights_take(d->ws, "embeddings.cls_token", 3, (int64_t[]){1, 1, D});
  const float *stored = os_weights_take(d->ws, "embeddings.position_embeddings", 3,
                                        (int64_t[]){1, positions, D});
  /* Part of Dinov2Model, unused here: masking is for pretraining, and the
   * taps are read before the final norm. */
  os_weights_take(d->ws, "embeddings.mask_token", 2, (int64_t[]){1, D});
  os_weights_take(d->ws, "layernorm.weight", 1, (int64_t[]){D});
  os_weights_take(d->ws, "layernorm.bias", 1, (int64_t[]){D});
  bind_blocks(d);
  status = os_weights_finish(d->ws, error);
  if (status == ONESTEP_OK) {
    d->positions_host = download(d->be, stored, (size_t)positions * D);
    if (!d->positions_host || !fold_preprocessing(d, &patch) || !fold_blocks(d))
      status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  return status;
}

os_dinov2 *
os_dinov2_load(const char *dir, os_backend *be, const int *taps, int n_taps,
               onestep_error *error)
{
  os_dinov2 *d = calloc(1, sizeof *d);
  if (!d) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory loading DINOv2");
    return NULL;
  }
  d->be = be;
  onestep_status status = read_config(d, dir, error);
  if (status == ONESTEP_OK && (n_taps < 1 || n_taps > OS_DINOV2_MAX_TAPS))
    status = os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "DINOv2: %d taps (1 to %d)",
                          n_taps, OS_DINOV2_MAX_TAPS);
  for (int i = 0; status == ONESTEP_OK && i < n_taps; i++) {
    if (taps[i] < 0 || taps[i] >= d->depth || (i > 0 && taps[i] <= taps[i - 1]))
      status = os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                            "DINOv2 in %s: tap %d is not an increasing block index below %d",
                            dir, taps[i], d->depth);
    d->taps[i] = taps[i];
  }
  d->n_taps = n_taps;
  if (status == ONESTEP_OK)
    status = bind(d, dir, error);
  if (status != ONESTEP_OK) {
    os_dinov2_free(d);
    return NULL;
  }
  return d;
}

void
os_dinov2_free(os_dinov2 *d)
{
  if (!d)
    return;
  os_backend *be = d->be;
  for (int l = 0; d->blocks && l < d->depth; l++) {
    dinov2_block *b = &d->blocks[l];
    float *owned[] = { b->dense_w, b->dense_b, b->fc2_w, b->fc2_b };
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
      be->ops->free(be, owned[i]);
  }
  free(d->blocks);
  be->ops->free(be, d->patch_w);
  be->ops->free(be, d->patch_b);
  be->ops->free(be, d->positions);
  free(d->positions_host);
  os_weight_set_free(d->ws);
  os_safetensors_close(d->st);
  free(d);
}

os_backend *
os_dinov2_backend(const os_dinov2 *d)
{
  return d->be;
}

int
os_dinov2_width(const os_dinov2 *d)
{
  return d->width;
}

int
os_dinov2_patch(const os_dinov2 *d)
{
  return d->patch;
}

int
os_dinov2_tap_count(const os_dinov2 *d)
{
  return d->n_taps;
}

/* ---- position embeddings ---- */

/* PyTorch's upsample_bicubic2d with a scale factor (align_corners false):
 * source = (dst + 0.5) / scale - 0.5, four taps clamped to [0, in - 1]. */
static void
bicubic_taps(int dst, int in, double scale, int index[4], double weight[4])
{
  double real = (dst + 0.5) / scale - 0.5, base = floor(real), t = real - base;
  double A = BICUBIC_A;
  double near[2] = { t, 1.0 - t }, far[2] = { t + 1.0, 2.0 - t };
  weight[1] = ((A + 2) * near[0] - (A + 3)) * near[0] * near[0] + 1;
  weight[2] = ((A + 2) * near[1] - (A + 3)) * near[1] * near[1] + 1;
  weight[0] = ((A * far[0] - 5 * A) * far[0] + 8 * A) * far[0] - 4 * A;
  weight[3] = ((A * far[1] - 5 * A) * far[1] + 8 * A) * far[1] - 4 * A;
  for (int k = 0; k < 4; k++) {
    int i = (int)base - 1 + k;
    index[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
  }
}

/* The position embeddings of an hp x wp token grid, [1 + hp*wp, width]:
 * the CLS position as stored, the patch grid resized from M x M. */
static bool
interpolate_positions(os_dinov2 *d, int hp, int wp)
{
  if (d->positions && d->positions_hp == hp && d->positions_wp == wp)
    return true;
  int D = d->width, M = d->grid;
  size_t n = (size_t)(1 + hp * wp) * D;
  float *host = malloc(n * sizeof(float));
  if (!host)
    return false;
  memcpy(host, d->positions_host, (size_t)D * sizeof(float));
  const float *grid = d->positions_host + D;
  for (int oy = 0; oy < hp; oy++) {
    int iy[4], ix[4];
    double wy[4], wx[4];
    bicubic_taps(oy, M, (hp + POSITION_OFFSET) / M, iy, wy);
    for (int ox = 0; ox < wp; ox++) {
      bicubic_taps(ox, M, (wp + POSITION_OFFSET) / M, ix, wx);
      float *out = host + (size_t)(1 + oy * wp + ox) * D;
      for (int c = 0; c < D; c++) {
        double total = 0.0;
        for (int a = 0; a < 4; a++)
          for (int b = 0; b < 4; b++)
            total += wy[a] * wx[b] * grid[((size_t)iy[a] * M + ix[b]) * D + c];
        out[c] = (float)total;
      }
    }
  }
  d->be->ops->free(d->be, d->positions);
  d->positions = upload(d->be, host, n);
  free(host);
  d->positions_hp = hp;
  d->positions_wp = wp;
  return d->positions != NULL;
}

/* ---- forward ---- */

static os_tv
frozen(os_tape *t, const float *w, size_t n)
{
  return os_tape_leaf(t, w, n, NULL);
}

static os_tv
linear(os_tape *t, const float *w, const float *b, os_tv x, int T, int in, int out)
{
  return os_tape_linear(t, x, frozen(t, w, (size_t)out * in), frozen(t, b, out), T, in, out);
}

static os_tv
layer_norm(os_dinov2 *d, os_tape *t, const os_norm_w *n, os_tv x, int T)
{
  return os_tape_layer_norm(t, x, frozen(t, n->gamma, n->channels), frozen(t, n->beta, n->channels),
                            T, n->channels, d->ln_eps);
}

/* x [N*S, width] through one block. */
static os_tv
block(os_dinov2 *d, os_tape *t, const dinov2_block *b, os_tv x, int N, int S)
{
  int D = d->width, T = N * S, head_dim = D / d->heads;
  os_tv h = layer_norm(d, t, &b->norm1, x, T);
  os_tv q = linear(t, b->query.w, b->query.b, h, T, D, D);
  os_tv k = linear(t, b->key.w, b->key.b, h, T, D, D);
  os_tv v = linear(t, b->value.w, b->value.b, h, T, D, D);
  os_tv o = os_tape_attention(t, q, k, v, N, S, S, d->heads, head_dim,
                              1.0f / sqrtf((float)head_dim));
  x = os_tape_add(t, x, linear(t, b->dense_w, b->dense_b, o, T, D, D), (size_t)T * D);
  h = layer_norm(d, t, &b->norm2, x, T);
  h = linear(t, b->fc1.w, b->fc1.b, h, T, D, d->mlp_hidden);
  h = os_tape_gelu(t, h, (size_t)T * d->mlp_hidden);
  return os_tape_add(t, x, linear(t, b->fc2_w, b->fc2_b, h, T, d->mlp_hidden, D), (size_t)T * D);
}

onestep_status
os_dinov2_forward(os_dinov2 *d, os_tape *t, os_tv images, int N, int H, int W, os_tv *taps,
                  onestep_error *error)
{
  if (H % d->patch || W % d->patch || H < d->patch || W < d->patch)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "DINOv2: images of %dx%d are not whole %d-pixel patches", H, W, d->patch);
  int D = d->width, hp = H / d->patch, wp = W / d->patch, P = hp * wp, S = P + 1;
  if (!interpolate_positions(d, hp, wp))
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for DINOv2's positions");
  os_conv2d_shape patch = { N, 3, H, W, D, d->patch, d->patch, d->patch, 0, 0, 0, 0 };
  os_tv x = os_tape_conv2d(t, images, frozen(t, d->patch_w, (size_t)D * 3 * d->patch * d->patch),
                           frozen(t, d->patch_b, D), &patch);
  x = os_tape_permute_0213(t, x, N, D, P, 1); /* [N, P, D] tokens */
  os_tv cls = os_tape_add_row_vector(t, OS_TAPE_NONE, frozen(t, d->cls_token, D), 1, N, D);
  x = os_tape_concat_channels(t, cls, 1, x, P, N, D);
  x = os_tape_add_row_vector(t, x, frozen(t, d->positions, (size_t)S * D), 1, N, S * D);
  for (int l = 0, tap = 0; l < d->depth && tap < d->n_taps; l++) {
    x = block(d, t, &d->blocks[l], x, N, S);
    if (l == d->taps[tap]) {
      os_tv patches = os_tape_drop_channels(t, x, N, S, 1, D);
      taps[tap++] = os_tape_permute_0213(t, patches, N, P, D, 1); /* [N, D, hp, wp] */
    }
  }
  return os_tape_status(t, error);
}
