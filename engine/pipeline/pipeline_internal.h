/* pipeline_internal.h: the loaded model behind the opaque onestep_context. */
#ifndef ONESTEP_PIPELINE_INTERNAL_H
#define ONESTEP_PIPELINE_INTERNAL_H

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "config.h"
#include "onestep.h"
#include "unet.h"
#include "vae.h"

struct onestep_context {
  os_model_source src; /* configs, weight sets, kind and sampling defaults */
  os_backend *be;
  os_unet *unet;
  os_vae *vae;
  os_clip *clip;
  onestep_model_info info;
};

/* Fills info from the opened checkpoint: kind and sampling defaults as the
 * checkpoint reader classified them, frames and size from the configs. */
void os_fill_model_info(const os_model_source *src, int vae_downscale, onestep_model_info *info);

#endif
