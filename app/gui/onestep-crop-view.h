/* onestep-crop-view.h: the source image with the part a clip keeps framed, for
 * dragging that frame along the side that is cut.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define ONESTEP_TYPE_CROP_VIEW (onestep_crop_view_get_type ())

G_DECLARE_FINAL_TYPE (OnestepCropView, onestep_crop_view, ONESTEP, CROP_VIEW, GtkWidget)

void           onestep_crop_view_set_image      (OnestepCropView *self,
                                                 GdkTexture      *image);
void           onestep_crop_view_set_frame_size (OnestepCropView *self,
                                                 int              width,
                                                 int              height);
void           onestep_crop_view_set_adjustment (OnestepCropView *self,
                                                 GtkAdjustment   *adjustment);
graphene_rect_t onestep_crop_view_get_frame_rect (OnestepCropView *self);

G_END_DECLS
