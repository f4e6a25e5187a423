#include "unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "layers.h"
#include "transformer.h"
#include "unet_internal.h"

#define OPS(be) ((be)->ops)

static void
bind_down_block(os_weight_set *ws, os_unet *u, int level, int cin)
{
  const os_unet_config *c = &u->cfg;
  unet_block *b = &u->down[level];
  char name[256];
  b->channels = c->block_out_channels[level];
  b->n_resnets = c->layers_per_block;
  b->has_attention = c->down_has_attention[level];
  b->has_resample = level < c->n_levels - 1;
  float eps = b->has_attention ? EPS_CROSS_ATTN_DOWN : EPS_PLAIN_DOWN;
  for (int j = 0; j < b->n_resnets; j++) {
    os_format_name(name, sizeof name, "down_blocks.%d.resnets.%d", level, j);
    os_bind_st_resblock(ws, &b->resnets[j], name, j == 0 ? cin : b->channels, b->channels,
                        u->temb_dim, eps, eps, false);
    if (b->has_attention) {
      os_format_name(name, sizeof name, "down_blocks.%d.attentions.%d", level, j);
      os_bind_st_transformer(ws, &b->attentions[j], name, b->channels,
                             c->num_attention_heads[level],
                             c->transformer_layers_per_block[level], c->cross_attention_dim);
    }
  }
  if (b->has_resample) {
    os_format_name(name, sizeof name, "down_blocks.%d.downsamplers.0", level);
    os_bind_downsample(ws, &b->downsample, name, b->channels, false);
  }
}

static void
bind_up_block(os_weight_set *ws, os_unet *u, int i)
{
  const os_unet_config *c = &u->cfg;
  int L = c->n_levels, level = L - 1 - i;
  unet_block *b = &u->up[i];
  char name[256];
  int prev_out = c->block_out_channels[i == 0 ? L - 1 : L - i];
  int skip_in = c->block_out_channels[level > 0 ? level - 1 : 0];
  b->channels = c->block_out_channels[level];
  b->n_resnets = c->layers_per_block + 1;
  b->has_attention = c->up_has_attention[i];
  b->has_resample = i < L - 1;
  for (int j = 0; j < b->n_resnets; j++) {
    int skip = j == b->n_resnets - 1 ? skip_in : b->channels;
    int in = j == 0 ? prev_out : b->channels;
    os_format_name(name, sizeof name, "up_blocks.%d.resnets.%d", i, j);
    os_bind_st_resblock(ws, &b->resnets[j], name, in + skip, b->channels, u->temb_dim, EPS_UP,
                        EPS_UP, false);
    if (b->has_attention) {
      os_format_name(name, sizeof name, "up_blocks.%d.attentions.%d", i, j);
      os_bind_st_transformer(ws, &b->attentions[j], name, b->channels,
                             c->num_attention_heads[level],
                             c->transformer_layers_per_block[level], c->cross_attention_dim);
    }
  }
  if (b->has_resample) {
    os_format_name(name, sizeof name, "up_blocks.%d.upsamplers.0.conv", i);
    os_bind_conv(ws, &b->upsample_conv, name, b->channels, b->channels, 3, true);
  }
}

