/* onestep-params.h: the settings of one generation, as chosen in the window.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib-object.h>

#include "onestep.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_PARAMS (onestep_params_get_type ())

/* Zero in steps, frames, width, height or fps means "the model's default". */
typedef struct
{
  char            *model_path;
  char            *unet_file;     /* nullable: replaces the model's UNet */
  onestep_device   device;
  onestep_precision precision;    /* of the GPU's matrix products */
  onestep_sampler  sampler;
  int              steps;
  guint32          seed;
  int              frames;
  int              width;
  int              height;
  int              fps;
  int              motion_bucket_id;
  double           noise_aug_strength;
  /* Where the image is cut to the clip's shape, as onestep-cli's --crop-position:
   * 0 keeps its left or top edge, 1 its right or bottom edge, 0.5 the middle. */
  double           crop_position;
} OnestepParams;

GType          onestep_params_get_type (void) G_GNUC_CONST;
OnestepParams *onestep_params_new      (void);
OnestepParams *onestep_params_copy     (const OnestepParams *self);
void           onestep_params_free     (OnestepParams       *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OnestepParams, onestep_params_free)

G_END_DECLS
