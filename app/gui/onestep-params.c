/* onestep-params.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "onestep-params.h"

G_DEFINE_BOXED_TYPE (OnestepParams, onestep_params, onestep_params_copy, onestep_params_free)

OnestepParams *
onestep_params_new (void)
{
  OnestepParams *self = g_new0 (OnestepParams, 1);

  self->device = ONESTEP_DEVICE_AUTO;
  self->sampler = ONESTEP_SAMPLER_AUTO;
  self->motion_bucket_id = 127;
  self->noise_aug_strength = 0.02;

  return self;
}

OnestepParams *
onestep_params_copy (const OnestepParams *self)
{
  OnestepParams *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_memdup2 (self, sizeof *self);
  copy->model_path = g_strdup (self->model_path);

  return copy;
}

void
onestep_params_free (OnestepParams *self)
{
  if (self == NULL)
    return;

  g_free (self->model_path);
  g_free (self);
}

gboolean
onestep_params_equal (const OnestepParams *a,
                      const OnestepParams *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  return g_strcmp0 (a->model_path, b->model_path) == 0 &&
         a->device == b->device &&
         a->sampler == b->sampler &&
         a->steps == b->steps &&
         a->seed == b->seed &&
         a->frames == b->frames &&
         a->width == b->width &&
         a->height == b->height &&
         a->fps == b->fps &&
         a->motion_bucket_id == b->motion_bucket_id &&
         a->noise_aug_strength == b->noise_aug_strength;
}
