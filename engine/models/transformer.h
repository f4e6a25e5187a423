/* transformer.h: TransformerSpatioTemporalModel, the UNet's attention block:
 * a spatial transformer per frame, a temporal transformer per pixel, blended. */
#ifndef ONESTEP_TRANSFORMER_H
#define ONESTEP_TRANSFORMER_H

#include "layers.h"

#define OS_MAX_TRANSFORMER_LAYERS 8

typedef struct {
  os_norm_w norm1, norm2, norm3;
  os_attention_w attn1, attn2;
  os_geglu_ff_w ff;
} os_spatial_block_w;

typedef struct {
  os_norm_w norm_in, norm1, norm2, norm3;
  os_geglu_ff_w ff_in, ff;
  os_attention_w attn1, attn2;
} os_temporal_block_w;

typedef struct {
  int channels, heads, n_layers, context_dim;
  os_norm_w norm;
  os_linear_w proj_in, proj_out;
  os_timestep_embedding_w time_pos_embed;
  float spatial_alpha; /* out = alpha * spatial + (1 - alpha) * temporal */
  const float *mix_factor; /* [1]: alpha = sigmoid(mix_factor) */
  os_spatial_block_w spatial[OS_MAX_TRANSFORMER_LAYERS];
  os_temporal_block_w temporal[OS_MAX_TRANSFORMER_LAYERS];
} os_st_transformer_w;

void os_bind_st_transformer(os_weight_set *ws, os_st_transformer_w *t, const char *prefix,
                            int channels, int heads, int n_layers, int context_dim);

/* x [B*F, C, H, W] -> *y, a new buffer of the same shape (NULL on error);
 * takes x and frees it. ctx [B, context_dim] (the CLIP embedding of each
 * batch element, shared by its frames). */
onestep_status os_st_transformer_forward(os_backend *be, const os_st_transformer_w *t, float **y,
                                         float *x, const float *ctx, int B, int F, int H, int W);

#endif