os_unet *
os_unet_bind(const os_unet_config *cfg, os_weight_set *ws)
{
  if (cfg->n_levels < 1 || cfg->n_levels > OS_MAX_LEVELS ||
      cfg->layers_per_block + 1 > MAX_BLOCK_LAYERS ||
      cfg->projection_class_embeddings_input_dim != 3 * cfg->addition_time_embed_dim)
    return NULL;
  for (int l = 0; l < cfg->n_levels; l++)
    if (cfg->transformer_layers_per_block[l] > OS_MAX_TRANSFORMER_LAYERS)
      return NULL;
  os_unet *u = calloc(1, sizeof *u);
  if (!u)
    return NULL;
  u->cfg = *cfg;
  int c0 = cfg->block_out_channels[0], L = cfg->n_levels;
  u->temb_dim = 4 * c0;

  os_bind_conv(ws, &u->conv_in, "conv_in", cfg->in_channels, c0, 3, true);
  os_bind_timestep_embedding(ws, &u->time_embedding, "time_embedding", c0, u->temb_dim,
                             u->temb_dim);
  os_bind_timestep_embedding(ws, &u->add_embedding, "add_embedding",
                             cfg->projection_class_embeddings_input_dim, u->temb_dim, u->temb_dim);
  int cin = c0;
  for (int l = 0; l < L; l++) {
    bind_down_block(ws, u, l, cin);
    cin = cfg->block_out_channels[l];
  }
  int cmid = cfg->block_out_channels[L - 1];
  os_bind_st_resblock(ws, &u->mid_resnets[0], "mid_block.resnets.0", cmid, cmid, u->temb_dim,
                      EPS_MID, EPS_MID, false);
  os_bind_st_transformer(ws, &u->mid_attention, "mid_block.attentions.0", cmid,
                         cfg->num_attention_heads[L - 1], cfg->transformer_layers_per_block[L - 1],
                         cfg->cross_attention_dim);
  os_bind_st_resblock(ws, &u->mid_resnets[1], "mid_block.resnets.1", cmid, cmid, u->temb_dim,
                      EPS_MID, EPS_MID, false);
  for (int i = 0; i < L; i++)
    bind_up_block(ws, u, i);
  os_bind_norm(ws, &u->conv_norm_out, "conv_norm_out", c0);
  os_bind_conv(ws, &u->conv_out, "conv_out", c0, cfg->out_channels, 3, true);
  return u;
}

void
os_unet_free(os_unet *unet)
{
  free(unet);
}

/* ---- forward ---- */

/* A feature map in the skip stack. */
typedef struct {
  float *data;
  int channels, H, W;
} feature_map;

typedef struct {
  os_backend *be;
  const os_unet *u;
  int B, F, N;
  const float *temb_silu; /* [N, temb] */
  const float *ctx;       /* [B, cross_attention_dim] */
  feature_map skips[4 * OS_MAX_LEVELS * MAX_BLOCK_LAYERS];
  int n_skips;
  bool x_is_skip; /* the current feature map is the top skip's buffer (not to free) */
} unet_run;

/* SiLU(time_embedding(sinusoid(t)) + add_embedding(sinusoids of the ids)),
 * repeated over frames: [N, temb]. */
static onestep_status
time_conditioning(unet_run *r, float timestep, const float *added_time_ids, float *temb_silu)
{
  os_backend *be = r->be;
  const os_unet *u = r->u;
  int B = r->B, c0 = u->cfg.block_out_channels[0], D = u->cfg.addition_time_embed_dim;
  int T = u->temb_dim, P = u->cfg.projection_class_embeddings_input_dim;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;

  float *host_t = malloc(sizeof(float) * c0);
  float *host_ids = malloc(sizeof(float) * (size_t)B * 3 * D);
  float *dev_t = os_alloc_floats(be, c0), *dev_ids = os_alloc_floats(be, (size_t)B * P);
  float *emb_t = os_alloc_floats(be, T), *emb = os_alloc_floats(be, (size_t)B * T);
  if (!host_t || !host_ids || !dev_t || !dev_ids || !emb_t || !emb)
    goto done;
  os_sinusoid_embedding(host_t, &timestep, 1, c0);
  os_sinusoid_embedding(host_ids, added_time_ids, 3 * B, D); /* rows [b*3 + k] = [b][k*D..] */
  OPS(be)->upload(be, dev_t, host_t, sizeof(float) * c0);
  OPS(be)->upload(be, dev_ids, host_ids, sizeof(float) * (size_t)B * P);
  if ((status = os_timestep_embedding_forward(be, &u->time_embedding, emb_t, dev_t, 1)) != ONESTEP_OK)
    goto done;
  if ((status = os_timestep_embedding_forward(be, &u->add_embedding, emb, dev_ids, B)) != ONESTEP_OK)
    goto done;
  OPS(be)->add_row_vector(be, emb, emb_t, 1, B, T);
  OPS(be)->silu(be, emb, emb, (size_t)B * T);
  for (int n = 0; n < r->N; n++)
    OPS(be)->copy(be, temb_silu + (size_t)n * T, emb + (size_t)(n / r->F) * T, sizeof(float) * T);
  status = ONESTEP_OK;
done:
  free(host_t);
  free(host_ids);
  os_free_floats(be, dev_t);
  os_free_floats(be, dev_ids);
  os_free_floats(be, emb_t);
  os_free_floats(be, emb);
  return status;
}

