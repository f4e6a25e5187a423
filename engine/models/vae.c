#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "layers.h"

#define OPS(be) ((be)->ops)
#define MAX_BLOCK_LAYERS 8

static const float EPS = 1e-6f, TEMPORAL_EPS = 1e-5f;
static const int DECODER_GROUPS = 32; /* the temporal decoder fixes 32 groups everywhere */

/* Mid-block attention: one head over all pixels, GroupNorm first, biased projections. */
typedef struct {
  os_norm_w group_norm;
  os_attention_w attn;
  int groups;
} vae_attention;

typedef struct {
  int channels, n_resnets;
  bool has_resample;
  os_resnet2d_w resnets[MAX_BLOCK_LAYERS];
  os_downsample_w downsample;
} encoder_block;

typedef struct {
  int channels, n_resnets;
  bool has_resample;
  os_st_resblock_w resnets[MAX_BLOCK_LAYERS];
  os_conv_w upsample_conv;
} decoder_block;

struct os_vae {
  os_vae_config cfg;
  /* encoder */
  os_conv_w enc_conv_in, enc_conv_out, quant_conv;
  encoder_block enc_down[OS_MAX_LEVELS];
  os_resnet2d_w enc_mid_resnets[2];
  vae_attention enc_mid_attention;
  os_norm_w enc_norm_out;
  /* decoder */
  os_conv_w dec_conv_in, dec_conv_out, time_conv_out;
  int dec_mid_n_resnets;
  os_st_resblock_w dec_mid_resnets[MAX_BLOCK_LAYERS];
  vae_attention dec_mid_attention;
  decoder_block dec_up[OS_MAX_LEVELS];
  os_norm_w dec_norm_out;
};

static void
bind_vae_attention(os_weight_set *ws, vae_attention *a, const char *prefix, int C, int groups)
{
  char name[256];
  os_format_name(name, sizeof name, "%s.group_norm", prefix);
  os_bind_norm(ws, &a->group_norm, name, C);
  os_bind_attention(ws, &a->attn, prefix, C, C, 1, true, "to_q", "to_k", "to_v", "to_out.0");
  a->groups = groups;
}

static void
bind_encoder(os_weight_set *ws, os_vae *v)
{
  const os_vae_config *c = &v->cfg;
  int G = c->norm_num_groups, L = c->n_levels;
  char name[256];
  os_bind_conv(ws, &v->enc_conv_in, "encoder.conv_in", c->in_channels, c->block_out_channels[0],
               3, true);
  int cin = c->block_out_channels[0];
  for (int l = 0; l < L; l++) {
    encoder_block *b = &v->enc_down[l];
    b->channels = c->block_out_channels[l];
    b->n_resnets = c->layers_per_block;
    b->has_resample = l < L - 1;
    for (int j = 0; j < b->n_resnets; j++) {
      os_format_name(name, sizeof name, "encoder.down_blocks.%d.resnets.%d", l, j);
      os_bind_resnet2d(ws, &b->resnets[j], name, j == 0 ? cin : b->channels, b->channels, 0, G,
                       EPS);
    }
    if (b->has_resample) {
      os_format_name(name, sizeof name, "encoder.down_blocks.%d.downsamplers.0", l);
      os_bind_downsample(ws, &b->downsample, name, b->channels, true);
    }
    cin = b->channels;
  }
  int top = c->block_out_channels[L - 1];
  os_bind_resnet2d(ws, &v->enc_mid_resnets[0], "encoder.mid_block.resnets.0", top, top, 0, G, EPS);
  bind_vae_attention(ws, &v->enc_mid_attention, "encoder.mid_block.attentions.0", top, G);
  os_bind_resnet2d(ws, &v->enc_mid_resnets[1], "encoder.mid_block.resnets.1", top, top, 0, G, EPS);
  os_bind_norm(ws, &v->enc_norm_out, "encoder.conv_norm_out", top);
  os_bind_conv(ws, &v->enc_conv_out, "encoder.conv_out", top, 2 * c->latent_channels, 3, true);
  os_bind_conv(ws, &v->quant_conv, "quant_conv", 2 * c->latent_channels, 2 * c->latent_channels,
               1, true);
}

