/* discriminator.c: see discriminator.h. Layer order and names as the
 * reference (tools/ref/osv_golden.py of the shared test vectors). */
#include "discriminator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "philox.h"
#include "safetensors.h"
#include "tape_ops.h"

#define LATENT_CHANNELS 4
#define UPSCALE 4           /* PixelShuffle(4) */
#define IMAGE_CHANNELS 3
#define VIRTUAL_BATCH_MAX 8 /* BatchNormLocal's group: the largest divisor of N up to this */
#define NAME_MAX_LEN 96
#define HEAD_PREFIX_LEN 32 /* "temporal.<tap>" */
#define NAME_STREAM_BASE 0x44697363ull /* Philox streams of new tensors, one per tensor */

static const float LEAKY_SLOPE = 0.2f;
static const float BATCH_NORM_EPS = 1e-5f;
static const float SPECTRAL_EPS = 1e-12f;

/* A spectral-norm convolution: trained weight_orig and bias, persistent u, v. */
typedef struct {
  char name[NAME_MAX_LEN]; /* "spatial.0.b1.conv" */
  int weight, bias;        /* trained tensor indices */
  float *u, *v;            /* backend memory, rows and cols floats (owned) */
  int rows, cols, k;
} sn_conv;

typedef struct {
  sn_conv conv;
  int norm_weight, norm_bias;
} disc_block;

typedef struct {
  disc_block b1, b2;
  sn_conv cls;
  int cmapper_weight, cmapper_bias;
  bool temporal; /* Conv1d over frames; else Conv2d over the token grid */
} disc_head;

/* A tensor of a new discriminator before it is bound: its host values. */
typedef struct {
  os_st_tensor st;
  float *host;
} new_tensor;

struct os_disc {
  os_backend *be;
  os_dinov2 *dino;
  os_disc_config cfg;
  int width; /* DINOv2's: the heads' channels */
  new_tensor *sources;
  int n_sources;
  os_weight_set *ws;
  os_train_params *params;
  int up_weight, up_bias;
  disc_head *heads; /* per tap: spatial, then temporal */
  int n_heads;
};

/* ---- a new discriminator ---- */

typedef enum { INIT_FAN_IN, INIT_ONE, INIT_ZERO, INIT_UNIT_VECTOR } init_kind;

/* PyTorch's defaults: kaiming_uniform_(a = sqrt 5) for weights and the
 * matching bias bound are both U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static bool
add_source(os_disc *d, const char *name, int ndim, const int64_t *shape, init_kind kind,
           int fan_in)
{
  new_tensor *t = &d->sources[d->n_sources];
  size_t n = (size_t)os_shape_numel(ndim, shape);
  t->host = malloc(n * sizeof(float));
  t->st = (os_st_tensor){.name = strdup(name), .dtype = OS_DTYPE_F32, .ndim = ndim,
                         .data = t->host, .nbytes = n * sizeof(float)};
  memcpy(t->st.shape, shape, (size_t)ndim * sizeof *shape);
  uint64_t stream = NAME_STREAM_BASE + (uint64_t)d->n_sources++;
  if (!t->host || !t->st.name)
    return false;
  if (kind == INIT_FAN_IN) {
    double *uniform = malloc(n * sizeof(double)), bound = 1.0 / sqrt((double)fan_in);
    if (!uniform)
      return false;
    os_philox_uniform(d->cfg.seed, stream, 0, uniform, n);
    for (size_t i = 0; i < n; i++)
      t->host[i] = (float)((2.0 * uniform[i] - 1.0) * bound);
    free(uniform);
  } else if (kind == INIT_UNIT_VECTOR) {
    os_philox_normal(d->cfg.seed, stream, 0, t->host, n);
    double norm = 0.0;
    for (size_t i = 0; i < n; i++)
      norm += (double)t->host[i] * t->host[i];
    for (size_t i = 0; i < n; i++)
      t->host[i] = (float)(t->host[i] / fmax(sqrt(norm), SPECTRAL_EPS));
  } else {
    for (size_t i = 0; i < n; i++)
      t->host[i] = kind == INIT_ONE ? 1.0f : 0.0f;
  }
  return true;
}

/* A conv's (or linear's) weight and bias; spectral norm adds u and v. */
static bool
add_layer(os_disc *d, const char *prefix, int ndim, const int64_t *shape, bool spectral)
{
  char name[NAME_MAX_LEN + 16];
  int64_t fan_in = os_shape_numel(ndim - 1, shape + 1);
  snprintf(name, sizeof name, "%s.%s", prefix, spectral ? "weight_orig" : "weight");
  bool ok = add_source(d, name, ndim, shape, INIT_FAN_IN, (int)fan_in);
  snprintf(name, sizeof name, "%s.bias", prefix);
  ok = ok && add_source(d, name, 1, shape, INIT_FAN_IN, (int)fan_in);
  if (spectral) {
    snprintf(name, sizeof name, "%s.weight_u", prefix);
    ok = ok && add_source(d, name, 1, shape, INIT_UNIT_VECTOR, 0);
    snprintf(name, sizeof name, "%s.weight_v", prefix);
    ok = ok && add_source(d, name, 1, (int64_t[]){fan_in}, INIT_UNIT_VECTOR, 0);
  }
  return ok;
}

