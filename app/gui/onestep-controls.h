/* onestep-controls.h: the generation settings panel.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-params.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_CONTROLS (onestep_controls_get_type ())

G_DECLARE_FINAL_TYPE (OnestepControls, onestep_controls, ONESTEP, CONTROLS, GtkBox)

void           onestep_controls_set_installed_models (OnestepControls       *self,
                                                   GPtrArray                *models);
void           onestep_controls_set_model         (OnestepControls          *self,
                                                   const char               *model_path,
                                                   const char               *unet_file,
                                                   const onestep_model_info *info,
                                                   int                       steps);
void           onestep_controls_show_current_model (OnestepControls         *self);
void           onestep_controls_set_device        (OnestepControls          *self,
                                                   onestep_device            device);
void           onestep_controls_set_precision     (OnestepControls          *self,
                                                   onestep_precision         precision);
OnestepParams *onestep_controls_get_params        (OnestepControls          *self);
void           onestep_controls_set_params        (OnestepControls          *self,
                                                   const OnestepParams      *params);
void           onestep_controls_set_image         (OnestepControls          *self,
                                                   GdkTexture               *image);
void           onestep_controls_prepare_new_image (OnestepControls          *self);

G_END_DECLS
