#include "transformer.h"

#include <stdio.h>
#include <stdlib.h>

#define OPS(be) ((be)->ops)

static const float LN_EPS = 1e-5f;
static const float TSM_GN_EPS = 1e-6f;

static void
bind_spatial_block(os_weight_set *ws, os_spatial_block_w *b, const char *prefix, int C, int heads,
                   int context_dim)
{
  char name[512];
  os_format_name(name, sizeof name, "%s.norm1", prefix);
  os_bind_norm(ws, &b->norm1, name, C);
  os_format_name(name, sizeof name, "%s.norm2", prefix);
  os_bind_norm(ws, &b->norm2, name, C);
  os_format_name(name, sizeof name, "%s.norm3", prefix);
  os_bind_norm(ws, &b->norm3, name, C);
  os_format_name(name, sizeof name, "%s.attn1", prefix);
  os_bind_attention(ws, &b->attn1, name, C, C, heads, false, "to_q", "to_k", "to_v", "to_out.0");
  os_format_name(name, sizeof name, "%s.attn2", prefix);
  os_bind_attention(ws, &b->attn2, name, C, context_dim, heads, false, "to_q", "to_k", "to_v",
                    "to_out.0");
  os_format_name(name, sizeof name, "%s.ff", prefix);
  os_bind_geglu_ff(ws, &b->ff, name, C, 4 * C);
}

static void
bind_temporal_block(os_weight_set *ws, os_temporal_block_w *b, const char *prefix, int C,
                    int heads, int context_dim)
{
  char name[512];
  os_format_name(name, sizeof name, "%s.norm_in", prefix);
  os_bind_norm(ws, &b->norm_in, name, C);
  os_format_name(name, sizeof name, "%s.ff_in", prefix);
  os_bind_geglu_ff(ws, &b->ff_in, name, C, 4 * C);
  os_format_name(name, sizeof name, "%s.norm1", prefix);
  os_bind_norm(ws, &b->norm1, name, C);
  os_format_name(name, sizeof name, "%s.attn1", prefix);
  os_bind_attention(ws, &b->attn1, name, C, C, heads, false, "to_q", "to_k", "to_v", "to_out.0");
  os_format_name(name, sizeof name, "%s.norm2", prefix);
  os_bind_norm(ws, &b->norm2, name, C);
  os_format_name(name, sizeof name, "%s.attn2", prefix);
  os_bind_attention(ws, &b->attn2, name, C, context_dim, heads, false, "to_q", "to_k", "to_v",
                    "to_out.0");
  os_format_name(name, sizeof name, "%s.norm3", prefix);
  os_bind_norm(ws, &b->norm3, name, C);
  os_format_name(name, sizeof name, "%s.ff", prefix);
  os_bind_geglu_ff(ws, &b->ff, name, C, 4 * C);
}

void
os_bind_st_transformer(os_weight_set *ws, os_st_transformer_w *t, const char *prefix, int channels,
                       int heads, int n_layers, int context_dim)
{
  char name[512];
  t->channels = channels;
  t->heads = heads;
  t->n_layers = n_layers;
  t->context_dim = context_dim;
  os_format_name(name, sizeof name, "%s.norm", prefix);
  os_bind_norm(ws, &t->norm, name, channels);
  os_format_name(name, sizeof name, "%s.proj_in", prefix);
  os_bind_linear(ws, &t->proj_in, name, channels, channels, true);
  os_format_name(name, sizeof name, "%s.time_pos_embed", prefix);
  os_bind_timestep_embedding(ws, &t->time_pos_embed, name, channels, 4 * channels, channels);
  os_format_name(name, sizeof name, "%s.time_mixer.mix_factor", prefix);
  t->spatial_alpha = os_bind_mix_alpha(ws, name, false, &t->mix_factor);
  for (int l = 0; l < n_layers; l++) {
    os_format_name(name, sizeof name, "%s.transformer_blocks.%d", prefix, l);
    bind_spatial_block(ws, &t->spatial[l], name, channels, heads, context_dim);
    os_format_name(name, sizeof name, "%s.temporal_transformer_blocks.%d", prefix, l);
    bind_temporal_block(ws, &t->temporal[l], name, channels, heads, context_dim);
  }
  os_format_name(name, sizeof name, "%s.proj_out", prefix);
  os_bind_linear(ws, &t->proj_out, name, channels, channels, true);
}

/* z [B*F*S, C], in place: self-attention over each frame's S tokens,
 * cross-attention to the batch element's context token, GEGLU feed-forward;
 * pre-LayerNorm residuals. */
static onestep_status
spatial_block_forward(os_backend *be, const os_spatial_block_w *b, float *z, float *scratch,
                      const float *ctx, int B, int F, int S, int C)
{
  int N = B * F;
  int T = N * S;
  onestep_status status;
  OPS(be)->layer_norm(be, scratch, z, b->norm1.gamma, b->norm1.beta, T, C, LN_EPS);
  if ((status = os_self_attention_forward(be, &b->attn1, z, scratch, N, S)) != ONESTEP_OK)
    return status;
  /* Every frame of a batch element sees the same context: one group of F*S rows each. */
  if ((status = os_single_token_cross_attention_forward(be, &b->attn2, z, ctx, B, F * S)) !=
      ONESTEP_OK)
    return status;
  OPS(be)->layer_norm(be, scratch, z, b->norm3.gamma, b->norm3.beta, T, C, LN_EPS);
  return os_geglu_ff_forward(be, &b->ff, z, scratch, T, z);
}

