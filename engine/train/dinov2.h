/* dinov2.h: a frozen DINOv2 ViT (Hugging Face Dinov2Model folder) on the
 * tape, the feature network of OSV's discriminator (training.md section 5).
 *
 * The forward returns the patch tokens of chosen blocks (before the final
 * norm) as feature maps; its weights never take gradients, but gradients
 * flow through it to its input images. Position embeddings are interpolated
 * as the official code does (bicubic, A = -0.75, scale (n + 0.1) / M per
 * side), on the host once per token grid. */
#ifndef ONESTEP_DINOV2_H
#define ONESTEP_DINOV2_H

#include "tape.h"

typedef struct os_dinov2 os_dinov2;

#define OS_DINOV2_MAX_TAPS 16

/* Reads dir/config.json and binds every tensor of dir/model.safetensors on
 * be. taps: the 0-based blocks whose outputs the forward returns, in order
 * (2, 5, 8, 11 for ViT-S/14). */
os_dinov2 *os_dinov2_load(const char *dir, os_backend *be, const int *taps, int n_taps,
                          onestep_error *error);
void os_dinov2_free(os_dinov2 *d);

os_backend *os_dinov2_backend(const os_dinov2 *d);
int os_dinov2_width(const os_dinov2 *d); /* hidden size: the feature maps' channels */
int os_dinov2_patch(const os_dinov2 *d); /* patch size (14) */
int os_dinov2_tap_count(const os_dinov2 *d);

/* images [N, 3, H, W] in [-1, 1] (H and W multiples of the patch size) ->
 * taps[i] [N, width, H / patch, W / patch], block taps[i]'s patch tokens.
 * DINOv2's preprocessing, (x + 1) / 2 then ImageNet's mean and std, is
 * folded into the patch embedding at load (exact in real arithmetic: that
 * convolution is linear and unpadded). */
onestep_status os_dinov2_forward(os_dinov2 *d, os_tape *tape, os_tv images, int N, int H, int W,
                                 os_tv *taps, onestep_error *error);

#endif