/* Shape of a head's conv: [cout, cin, k, k] (2D) or [cout, cin, k] (1D). */
static int
conv_shape(bool temporal, int cout, int cin, int k, int64_t *shape)
{
  shape[0] = cout, shape[1] = cin, shape[2] = k, shape[3] = k;
  return temporal ? 3 : 4;
}

static bool
add_head_sources(os_disc *d, const char *prefix, bool temporal)
{
  char name[NAME_MAX_LEN];
  int64_t shape[4];
  int C = d->width;
  bool ok = true;
  for (int b = 1; b <= 2 && ok; b++) {
    snprintf(name, sizeof name, "%s.b%d.conv", prefix, b);
    ok = add_layer(d, name, conv_shape(temporal, C, C, b == 1 ? 1 : 3, shape), shape, true);
    snprintf(name, sizeof name, "%s.b%d.norm.weight", prefix, b);
    ok = ok && add_source(d, name, 1, (int64_t[]){C}, INIT_ONE, 0);
    snprintf(name, sizeof name, "%s.b%d.norm.bias", prefix, b);
    ok = ok && add_source(d, name, 1, (int64_t[]){C}, INIT_ZERO, 0);
  }
  snprintf(name, sizeof name, "%s.cls", prefix);
  ok = ok && add_layer(d, name, conv_shape(temporal, d->cfg.cmap, C, 1, shape), shape, true);
  snprintf(name, sizeof name, "%s.cmapper", prefix);
  return ok && add_layer(d, name, 2, (int64_t[]){d->cfg.cmap, d->cfg.cond_dim}, false);
}

static int
trained(os_disc *d, const char *prefix, const char *suffix)
{
  char name[NAME_MAX_LEN + 16];
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  return os_train_params_find(d->params, name);
}

/* A backend copy of a bound tensor, for the u and v that forwards update. */
static float *
owned_copy(os_disc *d, const char *prefix, const char *suffix, int n)
{
  char name[NAME_MAX_LEN + 16];
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  const float *bound = os_weights_take(d->ws, name, 1, (int64_t[]){n});
  float *copy = bound ? d->be->ops->alloc(d->be, (size_t)n * sizeof(float)) : NULL;
  if (copy)
    d->be->ops->copy(d->be, copy, bound, (size_t)n * sizeof(float));
  return copy;
}

static bool
bind_sn_conv(os_disc *d, sn_conv *c, const char *prefix, int rows, int cin, int k, bool temporal)
{
  snprintf(c->name, sizeof c->name, "%s", prefix);
  c->rows = rows;
  c->k = k;
  c->cols = cin * k * (temporal ? 1 : k);
  c->weight = trained(d, prefix, ".weight_orig");
  c->bias = trained(d, prefix, ".bias");
  c->u = owned_copy(d, prefix, ".weight_u", c->rows);
  c->v = owned_copy(d, prefix, ".weight_v", c->cols);
  return c->weight >= 0 && c->bias >= 0 && c->u && c->v;
}

