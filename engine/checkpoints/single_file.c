/* single_file.c: Stability's single-file SVD checkpoints (checkpoints.md
 * section 3): detection, the architecture from tensor shapes (3.8), and every
 * tensor registered under its diffusers / transformers name. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "error.h"
#include "sgm_names.h"

#define UNET_PREFIX "model.diffusion_model."
#define DECODER_PREFIX "first_stage_model.decoder."
#define FIRST_STAGE_ENCODER_PREFIX "first_stage_model.encoder."
#define COND_ENCODER_PREFIX "conditioner.embedders.3.encoder.encoder."
#define COND_QUANT_PREFIX "conditioner.embedders.3.encoder.quant_conv."
#define OPEN_CLIP_PREFIX "conditioner.embedders.0.open_clip.model."
#define VISUAL_PREFIX OPEN_CLIP_PREFIX "visual."

const os_st_tensor *os_find_tensorf(const os_safetensors *st, const char *fmt, ...)
{
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return os_safetensors_find(st, name);
}

bool os_has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A tensor the architecture needs to be read from; NULL sets error. */
static const os_st_tensor *need(const os_safetensors *st, const char *name, int min_ndim,
                                onestep_error *error)
{
  const os_st_tensor *t = os_safetensors_find(st, name);
  if (!t)
    os_error_set(error, ONESTEP_ERR_MODEL, "%s: tensor %s is missing", st->path, name);
  else if (t->ndim < min_ndim) {
    os_error_set(error, ONESTEP_ERR_MODEL, "%s: tensor %s has %d dims, expected %d or more",
                 st->path, name, t->ndim, min_ndim);
    t = NULL;
  }
  return t;
}

static int count_indices(const os_safetensors *st, const char *fmt_with_index)
{
  int n = 0;
  while (os_find_tensorf(st, fmt_with_index, n))
    n++;
  return n;
}

/* ---- detection ---- */

static bool any_key(const os_safetensors *st, const char *prefix, const char *contains)
{
  for (int i = 0; i < st->n_tensors; i++)
    if (os_has_prefix(st->tensors[i].name, prefix) &&
        (!contains || strstr(st->tensors[i].name, contains)))
      return true;
  return false;
}

static onestep_status detect(const os_safetensors *st, onestep_error *error)
{
  if (!any_key(st, UNET_PREFIX, NULL)) {
    if (any_key(st, "down_blocks.", NULL) || any_key(st, "input_blocks.", NULL) ||
        any_key(st, "diffusion_model.", NULL))
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s is a UNet-only file: pass it as the UNet (--unet) together with "
                          "a base model folder",
                          st->path);
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: not a Stability SVD checkpoint (no " UNET_PREFIX "* tensors)",
                        st->path);
  }
  if (!any_key(st, UNET_PREFIX "input_blocks.", ".time_stack."))
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: an image model checkpoint (e.g. Stable Diffusion 1.5), not Stable "
                        "Video Diffusion: " UNET_PREFIX "input_blocks has no time_stack layers",
                        st->path);
  if (!os_safetensors_find(st, DECODER_PREFIX "conv_out.time_mix_conv.weight")) {
    if (os_safetensors_find(st, DECODER_PREFIX "conv_in.weight"))
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s: an *_image_decoder variant (its " DECODER_PREFIX
                          "* is a per-frame 2-D decoder without time_mix_conv), which Onestep "
                          "does not support; use svd.safetensors or svd_xt.safetensors",
                          st->path);
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: no VAE decoder (" DECODER_PREFIX "*)",
                        st->path);
  }
  if (!os_safetensors_find(st, VISUAL_PREFIX "conv1.weight"))
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: no OpenCLIP image encoder (" VISUAL_PREFIX "conv1.weight)", st->path);
  return ONESTEP_OK;
}

/* ---- architecture from shapes (checkpoints.md 3.8) ---- */

static int frames_from_name(const char *path)
{
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return strstr(base, "xt") || strstr(base, "XT") ? 25 : 14;
}