/* The current feature map becomes a skip as it is: the down path only reads
 * it from here on, and the up path frees it after the concatenation. */
static void
push_skip(unet_run *r, float *x, int C, int H, int W)
{
  r->skips[r->n_skips++] = (feature_map){x, C, H, W};
  r->x_is_skip = true;
}

/* Replaces *x by the block's output; the input is freed after its last read
 * unless it is a skip. */
static onestep_status
resblock_step(unet_run *r, const os_st_resblock_w *rb, float **x, int H, int W)
{
  bool consume = !r->x_is_skip;
  r->x_is_skip = false;
  return os_st_resblock_forward(r->be, rb, x, *x, consume, NULL, OS_STORAGE_FP32, r->B, r->F, H,
                                W, r->temb_silu, NULL);
}

/* The transformer's input is always a resnet's output, never a skip. */
static onestep_status
transformer_step(unet_run *r, const os_st_transformer_w *t, float **x, int H, int W)
{
  return os_st_transformer_forward(r->be, t, x, *x, r->ctx, r->B, r->F, H, W);
}

static onestep_status
down_path(unet_run *r, float **x, int *H, int *W)
{
  const os_unet *u = r->u;
  onestep_status status;
  for (int l = 0; l < u->cfg.n_levels; l++) {
    const unet_block *b = &u->down[l];
    for (int j = 0; j < b->n_resnets; j++) {
      if ((status = resblock_step(r, &b->resnets[j], x, *H, *W)) != ONESTEP_OK)
        return status;
      if (b->has_attention &&
          (status = transformer_step(r, &b->attentions[j], x, *H, *W)) != ONESTEP_OK)
        return status;
      push_skip(r, *x, b->channels, *H, *W);
    }
    if (b->has_resample) {
      int Ho, Wo;
      os_downsample_out_size(&b->downsample, *H, *W, &Ho, &Wo);
      float *y = os_alloc_floats(r->be, (size_t)r->N * b->channels * Ho * Wo);
      if (!y)
        return ONESTEP_ERR_OUT_OF_MEMORY;
      os_downsample_forward(r->be, &b->downsample, y, *x, r->N, *H, *W);
      *x = y; /* the input stays a skip */
      *H = Ho;
      *W = Wo;
      push_skip(r, *x, b->channels, *H, *W);
    }
  }
  return ONESTEP_OK;
}