static bool
bind_head(os_disc *d, disc_head *h, const char *prefix, bool temporal)
{
  char name[NAME_MAX_LEN];
  int C = d->width;
  bool ok = true;
  h->temporal = temporal;
  disc_block *blocks[2] = { &h->b1, &h->b2 };
  for (int b = 0; b < 2 && ok; b++) {
    snprintf(name, sizeof name, "%s.b%d.conv", prefix, b + 1);
    ok = bind_sn_conv(d, &blocks[b]->conv, name, C, C, b == 0 ? 1 : 3, temporal);
    snprintf(name, sizeof name, "%s.b%d.norm", prefix, b + 1);
    blocks[b]->norm_weight = trained(d, name, ".weight");
    blocks[b]->norm_bias = trained(d, name, ".bias");
    ok = ok && blocks[b]->norm_weight >= 0 && blocks[b]->norm_bias >= 0;
  }
  snprintf(name, sizeof name, "%s.cls", prefix);
  ok = ok && bind_sn_conv(d, &h->cls, name, d->cfg.cmap, C, 1, temporal);
  snprintf(name, sizeof name, "%s.cmapper", prefix);
  h->cmapper_weight = trained(d, name, ".weight");
  h->cmapper_bias = trained(d, name, ".bias");
  return ok && h->cmapper_weight >= 0 && h->cmapper_bias >= 0;
}

/* Registers the new tensors in a weight set, binds (uploads) them, and
 * makes the trained ones an os_train_params. */
static onestep_status
bind(os_disc *d, onestep_error *error)
{
  onestep_status status = ONESTEP_OK;
  d->ws = os_weight_set_new("discriminator", "a new discriminator", d->be);
  if (!d->ws)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the discriminator");
  for (int i = 0; i < d->n_sources && status == ONESTEP_OK; i++)
    status = os_weight_set_add(d->ws, d->sources[i].st.name, &d->sources[i].st, error);
  /* Trained tensors first (os_train_params_new needs them bound), u and v below. */
  for (int i = 0; i < d->n_sources && status == ONESTEP_OK; i++) {
    const os_st_tensor *t = &d->sources[i].st;
    size_t len = strlen(t->name);
    if (len < 9 || (strcmp(t->name + len - 9, ".weight_u") && strcmp(t->name + len - 9, ".weight_v")))
      os_weights_take(d->ws, t->name, t->ndim, t->shape);
  }
  if (status != ONESTEP_OK)
    return status;
  static const char *const trained_globs[] = { "*.weight", "*.weight_orig", "*.bias" };
  os_train_spec spec = { .full_targets = trained_globs, .n_full_targets = 3 };
  if (!(d->params = os_train_params_new(d->ws, &spec, error)))
    return error->code;
  d->up_weight = trained(d, "up_conv", ".weight");
  d->up_bias = trained(d, "up_conv", ".bias");
  bool ok = d->up_weight >= 0 && d->up_bias >= 0;
  char prefix[HEAD_PREFIX_LEN];
  for (int i = 0; i < d->n_heads && ok; i++) {
    snprintf(prefix, sizeof prefix, "%s.%d", i % 2 ? "temporal" : "spatial", i / 2);
    ok = bind_head(d, &d->heads[i], prefix, i % 2 == 1);
  }
  status = os_weights_finish(d->ws, error);
  if (status == ONESTEP_OK && !ok)
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the discriminator");
  return status;
}

