/* Checkpoint formats against the tiny golden folder model: the same model
 * written as a Stability single file, as UNet-only files, and with LoRA files
 * must load to the same (or offline-merged) weights; wrong files must fail
 * with messages that say what is wrong.
 *
 * usage: test-checkpoints MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "fixture.h"
#include "grid.h"
#include "sgm_fixture.h"
#include "sgm_names.h"
#include "store.h"
#include "test_util.h"
#include "unet.h"
#include "vae.h"

static const char *model_dir;
static char tmp[256];
static os_backend *be;

static void tmp_path(char *out, size_t cap, const char *name)
{
  snprintf(out, cap, "%s/%s", tmp, name);
}

/* ---- the name maps against hand-checked pairs (checkpoints.md 3.4-3.6), for
 * SVD's real layout, in both directions ---- */

static void check_pair(bool (*map)(os_name_direction, const char *, char *, size_t),
                       const char *sgm, const char *diffusers)
{
  char out[512];
  CHECK(map(OS_TO_DIFFUSERS, sgm, out, sizeof out) && strcmp(out, diffusers) == 0,
        "%s -> %s, want %s", sgm, out, diffusers);
  CHECK(map(OS_TO_SGM, diffusers, out, sizeof out) && strcmp(out, sgm) == 0, "%s -> %s, want %s",
        diffusers, out, sgm);
}

static os_unet_config svd_unet;
static bool svd_unet_map(os_name_direction dir, const char *in, char *out, size_t cap)
{
  return os_sgm_unet_name(&svd_unet, dir, in, out, cap);
}
static bool svd_decoder_map(os_name_direction dir, const char *in, char *out, size_t cap)
{
  return os_sgm_vae_decoder_name(4, dir, in, out, cap);
}

