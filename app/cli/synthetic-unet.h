/* synthetic-unet.h: every tensor a UNetSpatioTemporalConditionModel config
 * implies (diffusers names and shapes), filled with seeded random values, and
 * the FLOPs of one forward counted by svd-architecture.md section 11. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "safetensors.h"

typedef struct {
  int n_tensors;
  os_st_tensor *tensors; /* names and float32 data owned by the set */
  int64_t n_params;
} SyntheticUnet;

/* Builds the tensors for cfg; returns FALSE when out of memory. */
gboolean synthetic_unet_build (const os_unet_config *cfg, uint64_t seed, SyntheticUnet *out);
void synthetic_unet_clear (SyntheticUnet *unet);

/* FLOPs (2 x multiply-adds; norms and activations not counted) of one forward
 * on B x F latents of h x w, following the layer walk of the config. */
double synthetic_unet_flops (const os_unet_config *cfg, int B, int F, int h, int w);
