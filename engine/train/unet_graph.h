/* unet_graph.h: the bound UNet's forward built on a tape, for training.
 *
 * The same function as os_unet_forward (unet.c), block for block, but every
 * activation stays on the tape for the backward, the timestep is per batch
 * element (training draws one noise level per sample), and each weight is
 * read through the training parameters' view (LoRA adapters, trained
 * tensors, teacher or EMA values). The inference forward stays the thrifty
 * path: it frees and overwrites activations as soon as it can. */
#ifndef ONESTEP_UNET_GRAPH_H
#define ONESTEP_UNET_GRAPH_H

#include "tape.h"
#include "train_params.h"
#include "unet.h"

typedef struct {
  os_tv sample;                 /* [B, F, in_channels, h, w] */
  const float *timesteps;       /* host [B]: 0.25 ln sigma per batch element */
  os_tv context;                /* [B, cross_attention_dim] */
  const float *added_time_ids;  /* host [B, 3] */
  int B, F, h, w;
  /* Gradient checkpointing: once the backend holds more than this many
   * bytes, each further block keeps only its output and is recomputed in the
   * backward (same gradients, bit for bit). 0: keep every activation. */
  size_t checkpoint_budget;
} os_unet_graph_input;

/* Returns the output [B, F, out_channels, h, w] (OS_TAPE_NONE after an
 * error, latched on the tape). params may be NULL: the plain model. */
os_tv os_unet_graph_forward(const os_unet *unet, os_train_params *params, os_tape *tape,
                            const os_unet_graph_input *in);

#endif