static onestep_status
up_path(unet_run *r, float **x, int *H, int *W)
{
  const os_unet *u = r->u;
  onestep_status status;
  for (int i = 0; i < u->cfg.n_levels; i++) {
    const unet_block *b = &u->up[i];
    for (int j = 0; j < b->n_resnets; j++) {
      feature_map skip = r->skips[r->n_skips - 1];
      int cur = b->resnets[j].spatial.cin - skip.channels;
      float *cat = os_alloc_floats(r->be, (size_t)r->N * (cur + skip.channels) * *H * *W);
      if (!cat)
        return ONESTEP_ERR_OUT_OF_MEMORY;
      OPS(r->be)->concat_channels(r->be, cat, *x, cur, skip.data, skip.channels, r->N, *H * *W);
      os_free_floats(r->be, *x); /* a block's output here, never a skip */
      os_free_floats(r->be, skip.data);
      r->n_skips--;
      *x = cat;
      if ((status = resblock_step(r, &b->resnets[j], x, *H, *W)) != ONESTEP_OK)
        return status;
      if (b->has_attention &&
          (status = transformer_step(r, &b->attentions[j], x, *H, *W)) != ONESTEP_OK)
        return status;
    }
    if (b->has_resample) {
      /* Upsample to the size of the skip it will meet (x2 when sizes divide evenly). */
      const feature_map *next = &r->skips[r->n_skips - 1];
      float *y = os_alloc_floats(r->be, (size_t)r->N * b->channels * next->H * next->W);
      if (!y)
        return ONESTEP_ERR_OUT_OF_MEMORY;
      status = os_upsample_forward(r->be, &b->upsample_conv, y, *x, r->N, *H, *W, next->H,
                                   next->W);
      os_free_floats(r->be, *x);
      *x = y;
      *H = next->H;
      *W = next->W;
      if (status != ONESTEP_OK)
        return status;
    }
  }
  return ONESTEP_OK;
}

onestep_status
os_unet_forward(const os_unet *u, os_backend *be, const float *sample, float timestep,
                const float *context, const float *added_time_ids, int B, int F, int h, int w,
                float *out, onestep_error *error)
{
  const os_unet_config *c = &u->cfg;
  unet_run r = {.be = be, .u = u, .B = B, .F = F, .N = B * F};
  int N = r.N, H = h, W = w;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  float *temb_silu = os_alloc_floats(be, (size_t)N * u->temb_dim);
  float *x = os_alloc_floats(be, (size_t)N * c->block_out_channels[0] * H * W);
  if (!temb_silu || !x)
    goto done;
  r.temb_silu = temb_silu;
  r.ctx = context;

  status = time_conditioning(&r, timestep, added_time_ids, temb_silu);
  if (status != ONESTEP_OK)
    goto done;

  os_conv_forward(be, &u->conv_in, x, sample, N, H, W, NULL);
  push_skip(&r, x, c->block_out_channels[0], H, W);
  if ((status = down_path(&r, &x, &H, &W)) != ONESTEP_OK)
    goto done;
  if ((status = resblock_step(&r, &u->mid_resnets[0], &x, H, W)) != ONESTEP_OK ||
      (status = transformer_step(&r, &u->mid_attention, &x, H, W)) != ONESTEP_OK ||
      (status = resblock_step(&r, &u->mid_resnets[1], &x, H, W)) != ONESTEP_OK)
    goto done;
  if ((status = up_path(&r, &x, &H, &W)) != ONESTEP_OK)
    goto done;

  int c0 = c->block_out_channels[0];
  OPS(be)->group_norm(be, x, x, u->conv_norm_out.gamma, u->conv_norm_out.beta, N, c0, H * W, 32,
                      1, EPS_OUT, true);
  os_conv_forward(be, &u->conv_out, out, x, N, H, W, NULL);
  /* An op stopped midway by an abort left garbage: never a result. */
  if ((status = os_check_abort(be)) == ONESTEP_OK)
    status = OPS(be)->sync(be, error);
done:
  if (r.x_is_skip)
    x = NULL; /* freed with the skips */
  while (r.n_skips > 0)
    os_free_floats(be, r.skips[--r.n_skips].data);
  os_free_floats(be, temb_silu);
  os_free_floats(be, x);
  if (status == ONESTEP_ERR_OUT_OF_MEMORY)
    os_error_set(error, status, "out of memory running the UNet (%d frames at %dx%d latents)",
                 N, w, h);
  else if (status == ONESTEP_ERR_ABORTED)
    os_error_set(error, status, "generation cancelled");
  return status;
}
