#include "clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "layers.h"

#define OPS(be) ((be)->ops)

typedef struct {
  os_norm_w layer_norm1, layer_norm2;
  os_attention_w self_attn;
  os_linear_w fc1, fc2;
} clip_layer;

struct os_clip {
  os_clip_config cfg;
  int n_positions;
  os_conv_w patch_embedding;
  const float *class_embedding, *position_embedding;
  os_norm_w pre_layrnorm, post_layernorm;
  clip_layer *layers;
  os_linear_w visual_projection;
};

os_clip *
os_clip_bind(const os_clip_config *cfg, os_weight_set *ws)
{
  if (cfg->patch_size < 1 || cfg->image_size < cfg->patch_size || cfg->num_hidden_layers < 0)
    return NULL;
  os_clip *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->layers = calloc(cfg->num_hidden_layers ? cfg->num_hidden_layers : 1, sizeof *c->layers);
  if (!c->layers) {
    free(c);
    return NULL;
  }
  c->cfg = *cfg;
  int D = cfg->hidden_size, side = cfg->image_size / cfg->patch_size;
  c->n_positions = side * side + 1;
  char name[256];

  os_bind_conv(ws, &c->patch_embedding, "vision_model.embeddings.patch_embedding",
               cfg->num_channels, D, cfg->patch_size, false);
  c->class_embedding =
      os_weights_take(ws, "vision_model.embeddings.class_embedding", 1, (int64_t[]){D});
  c->position_embedding = os_weights_take(ws, "vision_model.embeddings.position_embedding.weight",
                                          2, (int64_t[]){c->n_positions, D});
  os_bind_norm(ws, &c->pre_layrnorm, "vision_model.pre_layrnorm", D);
  for (int l = 0; l < cfg->num_hidden_layers; l++) {
    clip_layer *layer = &c->layers[l];
    os_format_name(name, sizeof name, "vision_model.encoder.layers.%d.layer_norm1", l);
    os_bind_norm(ws, &layer->layer_norm1, name, D);
    os_format_name(name, sizeof name, "vision_model.encoder.layers.%d.self_attn", l);
    os_bind_attention(ws, &layer->self_attn, name, D, D, cfg->num_attention_heads, true, "q_proj",
                      "k_proj", "v_proj", "out_proj");
    os_format_name(name, sizeof name, "vision_model.encoder.layers.%d.layer_norm2", l);
    os_bind_norm(ws, &layer->layer_norm2, name, D);
    os_format_name(name, sizeof name, "vision_model.encoder.layers.%d.mlp.fc1", l);
    os_bind_linear(ws, &layer->fc1, name, D, cfg->intermediate_size, true);
    os_format_name(name, sizeof name, "vision_model.encoder.layers.%d.mlp.fc2", l);
    os_bind_linear(ws, &layer->fc2, name, cfg->intermediate_size, D, true);
  }
  os_bind_norm(ws, &c->post_layernorm, "vision_model.post_layernorm", D);
  os_bind_linear(ws, &c->visual_projection, "visual_projection", D, cfg->projection_dim, false);
  return c;
}

void
os_clip_free(os_clip *clip)
{
  if (clip) {
    free(clip->layers);
    free(clip);
  }
}

/* Pre-LN encoder layer on z [T, D], in place. */
static onestep_status
encoder_layer_forward(os_backend *be, const os_clip *c, const clip_layer *layer, float *z,
                      float *scratch, float *mlp, int T)
{
  const os_clip_config *cfg = &c->cfg;
  int D = cfg->hidden_size;
  onestep_status status;
  OPS(be)->layer_norm(be, scratch, z, layer->layer_norm1.gamma, layer->layer_norm1.beta, T, D,
                      cfg->layer_norm_eps);
  if ((status = os_self_attention_forward(be, &layer->self_attn, z, scratch, 1, T)) != ONESTEP_OK)
    return status;
  OPS(be)->layer_norm(be, scratch, z, layer->layer_norm2.gamma, layer->layer_norm2.beta, T, D,
                      cfg->layer_norm_eps);
  os_linear_forward(be, &layer->fc1, mlp, scratch, T, NULL);
  size_t n = (size_t)T * cfg->intermediate_size;
  if (cfg->quick_gelu)
    OPS(be)->quick_gelu(be, mlp, mlp, n);
  else
    OPS(be)->gelu(be, mlp, mlp, n);
  os_linear_forward(be, &layer->fc2, z, mlp, T, z);
  return os_check_abort(be);
}

onestep_status
os_clip_forward(const os_clip *c, os_backend *be, const float *pixel_values, float *image_embeds,
                onestep_error *error)
{
  const os_clip_config *cfg = &c->cfg;
  int D = cfg->hidden_size, T = c->n_positions, side = cfg->image_size / cfg->patch_size;
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  float *patches = os_alloc_floats(be, (size_t)D * (T - 1)); /* the stream's start */
  float *z = os_alloc_floats(be, (size_t)T * D);
  float *scratch = os_alloc_activations(be, (size_t)T * D);
  float *mlp = os_alloc_activations(be, (size_t)T * cfg->intermediate_size);
  float *pooled = os_alloc_floats(be, D);
  if (!patches || !z || !scratch || !mlp || !pooled)
    goto done;

  /* Patch embedding [D, side, side] -> tokens after the class token, plus positions. */
  OPS(be)->conv2d(be, patches, pixel_values, c->patch_embedding.w, NULL, NULL, 1,
                  cfg->num_channels, cfg->image_size, cfg->image_size, D, cfg->patch_size,
                  cfg->patch_size, cfg->patch_size, 0, 0, 0, 0);
  OPS(be)->copy(be, z, c->class_embedding, sizeof(float) * D);
  OPS(be)->permute_0213(be, z + D, patches, 1, D, side * side, 1);
  OPS(be)->add(be, z, z, c->position_embedding, (size_t)T * D);
  OPS(be)->layer_norm(be, z, z, c->pre_layrnorm.gamma, c->pre_layrnorm.beta, T, D,
                      cfg->layer_norm_eps);
  for (int l = 0; l < cfg->num_hidden_layers; l++)
    if ((status = encoder_layer_forward(be, c, &c->layers[l], z, scratch, mlp, T)) != ONESTEP_OK)
      goto done;
  OPS(be)->layer_norm(be, pooled, z, c->post_layernorm.gamma, c->post_layernorm.beta, 1, D,
                      cfg->layer_norm_eps);
  os_linear_forward(be, &c->visual_projection, image_embeds, pooled, 1, NULL);
  /* An op stopped midway by an abort left garbage: never a result. */
  if ((status = os_check_abort(be)) == ONESTEP_OK)
    status = OPS(be)->sync(be, error);
done:
  os_free_floats(be, patches);
  os_free_floats(be, z);
  os_free_floats(be, scratch);
  os_free_floats(be, mlp);
  os_free_floats(be, pooled);
  if (status == ONESTEP_ERR_OUT_OF_MEMORY)
    os_error_set(error, status, "out of memory in the CLIP image encoder");
  else if (status == ONESTEP_ERR_ABORTED)
    os_error_set(error, status, "generation cancelled");
  return status;
}
