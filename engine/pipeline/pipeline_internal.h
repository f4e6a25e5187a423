/* pipeline_internal.h: the loaded model behind the opaque onestep_context. */
#ifndef ONESTEP_PIPELINE_INTERNAL_H
#define ONESTEP_PIPELINE_INTERNAL_H

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "config.h"
#include "onestep.h"
#include "preview.h"
#include "unet.h"
#include "vae.h"

struct onestep_context {
  os_model_source src; /* configs, weight sets, kind and sampling defaults */
  os_backend *be;
  int host_threads; /* for the pipeline's own loops over pixels (params' n_threads) */
  os_unet *unet;
  os_vae *vae;
  os_clip *clip;
  onestep_model_info info;
  /* The instant preview decoder, fitted (or loaded from the cache) on the
   * first generation that reports progress. */
  os_preview_decoder preview;
  enum { OS_PREVIEW_UNTRIED, OS_PREVIEW_READY, OS_PREVIEW_UNAVAILABLE } preview_state;
};

/* Fills info from the opened checkpoint: kind and sampling defaults as the
 * checkpoint reader classified them, frames and size from the configs. */
void os_fill_model_info(const os_model_source *src, int vae_downscale, onestep_model_info *info);

#endif
