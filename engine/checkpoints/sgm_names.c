/* sgm_names.c: prefix rename tables (each usable in both directions) plus the
 * block-index arithmetic that the tables cannot express. */
#include "sgm_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct ruleset ruleset;
typedef struct {
  const char *sgm, *diffusers; /* a prefix ending in '.', or an exact leaf name */
  const ruleset *inner;        /* renames the rest of the name, NULL = kept as is */
} rule;
struct ruleset {
  const rule *rules;
  int n;
};
#define RULESET(name, ...)                                                                    \
  static const rule name##_rules[] = {__VA_ARGS__};                                           \
  static const ruleset name = {name##_rules, (int)(sizeof name##_rules / sizeof name##_rules[0])}

static bool put(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool put(char *out, size_t cap, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(out, cap, fmt, ap);
  va_end(ap);
  return len >= 0 && (size_t)len < cap;
}

static bool apply(const ruleset *rs, os_name_direction dir, const char *in, char *out, size_t cap)
{
  for (int r = 0; r < rs->n; r++) {
    const rule *ru = &rs->rules[r];
    const char *from = dir == OS_TO_DIFFUSERS ? ru->sgm : ru->diffusers;
    const char *to = dir == OS_TO_DIFFUSERS ? ru->diffusers : ru->sgm;
    size_t len = strlen(from);
    if (from[len - 1] != '.') {
      if (strcmp(in, from) == 0)
        return put(out, cap, "%s", to);
      continue;
    }
    if (strncmp(in, from, len) != 0)
      continue;
    const char *rest = in + len;
    if (!ru->inner)
      return put(out, cap, "%s%s", to, rest);
    size_t head = strlen(to);
    return put(out, cap, "%s", to) && apply(ru->inner, dir, rest, out + head, cap - head);
  }
  return false;
}

/* Matches "literal%d.literal%d." style prefixes; returns the rest or NULL. */
static const char *match2(const char *in, const char *fmt, int *a, int *b)
{
  int n = -1;
  int got = b ? sscanf(in, fmt, a, b, &n) : sscanf(in, fmt, a, &n);
  if (got != (b ? 2 : 1) || n < 0 || *a < 0 || (b && *b < 0))
    return NULL;
  return in + n;
}

static const char *after(const char *in, const char *prefix)
{
  size_t len = strlen(prefix);
  return strncmp(in, prefix, len) == 0 ? in + len : NULL;
}

/* ---- UNet (checkpoints.md 3.4) ---- */

RULESET(unet_top,
        {"time_embed.0.", "time_embedding.linear_1.", NULL},
        {"time_embed.2.", "time_embedding.linear_2.", NULL},
        {"label_emb.0.0.", "add_embedding.linear_1.", NULL},
        {"label_emb.0.2.", "add_embedding.linear_2.", NULL},
        {"input_blocks.0.0.", "conv_in.", NULL},
        {"out.0.", "conv_norm_out.", NULL},
        {"out.2.", "conv_out.", NULL});

RULESET(unet_resnet,
        {"in_layers.0.", "spatial_res_block.norm1.", NULL},
        {"in_layers.2.", "spatial_res_block.conv1.", NULL},
        {"emb_layers.1.", "spatial_res_block.time_emb_proj.", NULL},
        {"out_layers.0.", "spatial_res_block.norm2.", NULL},
        {"out_layers.3.", "spatial_res_block.conv2.", NULL},
        {"skip_connection.", "spatial_res_block.conv_shortcut.", NULL},
        {"time_stack.in_layers.0.", "temporal_res_block.norm1.", NULL},
        {"time_stack.in_layers.2.", "temporal_res_block.conv1.", NULL},
        {"time_stack.emb_layers.1.", "temporal_res_block.time_emb_proj.", NULL},
        {"time_stack.out_layers.0.", "temporal_res_block.norm2.", NULL},
        {"time_stack.out_layers.3.", "temporal_res_block.conv2.", NULL},
        {"time_mixer.mix_factor", "time_mixer.mix_factor", NULL});

RULESET(unet_transformer,
        {"norm.", "norm.", NULL},
        {"proj_in.", "proj_in.", NULL},
        {"proj_out.", "proj_out.", NULL},
        {"transformer_blocks.", "transformer_blocks.", NULL},
        {"time_stack.", "temporal_transformer_blocks.", NULL},
        {"time_pos_embed.0.", "time_pos_embed.linear_1.", NULL},
        {"time_pos_embed.2.", "time_pos_embed.linear_2.", NULL},
        {"time_mixer.mix_factor", "time_mixer.mix_factor", NULL});

/* Writes `head` then renames `rest` with rs. */
static bool put_inner(char *out, size_t cap, const char *head, const ruleset *rs,
                      os_name_direction dir, const char *rest)
{
  size_t len = strlen(head);
  return put(out, cap, "%s", head) && apply(rs, dir, rest, out + len, cap - len);
}

static bool unet_to_diffusers(const os_unet_config *cfg, const char *in, char *out, size_t cap)
{
  int lpb = cfg->layers_per_block, per = lpb + 1, i, slot;
  char head[96];
  const char *rest;
  if (apply(&unet_top, OS_TO_DIFFUSERS, in, out, cap))
    return true;
  if ((rest = match2(in, "input_blocks.%d.%d.%n", &i, &slot)) && i >= 1) {
    int level = (i - 1) / per, j = (i - 1) % per;
    if (level >= cfg->n_levels)
      return false;
    if (j == lpb) {
      const char *conv = after(rest, "op.");
      return slot == 0 && conv && level < cfg->n_levels - 1 &&
             put(out, cap, "down_blocks.%d.downsamplers.0.conv.%s", level, conv);
    }
    if (slot == 0) {
      snprintf(head, sizeof head, "down_blocks.%d.resnets.%d.", level, j);
      return put_inner(out, cap, head, &unet_resnet, OS_TO_DIFFUSERS, rest);
    }
    if (slot == 1 && cfg->down_has_attention[level]) {
      snprintf(head, sizeof head, "down_blocks.%d.attentions.%d.", level, j);
      return put_inner(out, cap, head, &unet_transformer, OS_TO_DIFFUSERS, rest);
    }
    return false;
  }
  if ((rest = match2(in, "middle_block.%d.%n", &i, NULL))) {
    if (i == 1)
      return put_inner(out, cap, "mid_block.attentions.0.", &unet_transformer, OS_TO_DIFFUSERS,
                       rest);
    if (i != 0 && i != 2)
      return false;
    snprintf(head, sizeof head, "mid_block.resnets.%d.", i / 2);
    return put_inner(out, cap, head, &unet_resnet, OS_TO_DIFFUSERS, rest);
  }
  if ((rest = match2(in, "output_blocks.%d.%d.%n", &i, &slot))) {
    int level = i / per, j = i % per;
    bool attn = level < cfg->n_levels && cfg->up_has_attention[level];
    const char *conv = after(rest, "conv.");
    if (level >= cfg->n_levels)
      return false;
    if (slot == 0) {
      snprintf(head, sizeof head, "up_blocks.%d.resnets.%d.", level, j);
      return put_inner(out, cap, head, &unet_resnet, OS_TO_DIFFUSERS, rest);
    }
    if (slot == 1 && attn) {
      snprintf(head, sizeof head, "up_blocks.%d.attentions.%d.", level, j);
      return put_inner(out, cap, head, &unet_transformer, OS_TO_DIFFUSERS, rest);
    }
    /* The upsampler sits in the slot after the attention, if the level has one. */
    if (slot == (attn ? 2 : 1) && j == lpb && level < cfg->n_levels - 1 && conv)
      return put(out, cap, "up_blocks.%d.upsamplers.0.conv.%s", level, conv);
    return false;
  }
  return false;
}

static bool unet_to_sgm(const os_unet_config *cfg, const char *in, char *out, size_t cap)
{
  int lpb = cfg->layers_per_block, per = lpb + 1, level, j;
  char head[96];
  const char *rest;
  if (apply(&unet_top, OS_TO_SGM, in, out, cap))
    return true;
  if ((rest = match2(in, "down_blocks.%d.resnets.%d.%n", &level, &j)) && j < lpb) {
    snprintf(head, sizeof head, "input_blocks.%d.0.", level * per + j + 1);
    return put_inner(out, cap, head, &unet_resnet, OS_TO_SGM, rest);
  }
  if ((rest = match2(in, "down_blocks.%d.attentions.%d.%n", &level, &j)) && j < lpb) {
    snprintf(head, sizeof head, "input_blocks.%d.1.", level * per + j + 1);
    return put_inner(out, cap, head, &unet_transformer, OS_TO_SGM, rest);
  }
  if ((rest = match2(in, "down_blocks.%d.downsamplers.0.conv.%n", &level, NULL)))
    return put(out, cap, "input_blocks.%d.0.op.%s", level * per + lpb + 1, rest);
  if ((rest = match2(in, "mid_block.resnets.%d.%n", &j, NULL)) && j < 2) {
    snprintf(head, sizeof head, "middle_block.%d.", 2 * j);
    return put_inner(out, cap, head, &unet_resnet, OS_TO_SGM, rest);
  }
  if ((rest = after(in, "mid_block.attentions.0.")))
    return put_inner(out, cap, "middle_block.1.", &unet_transformer, OS_TO_SGM, rest);
  if ((rest = match2(in, "up_blocks.%d.resnets.%d.%n", &level, &j)) && j <= lpb) {
    snprintf(head, sizeof head, "output_blocks.%d.0.", level * per + j);
    return put_inner(out, cap, head, &unet_resnet, OS_TO_SGM, rest);
  }
  if ((rest = match2(in, "up_blocks.%d.attentions.%d.%n", &level, &j)) && j <= lpb) {
    snprintf(head, sizeof head, "output_blocks.%d.1.", level * per + j);
    return put_inner(out, cap, head, &unet_transformer, OS_TO_SGM, rest);
  }
  if ((rest = match2(in, "up_blocks.%d.upsamplers.0.conv.%n", &level, NULL)) &&
      level < cfg->n_levels)
    return put(out, cap, "output_blocks.%d.%d.conv.%s", level * per + lpb,
               cfg->up_has_attention[level] ? 2 : 1, rest);
  return false;
}

bool os_sgm_unet_name(const os_unet_config *cfg, os_name_direction dir, const char *in,
                      char *out, size_t cap)
{
  return dir == OS_TO_DIFFUSERS ? unet_to_diffusers(cfg, in, out, cap)
                                : unet_to_sgm(cfg, in, out, cap);
}

/* ---- VAE (checkpoints.md 3.5) ---- */

RULESET(vae_attention,
        {"norm.", "group_norm.", NULL},
        {"q.", "to_q.", NULL},
        {"k.", "to_k.", NULL},
        {"v.", "to_v.", NULL},
        {"proj_out.", "to_out.0.", NULL});

RULESET(decoder_resnet,
        {"norm1.", "spatial_res_block.norm1.", NULL},
        {"conv1.", "spatial_res_block.conv1.", NULL},
        {"norm2.", "spatial_res_block.norm2.", NULL},
        {"conv2.", "spatial_res_block.conv2.", NULL},
        {"nin_shortcut.", "spatial_res_block.conv_shortcut.", NULL},
        {"time_stack.in_layers.0.", "temporal_res_block.norm1.", NULL},
        {"time_stack.in_layers.2.", "temporal_res_block.conv1.", NULL},
        {"time_stack.out_layers.0.", "temporal_res_block.norm2.", NULL},
        {"time_stack.out_layers.3.", "temporal_res_block.conv2.", NULL},
        {"mix_factor", "time_mixer.mix_factor", NULL});

RULESET(decoder_top,
        {"conv_in.", "conv_in.", NULL},
        {"norm_out.", "conv_norm_out.", NULL},
        {"conv_out.time_mix_conv.", "time_conv_out.", NULL},
        {"conv_out.", "conv_out.", NULL},
        {"mid.block_1.", "mid_block.resnets.0.", &decoder_resnet},
        {"mid.block_2.", "mid_block.resnets.1.", &decoder_resnet},
        {"mid.attn_1.", "mid_block.attentions.0.", &vae_attention});

bool os_sgm_vae_decoder_name(int n_levels, os_name_direction dir, const char *in, char *out,
                             size_t cap)
{
  int b, j;
  char head[96];
  const char *rest;
  if (apply(&decoder_top, dir, in, out, cap))
    return true;
  /* sgm counts up levels from the bottom, diffusers from the top. */
  if (dir == OS_TO_DIFFUSERS) {
    if ((rest = match2(in, "up.%d.block.%d.%n", &b, &j)) && b < n_levels) {
      snprintf(head, sizeof head, "up_blocks.%d.resnets.%d.", n_levels - 1 - b, j);
      return put_inner(out, cap, head, &decoder_resnet, dir, rest);
    }
    if ((rest = match2(in, "up.%d.upsample.conv.%n", &b, NULL)) && b < n_levels)
      return put(out, cap, "up_blocks.%d.upsamplers.0.conv.%s", n_levels - 1 - b, rest);
  } else {
    if ((rest = match2(in, "up_blocks.%d.resnets.%d.%n", &b, &j)) && b < n_levels) {
      snprintf(head, sizeof head, "up.%d.block.%d.", n_levels - 1 - b, j);
      return put_inner(out, cap, head, &decoder_resnet, dir, rest);
    }
    if ((rest = match2(in, "up_blocks.%d.upsamplers.0.conv.%n", &b, NULL)) && b < n_levels)
      return put(out, cap, "up.%d.upsample.conv.%s", n_levels - 1 - b, rest);
  }
  return false;
}

RULESET(encoder_resnet,
        {"norm1.", "norm1.", NULL},
        {"conv1.", "conv1.", NULL},
        {"norm2.", "norm2.", NULL},
        {"conv2.", "conv2.", NULL},
        {"nin_shortcut.", "conv_shortcut.", NULL});

RULESET(encoder_top,
        {"conv_in.", "conv_in.", NULL},
        {"conv_out.", "conv_out.", NULL},
        {"norm_out.", "conv_norm_out.", NULL},
        {"mid.block_1.", "mid_block.resnets.0.", &encoder_resnet},
        {"mid.block_2.", "mid_block.resnets.1.", &encoder_resnet},
        {"mid.attn_1.", "mid_block.attentions.0.", &vae_attention});

bool os_sgm_vae_encoder_name(os_name_direction dir, const char *in, char *out, size_t cap)
{
  int b, j;
  char head[96];
  const char *rest;
  bool to_diffusers = dir == OS_TO_DIFFUSERS;
  if (apply(&encoder_top, dir, in, out, cap))
    return true;
  if ((rest = match2(in, to_diffusers ? "down.%d.block.%d.%n" : "down_blocks.%d.resnets.%d.%n",
                     &b, &j))) {
    snprintf(head, sizeof head, to_diffusers ? "down_blocks.%d.resnets.%d." : "down.%d.block.%d.",
             b, j);
    return put_inner(out, cap, head, &encoder_resnet, dir, rest);
  }
  if ((rest = match2(in, to_diffusers ? "down.%d.downsample.conv.%n"
                                      : "down_blocks.%d.downsamplers.0.conv.%n",
                     &b, NULL)))
    return put(out, cap, to_diffusers ? "down_blocks.%d.downsamplers.0.conv.%s"
                                      : "down.%d.downsample.conv.%s",
               b, rest);
  return false;
}

/* ---- OpenCLIP ViT tower (checkpoints.md 3.6) ---- */

RULESET(clip_layer,
        {"ln_1.", "layer_norm1.", NULL},
        {"ln_2.", "layer_norm2.", NULL},
        {"attn.out_proj.", "self_attn.out_proj.", NULL},
        {"mlp.c_fc.", "mlp.fc1.", NULL},
        {"mlp.c_proj.", "mlp.fc2.", NULL});

RULESET(clip_top,
        {"conv1.", "vision_model.embeddings.patch_embedding.", NULL},
        {"class_embedding", "vision_model.embeddings.class_embedding", NULL},
        {"positional_embedding", "vision_model.embeddings.position_embedding.weight", NULL},
        {"ln_pre.", "vision_model.pre_layrnorm.", NULL},
        {"ln_post.", "vision_model.post_layernorm.", NULL});

bool os_sgm_clip_name(os_name_direction dir, const char *in, char *out, size_t cap)
{
  int n;
  char head[96];
  const char *rest;
  bool to_diffusers = dir == OS_TO_DIFFUSERS;
  if (apply(&clip_top, dir, in, out, cap))
    return true;
  if ((rest = match2(in, to_diffusers ? "transformer.resblocks.%d.%n"
                                      : "vision_model.encoder.layers.%d.%n",
                     &n, NULL))) {
    snprintf(head, sizeof head,
             to_diffusers ? "vision_model.encoder.layers.%d." : "transformer.resblocks.%d.", n);
    return put_inner(out, cap, head, &clip_layer, dir, rest);
  }
  return false;
}