os_disc *
os_disc_new(os_dinov2 *dino, const os_disc_config *cfg, onestep_error *error)
{
  if (cfg->cond_dim < 1 || cfg->cmap < 1) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                 "discriminator: condition width %d and cmap %d must be positive", cfg->cond_dim,
                 cfg->cmap);
    return NULL;
  }
  const os_backend_ops *ops = os_dinov2_backend(dino)->ops;
  if (!ops->grad || !ops->leaky_relu || !ops->pixel_shuffle || !ops->resize_bilinear ||
      !ops->batch_norm_local || !ops->spectral_normalize || !ops->channel_projection ||
      !ops->grad->spectral_norm_power_iteration || !ops->grad->leaky_relu_backward ||
      !ops->grad->pixel_shuffle_backward || !ops->grad->resize_bilinear_backward ||
      !ops->grad->batch_norm_local_backward || !ops->grad->spectral_normalize_backward ||
      !ops->grad->channel_projection_backward) {
    os_error_set(error, ONESTEP_ERR_DEVICE, "the %s backend cannot run the discriminator yet",
                 ops->name);
    return NULL;
  }
  os_disc *d = calloc(1, sizeof *d);
  int n_taps = os_dinov2_tap_count(dino);
  int per_head = 6 + 6 + 4 + 2; /* b1, b2: conv (4) + norm (2); cls (4); cmapper (2) */
  if (d) {
    d->be = os_dinov2_backend(dino);
    d->dino = dino;
    d->cfg = *cfg;
    d->width = os_dinov2_width(dino);
    d->n_heads = 2 * n_taps;
    d->heads = calloc((size_t)d->n_heads, sizeof *d->heads);
    d->sources = calloc((size_t)(2 + per_head * d->n_heads), sizeof *d->sources);
  }
  if (!d || !d->heads || !d->sources) {
    os_disc_free(d);
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the discriminator");
    return NULL;
  }
  bool ok = add_layer(d, "up_conv",
                      4, (int64_t[]){IMAGE_CHANNELS * UPSCALE * UPSCALE, LATENT_CHANNELS, 3, 3},
                      false);
  char prefix[HEAD_PREFIX_LEN];
  for (int i = 0; i < d->n_heads && ok; i++) {
    snprintf(prefix, sizeof prefix, "%s.%d", i % 2 ? "temporal" : "spatial", i / 2);
    ok = add_head_sources(d, prefix, i % 2 == 1);
  }
  if (!ok)
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the discriminator");
  if (!ok || bind(d, error) != ONESTEP_OK) {
    os_disc_free(d);
    return NULL;
  }
  return d;
}

static void
free_sn_conv(os_backend *be, sn_conv *c)
{
  be->ops->free(be, c->u);
  be->ops->free(be, c->v);
}

void
os_disc_free(os_disc *d)
{
  if (!d)
    return;
  for (int i = 0; d->heads && i < d->n_heads; i++) {
    free_sn_conv(d->be, &d->heads[i].b1.conv);
    free_sn_conv(d->be, &d->heads[i].b2.conv);
    free_sn_conv(d->be, &d->heads[i].cls);
  }
  free(d->heads);
  os_train_params_free(d->params);
  os_weight_set_free(d->ws);
  for (int i = 0; i < d->n_sources; i++) {
    free(d->sources[i].host);
    free(d->sources[i].st.name);
  }
  free(d->sources);
  free(d);
}

os_train_params *
os_disc_params(os_disc *d)
{
  return d->params;
}

/* ---- saving and loading ---- */

/* Every spectral-norm conv, in head order. */
static int
sn_convs(os_disc *d, sn_conv **out)
{
  int n = 0;
  for (int i = 0; i < d->n_heads; i++) {
    out[n++] = &d->heads[i].b1.conv;
    out[n++] = &d->heads[i].b2.conv;
    out[n++] = &d->heads[i].cls;
  }
  return n;
}

/* Sets n backend floats at dst from the file's tensor `name` (of n values). */
static onestep_status
load_tensor(os_disc *d, const os_safetensors *st, const char *name, float *dst, size_t n,
            onestep_error *error)
{
  const os_st_tensor *t = os_safetensors_find(st, name);
  if (!t)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: the discriminator's '%s' is missing",
                        st->path, name);
  if ((size_t)os_shape_numel(t->ndim, t->shape) != n)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: '%s' has %lld values, not %zu", st->path,
                        name, (long long)os_shape_numel(t->ndim, t->shape), n);
  float *host = malloc(n * sizeof(float));
  if (!host)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory reading %s", st->path);
  os_dtype_to_f32(host, t->data, t->dtype, n);
  d->be->ops->upload(d->be, dst, host, n * sizeof(float));
  free(host);
  return ONESTEP_OK;
}