static void test_name_maps(void)
{
  svd_unet = (os_unet_config){.n_levels = 4,
                              .layers_per_block = 2,
                              .down_has_attention = {true, true, true, false},
                              .up_has_attention = {false, true, true, true}};
  static const char *const unet[][2] = {
      {"time_embed.0.weight", "time_embedding.linear_1.weight"},
      {"label_emb.0.2.bias", "add_embedding.linear_2.bias"},
      {"input_blocks.0.0.weight", "conv_in.weight"},
      {"out.0.weight", "conv_norm_out.weight"},
      {"out.2.bias", "conv_out.bias"},
      {"input_blocks.1.0.time_stack.emb_layers.1.bias",
       "down_blocks.0.resnets.0.temporal_res_block.time_emb_proj.bias"},
      {"input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"},
      {"input_blocks.4.0.skip_connection.weight",
       "down_blocks.1.resnets.0.spatial_res_block.conv_shortcut.weight"},
      {"input_blocks.8.1.time_stack.0.attn1.to_q.weight",
       "down_blocks.2.attentions.1.temporal_transformer_blocks.0.attn1.to_q.weight"},
      {"input_blocks.11.0.out_layers.3.weight",
       "down_blocks.3.resnets.1.spatial_res_block.conv2.weight"},
      {"middle_block.0.time_mixer.mix_factor", "mid_block.resnets.0.time_mixer.mix_factor"},
      {"middle_block.1.time_pos_embed.0.weight",
       "mid_block.attentions.0.time_pos_embed.linear_1.weight"},
      {"middle_block.2.in_layers.2.weight", "mid_block.resnets.1.spatial_res_block.conv1.weight"},
      {"output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"},
      {"output_blocks.4.0.skip_connection.weight",
       "up_blocks.1.resnets.1.spatial_res_block.conv_shortcut.weight"},
      {"output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"},
      {"output_blocks.8.1.time_mixer.mix_factor", "up_blocks.2.attentions.2.time_mixer.mix_factor"},
      {"output_blocks.11.1.proj_out.weight", "up_blocks.3.attentions.2.proj_out.weight"},
      {"output_blocks.9.1.transformer_blocks.0.ff.net.0.proj.weight",
       "up_blocks.3.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"},
  };
  for (size_t i = 0; i < sizeof unet / sizeof *unet; i++)
    check_pair(svd_unet_map, unet[i][0], unet[i][1]);
  static const char *const decoder[][2] = {
      {"conv_out.time_mix_conv.weight", "time_conv_out.weight"},
      {"conv_out.bias", "conv_out.bias"},
      {"norm_out.weight", "conv_norm_out.weight"},
      {"mid.block_1.mix_factor", "mid_block.resnets.0.time_mixer.mix_factor"},
      {"mid.attn_1.proj_out.weight", "mid_block.attentions.0.to_out.0.weight"},
      {"up.3.block.0.time_stack.in_layers.2.weight",
       "up_blocks.0.resnets.0.temporal_res_block.conv1.weight"},
      {"up.1.block.0.nin_shortcut.bias", "up_blocks.2.resnets.0.spatial_res_block.conv_shortcut.bias"},
      {"up.1.upsample.conv.weight", "up_blocks.2.upsamplers.0.conv.weight"},
  };
  for (size_t i = 0; i < sizeof decoder / sizeof *decoder; i++)
    check_pair(svd_decoder_map, decoder[i][0], decoder[i][1]);
  static const char *const encoder[][2] = {
      {"down.2.downsample.conv.weight", "down_blocks.2.downsamplers.0.conv.weight"},
      {"down.1.block.0.nin_shortcut.weight", "down_blocks.1.resnets.0.conv_shortcut.weight"},
      {"mid.attn_1.norm.bias", "mid_block.attentions.0.group_norm.bias"},
      {"mid.block_2.conv1.weight", "mid_block.resnets.1.conv1.weight"},
  };
  for (size_t i = 0; i < sizeof encoder / sizeof *encoder; i++)
    check_pair(os_sgm_vae_encoder_name, encoder[i][0], encoder[i][1]);
  static const char *const clip[][2] = {
      {"transformer.resblocks.31.mlp.c_proj.bias", "vision_model.encoder.layers.31.mlp.fc2.bias"},
      {"transformer.resblocks.0.attn.out_proj.weight",
       "vision_model.encoder.layers.0.self_attn.out_proj.weight"},
      {"ln_pre.weight", "vision_model.pre_layrnorm.weight"},
      {"positional_embedding", "vision_model.embeddings.position_embedding.weight"},
      {"conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
  };
  for (size_t i = 0; i < sizeof clip / sizeof *clip; i++)
    check_pair(os_sgm_clip_name, clip[i][0], clip[i][1]);
  char out[256];
  CHECK(!os_sgm_unet_name(&svd_unet, OS_TO_DIFFUSERS, "input_blocks.10.1.proj_in.weight", out,
                          sizeof out),
        "level 3 has no attention, yet input_blocks.10.1 mapped to %s", out);
}

/* ---- comparing loaded sources ---- */

/* Every tensor of the folder's file must come out of `got` bit for bit
 * (through the weight set's dtype conversion), and `got` must hold nothing else. */
static void compare_set(os_weight_set *want, os_weight_set *got, const char *comp,
                        const char *file, const char *what)
{
  os_safetensors *st = open_component(model_dir, comp, file);
  int mismatches = 0;
  for (int i = 0; i < st->n_tensors; i++) {
    const os_st_tensor *t = &st->tensors[i];
    const float *a = os_weights_take(want, t->name, t->ndim, t->shape);
    const float *b = os_weights_take(got, t->name, t->ndim, t->shape);
    size_t n = (size_t)os_shape_numel(t->ndim, t->shape);
    if (!a || !b || memcmp(a, b, n * sizeof *a) != 0) {
      if (mismatches++ < 3)
        CHECK(false, "%s: %s differs from the folder model (%s)", what, t->name,
              !b ? "missing" : "values");
    }
  }
  onestep_error err = {0};
  CHECK(os_weights_finish(got, &err) == ONESTEP_OK, "%s: %s", what, err.message);
  os_safetensors_close(st);
}

static os_model_source open_ok(const char *path, const os_checkpoint_options *o, const char *what)
{
  os_model_source src;
  onestep_error err = {0};
  if (os_checkpoint_open(path, o, be, &src, &err) != ONESTEP_OK) {
    fprintf(stderr, "%s: cannot open %s: %s\n", what, path, err.message);
    exit(1);
  }
  return src;
}

static void expect_error(const char *path, const os_checkpoint_options *o, const char *needle,
                         const char *what)
{
  os_model_source src;
  onestep_error err = {0};
  onestep_status status = os_checkpoint_open(path, o, be, &src, &err);
  CHECK(status != ONESTEP_OK, "%s: opened without error", what);
  CHECK(strstr(err.message, needle), "%s: message '%s' lacks '%s'", what, err.message, needle);
  if (status == ONESTEP_OK)
    os_checkpoint_close(&src);
  else
    printf("  %s -> %s\n", what, err.message);
}

static void compare_unet_config(const os_unet_config *a, const os_unet_config *b)
{
  CHECK(a->in_channels == b->in_channels && a->out_channels == b->out_channels, "unet channels");
  CHECK(a->n_levels == b->n_levels && a->layers_per_block == b->layers_per_block,
        "unet levels %d/%d layers %d/%d", a->n_levels, b->n_levels, a->layers_per_block,
        b->layers_per_block);
  for (int l = 0; l < a->n_levels; l++) {
    CHECK(a->block_out_channels[l] == b->block_out_channels[l], "unet width %d", l);
    CHECK(a->num_attention_heads[l] == b->num_attention_heads[l], "unet heads %d", l);
    CHECK(a->transformer_layers_per_block[l] == b->transformer_layers_per_block[l],
          "unet transformer layers %d", l);
    CHECK(a->down_has_attention[l] == b->down_has_attention[l] &&
              a->up_has_attention[l] == b->up_has_attention[l],
          "unet attention at level %d", l);
  }
  CHECK(a->cross_attention_dim == b->cross_attention_dim, "cross_attention_dim");
  CHECK(a->addition_time_embed_dim == b->addition_time_embed_dim &&
            a->projection_class_embeddings_input_dim == b->projection_class_embeddings_input_dim,
        "added time embedding");
}

static void compare_configs(const os_model_config *a, const os_model_config *b)
{
  compare_unet_config(&a->unet, &b->unet);
  const os_vae_config *va = &a->vae, *vb = &b->vae;
  CHECK(va->in_channels == vb->in_channels && va->out_channels == vb->out_channels &&
            va->latent_channels == vb->latent_channels,
        "vae channels");
  CHECK(va->n_levels == vb->n_levels && va->layers_per_block == vb->layers_per_block,
        "vae levels %d/%d layers %d/%d", va->n_levels, vb->n_levels, va->layers_per_block,
        vb->layers_per_block);
  for (int l = 0; l < va->n_levels; l++)
    CHECK(va->block_out_channels[l] == vb->block_out_channels[l], "vae width %d", l);
  CHECK(va->norm_num_groups == vb->norm_num_groups && va->scaling_factor == vb->scaling_factor,
        "vae norm groups / scaling");
  const os_clip_config *ca = &a->clip, *cb = &b->clip;
  CHECK(ca->hidden_size == cb->hidden_size && ca->intermediate_size == cb->intermediate_size &&
            ca->num_hidden_layers == cb->num_hidden_layers &&
            ca->num_attention_heads == cb->num_attention_heads && ca->patch_size == cb->patch_size &&
            ca->image_size == cb->image_size && ca->num_channels == cb->num_channels &&
            ca->projection_dim == cb->projection_dim && ca->quick_gelu == cb->quick_gelu,
        "clip config: hidden %d/%d mlp %d/%d layers %d/%d heads %d/%d patch %d/%d image %d/%d "
        "proj %d/%d",
        ca->hidden_size, cb->hidden_size, ca->intermediate_size, cb->intermediate_size,
        ca->num_hidden_layers, cb->num_hidden_layers, ca->num_attention_heads,
        cb->num_attention_heads, ca->patch_size, cb->patch_size, ca->image_size, cb->image_size,
        ca->projection_dim, cb->projection_dim);
  for (int c = 0; c < 3; c++)
    CHECK(fabsf(a->preprocess.image_mean[c] - b->preprocess.image_mean[c]) < 1e-7f &&
              fabsf(a->preprocess.image_std[c] - b->preprocess.image_std[c]) < 1e-7f,
          "preprocess constants");
  CHECK(a->scheduler.sigma_max == b->scheduler.sigma_max &&
            a->scheduler.sigma_min == b->scheduler.sigma_min &&
            a->scheduler.use_karras_sigmas == b->scheduler.use_karras_sigmas &&
            a->scheduler.v_prediction == b->scheduler.v_prediction,
        "scheduler");
}

/* ---- the models built from two sources compute the same outputs ---- */

static void fill(float *x, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (seed >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
}

static bool same(const float *a, const float *b, size_t n)
{
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* UNet forward, VAE decode and CLIP forward, bit for bit (host backend). */
static void compare_outputs(os_model_source *a, os_model_source *b, const char *what)
{
  onestep_error err = {0};
  const os_unet_config *uc = &a->config.unet;
  enum { F = 2, H = 8, W = 8 };
  size_t in_n = (size_t)F * uc->in_channels * H * W, out_n = (size_t)F * uc->out_channels * H * W;
  float *sample = malloc(in_n * sizeof(float)), *context = malloc(uc->cross_attention_dim * sizeof(float));
  float *out_a = malloc(out_n * sizeof(float)), *out_b = malloc(out_n * sizeof(float));
  float ids[3] = {6, 127, 0.02f};
  fill(sample, in_n, 1);
  fill(context, uc->cross_attention_dim, 2);
  os_unet *ua = os_unet_bind(&a->config.unet, a->unet), *ub = os_unet_bind(&b->config.unet, b->unet);
  CHECK(ua && ub, "%s: UNet bind failed", what);
  if (ua && ub) {
    CHECK(os_unet_forward(ua, be, sample, 0.5f, context, ids, 1, F, H, W, out_a, &err) == ONESTEP_OK &&
              os_unet_forward(ub, be, sample, 0.5f, context, ids, 1, F, H, W, out_b, &err) == ONESTEP_OK,
          "%s: UNet forward: %s", what, err.message);
    CHECK(same(out_a, out_b, out_n), "%s: UNet outputs differ", what);
  }
  os_unet_free(ua);
  os_unet_free(ub);
  free(sample);
  free(context);
  free(out_a);
  free(out_b);

  if (a->vae != b->vae) {
    const os_vae_config *vc = &a->config.vae;
    os_vae *va = os_vae_bind(vc, a->vae), *vb = os_vae_bind(&b->config.vae, b->vae);
    CHECK(va && vb, "%s: VAE bind failed", what);
    if (va && vb) {
      int f = os_vae_downscale(va);
      size_t lat_n = (size_t)F * vc->latent_channels * H * W, pix_n = (size_t)F * 3 * H * f * W * f;
      float *lat = malloc(lat_n * sizeof(float)), *fa = malloc(pix_n * sizeof(float)),
            *fb = malloc(pix_n * sizeof(float));
      fill(lat, lat_n, 3);
      CHECK(os_vae_decode(va, be, lat, F, H, W, fa, &err) == ONESTEP_OK &&
                os_vae_decode(vb, be, lat, F, H, W, fb, &err) == ONESTEP_OK,
            "%s: VAE decode: %s", what, err.message);
      CHECK(same(fa, fb, pix_n), "%s: decoded frames differ", what);
      free(lat);
      free(fa);
      free(fb);
    }
    os_vae_free(va);
    os_vae_free(vb);

    const os_clip_config *cc = &a->config.clip;
    os_clip *ca = os_clip_bind(cc, a->clip), *cb = os_clip_bind(&b->config.clip, b->clip);
    CHECK(ca && cb, "%s: CLIP bind failed", what);
    if (ca && cb) {
      size_t px_n = (size_t)cc->num_channels * cc->image_size * cc->image_size;
      float *px = malloc(px_n * sizeof(float)), ea[1024], eb[1024];
      fill(px, px_n, 4);
      CHECK(os_clip_forward(ca, be, px, ea, &err) == ONESTEP_OK &&
                os_clip_forward(cb, be, px, eb, &err) == ONESTEP_OK,
            "%s: CLIP forward: %s", what, err.message);
      CHECK(same(ea, eb, cc->projection_dim), "%s: image embeddings differ", what);
      free(px);
    }
    os_clip_free(ca);
    os_clip_free(cb);
  }
}

static void test_single_file(os_model_source *folder)
{
  char path[512];
  tmp_path(path, sizeof path, "tiny-svd_xt.safetensors");
  sgm_fixture_single_file(model_dir, path, &folder->config.unet, folder->config.vae.n_levels, false);
  os_checkpoint_options o = os_checkpoint_default_options();
  o.unet_attention_heads = folder->config.unet.num_attention_heads[0];
  o.clip_attention_heads = folder->config.clip.num_attention_heads;
  os_model_source single = open_ok(path, &o, "single file");
  compare_configs(&folder->config, &single.config);
  CHECK(single.config.unet.num_frames == 25, "xt file: %d frames, want 25",
        single.config.unet.num_frames);
  CHECK(single.kind == ONESTEP_MODEL_KIND_BASE_SVD && single.default_sampler == ONESTEP_SAMPLER_EULER,
        "single file kind %d sampler %d", single.kind, single.default_sampler);
  compare_set(folder->unet, single.unet, "unet", "diffusion_pytorch_model.safetensors",
              "single file unet");
  compare_set(folder->vae, single.vae, "vae", "diffusion_pytorch_model.safetensors",
              "single file vae");
  compare_set(folder->clip, single.clip, "image_encoder", "model.safetensors",
              "single file image encoder");
  os_checkpoint_close(&single);
  single = open_ok(path, &o, "single file (forward)");
  os_model_source fresh = open_ok(model_dir, NULL, "folder (forward)");
  compare_outputs(&fresh, &single, "single file");
  os_checkpoint_close(&fresh);
  os_checkpoint_close(&single);

  /* A frame count from the user wins over the name. */
  o.frames_hint = 7;
  single = open_ok(path, &o, "single file, 7 frames");
  CHECK(single.config.unet.num_frames == 7, "frames_hint ignored");
  os_checkpoint_close(&single);

  /* A single file whose UNet is replaced by a UNet-only file. */
  char unet_file[1024];
  snprintf(unet_file, sizeof unet_file, "%s/unet/diffusion_pytorch_model.safetensors", model_dir);
  o.frames_hint = 0;
  o.unet_file = unet_file;
  single = open_ok(path, &o, "single file + UNet file");
  compare_set(folder->unet, single.unet, "unet", "diffusion_pytorch_model.safetensors",
              "single file + UNet file");
  compare_set(folder->vae, single.vae, "vae", "diffusion_pytorch_model.safetensors",
              "single file + UNet file, vae");
  CHECK(single.kind == ONESTEP_MODEL_KIND_UNKNOWN, "an unnamed UNet file: kind %d", single.kind);
  os_checkpoint_close(&single);
  o.unet_file = NULL;

  /* Without the head counts, SVD's head width of 64 cannot fit this tiny model. */
  expect_error(path, NULL, "head width", "tiny single file without head counts");

  /* An *_image_decoder file. */
  char bad[512];
  tmp_path(bad, sizeof bad, "svd_xt_image_decoder.safetensors");
  sgm_fixture_single_file(model_dir, bad, &folder->config.unet, folder->config.vae.n_levels, true);
  expect_error(bad, &o, "image_decoder", "image-decoder variant");

  /* A truncated file. */
  FILE *in = fopen(path, "rb");
  fseek(in, 0, SEEK_END);
  long size = ftell(in);
  fseek(in, 0, SEEK_SET);
  char *bytes = malloc(size);
  CHECK(fread(bytes, 1, size, in) == (size_t)size, "read back");
  fclose(in);
  tmp_path(bad, sizeof bad, "truncated.safetensors");
  FILE *outf = fopen(bad, "wb");
  fwrite(bytes, 1, size / 2, outf);
  fclose(outf);
  free(bytes);
  expect_error(bad, &o, "truncated.safetensors", "truncated file");
  unlink(bad);
  tmp_path(bad, sizeof bad, "svd_xt_image_decoder.safetensors");
  unlink(bad);
  unlink(path);
}

static void test_sd15_checkpoint(void)
{
  /* The top of an SD 1.5 checkpoint: sgm UNet blocks without time_stack. */
  char path[512];
  tmp_path(path, sizeof path, "v1-5-pruned-emaonly.safetensors");
  static float w[8 * 4];
  fixture f = {0};
  int64_t conv[4] = {8, 4, 1, 1}, vec[1] = {8};
  fixture_add(&f, "model.diffusion_model.input_blocks.0.0.weight", 4, conv, w);
  fixture_add(&f, "model.diffusion_model.input_blocks.1.0.in_layers.0.weight", 1, vec, w);
  fixture_add(&f, "model.diffusion_model.input_blocks.1.1.proj_in.weight", 4, conv, w);
  fixture_add(&f, "first_stage_model.decoder.conv_in.weight", 4, conv, w);
  fixture_add(&f, "cond_stage_model.transformer.text_model.final_layer_norm.weight", 1, vec, w);
  fixture_write(&f, path);
  expect_error(path, NULL, "Stable Diffusion 1.5", "SD 1.5 checkpoint");
  os_checkpoint_options o = os_checkpoint_default_options();
  o.unet_file = path;
  expect_error(model_dir, &o, "image UNet", "SD 1.5 checkpoint as a UNet file");
  unlink(path);
}

static void test_unet_files(const os_model_source *folder)
{
  char path[512], unet_src[1024];
  snprintf(unet_src, sizeof unet_src, "%s/unet/diffusion_pytorch_model.safetensors", model_dir);
  os_checkpoint_options o = os_checkpoint_default_options();

  /* Diffusers naming, AnimateLCM's file name: a consistency model on a 40-point grid. */
  tmp_path(path, sizeof path, "AnimateLCM-SVD-xt-tiny.safetensors");
  {
    fixture f = {0};
    os_safetensors *st = os_safetensors_open(unet_src, NULL);
    for (int i = 0; i < st->n_tensors; i++)
      fixture_add(&f, st->tensors[i].name, st->tensors[i].ndim, st->tensors[i].shape,
                  st->tensors[i].data);
    fixture_write(&f, path);
    os_safetensors_close(st);
  }
  o.unet_file = path;
  os_model_source src = open_ok(model_dir, &o, "AnimateLCM UNet file");
  CHECK(src.kind == ONESTEP_MODEL_KIND_CONSISTENCY && src.grid_points == OS_CM_GRID_ANIMATELCM,
        "AnimateLCM: kind %d grid %d", src.kind, src.grid_points);
  CHECK(src.default_steps == 4 && src.default_sampler == ONESTEP_SAMPLER_CM &&
            src.default_max_guidance == 1.0f,
        "AnimateLCM defaults: %d steps, sampler %d", src.default_steps, src.default_sampler);
  CHECK(os_checkpoint_auto_sampler(src.kind, 1) == ONESTEP_SAMPLER_TTS, "auto, 1 step: tts");
  compare_set(folder->unet, src.unet, "unet", "diffusion_pytorch_model.safetensors",
              "diffusers UNet file");
  os_checkpoint_close(&src);

  /* The same UNet passed as the model is refused with advice. */
  expect_error(path, NULL, "--unet", "UNet-only file as the model");
  unlink(path);

  /* sgm naming, with each accepted prefix; an OSV name means a 100-point grid. */
  static const char *const prefixes[] = {"model.diffusion_model.", "diffusion_model.", ""};
  for (int p = 0; p < 3; p++) {
    tmp_path(path, sizeof path, "osv-unet-sgm.safetensors");
    sgm_fixture_unet(model_dir, path, &folder->config.unet, prefixes[p]);
    src = open_ok(model_dir, &o, "sgm UNet file");
    CHECK(src.kind == ONESTEP_MODEL_KIND_CONSISTENCY && src.grid_points == OS_CM_GRID_OSV &&
              src.default_steps == 1 && src.default_sampler == ONESTEP_SAMPLER_TTS,
          "OSV-named UNet: kind %d grid %d steps %d", src.kind, src.grid_points, src.default_steps);
    compare_set(folder->unet, src.unet, "unet", "diffusion_pytorch_model.safetensors",
                "sgm UNet file");
    os_checkpoint_close(&src);
    if (p == 0) {
      os_model_source fresh = open_ok(model_dir, NULL, "folder (forward)");
      src = open_ok(model_dir, &o, "sgm UNet file (forward)");
      compare_outputs(&fresh, &src, "sgm UNet file");
      os_checkpoint_close(&src);
      os_checkpoint_close(&fresh);
    }
    unlink(path);
  }

  /* A UNet file with a name that says nothing: kind unknown, euler. */
  tmp_path(path, sizeof path, "finetune.safetensors");
  sgm_fixture_unet(model_dir, path, &folder->config.unet, "");
  src = open_ok(model_dir, &o, "anonymous UNet file");
  CHECK(src.kind == ONESTEP_MODEL_KIND_UNKNOWN && src.default_sampler == ONESTEP_SAMPLER_EULER,
        "anonymous UNet: kind %d", src.kind);
  os_checkpoint_close(&src);
  unlink(path);
}

/* ---- LoRA ---- */

typedef struct {
  const char *target;   /* diffusers weight name */
  const char *kohya;    /* its kohya module name (sgm or diffusers spelling) */
} lora_target;

static const lora_target lora_targets[] = {
    {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
     "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q"},
    {"down_blocks.0.resnets.0.spatial_res_block.conv1.weight",
     "lora_unet_down_blocks_0_resnets_0_spatial_res_block_conv1"},
    {"down_blocks.0.resnets.0.temporal_res_block.conv1.weight",
     "lora_unet_input_blocks_1_0_time_stack_in_layers_2"},
    {"up_blocks.1.resnets.0.spatial_res_block.conv_shortcut.weight",
     "lora_unet_output_blocks_3_0_skip_connection"},
};
enum { N_TARGETS = sizeof lora_targets / sizeof *lora_targets, RANK = 2 };

static float lcg(unsigned *state)
{
  *state = *state * 1664525u + 1013904223u;
  return ((*state >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

typedef struct {
  float *down[N_TARGETS], *up[N_TARGETS];
} lora_weights;

/* Writes one LoRA (PEFT when kohya is false) and returns its matrices. */
static void write_lora(const char *path, os_safetensors *unet, bool kohya, unsigned seed,
                       float alpha, lora_weights *lw)
{
  fixture f = {0};
  char name[512];
  for (int i = 0; i < N_TARGETS; i++) {
    const os_st_tensor *W = os_safetensors_find(unet, lora_targets[i].target);
    int64_t cols = os_shape_numel(W->ndim, W->shape) / W->shape[0];
    int64_t dshape[OS_MAX_DIMS], ushape[OS_MAX_DIMS];
    memcpy(dshape, W->shape, sizeof dshape);
    dshape[0] = RANK;
    ushape[0] = W->shape[0];
    ushape[1] = RANK;
    for (int d = 2; d < W->ndim; d++)
      ushape[d] = 1;
    lw->down[i] = malloc(RANK * cols * sizeof(float));
    lw->up[i] = malloc(W->shape[0] * RANK * sizeof(float));
    for (int64_t j = 0; j < RANK * cols; j++)
      lw->down[i][j] = lcg(&seed);
    for (int64_t j = 0; j < W->shape[0] * RANK; j++)
      lw->up[i][j] = lcg(&seed);
    char stem[400];
    snprintf(stem, sizeof stem, "%s", lora_targets[i].target);
    stem[strlen(stem) - strlen(".weight")] = '\0';
    snprintf(name, sizeof name, kohya ? "%s.lora_down.weight" : "unet.%s.lora_A.weight",
             kohya ? lora_targets[i].kohya : stem);
    fixture_add(&f, name, W->ndim, dshape, lw->down[i]);
    snprintf(name, sizeof name, kohya ? "%s.lora_up.weight" : "unet.%s.lora_B.weight",
             kohya ? lora_targets[i].kohya : stem);
    fixture_add(&f, name, W->ndim, ushape, lw->up[i]);
    if (kohya) {
      static float alpha_values[N_TARGETS];
      alpha_values[i] = alpha;
      snprintf(name, sizeof name, "%s.alpha", lora_targets[i].kohya);
      fixture_add(&f, name, 0, dshape, &alpha_values[i]); /* a 0-d scalar, as kohya writes it */
    }
  }
  fixture_write(&f, path);
}

static void free_lora(lora_weights *lw)
{
  for (int i = 0; i < N_TARGETS; i++) {
    free(lw->down[i]);
    free(lw->up[i]);
  }
}

/* Largest difference between the [32, 32] weight `target` as merged in src and
 * the folder's weight plus 0.7 * up @ down (rank 2); INFINITY when src lacks it. */
static double rank2_merge_error(os_model_source *src, os_safetensors *unet, const char *target,
                                const float *up, const float *down)
{
  const os_st_tensor *W = os_safetensors_find(unet, target);
  const float *got = os_weights_take(src->unet, target, W->ndim, W->shape);
  double worst = 0;
  if (!got)
    return INFINITY;
  for (int r = 0; r < 32; r++)
    for (int c = 0; c < 32; c++) {
      double want = ((const float *)W->data)[r * 32 + c];
      for (int k = 0; k < 2; k++)
        want += 0.7 * up[r * 2 + k] * down[k * 32 + c];
      worst = fmax(worst, fabs(got[r * 32 + c] - want));
    }
  return worst;
}

static void test_lora(const os_model_source *folder)
{
  char peft[512], kohya[512], unet_src[1024];
  snprintf(unet_src, sizeof unet_src, "%s/unet/diffusion_pytorch_model.safetensors", model_dir);
  os_safetensors *unet = os_safetensors_open(unet_src, NULL);
  lora_weights a, b;
  /* PEFT's alpha lives in adapter_config.json beside the weights: 4 / rank 2. */
  char peft_dir[512], config[600];
  tmp_path(peft_dir, sizeof peft_dir, "peft");
  mkdir(peft_dir, 0755);
  snprintf(config, sizeof config, "%s/adapter_config.json", peft_dir);
  FILE *cf = fopen(config, "w");
  fprintf(cf, "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"use_rslora\": false, "
              "\"rank_pattern\": {}, \"alpha_pattern\": {}}");
  fclose(cf);
  tmp_path(peft, sizeof peft, "peft/adapter_model.safetensors");
  tmp_path(kohya, sizeof kohya, "kohya_lora.safetensors");
  write_lora(peft, unet, false, 11, 0, &a);
  write_lora(kohya, unet, true, 23, 1.0f, &b); /* alpha 1, rank 2: gamma 0.5 */

  const char *files[2] = {peft, kohya};
  const float scales[2] = {0.7f, 1.3f};
  os_checkpoint_options o = os_checkpoint_default_options();
  o.lora_files = files;
  o.lora_scales = scales;
  o.n_lora = 2;
  os_model_source src = open_ok(model_dir, &o, "two LoRAs");

  /* The offline merge: W + 0.7 * (4/2) B_a A_a + 1.3 * (1/2) B_b A_b, in double. */
  int changed = 0;
  for (int i = 0; i < unet->n_tensors; i++) {
    const os_st_tensor *W = &unet->tensors[i];
    const float *base = W->data;
    const float *got = os_weights_take(src.unet, W->name, W->ndim, W->shape);
    int64_t rows = W->shape[0], cols = os_shape_numel(W->ndim, W->shape) / rows;
    int target = -1;
    for (int t = 0; t < N_TARGETS; t++)
      if (strcmp(lora_targets[t].target, W->name) == 0)
        target = t;
    if (!got) {
      CHECK(false, "LoRA: %s not loaded", W->name);
      continue;
    }
    double worst = 0;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < cols; c++) {
        double want = base[r * cols + c];
        if (target >= 0)
          for (int k = 0; k < RANK; k++)
            want += 0.7 * 2.0 * a.up[target][r * RANK + k] * a.down[target][k * cols + c] +
                    1.3 * 0.5 * b.up[target][r * RANK + k] * b.down[target][k * cols + c];
        double err = fabs(got[r * cols + c] - want);
        worst = err > worst ? err : worst;
      }
    if (target >= 0) {
      changed++;
      CHECK(worst < 1e-6, "LoRA merge of %s off by %g", W->name, worst);
    } else {
      CHECK(worst == 0, "LoRA changed untargeted %s (by %g)", W->name, worst);
    }
  }
  CHECK(changed == N_TARGETS, "LoRA: %d of %d targets seen", changed, N_TARGETS);
  onestep_error err = {0};
  CHECK(os_weights_finish(src.unet, &err) == ONESTEP_OK, "LoRA unet: %s", err.message);
  os_checkpoint_close(&src);

  /* The same LoRAs on the single-file model (sgm names known from the file). */
  char single[512];
  tmp_path(single, sizeof single, "tiny-svd.safetensors");
  sgm_fixture_single_file(model_dir, single, &folder->config.unet, folder->config.vae.n_levels, false);
  o.unet_attention_heads = folder->config.unet.num_attention_heads[0];
  o.clip_attention_heads = folder->config.clip.num_attention_heads;
  os_model_source folder_lora = open_ok(model_dir, &o, "folder + LoRA");
  src = open_ok(single, &o, "single file + LoRA");
  compare_set(folder_lora.unet, src.unet, "unet", "diffusion_pytorch_model.safetensors",
              "single file + LoRA");
  os_checkpoint_close(&src);
  os_checkpoint_close(&folder_lora);
  unlink(single);

  /* LoRAs for other models. */
  fixture f = {0};
  static float m[4 * 768];
  int64_t down[2] = {4, 768}, up[2] = {32, 4};
  char other[512];
  tmp_path(other, sizeof other, "sdxl_lora.safetensors");
  fixture_add(&f, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", 2, down, m);
  fixture_add(&f, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight", 2, up, m);
  fixture_write(&f, other);
  files[0] = other;
  o.n_lora = 1;
  expect_error(model_dir, &o, "does not fit", "LoRA with another model's shapes");
  int64_t d2[2] = {4, 32};
  fixture_add(&f, "lora_unet_down_blocks_3_attentions_0_proj_in.lora_down.weight", 2, d2, m);
  fixture_add(&f, "lora_unet_down_blocks_3_attentions_0_proj_in.lora_up.weight", 2, up, m);
  fixture_write(&f, other);
  expect_error(model_dir, &o, "matches no weight", "LoRA with another model's names");
  fixture_add(&f, "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", 2, d2, m);
  fixture_add(&f, "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", 2, up, m);
  fixture_write(&f, other);
  expect_error(model_dir, &o, "text encoder", "LoRA for a text-to-image model");
  fixture_add(&f, "lora_unet_input_blocks_1_1_proj_in.hada_w1_a", 2, d2, m);
  fixture_write(&f, other);
  expect_error(model_dir, &o, "adapter type", "LoHa file");
  unlink(other);

  /* Older diffusers attention-processor names: to_q_lora, to_out_lora (-> to_out.0). */
  char proc[512];
  tmp_path(proc, sizeof proc, "processor_lora.safetensors");
  static float pd[2 * 32], pu[32 * 2];
  for (int i = 0; i < 64; i++)
    pd[i] = pu[i] = 0.01f * (float)(i % 7 - 3);
  int64_t ps_down[2] = {2, 32}, ps_up[2] = {32, 2};
  const char *stem = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.";
  char key[256];
  snprintf(key, sizeof key, "%sto_out_lora.down.weight", stem);
  fixture_add(&f, key, 2, ps_down, pd);
  snprintf(key, sizeof key, "%sto_out_lora.up.weight", stem);
  fixture_add(&f, key, 2, ps_up, pu);
  fixture_write(&f, proc);
  files[0] = proc;
  src = open_ok(model_dir, &o, "processor-style LoRA");
  double worst = rank2_merge_error(
      &src, unet, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight", pu, pd);
  CHECK(worst < 1e-6, "processor-style LoRA merge off by %g", worst);
  os_checkpoint_close(&src);

  /* Conv-shaped factors ([r, in, 1, 1]) for a linear weight. */
  int64_t cd[4] = {2, 32, 1, 1}, cu[4] = {32, 2, 1, 1};
  const char *to_k = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_k";
  snprintf(key, sizeof key, "%s.lora_down.weight", to_k);
  fixture_add(&f, key, 4, cd, pd);
  snprintf(key, sizeof key, "%s.lora_up.weight", to_k);
  fixture_add(&f, key, 4, cu, pu);
  fixture_write(&f, proc);
  src = open_ok(model_dir, &o, "conv-shaped LoRA on a linear weight");
  worst = rank2_merge_error(&src, unet, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight",
                            pu, pd);
  CHECK(worst < 1e-6, "conv-shaped LoRA on a linear weight off by %g", worst);
  os_checkpoint_close(&src);
  unlink(proc);

  /* A PEFT config with per-module patterns is refused, not half applied. */
  files[0] = peft;
  cf = fopen(config, "w");
  fprintf(cf, "{\"r\": 2, \"lora_alpha\": 4, \"rank_pattern\": {\"to_q\": 8}}");
  fclose(cf);
  expect_error(model_dir, &o, "rank_pattern", "PEFT config with a rank pattern");
  unlink(config);
  unlink(peft);
  rmdir(peft_dir);
  unlink(kohya);
  free_lora(&a);
  free_lora(&b);
  os_safetensors_close(unet);
}

/* Derived tensors keep the source dtype: an F16 fused tensor split by rows
 * and a transposed F16 projection (svd_xt_1_1 is stored in F16). */
static void test_store_f16(void)
{
  static const uint16_t half[6] = {0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600}; /* 1..6 */
  os_st_tensor t = {.name = "m", .dtype = OS_DTYPE_F16, .ndim = 2, .shape = {3, 2},
                    .data = half, .nbytes = sizeof half};
  os_checkpoint_store *s = os_store_new();
  const os_st_tensor *tr = os_store_transpose(s, &t, "m.T");
  int64_t row_shape[2] = {1, 2};
  const os_st_tensor *row = os_store_view(s, &t, "m[1]", 2, row_shape, 1 * 2 * sizeof(uint16_t));
  float got[6];
  os_dtype_to_f32(got, tr->data, tr->dtype, 6);
  static const float want_t[6] = {1, 3, 5, 2, 4, 6};
  CHECK(tr->dtype == OS_DTYPE_F16 && tr->shape[0] == 2 && tr->shape[1] == 3 &&
            memcmp(got, want_t, sizeof got) == 0,
        "F16 transpose: %g %g %g / %g %g %g", got[0], got[1], got[2], got[3], got[4], got[5]);
  os_dtype_to_f32(got, row->data, row->dtype, 2);
  CHECK(row->nbytes == 4 && got[0] == 3 && got[1] == 4, "F16 row view: %g %g", got[0], got[1]);
  os_store_free(s);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  model_dir = argv[1];
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmp, sizeof tmp, "%s/onestep-checkpoints-XXXXXX", base);
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 2;
  }
  onestep_error err = {0};
  be = os_backend_cpu_new(1, &err);
  if (!be) {
    fprintf(stderr, "%s\n", err.message);
    return 2;
  }
  test_name_maps();
  test_store_f16();
  os_model_source folder = open_ok(model_dir, NULL, "folder");
  CHECK(folder.kind == ONESTEP_MODEL_KIND_BASE_SVD && folder.grid_points == 0 &&
            folder.default_sampler == ONESTEP_SAMPLER_EULER,
        "folder: kind %d", folder.kind);
  test_single_file(&folder);
  test_sd15_checkpoint();
  test_unet_files(&folder);
  test_lora(&folder);
  os_checkpoint_close(&folder);
  be->ops->destroy(be);
  rmdir(tmp);
  return test_summary("checkpoints");
}
