/* unet_graph.c: see unet_graph.h. Block order and constants as in unet.c,
 * layers.c and transformer.c. */
#include "unet_graph.h"

#include <math.h>
#include <stdlib.h>

#include "tape_ops.h"
#include "unet_internal.h"

static const float LN_EPS = 1e-5f;
static const float TRANSFORMER_GN_EPS = 1e-6f;
static const int GROUPS = 32;

typedef struct {
  os_tape *t;
  os_train_params *p;
  const os_unet *u;
  int B, F, N;
  os_tv temb_silu; /* [N, temb] */
  os_tv ctx;       /* [B, cross_attention_dim] */
  size_t checkpoint_budget;
} graph;

static os_tv
weight(graph *g, const float *w, size_t n)
{
  if (!w)
    return OS_TAPE_NONE;
  return g->p ? os_train_weight(g->p, g->t, w, n) : os_tape_leaf(g->t, w, n, NULL);
}

/* A constant from host values (sinusoidal embeddings). */
static os_tv
host_constant(graph *g, const float *host, size_t n)
{
  os_tv v = os_tape_alloc(g->t, n);
  if (v != OS_TAPE_NONE)
    os_tape_backend(g->t)->ops->upload(os_tape_backend(g->t), os_tape_data(g->t, v), host,
                                       n * sizeof(float));
  return v;
}

/* Linear layer, plus its LoRA adapter where the view has one. */
static os_tv
linear(graph *g, const os_linear_w *l, os_tv x, int T)
{
  os_tv y = os_tape_linear(g->t, x, weight(g, l->w, (size_t)l->out * l->in),
                           weight(g, l->b, (size_t)l->out), T, l->in, l->out);
  const os_lora_adapter *a = g->p ? os_train_lora_for(g->p, l->w) : NULL;
  if (!a)
    return y;
  int rank = (int)os_train_params_tensor(g->p, a->a)->shape[0];
  os_tv h = os_tape_linear(g->t, x, os_train_tensor_leaf(g->p, g->t, a->a), OS_TAPE_NONE, T,
                           l->in, rank);
  os_tv d = os_tape_linear(g->t, h, os_train_tensor_leaf(g->p, g->t, a->b), OS_TAPE_NONE, T, rank,
                           l->out);
  return os_tape_add_scaled(g->t, y, d, os_train_params_lora_scale(g->p), (size_t)T * l->out);
}

static os_tv
conv(graph *g, const os_conv_w *c, os_tv x, int N, int H, int W, int stride)
{
  int p = c->kh / 2;
  os_conv2d_shape s = {N, c->cin, H, W, c->cout, c->kh, c->kw, stride, p, p, p, p};
  return os_tape_conv2d(g->t, x, weight(g, c->w, (size_t)c->cout * c->cin * c->kh * c->kw),
                        weight(g, c->b, (size_t)c->cout), &s);
}

static os_tv
group_norm(graph *g, const os_norm_w *n, os_tv x, int N, int P, int frames_per_stat, float eps,
           bool silu)
{
  return os_tape_group_norm(g->t, x, weight(g, n->gamma, (size_t)n->channels),
                            weight(g, n->beta, (size_t)n->channels), N, n->channels, P, GROUPS,
                            frames_per_stat, eps, silu);
}

static os_tv
layer_norm(graph *g, const os_norm_w *n, os_tv x, int T)
{
  return os_tape_layer_norm(g->t, x, weight(g, n->gamma, (size_t)n->channels),
                            weight(g, n->beta, (size_t)n->channels), T, n->channels, LN_EPS);
}

/* linear_1 -> SiLU -> linear_2. */
static os_tv
timestep_embedding(graph *g, const os_timestep_embedding_w *e, os_tv x, int T)
{
  os_tv h = linear(g, &e->linear_1, x, T);
  h = os_tape_silu(g->t, h, (size_t)T * e->linear_1.out);
  return linear(g, &e->linear_2, h, T);
}

/* ---- resnets ---- */

/* h [N, C, P] + time_emb_proj(temb_silu) on every position. */
static os_tv
add_time_embedding(graph *g, const os_linear_w *proj, os_tv h, int P)
{
  os_tv e = linear(g, proj, g->temb_silu, g->N);
  return os_tape_add_channel_vector(g->t, h, e, g->N, proj->out, P);
}

