/* sgm_fixture.h: a diffusers folder model written out in Stability's "sgm"
 * naming, with the name maps' OS_TO_SGM direction (the tests also check that
 * direction against hand-written pairs). */
#ifndef ONESTEP_TEST_SGM_FIXTURE_H
#define ONESTEP_TEST_SGM_FIXTURE_H

#include <stdbool.h>

#include "config.h"

/* A single-file checkpoint: UNet, temporal VAE decoder, conditioner encoder
 * with quant_conv (plus a first-stage copy), OpenCLIP tower with fused qkv
 * and transposed projection, and some leftovers to ignore. image_decoder
 * drops time_mix_conv, as in the *_image_decoder files. */
void sgm_fixture_single_file(const char *model_dir, const char *path,
                             const os_unet_config *ucfg, int vae_levels, bool image_decoder);

/* The UNet alone in sgm names under prefix. */
void sgm_fixture_unet(const char *model_dir, const char *path, const os_unet_config *ucfg,
                      const char *prefix);

#endif
