/* sgm_fixture.c: see sgm_fixture.h. */
#include "sgm_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "sgm_names.h"
#include "test_util.h"

/* [C, C] attention weights are [C, C, 1, 1] convs in the sgm VAE. */
static void add_vae_tensor(fixture *f, const char *name, const os_st_tensor *t)
{
  int64_t shape[4] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 1, 1, 1};
  bool attention = strstr(name, "mid.attn_1.") && t->ndim == 2;
  if (attention)
    fixture_add(f, name, 4, shape, t->data);
  else
    fixture_add(f, name, t->ndim, t->shape, t->data);
}

void sgm_fixture_single_file(const char *model_dir, const char *path,
                             const os_unet_config *ucfg, int vae_levels, bool image_decoder)
{
  fixture f = {0};
  char name[1024], mapped[512];
  os_safetensors *unet = open_component(model_dir, "unet", "diffusion_pytorch_model.safetensors");
  os_safetensors *vae = open_component(model_dir, "vae", "diffusion_pytorch_model.safetensors");
  os_safetensors *clip = open_component(model_dir, "image_encoder", "model.safetensors");
  for (int i = 0; i < unet->n_tensors; i++) {
    const os_st_tensor *t = &unet->tensors[i];
    if (!os_sgm_unet_name(ucfg, OS_TO_SGM, t->name, mapped, sizeof mapped)) {
      fprintf(stderr, "no sgm name for %s\n", t->name);
      exit(2);
    }
    snprintf(name, sizeof name, "model.diffusion_model.%s", mapped);
    fixture_add(&f, name, t->ndim, t->shape, t->data);
  }
  for (int i = 0; i < vae->n_tensors; i++) {
    const os_st_tensor *t = &vae->tensors[i];
    if (strncmp(t->name, "decoder.", 8) == 0) {
      os_sgm_vae_decoder_name(vae_levels, OS_TO_SGM, t->name + 8, mapped, sizeof mapped);
      if (image_decoder && strstr(mapped, "time_mix_conv"))
        continue;
      snprintf(name, sizeof name, "first_stage_model.decoder.%s", mapped);
      add_vae_tensor(&f, name, t);
    } else if (strncmp(t->name, "encoder.", 8) == 0) {
      os_sgm_vae_encoder_name(OS_TO_SGM, t->name + 8, mapped, sizeof mapped);
      snprintf(name, sizeof name, "conditioner.embedders.3.encoder.encoder.%s", mapped);
      add_vae_tensor(&f, name, t);
      /* the training-time copy without quant_conv: a leftover to ignore */
      snprintf(name, sizeof name, "first_stage_model.encoder.%s", mapped);
      add_vae_tensor(&f, name, t);
    } else {
      snprintf(name, sizeof name, "conditioner.embedders.3.encoder.%s", t->name);
      fixture_add(&f, name, t->ndim, t->shape, t->data);
    }
  }
  const char *P = "conditioner.embedders.0.open_clip.model.visual.";
  for (int i = 0; i < clip->n_tensors; i++) {
    const os_st_tensor *t = &clip->tensors[i];
    int layer;
    char part[16], kind[16];
    if (sscanf(t->name, "vision_model.encoder.layers.%d.self_attn.%1[qkv]_proj.%15s", &layer, part,
               kind) == 3) {
      if (part[0] != 'q')
        continue; /* fused when q is seen */
      int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
      float *fused = malloc(3 * rows * cols * sizeof *fused);
      for (int p = 0; p < 3; p++) {
        snprintf(name, sizeof name, "vision_model.encoder.layers.%d.self_attn.%c_proj.%s", layer,
                 "qkv"[p], kind);
        memcpy(fused + p * rows * cols, os_safetensors_find(clip, name)->data,
               rows * cols * sizeof *fused);
      }
      int64_t shape[2] = {3 * rows, cols};
      snprintf(name, sizeof name, "%stransformer.resblocks.%d.attn.in_proj_%s", P, layer, kind);
      fixture_add_owned(&f, name, t->ndim, shape, fused);
    } else if (strcmp(t->name, "visual_projection.weight") == 0) {
      const float *w = t->data;
      int64_t rows = t->shape[0], cols = t->shape[1], shape[2] = {cols, rows};
      float *proj = malloc(rows * cols * sizeof *proj);
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
          proj[c * rows + r] = w[r * cols + c];
      snprintf(name, sizeof name, "%sproj", P);
      fixture_add_owned(&f, name, 2, shape, proj);
    } else {
      os_sgm_clip_name(OS_TO_SGM, t->name, mapped, sizeof mapped);
      snprintf(name, sizeof name, "%s%s", P, mapped);
      fixture_add(&f, name, t->ndim, t->shape, t->data);
    }
  }
  /* Leftovers real files carry: the text tower's remains, the conditioner
   * AE's decoder. */
  static const float scalar = 4.6f;
  int64_t one[1] = {1};
  fixture_add(&f, "conditioner.embedders.0.open_clip.model.logit_scale", 1, one, &scalar);
  fixture_add(&f, "conditioner.embedders.3.encoder.post_quant_conv.bias", 1, one, &scalar);
  fixture_write(&f, path);
  os_safetensors_close(unet);
  os_safetensors_close(vae);
  os_safetensors_close(clip);
}

/* The UNet file renamed to sgm names under a prefix. */
void sgm_fixture_unet(const char *model_dir, const char *path, const os_unet_config *ucfg,
                      const char *prefix)
{
  fixture f = {0};
  char name[1024], mapped[512];
  os_safetensors *unet = open_component(model_dir, "unet", "diffusion_pytorch_model.safetensors");
  for (int i = 0; i < unet->n_tensors; i++) {
    const os_st_tensor *t = &unet->tensors[i];
    os_sgm_unet_name(ucfg, OS_TO_SGM, t->name, mapped, sizeof mapped);
    snprintf(name, sizeof name, "%s%s", prefix, mapped);
    fixture_add(&f, name, t->ndim, t->shape, t->data);
  }
  fixture_write(&f, path);
  os_safetensors_close(unet);
}