static onestep_status infer_unet(const os_safetensors *st, const os_checkpoint_options *o,
                                 const char *path, os_unet_config *c, onestep_error *error)
{
  memset(c, 0, sizeof *c);
  const os_st_tensor *t;
  /* Input block i >= 1 is a resnet (+ transformer) or a downsampler. */
  int max_block = 0, first_down = 0;
  while (os_find_tensorf(st, UNET_PREFIX "input_blocks.%d.0.in_layers.2.weight", max_block + 1) ||
         os_find_tensorf(st, UNET_PREFIX "input_blocks.%d.0.op.weight", max_block + 1)) {
    max_block++;
    if (!first_down && os_find_tensorf(st, UNET_PREFIX "input_blocks.%d.0.op.weight", max_block))
      first_down = max_block;
  }
  if (max_block < 1)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: no UNet input blocks found", path);
  int lpb = first_down ? first_down - 1 : max_block;
  int per = lpb + 1;
  if (lpb < 1 || (max_block - lpb) % per != 0)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: UNet input blocks 1..%d do not form levels of %d resnets and a "
                        "downsampler",
                        path, max_block, lpb);
  c->layers_per_block = lpb;
  c->n_levels = (max_block - lpb) / per + 1;
  if (c->n_levels > OS_MAX_LEVELS)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: %d UNet levels (at most %d)", path,
                        c->n_levels, OS_MAX_LEVELS);
  char name[256];
  for (int level = 0; level < c->n_levels; level++) {
    int block = level * per + 1;
    snprintf(name, sizeof name, UNET_PREFIX "input_blocks.%d.0.in_layers.2.weight", block);
    if (!(t = need(st, name, 1, error)))
      return error->code;
    c->block_out_channels[level] = (int)t->shape[0];
    c->down_has_attention[level] =
        os_find_tensorf(st, UNET_PREFIX "input_blocks.%d.1.proj_in.weight", block) != NULL;
    c->up_has_attention[level] =
        os_find_tensorf(st, UNET_PREFIX "output_blocks.%d.1.proj_in.weight", level * per) != NULL;
    int layers = 0;
    while (os_find_tensorf(st, UNET_PREFIX "input_blocks.%d.1.transformer_blocks.%d.norm1.weight",
                           block, layers))
      layers++;
    c->transformer_layers_per_block[level] = layers ? layers : 1;
    int heads = o->unet_attention_heads ? o->unet_attention_heads
                                        : c->block_out_channels[level] / 64;
    if (heads < 1)
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s: UNet width %d is below SVD's head width 64; give the number of "
                          "attention heads",
                          path, c->block_out_channels[level]);
    c->num_attention_heads[level] = heads;
    if (!c->cross_attention_dim && c->down_has_attention[level]) {
      snprintf(name, sizeof name,
               UNET_PREFIX "input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", block);
      if (!(t = need(st, name, 2, error)))
        return error->code;
      c->cross_attention_dim = (int)t->shape[1];
    }
  }
  if (!c->cross_attention_dim)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: the UNet has no attention level", path);
  if (!(t = need(st, UNET_PREFIX "input_blocks.0.0.weight", 2, error)))
    return error->code;
  c->in_channels = (int)t->shape[1];
  if (!(t = need(st, UNET_PREFIX "out.2.weight", 1, error)))
    return error->code;
  c->out_channels = (int)t->shape[0];
  if (!(t = need(st, UNET_PREFIX "label_emb.0.0.weight", 2, error)))
    return error->code;
  c->projection_class_embeddings_input_dim = (int)t->shape[1];
  c->addition_time_embed_dim = (int)t->shape[1] / 3;
  c->num_frames = o->frames_hint > 0 ? o->frames_hint : frames_from_name(path);
  c->sample_size = 96; /* SVD's; shapes do not tell it */
  return ONESTEP_OK;
}

static const char *encoder_prefix(const os_safetensors *st)
{
  /* sgm conditions on the conditioner's copy of the encoder (with quant_conv). */
  return os_safetensors_find(st, COND_ENCODER_PREFIX "conv_in.weight") ? COND_ENCODER_PREFIX
                                                                       : FIRST_STAGE_ENCODER_PREFIX;
}