/* u [B*S, F, C], in place: the same over each pixel's F frames, with ff_in first. */
static onestep_status
temporal_block_forward(os_backend *be, const os_temporal_block_w *b, float *u, float *scratch,
                       const float *batch_ctx, int B, int S, int F, int C)
{
  int T = B * S * F;
  onestep_status status;
  OPS(be)->layer_norm(be, scratch, u, b->norm_in.gamma, b->norm_in.beta, T, C, LN_EPS);
  if ((status = os_geglu_ff_forward(be, &b->ff_in, u, scratch, T, u)) != ONESTEP_OK)
    return status;
  OPS(be)->layer_norm(be, scratch, u, b->norm1.gamma, b->norm1.beta, T, C, LN_EPS);
  if ((status = os_self_attention_forward(be, &b->attn1, u, scratch, B * S, F)) != ONESTEP_OK)
    return status;
  status = os_single_token_cross_attention_forward(be, &b->attn2, u, batch_ctx, B, S * F);
  if (status != ONESTEP_OK)
    return status;
  OPS(be)->layer_norm(be, scratch, u, b->norm3.gamma, b->norm3.beta, T, C, LN_EPS);
  return os_geglu_ff_forward(be, &b->ff, u, scratch, T, u);
}

/* Frame position embedding pe [N, C]: time_pos_embed(sinusoid_C(f)) for n = b*F + f. */
static onestep_status
frame_position_embedding(os_backend *be, const os_st_transformer_w *t, float *pe, int B, int F)
{
  int N = B * F, C = t->channels;
  float *frames = malloc(sizeof(float) * N);
  float *host = malloc(sizeof(float) * (size_t)N * C);
  float *dev = os_alloc_floats(be, (size_t)N * C);
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (frames && host && dev) {
    for (int n = 0; n < N; n++)
      frames[n] = (float)(n % F);
    os_sinusoid_embedding(host, frames, N, C);
    OPS(be)->upload(be, dev, host, sizeof(float) * (size_t)N * C);
    status = os_timestep_embedding_forward(be, &t->time_pos_embed, pe, dev, N);
  }
  free(frames);
  free(host);
  os_free_floats(be, dev);
  return status;
}

onestep_status
os_st_transformer_forward(os_backend *be, const os_st_transformer_w *t, float **y, float *x,
                          const float *ctx, int B, int F, int H, int W)
{
  int N = B * F, S = H * W, C = t->channels;
  size_t n = (size_t)N * S * C;
  float *z = NULL, *mix = NULL, *scratch = NULL, *pe = NULL;
  *y = NULL;
  onestep_status status = os_check_abort(be);
  if (status != ONESTEP_OK)
    goto done;

  z = os_alloc_floats(be, n);       /* spatial stream [N*S, C], at the end the output */
  mix = os_alloc_floats(be, n);     /* temporal stream */
  /* normalised inputs, then the temporal stream for the blend: float32 */
  scratch = os_alloc_floats(be, n);
  pe = os_alloc_floats(be, (size_t)N * C);
  status = ONESTEP_ERR_OUT_OF_MEMORY;
  if (!z || !mix || !scratch || !pe)
    goto done;

  if ((status = frame_position_embedding(be, t, pe, B, F)) != ONESTEP_OK)
    goto done;

  OPS(be)->group_norm(be, mix, x, t->norm.gamma, t->norm.beta, N, C, S, 32, 1, TSM_GN_EPS, false);
  OPS(be)->permute_0213(be, scratch, mix, N, C, S, 1); /* [N,C,S] -> [N,S,C] */
  os_linear_forward(be, &t->proj_in, z, scratch, N * S, NULL);

  for (int l = 0; l < t->n_layers; l++) {
    status = spatial_block_forward(be, &t->spatial[l], z, scratch, ctx, B, F, S, C);
    if (status != ONESTEP_OK)
      goto done;
    OPS(be)->permute_0213(be, mix, z, B, F, S, C); /* [B,F,S,C] -> [B,S,F,C] */
    /* The frame embedding enters only the temporal branch: pe[b] [F, C] on
     * every pixel's row of F*C values. */
    for (int b = 0; b < B; b++)
      OPS(be)->add_row_vector(be, mix + (size_t)b * S * F * C, pe + (size_t)b * F * C, 1, S,
                              F * C);
    status = temporal_block_forward(be, &t->temporal[l], mix, scratch, ctx, B, S, F, C);
    if (status != ONESTEP_OK)
      goto done;
    OPS(be)->permute_0213(be, scratch, mix, B, S, F, C); /* back to [B,F,S,C] */
    OPS(be)->blend(be, z, z, scratch, t->spatial_alpha, n);
    if ((status = os_check_abort(be)) != ONESTEP_OK)
      goto done;
  }

  os_linear_forward(be, &t->proj_out, scratch, z, N * S, NULL);
  OPS(be)->permute_0213(be, z, scratch, N, S, C, 1); /* [N,S,C] -> [N,C,S] */
  OPS(be)->add(be, z, z, x, n);
  *y = z;
  z = NULL;
  status = ONESTEP_OK;
done:
  os_free_floats(be, x);
  os_free_floats(be, z);
  os_free_floats(be, mix);
  os_free_floats(be, scratch);
  os_free_floats(be, pe);
  return status;
}
