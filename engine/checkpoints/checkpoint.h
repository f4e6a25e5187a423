/* checkpoint.h: opening any supported SVD-family checkpoint as configs plus
 * one weight set per component, ready for os_unet_bind / os_vae_bind /
 * os_clip_bind (checkpoints.md).
 *
 * Accepted: a diffusers folder (fp32 or .fp16 variant files); a Stability
 * single-file checkpoint (svd.safetensors, svd_xt*.safetensors); either with
 * a UNet-only file replacing the UNet (diffusers or sgm naming, e.g.
 * AnimateLCM-SVD-xt) and LoRA files merged into the UNet as it is uploaded. */
#ifndef ONESTEP_CHECKPOINT_H
#define ONESTEP_CHECKPOINT_H

#include "backend.h"
#include "config.h"
#include "onestep.h"
#include "weights.h"

typedef struct {
  const char *unet_file;          /* optional UNet-only safetensors */
  const char *const *lora_files;  /* optional, merged into the UNet */
  const float *lora_scales;       /* one per LoRA file; NULL = all 1 */
  int n_lora;
  int frames_hint;                /* single files: 0 = from the file name (xt: 25, else 14) */
  /* Single files carry no config: heads default to SVD's head widths
   * (UNet width / 64, CLIP width / 80); small models may need them given. */
  int unet_attention_heads;
  int clip_attention_heads;
} os_checkpoint_options;

typedef struct os_checkpoint_store os_checkpoint_store;

typedef struct {
  os_model_config config;
  onestep_model_kind kind;
  int grid_points;                  /* consistency grid N; 0 for base SVD */
  int default_steps;
  onestep_sampler default_sampler;  /* resolved for default_steps */
  float default_min_guidance, default_max_guidance;
  os_weight_set *unet, *vae, *clip; /* keep until the models bound to them are freed */
  os_checkpoint_store *store;       /* mapped files and derived tensors */
} os_model_source;

os_checkpoint_options os_checkpoint_default_options(void);

/* path: a diffusers folder or a single .safetensors file. On failure nothing
 * stays allocated and error names the file, tensor or option at fault. */
onestep_status os_checkpoint_open(const char *path, const os_checkpoint_options *options,
                                  os_backend *be, os_model_source *out, onestep_error *error);
void os_checkpoint_close(os_model_source *src);

/* Cache key of the VAE decoder's weights: os_preview_vae_hash over the
 * decoder tensors of the file holding them (0 if none). */
uint64_t os_checkpoint_decoder_hash(const os_model_source *src);

/* "auto": consistency-distilled models use tts for one step and cm for more;
 * base (and unknown) models use euler. */
onestep_sampler os_checkpoint_auto_sampler(onestep_model_kind kind, int steps);

#endif