static onestep_status infer_vae(const os_safetensors *st, const char *path, os_vae_config *c,
                                onestep_error *error)
{
  memset(c, 0, sizeof *c);
  const char *enc = encoder_prefix(st);
  char fmt[256], name[256];
  const os_st_tensor *t;
  snprintf(fmt, sizeof fmt, "%sdown.%%d.block.0.conv1.weight", enc);
  c->n_levels = count_indices(st, fmt);
  snprintf(fmt, sizeof fmt, "%sdown.0.block.%%d.conv1.weight", enc);
  c->layers_per_block = count_indices(st, fmt);
  if (c->n_levels < 1 || c->n_levels > OS_MAX_LEVELS || c->layers_per_block < 1)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: no usable VAE encoder under %s", path, enc);
  for (int b = 0; b < c->n_levels; b++) {
    t = os_find_tensorf(st, "%sdown.%d.block.0.conv1.weight", enc, b);
    c->block_out_channels[b] = (int)t->shape[0];
  }
  snprintf(name, sizeof name, "%sconv_in.weight", enc);
  if (!(t = need(st, name, 2, error)))
    return error->code;
  c->in_channels = (int)t->shape[1];
  if (!(t = need(st, DECODER_PREFIX "conv_in.weight", 2, error)))
    return error->code;
  c->latent_channels = (int)t->shape[1];
  if (!(t = need(st, DECODER_PREFIX "conv_out.weight", 1, error)))
    return error->code;
  c->out_channels = (int)t->shape[0];
  c->norm_num_groups = 32;
  c->scaling_factor = 0.18215f;
  c->force_upcast = true;
  c->sample_size = 768;
  return ONESTEP_OK;
}

static onestep_status infer_clip(const os_safetensors *st, const os_checkpoint_options *o,
                                 const char *path, os_clip_config *c, onestep_error *error)
{
  memset(c, 0, sizeof *c);
  const os_st_tensor *t;
  if (!(t = need(st, VISUAL_PREFIX "conv1.weight", 4, error)))
    return error->code;
  c->hidden_size = (int)t->shape[0];
  c->num_channels = (int)t->shape[1];
  c->patch_size = (int)t->shape[2];
  if (!(t = need(st, VISUAL_PREFIX "positional_embedding", 2, error)))
    return error->code;
  int side = (int)lround(sqrt((double)(t->shape[0] - 1)));
  if ((int64_t)side * side + 1 != t->shape[0])
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: " VISUAL_PREFIX "positional_embedding has %lld rows, not a square "
                        "patch grid plus one",
                        path, (long long)t->shape[0]);
  c->image_size = side * c->patch_size;
  c->num_hidden_layers = count_indices(st, VISUAL_PREFIX "transformer.resblocks.%d.ln_1.weight");
  if (!(t = need(st, VISUAL_PREFIX "transformer.resblocks.0.mlp.c_fc.weight", 2, error)))
    return error->code;
  c->intermediate_size = (int)t->shape[0];
  if (!(t = need(st, VISUAL_PREFIX "proj", 2, error)))
    return error->code;
  c->projection_dim = (int)t->shape[1];
  c->num_attention_heads = o->clip_attention_heads ? o->clip_attention_heads : c->hidden_size / 80;
  if (c->num_attention_heads < 1)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: CLIP width %d is below ViT-H's head width 80; give the number of "
                        "attention heads",
                        path, c->hidden_size);
  c->layer_norm_eps = 1e-5f;
  c->quick_gelu = false;
  return ONESTEP_OK;
}

static void svd_scheduler(os_scheduler_config *s)
{
  memset(s, 0, sizeof *s);
  s->sigma_min = 0.002f;
  s->sigma_max = 700.0f;
  s->use_karras_sigmas = true;
  s->v_prediction = true;
  s->timestep_continuous = true;
  snprintf(s->timestep_spacing, sizeof s->timestep_spacing, "leading");
  s->final_sigma_zero = true;
  s->num_train_timesteps = 1000;
  s->rho = 7.0f;
}

static void clip_preprocess(os_preprocess_config *p)
{
  static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  memcpy(p->image_mean, mean, sizeof mean);
  memcpy(p->image_std, std, sizeof std);
}

/* ---- registration ---- */

/* Registers a derived tensor; NULL means deriving it ran out of memory. */
static onestep_status add_derived(os_weight_set *ws, const char *name, const os_st_tensor *t,
                                  onestep_error *error)
{
  if (!t)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory deriving %s", name);
  return os_weight_set_add(ws, name, t, error);
}

/* VAE attention 1x1 convs become linear weights: [C, C, 1, 1] -> [C, C]. */
static onestep_status add_vae(os_checkpoint_store *s, os_weight_set *ws, const char *name,
                              const os_st_tensor *t, onestep_error *error)
{
  if (strstr(name, "mid_block.attentions.0.") && t->ndim == 4 && t->shape[2] == 1 &&
      t->shape[3] == 1)
    return add_derived(ws, name, os_store_view(s, t, name, 2, t->shape, 0), error);
  return os_weight_set_add(ws, name, t, error);
}

