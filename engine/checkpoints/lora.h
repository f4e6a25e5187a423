/* lora.h: LoRA files merged into the UNet while its tensors are uploaded
 * (checkpoints.md section 4): W' = W + scale * (alpha / rank) * B A for linear
 * and convolution weights. PEFT / diffusers (lora_A, lora_B) and kohya
 * (lora_down, lora_up, alpha) files; module names in diffusers or sgm spelling,
 * dotted or kohya-flattened, resolved through a table built from the model's
 * own names. */
#ifndef ONESTEP_LORA_H
#define ONESTEP_LORA_H

#include "store.h"

/* Resolves every module of every file against the UNet tensors registered in
 * s, then installs the merge as the UNet set's transform. A module that
 * matches no tensor or whose shapes disagree is an error naming it. */
onestep_status os_lora_merge_prepare(os_checkpoint_store *s, const os_unet_config *cfg,
                                     const char *const *files, const float *scales, int n,
                                     os_weight_set *unet, onestep_error *error);
void os_lora_merge_free(os_lora_merge *m);

#endif