onestep_status
os_disc_load(os_disc *d, const char *path, onestep_error *error)
{
  os_safetensors *st = os_safetensors_open(path, error);
  if (!st)
    return error->code;
  onestep_status status = ONESTEP_OK;
  for (int i = 0; i < os_train_params_count(d->params) && status == ONESTEP_OK; i++) {
    os_train_tensor *t = os_train_params_tensor(d->params, i);
    status = load_tensor(d, st, t->name, t->value, t->n, error);
  }
  sn_conv *convs[3 * d->n_heads];
  int n = sn_convs(d, convs);
  char name[NAME_MAX_LEN + 16];
  for (int i = 0; i < n && status == ONESTEP_OK; i++) {
    snprintf(name, sizeof name, "%s.weight_u", convs[i]->name);
    status = load_tensor(d, st, name, convs[i]->u, (size_t)convs[i]->rows, error);
    snprintf(name, sizeof name, "%s.weight_v", convs[i]->name);
    if (status == ONESTEP_OK)
      status = load_tensor(d, st, name, convs[i]->v, (size_t)convs[i]->cols, error);
  }
  os_safetensors_close(st);
  return status;
}

onestep_status
os_disc_save(os_disc *d, const char *path, onestep_error *error)
{
  int n_params = os_train_params_count(d->params);
  sn_conv *convs[3 * d->n_heads];
  int n_convs = sn_convs(d, convs), n = n_params + 2 * n_convs;
  os_st_write_tensor *tensors = calloc((size_t)n, sizeof *tensors);
  char(*names)[NAME_MAX_LEN + 16] = calloc((size_t)n, sizeof *names);
  bool ok = tensors && names;
  for (int i = 0; i < n && ok; i++) {
    os_st_write_tensor *w = &tensors[i];
    const float *src;
    if (i < n_params) {
      os_train_tensor *t = os_train_params_tensor(d->params, i);
      snprintf(names[i], sizeof names[i], "%s", t->name);
      w->ndim = t->ndim;
      memcpy(w->shape, t->shape, (size_t)t->ndim * sizeof *t->shape);
      src = t->value;
    } else {
      const sn_conv *c = convs[(i - n_params) / 2];
      bool is_u = (i - n_params) % 2 == 0;
      snprintf(names[i], sizeof names[i], "%s.weight_%c", c->name, is_u ? 'u' : 'v');
      w->ndim = 1;
      w->shape[0] = is_u ? c->rows : c->cols;
      src = is_u ? c->u : c->v;
    }
    w->name = names[i];
    size_t count = (size_t)os_shape_numel(w->ndim, w->shape);
    float *host = malloc(count * sizeof(float));
    if ((ok = host != NULL))
      d->be->ops->download(d->be, host, src, count * sizeof(float));
    w->data = host;
  }
  onestep_status status =
      ok ? os_safetensors_write(path, tensors, n, error)
         : os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
  for (int i = 0; tensors && i < n; i++)
    free((float *)tensors[i].data);
  free(tensors);
  free(names);
  return status;
}

/* ---- forward ---- */

/* The geometry of one call. */
typedef struct {
  os_disc *d;
  os_tape *t;
  bool with_grads;
  int B, T;
  int hp, wp; /* DINOv2's token grid */
} pass;

static os_tv
param(pass *g, int i)
{
  if (g->with_grads)
    return os_train_tensor_leaf(g->d->params, g->t, i);
  os_train_tensor *t = os_train_params_tensor(g->d->params, i);
  return os_tape_leaf(g->t, t->value, t->n, NULL);
}

/* A spectral-norm conv over N samples of C channels: 2D on an H x W grid
 * (zero padding k/2), or 1D along W with H = 1. */
static os_tv
sn_conv_forward(pass *g, const sn_conv *c, os_tv x, int N, int Cin, int H, int W, bool temporal)
{
  os_tv weight = os_tape_spectral_norm(g->t, param(g, c->weight), c->u, c->v, c->rows, c->cols,
                                       SPECTRAL_EPS);
  int p = c->k / 2, kh = temporal ? 1 : c->k, ph = temporal ? 0 : p;
  os_conv2d_shape s = { N, Cin, H, W, c->rows, kh, c->k, 1, ph, p, ph, p };
  return os_tape_conv2d(g->t, x, weight, param(g, c->bias), &s);
}

static int
virtual_batch(int N)
{
  for (int g = VIRTUAL_BATCH_MAX; g > 1; g--)
    if (N % g == 0)
      return g;
  return 1;
}