/* OpenCLIP's fused attention input projection: rows q, k, v. */
static onestep_status add_clip_in_proj(os_checkpoint_store *s, os_weight_set *ws, int layer,
                                       const char *kind, const os_st_tensor *t,
                                       onestep_error *error)
{
  static const char *const parts[3] = {"q", "k", "v"};
  if (t->shape[0] % 3 != 0)
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: %lld rows cannot split into q, k, v",
                        t->name, (long long)t->shape[0]);
  int64_t shape[OS_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[0] /= 3;
  size_t part_bytes = t->nbytes / 3;
  for (int p = 0; p < 3; p++) {
    char name[256];
    snprintf(name, sizeof name, "vision_model.encoder.layers.%d.self_attn.%s_proj.%s", layer,
             parts[p], kind);
    onestep_status status =
        add_derived(ws, name, os_store_view(s, t, name, t->ndim, shape, p * part_bytes), error);
    if (status != ONESTEP_OK)
      return status;
  }
  return ONESTEP_OK;
}

static onestep_status add_clip(os_checkpoint_store *s, os_weight_set *ws, const char *path,
                               const char *rest, const os_st_tensor *t, onestep_error *error)
{
  int layer, n = -1;
  char kind[16], name[256];
  if (sscanf(rest, "transformer.resblocks.%d.attn.in_proj_%15s%n", &layer, kind, &n) == 2 &&
      n > 0 && (strcmp(kind, "weight") == 0 || strcmp(kind, "bias") == 0))
    return add_clip_in_proj(s, ws, layer, kind, t, error);
  if (strcmp(rest, "proj") == 0) /* used as pooled @ proj; transformers stores proj^T */
    return add_derived(ws, "visual_projection.weight",
               t->ndim == 2 ? os_store_transpose(s, t, "visual_projection.weight") : NULL, error);
  if (!os_sgm_clip_name(OS_TO_DIFFUSERS, rest, name, sizeof name))
    return os_error_set(error, ONESTEP_ERR_MODEL, "%s: unexpected image encoder tensor %s",
                        path, t->name);
  return os_weight_set_add(ws, name, t, error);
}

/* Leftovers that sgm files carry but inference does not use (checkpoints.md 3.7). */
static bool ignored(const char *name, const char *encoder)
{
  if (os_has_prefix(name, OPEN_CLIP_PREFIX) && !os_has_prefix(name, VISUAL_PREFIX))
    return true; /* the text tower's remains */
  if (os_has_prefix(name, "conditioner.embedders.3.encoder.decoder.") ||
      os_has_prefix(name, "conditioner.embedders.3.encoder.post_quant_conv."))
    return true;
  if (strcmp(encoder, COND_ENCODER_PREFIX) == 0 && os_has_prefix(name, FIRST_STAGE_ENCODER_PREFIX))
    return true;
  if (os_has_prefix(name, "denoiser.") || os_has_prefix(name, "model_ema."))
    return true;
  size_t len = strlen(name);
  return len >= 13 && strcmp(name + len - 13, ".position_ids") == 0;
}

/* Without the conditioner's encoder, the first-stage encoder has no
 * quant_conv: an identity one keeps the diffusers layout. */
static onestep_status add_identity_quant_conv(os_checkpoint_store *s, os_weight_set *ws,
                                              int channels, onestep_error *error)
{
  int64_t wshape[4] = {channels, channels, 1, 1}, bshape[1] = {channels};
  float *w = calloc((size_t)channels * channels, sizeof *w);
  float *b = calloc(channels, sizeof *b);
  if (!w || !b) {
    free(w);
    free(b);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for quant_conv");
  }
  for (int i = 0; i < channels; i++)
    w[i * channels + i] = 1.0f;
  onestep_status status =
      add_derived(ws, "quant_conv.weight", os_store_owned(s, "quant_conv.weight", 4, wshape, w), error);
  if (status == ONESTEP_OK)
    status = add_derived(ws, "quant_conv.bias", os_store_owned(s, "quant_conv.bias", 1, bshape, b), error);
  else
    free(b);
  return status;
}

