/* request_resolve.h: a request with the model's defaults filled in, checked
 * against the model, the image and the memory available. */
#ifndef ONESTEP_REQUEST_RESOLVE_H
#define ONESTEP_REQUEST_RESOLVE_H

#include "pipeline_internal.h"

typedef struct {
  int width, height, frames, steps;
  int latent_h, latent_w, vae_factor;
  float min_guidance, max_guidance;
  bool cfg;
  onestep_sampler sampler;
  int decode_chunk;
} os_resolved_request;

onestep_status os_request_resolve(const onestep_context *ctx, const onestep_image *image,
                                  const onestep_request *req, os_resolved_request *out,
                                  onestep_error *error);

#endif