static os_tv
resnet2d(graph *g, const os_resnet2d_w *r, os_tv x, int H, int W)
{
  int N = g->N, P = H * W;
  os_tv h = group_norm(g, &r->norm1, x, N, P, 1, r->eps, true);
  h = conv(g, &r->conv1, h, N, H, W, 1);
  if (r->has_temb)
    h = add_time_embedding(g, &r->time_emb_proj, h, P);
  h = group_norm(g, &r->norm2, h, N, P, 1, r->eps, true);
  h = conv(g, &r->conv2, h, N, H, W, 1);
  os_tv shortcut = r->has_shortcut ? conv(g, &r->conv_shortcut, x, N, H, W, 1) : x;
  return os_tape_add(g->t, h, shortcut, (size_t)N * r->cout * P);
}

static os_tv
temporal_conv(graph *g, const os_conv_w *c, os_tv x, int P)
{
  return os_tape_conv_temporal(g->t, x, weight(g, c->w, (size_t)c->cout * c->cin * 3),
                               weight(g, c->b, (size_t)c->cout), g->B, g->F, c->cin, c->cout, P);
}

static os_tv
temporal_resnet(graph *g, const os_temporal_resnet_w *r, os_tv x, int P)
{
  int N = g->N, F = g->F;
  os_tv h = group_norm(g, &r->norm1, x, N, P, F, r->eps, true);
  h = temporal_conv(g, &r->conv1, h, P);
  if (r->has_temb)
    h = add_time_embedding(g, &r->time_emb_proj, h, P);
  h = group_norm(g, &r->norm2, h, N, P, F, r->eps, true);
  h = temporal_conv(g, &r->conv2, h, P);
  return os_tape_add(g->t, h, x, (size_t)N * r->channels * P);
}

static os_tv
st_resblock(graph *g, const os_st_resblock_w *r, os_tv x, int H, int W)
{
  os_tv spatial = resnet2d(g, &r->spatial, x, H, W);
  os_tv temporal = temporal_resnet(g, &r->temporal, spatial, H * W);
  return os_tape_blend(g->t, spatial, temporal, weight(g, r->mix_factor, 1), r->switch_mix,
                       (size_t)g->N * r->spatial.cout * H * W);
}

/* ---- transformer ---- */

/* x + to_out(attention(to_q(xn), to_k(xn), to_v(xn))) over n_seq sequences of S tokens. */
static os_tv
self_attention(graph *g, const os_attention_w *a, os_tv x, os_tv xn, int n_seq, int S)
{
  int T = n_seq * S;
  os_tv q = linear(g, &a->to_q, xn, T), k = linear(g, &a->to_k, xn, T);
  os_tv v = linear(g, &a->to_v, xn, T);
  os_tv o = os_tape_attention(g->t, q, k, v, n_seq, S, S, a->heads, a->head_dim,
                              1.0f / sqrtf((float)a->head_dim));
  return os_tape_add(g->t, x, linear(g, &a->to_out, o, T), (size_t)T * a->dim);
}

/* Cross-attention to a single context token: the softmax over one key is
 * exactly 1, so every query of group g receives to_out(to_v(ctx_g)) (and
 * to_q / to_k get no gradient, as in the reference). x [G, R, dim]. */
static os_tv
single_token_cross_attention(graph *g, const os_attention_w *a, os_tv x, int R)
{
  os_tv v = linear(g, &a->to_v, g->ctx, g->B);
  os_tv o = linear(g, &a->to_out, v, g->B);
  return os_tape_add_row_vector(g->t, x, o, g->B, R, a->dim);
}

static os_tv
geglu_ff(graph *g, const os_geglu_ff_w *f, os_tv x, os_tv xn, int T)
{
  os_tv h = linear(g, &f->proj, xn, T);
  h = os_tape_geglu(g->t, h, T, f->inner);
  return os_tape_add(g->t, x, linear(g, &f->out, h, T), (size_t)T * f->dim);
}

/* z [B*F*S, C]. */
static os_tv
spatial_block(graph *g, const os_spatial_block_w *b, os_tv z, int S)
{
  int T = g->N * S;
  z = self_attention(g, &b->attn1, z, layer_norm(g, &b->norm1, z, T), g->N, S);
  z = single_token_cross_attention(g, &b->attn2, z, g->F * S);
  return geglu_ff(g, &b->ff, z, layer_norm(g, &b->norm3, z, T), T);
}

/* u [B*S, F, C]: the same over each pixel's frames, with ff_in first. */
static os_tv
temporal_block(graph *g, const os_temporal_block_w *b, os_tv u, int S)
{
  int T = g->N * S;
  u = geglu_ff(g, &b->ff_in, u, layer_norm(g, &b->norm_in, u, T), T);
  u = self_attention(g, &b->attn1, u, layer_norm(g, &b->norm1, u, T), g->B * S, g->F);
  u = single_token_cross_attention(g, &b->attn2, u, S * g->F);
  return geglu_ff(g, &b->ff, u, layer_norm(g, &b->norm3, u, T), T);
}

