/* onestep-before-after.h: a picture left of a draggable divider, over another.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define ONESTEP_TYPE_BEFORE_AFTER (onestep_before_after_get_type ())

G_DECLARE_FINAL_TYPE (OnestepBeforeAfter, onestep_before_after, ONESTEP, BEFORE_AFTER, GtkWidget)

void        onestep_before_after_set_before   (OnestepBeforeAfter *self,
                                               GdkTexture         *before);
GdkTexture *onestep_before_after_get_before   (OnestepBeforeAfter *self);
double      onestep_before_after_get_position (OnestepBeforeAfter *self);
void        onestep_before_after_set_position (OnestepBeforeAfter *self,
                                               double              position);

G_END_DECLS
