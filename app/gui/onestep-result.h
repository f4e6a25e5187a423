/* onestep-result.h: one generated clip with the settings that made it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

#include "onestep-params.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_RESULT (onestep_result_get_type ())

G_DECLARE_FINAL_TYPE (OnestepResult, onestep_result, ONESTEP, RESULT, GObject)

/* frames: n_frames x height x width RGB8, row-major. */
OnestepResult       *onestep_result_new               (GBytes              *frames,
                                                       int                  n_frames,
                                                       int                  width,
                                                       int                  height,
                                                       const OnestepParams *params,
                                                       onestep_sampler      sampler,
                                                       int                  nfe,
                                                       double               seconds);
GBytes              *onestep_result_get_frames        (OnestepResult       *self);
int                  onestep_result_get_n_frames      (OnestepResult       *self);
int                  onestep_result_get_width         (OnestepResult       *self);
int                  onestep_result_get_height        (OnestepResult       *self);
const OnestepParams *onestep_result_get_params        (OnestepResult       *self);
onestep_sampler      onestep_result_get_sampler       (OnestepResult       *self);
int                  onestep_result_get_nfe           (OnestepResult       *self);
double               onestep_result_get_seconds       (OnestepResult       *self);
GdkTexture          *onestep_result_get_source        (OnestepResult       *self);
void                 onestep_result_set_source        (OnestepResult       *self,
                                                       GdkTexture          *source);
GdkTexture          *onestep_result_create_texture    (OnestepResult       *self,
                                                       int                  frame);
char                *onestep_result_dup_summary       (OnestepResult       *self);

G_END_DECLS