/* SN conv -> BatchNormLocal -> LeakyReLU(0.2). */
static os_tv
block_forward(pass *g, const disc_block *b, os_tv x, int N, int H, int W, bool temporal)
{
  int C = g->d->width, P = H * W;
  os_tv y = sn_conv_forward(g, &b->conv, x, N, C, H, W, temporal);
  y = os_tape_batch_norm_local(g->t, y, param(g, b->norm_weight), param(g, b->norm_bias), N, C, P,
                               virtual_batch(N), BATCH_NORM_EPS);
  return os_tape_leaky_relu(g->t, y, LEAKY_SLOPE, (size_t)N * C * P);
}

/* x [N, C, H, W], cond [N, cond_dim] -> logits [N, H*W]. */
static os_tv
head_forward(pass *g, const disc_head *h, os_tv x, os_tv cond, int N, int H, int W)
{
  os_disc *d = g->d;
  int C = d->width, P = H * W, cmap = d->cfg.cmap;
  os_tv h1 = block_forward(g, &h->b1, x, N, H, W, h->temporal);
  os_tv h2 = block_forward(g, &h->b2, h1, N, H, W, h->temporal);
  float inv_sqrt2 = (float)(1.0 / sqrt(2.0)), inv_sqrt_cmap = (float)(1.0 / sqrt((double)cmap));
  os_tv res = os_tape_scale_slices(g->t, os_tape_add(g->t, h2, h1, (size_t)N * C * P), &inv_sqrt2,
                                   1, (size_t)N * C * P);
  os_tv out = sn_conv_forward(g, &h->cls, res, N, C, H, W, h->temporal);
  os_tv cmapped = os_tape_linear(g->t, cond, param(g, h->cmapper_weight),
                                 param(g, h->cmapper_bias), N, d->cfg.cond_dim, cmap);
  os_tv logits = os_tape_channel_projection(g->t, out, cmapped, N, cmap, P);
  return os_tape_scale_slices(g->t, logits, &inv_sqrt_cmap, 1, (size_t)N * P);
}

/* feats [B*T, C, hp, wp] -> [B*P, C, T] (each token's sequence over frames). */
static os_tv
tokens_over_frames(pass *g, os_tv feats)
{
  int C = g->d->width, P = g->hp * g->wp;
  os_tv x = os_tape_permute_0213(g->t, feats, g->B, g->T, C * P, 1); /* [B, C, P, T] */
  return os_tape_permute_0213(g->t, x, g->B, C, P, g->T);            /* [B, P, C, T] */
}

int
os_disc_logit_count(const os_disc *d, int T, int h, int w)
{
  int patch = os_dinov2_patch(d->dino);
  int hp = UPSCALE * h / patch, wp = UPSCALE * w / patch;
  return d->n_heads * T * hp * wp; /* spatial: T x hp x wp; temporal: hp x wp x T */
}

onestep_status
os_disc_forward(os_disc *d, os_tape *t, os_tv latents, os_tv clip_embeds, int B, int T, int h,
                int w, bool with_grads, os_tv *logits, onestep_error *error)
{
  int patch = os_dinov2_patch(d->dino), N = B * T;
  int H = UPSCALE * h, W = UPSCALE * w, Hr = H / patch * patch, Wr = W / patch * patch;
  if (Hr < patch || Wr < patch)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "discriminator: %dx%d latents upsample below one %d-pixel patch", h, w,
                        patch);
  pass g = { d, t, with_grads, B, T, Hr / patch, Wr / patch };
  int P = g.hp * g.wp, cond_dim = d->cfg.cond_dim;
  /* Latent upsampler -> an image in [-1, 1] of whole patches. */
  os_conv2d_shape up = { N, LATENT_CHANNELS, h, w, IMAGE_CHANNELS * UPSCALE * UPSCALE, 3, 3, 1,
                         1, 1, 1, 1 };
  os_tv x = os_tape_conv2d(t, latents, param(&g, d->up_weight), param(&g, d->up_bias), &up);
  x = os_tape_pixel_shuffle(t, x, N, IMAGE_CHANNELS, h, w, UPSCALE);
  x = os_tape_resize_bilinear(t, x, N, IMAGE_CHANNELS, H, W, Hr, Wr);
  os_tv feats[OS_DINOV2_MAX_TAPS];
  onestep_status status = os_dinov2_forward(d->dino, t, x, N, Hr, Wr, feats, error);
  if (status != ONESTEP_OK)
    return status;
  /* The condition of each sample of the spatial and temporal heads. */
  os_tv cond_frames = os_tape_add_row_vector(t, OS_TAPE_NONE, clip_embeds, B, T, cond_dim);
  os_tv cond_tokens = os_tape_add_row_vector(t, OS_TAPE_NONE, clip_embeds, B, P, cond_dim);
  os_tv all = OS_TAPE_NONE;
  int per_sample = 0, per_head = T * P;
  for (int i = 0; i < d->n_heads; i++) {
    const disc_head *head = &d->heads[i];
    os_tv y = head->temporal
                  ? head_forward(&g, head, tokens_over_frames(&g, feats[i / 2]), cond_tokens,
                                 B * P, 1, T)
                  : head_forward(&g, head, feats[i / 2], cond_frames, N, g.hp, g.wp);
    /* Both are [B, per_head] per sample: (t, token) spatially, (token, t) temporally. */
    all = i == 0 ? y : os_tape_concat_channels(t, all, per_sample, y, per_head, B, 1);
    per_sample += per_head;
  }
  *logits = all;
  return os_tape_status(t, error);
}

