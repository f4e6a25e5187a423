/* clip_preprocess.h: the SVD pipeline's CLIP input preparation (diffusers
 * _encode_image): anti-aliased squash to size x size, then mean/std. */
#ifndef ONESTEP_CLIP_PREPROCESS_H
#define ONESTEP_CLIP_PREPROCESS_H

#include "config.h"
#include "onestep.h"

/* Image pixels as float [3, H, W] in [-1, 1] (p / 255 * 2 - 1), as the pipeline
 * converts them for both the CLIP and the VAE branch. */
void os_image_to_signed_float(const onestep_image *image, float *out, int n_threads);

/* out [3, size, size]: Gaussian blur (reflect padding) and bicubic resize with
 * align_corners, then (p - mean) / std with p = (x + 1) / 2, over n_threads
 * workers (each value is computed by one, so any count gives the same result).
 * Returns ONESTEP_ERR_OUT_OF_MEMORY or ONESTEP_OK. */
onestep_status os_clip_preprocess(const onestep_image *image, int size,
                                  const os_preprocess_config *pre, float *out, int n_threads,
                                  onestep_error *error);

#endif