static onestep_status register_tensor(os_checkpoint_store *s, const os_safetensors *st,
                                      const os_model_config *cfg, os_model_source *out,
                                      const char *encoder, const os_st_tensor *t,
                                      onestep_error *error)
{
  const char *name = t->name;
  char mapped[512], full[600];
  if (os_has_prefix(name, UNET_PREFIX)) {
    if (!os_sgm_unet_name(&cfg->unet, OS_TO_DIFFUSERS, name + strlen(UNET_PREFIX), mapped,
                          sizeof mapped))
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s: unexpected UNet tensor %s (no diffusers counterpart for the "
                          "architecture read from the file)",
                          st->path, name);
    return os_store_add_unet(s, out->unet, mapped, t, error);
  }
  if (os_has_prefix(name, DECODER_PREFIX)) {
    if (!os_sgm_vae_decoder_name(cfg->vae.n_levels, OS_TO_DIFFUSERS, name + strlen(DECODER_PREFIX),
                                 mapped, sizeof mapped))
      return os_error_set(error, ONESTEP_ERR_MODEL, "%s: unexpected VAE decoder tensor %s",
                          st->path, name);
    snprintf(full, sizeof full, "decoder.%s", mapped);
    return add_vae(s, out->vae, full, t, error);
  }
  if (os_has_prefix(name, encoder)) {
    if (!os_sgm_vae_encoder_name(OS_TO_DIFFUSERS, name + strlen(encoder), mapped, sizeof mapped))
      return os_error_set(error, ONESTEP_ERR_MODEL, "%s: unexpected VAE encoder tensor %s",
                          st->path, name);
    snprintf(full, sizeof full, "encoder.%s", mapped);
    return add_vae(s, out->vae, full, t, error);
  }
  if (os_has_prefix(name, COND_QUANT_PREFIX) && strcmp(encoder, COND_ENCODER_PREFIX) == 0) {
    snprintf(full, sizeof full, "quant_conv.%s", name + strlen(COND_QUANT_PREFIX));
    return os_weight_set_add(out->vae, full, t, error);
  }
  if (os_has_prefix(name, VISUAL_PREFIX))
    return add_clip(s, out->clip, st->path, name + strlen(VISUAL_PREFIX), t, error);
  if (ignored(name, encoder))
    return ONESTEP_OK;
  return os_error_set(error, ONESTEP_ERR_MODEL, "%s: unexpected tensor %s", st->path, name);
}

onestep_status os_single_file_open(os_checkpoint_store *s, const char *path,
                                   const os_checkpoint_options *options, os_backend *be,
                                   os_model_source *out, onestep_error *error)
{
  os_safetensors *st = os_store_open(s, path, error);
  if (!st)
    return error ? error->code : ONESTEP_ERR_IO;
  os_model_config *cfg = &out->config;
  onestep_status status;
  if ((status = detect(st, error)) != ONESTEP_OK ||
      (status = infer_unet(st, options, path, &cfg->unet, error)) != ONESTEP_OK ||
      (status = infer_vae(st, path, &cfg->vae, error)) != ONESTEP_OK ||
      (status = infer_clip(st, options, path, &cfg->clip, error)) != ONESTEP_OK)
    return status;
  snprintf(cfg->path, sizeof cfg->path, "%s", path);
  clip_preprocess(&cfg->preprocess);
  svd_scheduler(&cfg->scheduler);

  out->unet = os_weight_set_new("unet", path, be);
  out->vae = os_weight_set_new("vae", path, be);
  out->clip = os_weight_set_new("image_encoder", path, be);
  if (!out->unet || !out->vae || !out->clip)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  const char *encoder = encoder_prefix(st);
  if (options->unet_file) {
    /* The replacement UNet's tensors come from its own file. */
    status = os_unet_file_add(s, options->unet_file, &cfg->unet, out->unet, error);
    if (status != ONESTEP_OK)
      return status;
  }
  for (int i = 0; i < st->n_tensors; i++) {
    const os_st_tensor *t = &st->tensors[i];
    if (options->unet_file && os_has_prefix(t->name, UNET_PREFIX))
      continue;
    if ((status = register_tensor(s, st, cfg, out, encoder, t, error)) != ONESTEP_OK)
      return status;
  }
  if (strcmp(encoder, COND_ENCODER_PREFIX) != 0)
    return add_identity_quant_conv(s, out->vae, 2 * cfg->vae.latent_channels, error);
  return ONESTEP_OK;
}
