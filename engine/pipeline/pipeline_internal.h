/* pipeline_internal.h: the loaded model behind the opaque onestep_context. */
#ifndef ONESTEP_PIPELINE_INTERNAL_H
#define ONESTEP_PIPELINE_INTERNAL_H

#include "backend.h"
#include "clip.h"
#include "config.h"
#include "onestep.h"
#include "safetensors.h"
#include "unet.h"
#include "vae.h"
#include "weights.h"

/* One model component: its mapped file, its bound tensors and its model. */
typedef struct {
  os_safetensors *file;
  os_weight_set *weights;
} os_component;

struct onestep_context {
  os_model_config cfg;
  os_backend *be;
  os_component unet_part, vae_part, clip_part;
  os_unet *unet;
  os_vae *vae;
  os_clip *clip;
  onestep_model_info info;
};

/* The model kind of a loaded folder; the one place that tells base SVD from
 * consistency-distilled models. */
onestep_model_kind os_detect_model_kind(const os_model_config *cfg);

/* Fills info's defaults (frames, size, steps, guidance, sampler) from the configs. */
void os_fill_model_defaults(const os_model_config *cfg, int vae_downscale,
                            onestep_model_info *info);

#endif