/* ---- losses ---- */

double
os_disc_hinge(os_backend *be, const float *logits, size_t n, float sign, float scale, float *grad)
{
  float *host = malloc(2 * (n ? n : 1) * sizeof(float));
  if (!host)
    return NAN;
  float *dhost = host + n;
  be->ops->download(be, host, logits, n * sizeof(float));
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    double margin = 1.0 - (double)sign * host[i];
    total += margin > 0 ? margin : 0.0;
    /* relu's gradient at 0 is 0, as PyTorch's. */
    dhost[i] = margin > 0 ? -sign * scale / (float)n : 0.0f;
  }
  float *delta = grad ? be->ops->alloc(be, (n ? n : 1) * sizeof(float)) : NULL;
  if (delta) {
    be->ops->upload(be, delta, dhost, n * sizeof(float));
    be->ops->grad->axpy(be, grad, delta, 1.0f, n);
    be->ops->free(be, delta);
  }
  free(host);
  return grad && !delta ? NAN : total / (double)n;
}

onestep_status
os_disc_backward_d(os_disc *d, os_tape *t, os_tv real, os_tv fake, os_tv clip_embeds, int B,
                   int T, int h, int w, double *loss, os_tv *logits_real, os_tv *logits_fake,
                   onestep_error *error)
{
  os_tv on_real, on_fake;
  /* Real first: each forward advances the spectral-norm vectors. */
  if (os_disc_forward(d, t, real, clip_embeds, B, T, h, w, true, &on_real, error) != ONESTEP_OK ||
      os_disc_forward(d, t, fake, clip_embeds, B, T, h, w, true, &on_fake, error) != ONESTEP_OK)
    return error->code;
  os_backend *be = d->be;
  size_t n = (size_t)B * os_disc_logit_count(d, T, h, w);
  /* One output for one backward: [real logits | fake logits]. */
  os_tv both = os_tape_concat_channels(t, on_real, (int)n, on_fake, (int)n, 1, 1);
  float *seed = be->ops->alloc(be, 2 * n * sizeof(float));
  if (both == OS_TAPE_NONE || !seed) {
    be->ops->free(be, seed);
    os_tape_fail(t, "the discriminator's loss");
    return os_tape_status(t, error);
  }
  be->ops->fill(be, seed, 0.0f, 2 * n);
  *loss = os_disc_hinge(be, os_tape_data(t, on_real), n, 1.0f, 1.0f, seed) +
          os_disc_hinge(be, os_tape_data(t, on_fake), n, -1.0f, 1.0f, seed + n);
  onestep_status status = isnan(*loss) ? os_tape_fail(t, "the discriminator's loss"),
                          os_tape_status(t, error) : os_tape_backward(t, both, seed, error);
  be->ops->free(be, seed);
  if (logits_real)
    *logits_real = on_real;
  if (logits_fake)
    *logits_fake = on_fake;
  return status;
}
