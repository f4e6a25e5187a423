/* onestep-params.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "onestep-image-loader.h"
#include "onestep-params.h"

G_DEFINE_BOXED_TYPE (OnestepParams, onestep_params, onestep_params_copy, onestep_params_free)

OnestepParams *
onestep_params_new (void)
{
  OnestepParams *self = g_new0 (OnestepParams, 1);

  self->device = ONESTEP_DEVICE_AUTO;
  self->precision = ONESTEP_PRECISION_AUTO;
  self->sampler = ONESTEP_SAMPLER_AUTO;
  self->motion_bucket_id = 127;
  self->noise_aug_strength = 0.02;
  self->crop_position = ONESTEP_CROP_CENTRE;

  return self;
}

OnestepParams *
onestep_params_copy (const OnestepParams *self)
{
  OnestepParams *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_memdup2 (self, sizeof *self);
  copy->model_path = g_strdup (self->model_path);
  copy->unet_file = g_strdup (self->unet_file);

  return copy;
}

void
onestep_params_free (OnestepParams *self)
{
  if (self == NULL)
    return;

  g_free (self->model_path);
  g_free (self->unet_file);
  g_free (self);
}