static void
bind_decoder(os_weight_set *ws, os_vae *v)
{
  const os_vae_config *c = &v->cfg;
  int L = c->n_levels, top = c->block_out_channels[L - 1];
  char name[256];
  os_bind_conv(ws, &v->dec_conv_in, "decoder.conv_in", c->latent_channels, top, 3, true);
  v->dec_mid_n_resnets = c->layers_per_block;
  for (int j = 0; j < v->dec_mid_n_resnets; j++) {
    os_format_name(name, sizeof name, "decoder.mid_block.resnets.%d", j);
    os_bind_st_resblock(ws, &v->dec_mid_resnets[j], name, top, top, 0, EPS, TEMPORAL_EPS, true);
  }
  bind_vae_attention(ws, &v->dec_mid_attention, "decoder.mid_block.attentions.0", top,
                     DECODER_GROUPS);
  int prev = top;
  for (int i = 0; i < L; i++) {
    decoder_block *b = &v->dec_up[i];
    b->channels = c->block_out_channels[L - 1 - i];
    b->n_resnets = c->layers_per_block + 1;
    b->has_resample = i < L - 1;
    for (int j = 0; j < b->n_resnets; j++) {
      os_format_name(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
      os_bind_st_resblock(ws, &b->resnets[j], name, j == 0 ? prev : b->channels, b->channels, 0,
                          EPS, TEMPORAL_EPS, true);
    }
    if (b->has_resample) {
      os_format_name(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
      os_bind_conv(ws, &b->upsample_conv, name, b->channels, b->channels, 3, true);
    }
    prev = b->channels;
  }
  int bottom = c->block_out_channels[0];
  os_bind_norm(ws, &v->dec_norm_out, "decoder.conv_norm_out", bottom);
  os_bind_conv(ws, &v->dec_conv_out, "decoder.conv_out", bottom, c->out_channels, 3, true);
  os_bind_conv_temporal(ws, &v->time_conv_out, "decoder.time_conv_out", c->out_channels,
                        c->out_channels);
}

os_vae *
os_vae_bind(const os_vae_config *cfg, os_weight_set *ws)
{
  if (cfg->n_levels < 1 || cfg->n_levels > OS_MAX_LEVELS ||
      cfg->layers_per_block + 1 > MAX_BLOCK_LAYERS)
    return NULL;
  os_vae *v = calloc(1, sizeof *v);
  if (!v)
    return NULL;
  v->cfg = *cfg;
  bind_encoder(ws, v);
  bind_decoder(ws, v);
  return v;
}

void
os_vae_free(os_vae *vae)
{
  free(vae);
}

int
os_vae_downscale(const os_vae *vae)
{
  return 1 << (vae->cfg.n_levels - 1);
}

/* ---- forward ---- */

/* x [N, C, P] -> *y = x + to_out(attn(GN(x))) per image, a new buffer (NULL
 * on error); takes x and frees it. */
static onestep_status
vae_attention_forward(os_backend *be, const vae_attention *a, float **y, float *x, int N, int P)
{
  int C = a->attn.dim;
  size_t n = (size_t)N * C * P;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  float *t = os_alloc_activations(be, n), *tokens = os_alloc_floats(be, n);
  *y = NULL;
  if (!t || !tokens)
    goto done;
  OPS(be)->group_norm(be, t, x, a->group_norm.gamma, a->group_norm.beta, N, C, P, a->groups, 1,
                      EPS, false);
  OPS(be)->permute_0213(be, tokens, t, N, C, P, 1); /* [N,C,P] -> [N,P,C] */
  OPS(be)->fill(be, t, 0.0f, n);                    /* t now gathers the attention output */
  if ((status = os_self_attention_forward(be, &a->attn, t, tokens, N, P)) != ONESTEP_OK)
    goto done;
  OPS(be)->permute_0213(be, tokens, t, N, P, C, 1);
  OPS(be)->add(be, tokens, tokens, x, n);
  *y = tokens;
  tokens = NULL;
done:
  os_free_floats(be, x);
  os_free_floats(be, t);
  os_free_floats(be, tokens);
  return status;
}

/* Applies step(x) -> new buffer of `channels` channels, replacing *x. */
typedef struct {
  os_backend *be;
  int B, F, N;
} vae_run;

static onestep_status
replace(vae_run *r, float **x, float *y, onestep_status status)
{
  os_free_floats(r->be, *x);
  *x = y;
  return status;
}

static onestep_status
encoder_resnet(vae_run *r, const os_resnet2d_w *rn, float **x, int H, int W)
{
  if (rn->cin == rn->cout) /* the input has no other reader: in place */
    return os_resnet2d_forward(r->be, rn, *x, *x, r->N, H, W, NULL);
  float *y = os_alloc_floats(r->be, (size_t)r->N * rn->cout * H * W);
  if (!y)
    return ONESTEP_ERR_OUT_OF_MEMORY;
  return replace(r, x, y, os_resnet2d_forward(r->be, rn, y, *x, r->N, H, W, NULL));
}

/* The input's last reader is the spatial half: it is freed there. */
static onestep_status
decoder_resnet(vae_run *r, const os_st_resblock_w *rn, float **x, int H, int W,
               const os_resize_input *resize)
{
  return os_st_resblock_forward(r->be, rn, x, *x, true, r->B, r->F, H, W, NULL, resize);
}

static onestep_status
attention_step(vae_run *r, const vae_attention *a, float **x, int H, int W)
{
  return vae_attention_forward(r->be, a, x, *x, r->N, H * W);
}

static onestep_status
report(onestep_status status, onestep_error *error, const char *what)
{
  if (status == ONESTEP_ERR_OUT_OF_MEMORY)
    os_error_set(error, status, "out of memory in the VAE %s", what);
  else if (status == ONESTEP_ERR_ABORTED)
    os_error_set(error, status, "generation cancelled");
  return status;
}

onestep_status
os_vae_encode(const os_vae *v, os_backend *be, const float *image, int H, int W, float *mean,
              float *std, onestep_error *error)
{
  const os_vae_config *c = &v->cfg;
  vae_run r = {be, 1, 1, 1};
  int G = c->norm_num_groups, L = c->n_levels, zc = c->latent_channels;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  float *x = os_alloc_floats(be, (size_t)c->block_out_channels[0] * H * W);
  float *moments = NULL, *q = NULL;
  if (!x)
    goto done;
  os_conv_forward(be, &v->enc_conv_in, x, image, 1, H, W, NULL);
  for (int l = 0; l < L; l++) {
    const encoder_block *b = &v->enc_down[l];
    for (int j = 0; j < b->n_resnets; j++)
      if ((status = encoder_resnet(&r, &b->resnets[j], &x, H, W)) != ONESTEP_OK)
        goto done;
    if (b->has_resample) {
      int Ho, Wo;
      os_downsample_out_size(&b->downsample, H, W, &Ho, &Wo);
      float *y = os_alloc_floats(be, (size_t)b->channels * Ho * Wo);
      status = ONESTEP_ERR_OUT_OF_MEMORY;
      if (!y)
        goto done;
      os_downsample_forward(be, &b->downsample, y, x, 1, H, W);
      replace(&r, &x, y, ONESTEP_OK);
      H = Ho;
      W = Wo;
    }
    if ((status = os_check_abort(be)) != ONESTEP_OK)
      goto done;
  }
  if ((status = encoder_resnet(&r, &v->enc_mid_resnets[0], &x, H, W)) != ONESTEP_OK ||
      (status = attention_step(&r, &v->enc_mid_attention, &x, H, W)) != ONESTEP_OK ||
      (status = encoder_resnet(&r, &v->enc_mid_resnets[1], &x, H, W)) != ONESTEP_OK)
    goto done;
  int top = c->block_out_channels[L - 1], P = H * W;
  OPS(be)->group_norm(be, x, x, v->enc_norm_out.gamma, v->enc_norm_out.beta, 1, top, P, G, 1, EPS,
                      true);
  moments = os_alloc_activations(be, (size_t)2 * zc * P);
  q = os_alloc_floats(be, (size_t)2 * zc * P);
  status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (!moments || !q)
    goto done;
  os_conv_forward(be, &v->enc_conv_out, moments, x, 1, H, W, NULL);
  os_conv_forward(be, &v->quant_conv, q, moments, 1, H, W, NULL);
  /* Posterior: mean = first half; std = exp(0.5 * clamp(logvar, -30, 20)) on the host. */
  OPS(be)->copy(be, mean, q, sizeof(float) * zc * P);
  if (std) {
    size_t n = (size_t)zc * P;
    float *host = malloc(sizeof(float) * n);
    if (!host)
      goto done;
    OPS(be)->download(be, host, q + n, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
      float lv = host[i] < -30.0f ? -30.0f : host[i] > 20.0f ? 20.0f : host[i];
      host[i] = expf(0.5f * lv);
    }
    OPS(be)->upload(be, std, host, sizeof(float) * n);
    free(host);
  }
  /* An op stopped midway by an abort left garbage: never a result. */
  if ((status = os_check_abort(be)) == ONESTEP_OK)
    status = OPS(be)->sync(be, error);
done:
  os_free_floats(be, x);
  os_free_floats(be, moments);
  os_free_floats(be, q);
  return report(status, error, "encoder");
}

onestep_status
os_vae_decode(const os_vae *v, os_backend *be, const float *latents, int n, int h, int w,
              float *frames, onestep_error *error)
{
  const os_vae_config *c = &v->cfg;
  vae_run r = {be, 1, n, n};
  int L = c->n_levels, H = h, W = w;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  float *x = os_alloc_floats(be, (size_t)n * c->block_out_channels[L - 1] * H * W);
  float *rgb = NULL;
  if (!x)
    goto done;
  os_conv_forward(be, &v->dec_conv_in, x, latents, n, H, W, NULL);
  /* The reference runs resnets[0], then (attention, resnets[1]) pairs: with one
   * attention only the first two resnets take part. */
  if ((status = decoder_resnet(&r, &v->dec_mid_resnets[0], &x, H, W, NULL)) != ONESTEP_OK)
    goto done;
  if (v->dec_mid_n_resnets > 1 &&
      ((status = attention_step(&r, &v->dec_mid_attention, &x, H, W)) != ONESTEP_OK ||
       (status = decoder_resnet(&r, &v->dec_mid_resnets[1], &x, H, W, NULL)) != ONESTEP_OK))
    goto done;
  /* A block's upsampler runs inside the next block's first resnet, chunk by
   * chunk of frames, so that the doubled input never exists whole. */
  os_resize_input upsample;
  const os_resize_input *pending = NULL;
  for (int i = 0; i < L; i++) {
    const decoder_block *b = &v->dec_up[i];
    for (int j = 0; j < b->n_resnets; j++, pending = NULL)
      if ((status = decoder_resnet(&r, &b->resnets[j], &x, H, W, pending)) != ONESTEP_OK)
        goto done;
    if (b->has_resample) {
      upsample = (os_resize_input){&b->upsample_conv, H, W};
      pending = &upsample;
      H *= 2;
      W *= 2;
    }
  }
  int bottom = c->block_out_channels[0], P = H * W;
  OPS(be)->group_norm(be, x, x, v->dec_norm_out.gamma, v->dec_norm_out.beta, n, bottom, P,
                      DECODER_GROUPS, 1, EPS, true);
  rgb = os_alloc_activations(be, (size_t)n * c->out_channels * P);
  status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (!rgb)
    goto done;
  os_conv_forward(be, &v->dec_conv_out, rgb, x, n, H, W, NULL);
  OPS(be)->conv_temporal(be, frames, rgb, v->time_conv_out.w, v->time_conv_out.b, 1, n,
                         c->out_channels, c->out_channels, P);
  /* An op stopped midway by an abort left garbage: never a result. */
  if ((status = os_check_abort(be)) == ONESTEP_OK)
    status = OPS(be)->sync(be, error);
done:
  os_free_floats(be, x);
  os_free_floats(be, rgb);
  return report(status, error, "decoder");
}
