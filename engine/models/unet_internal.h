/* unet_internal.h: the bound UNet's structure, shared by its inference
 * forward (unet.c) and the training graph (train/unet_graph.c), which walk
 * the same blocks. */
#ifndef ONESTEP_UNET_INTERNAL_H
#define ONESTEP_UNET_INTERNAL_H

#include "layers.h"
#include "transformer.h"
#include "unet.h"

#define MAX_BLOCK_LAYERS 8 /* resnets per up block: layers_per_block + 1 */

/* Resnet eps of each block type, as the reference's block constructors fix them. */
static const float EPS_CROSS_ATTN_DOWN = 1e-6f, EPS_PLAIN_DOWN = 1e-5f, EPS_MID = 1e-5f,
                   EPS_UP = 1e-6f, EPS_OUT = 1e-5f;

typedef struct {
  int channels, n_resnets;
  bool has_attention, has_resample;
  os_st_resblock_w resnets[MAX_BLOCK_LAYERS];
  os_st_transformer_w attentions[MAX_BLOCK_LAYERS];
  os_downsample_w downsample;
  os_conv_w upsample_conv;
} unet_block;

struct os_unet {
  os_unet_config cfg;
  int temb_dim;
  os_conv_w conv_in, conv_out;
  os_norm_w conv_norm_out;
  os_timestep_embedding_w time_embedding, add_embedding;
  unet_block down[OS_MAX_LEVELS], up[OS_MAX_LEVELS];
  os_st_resblock_w mid_resnets[2];
  os_st_transformer_w mid_attention;
};

#endif