/* time_pos_embed(sinusoid(f)) for every image n = b*F + f: [N, C]. */
static os_tv
frame_position_embedding(graph *g, const os_st_transformer_w *tw)
{
  int N = g->N, C = tw->channels;
  float *frames = malloc(sizeof(float) * N);
  float *host = malloc(sizeof(float) * (size_t)N * C);
  os_tv pe = OS_TAPE_NONE;
  if (frames && host) {
    for (int n = 0; n < N; n++)
      frames[n] = (float)(n % g->F);
    os_sinusoid_embedding(host, frames, N, C);
    pe = timestep_embedding(g, &tw->time_pos_embed, host_constant(g, host, (size_t)N * C), N);
  } else {
    os_tape_fail(g->t, "the frame position embedding");
  }
  free(frames);
  free(host);
  return pe;
}

static os_tv
st_transformer(graph *g, const os_st_transformer_w *tw, os_tv x, int H, int W)
{
  int N = g->N, B = g->B, F = g->F, S = H * W, C = tw->channels;
  size_t n = (size_t)N * S * C;
  os_tv pe = frame_position_embedding(g, tw);
  os_tv h = os_tape_group_norm(g->t, x, weight(g, tw->norm.gamma, C), weight(g, tw->norm.beta, C),
                               N, C, S, GROUPS, 1, TRANSFORMER_GN_EPS, false);
  h = os_tape_permute_0213(g->t, h, N, C, S, 1); /* [N,C,S] -> [N,S,C] */
  os_tv z = linear(g, &tw->proj_in, h, N * S);
  for (int l = 0; l < tw->n_layers; l++) {
    z = spatial_block(g, &tw->spatial[l], z, S);
    os_tv m = os_tape_permute_0213(g->t, z, B, F, S, C); /* [B,F,S,C] -> [B,S,F,C] */
    /* The frame embedding enters only the temporal branch. */
    m = os_tape_add_row_vector(g->t, m, pe, B, S, F * C);
    m = temporal_block(g, &tw->temporal[l], m, S);
    m = os_tape_permute_0213(g->t, m, B, S, F, C); /* back to [B,F,S,C] */
    z = os_tape_blend(g->t, z, m, weight(g, tw->mix_factor, 1), false, n);
  }
  z = linear(g, &tw->proj_out, z, N * S);
  z = os_tape_permute_0213(g->t, z, N, S, C, 1); /* [N,S,C] -> [N,C,S] */
  return os_tape_add(g->t, z, x, n);
}

/* ---- the UNet ---- */

typedef struct {
  os_tv x;
  int channels, H, W;
} skip_map;

/* SiLU(time_embedding(sinusoid(t_b)) + add_embedding(sinusoids of the ids)),
 * repeated over frames: [N, temb]. */
static os_tv
time_conditioning(graph *g, const os_unet_graph_input *in)
{
  const os_unet *u = g->u;
  int B = g->B, c0 = u->cfg.block_out_channels[0], D = u->cfg.addition_time_embed_dim;
  int T = u->temb_dim, P = u->cfg.projection_class_embeddings_input_dim;
  float *host_t = malloc(sizeof(float) * (size_t)B * c0);
  float *host_ids = malloc(sizeof(float) * (size_t)B * P);
  os_tv temb = OS_TAPE_NONE;
  if (host_t && host_ids) {
    os_sinusoid_embedding(host_t, in->timesteps, B, c0);
    os_sinusoid_embedding(host_ids, in->added_time_ids, 3 * B, D); /* [b*3 + k] = [b][k*D..] */
    os_tv emb_t = timestep_embedding(g, &u->time_embedding,
                                     host_constant(g, host_t, (size_t)B * c0), B);
    os_tv emb_a = timestep_embedding(g, &u->add_embedding,
                                     host_constant(g, host_ids, (size_t)B * P), B);
    os_tv emb = os_tape_silu(g->t, os_tape_add(g->t, emb_t, emb_a, (size_t)B * T), (size_t)B * T);
    temb = os_tape_add_row_vector(g->t, OS_TAPE_NONE, emb, B, g->F, T);
  } else {
    os_tape_fail(g->t, "the time embedding");
  }
  free(host_t);
  free(host_ids);
  return temb;
}

/* ---- checkpointed blocks ---- */

/* A resnet or transformer block as a tape segment: inputs x, temb_silu, ctx. */
typedef struct {
  graph g; /* its tape and tensors are replaced by the segment's */
  const os_st_resblock_w *resblock;
  const os_st_transformer_w *transformer;
  int H, W;
} block_closure;

static os_tv
run_block(os_tape *tape, const os_tv *in, void *closure)
{
  block_closure *c = closure;
  graph g = c->g;
  g.t = tape;
  g.temb_silu = in[1];
  g.ctx = in[2];
  return c->resblock ? st_resblock(&g, c->resblock, in[0], c->H, c->W)
                     : st_transformer(&g, c->transformer, in[0], c->H, c->W);
}

/* Runs one block, checkpointed once the backend holds more than the budget. */
static os_tv
block(graph *g, const os_st_resblock_w *resblock, const os_st_transformer_w *transformer,
      os_tv x, int H, int W)
{
  block_closure c = {.g = *g, .resblock = resblock, .transformer = transformer, .H = H, .W = W};
  os_tv in[3] = {x, g->temb_silu, g->ctx};
  os_backend *be = os_tape_backend(g->t);
  if (g->checkpoint_budget && be->bytes_in_use - os_tape_spare_bytes(g->t) > g->checkpoint_budget)
    return os_tape_checkpoint(g->t, run_block, 3, in, &c, sizeof c);
  return run_block(g->t, in, &c);
}

static os_tv
block_layer(graph *g, const unet_block *b, int j, os_tv x, int H, int W)
{
  x = block(g, &b->resnets[j], NULL, x, H, W);
  return b->has_attention ? block(g, NULL, &b->attentions[j], x, H, W) : x;
}

os_tv
os_unet_graph_forward(const os_unet *u, os_train_params *params, os_tape *tape,
                      const os_unet_graph_input *in)
{
  const os_unet_config *c = &u->cfg;
  graph g = {.t = tape, .p = params, .u = u, .B = in->B, .F = in->F, .N = in->B * in->F,
             .ctx = in->context, .checkpoint_budget = in->checkpoint_budget};
  int N = g.N, H = in->h, W = in->w, L = c->n_levels;
  skip_map skips[4 * OS_MAX_LEVELS * MAX_BLOCK_LAYERS];
  int n_skips = 0;

  g.temb_silu = time_conditioning(&g, in);
  os_tv x = conv(&g, &u->conv_in, in->sample, N, H, W, 1);
  skips[n_skips++] = (skip_map){x, c->block_out_channels[0], H, W};
  for (int l = 0; l < L; l++) {
    const unet_block *b = &u->down[l];
    for (int j = 0; j < b->n_resnets; j++) {
      x = block_layer(&g, b, j, x, H, W);
      skips[n_skips++] = (skip_map){x, b->channels, H, W};
    }
    if (b->has_resample) {
      const os_conv_w *cv = &b->downsample.conv;
      os_conv2d_shape s = {N, cv->cin, H, W, cv->cout, 3, 3, 2, 1, 1, 1, 1};
      x = os_tape_conv2d(tape, x, weight(&g, cv->w, (size_t)cv->cout * cv->cin * 9),
                         weight(&g, cv->b, (size_t)cv->cout), &s);
      H = os_conv2d_out_h(&s);
      W = os_conv2d_out_w(&s);
      skips[n_skips++] = (skip_map){x, b->channels, H, W};
    }
  }
  x = block(&g, &u->mid_resnets[0], NULL, x, H, W);
  x = block(&g, NULL, &u->mid_attention, x, H, W);
  x = block(&g, &u->mid_resnets[1], NULL, x, H, W);
  for (int i = 0; i < L; i++) {
    const unet_block *b = &u->up[i];
    for (int j = 0; j < b->n_resnets; j++) {
      skip_map skip = skips[--n_skips];
      int cur = b->resnets[j].spatial.cin - skip.channels;
      x = os_tape_concat_channels(tape, x, cur, skip.x, skip.channels, N, H * W);
      x = block_layer(&g, b, j, x, H, W);
    }
    if (b->has_resample) {
      /* Upsample to the size of the skip it will meet (x2 when sizes divide evenly). */
      const skip_map *next = &skips[n_skips - 1];
      x = os_tape_upsample_nearest(tape, x, N, b->channels, H, W, next->H, next->W);
      H = next->H;
      W = next->W;
      x = conv(&g, &b->upsample_conv, x, N, H, W, 1);
    }
  }
  x = group_norm(&g, &u->conv_norm_out, x, N, H * W, 1, EPS_OUT, true);
  return conv(&g, &u->conv_out, x, N, H, W, 1);
}
