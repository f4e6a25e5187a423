/* onestep-compare-view.h: one image and seed at several step counts, side by side.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-engine.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_COMPARE_VIEW (onestep_compare_view_get_type ())

G_DECLARE_FINAL_TYPE (OnestepCompareView, onestep_compare_view, ONESTEP, COMPARE_VIEW, AdwBin)

void     onestep_compare_view_run           (OnestepCompareView  *self,
                                             OnestepEngine       *engine,
                                             GBytes              *image,
                                             int                  image_width,
                                             int                  image_height,
                                             GdkTexture          *source,
                                             const OnestepParams *params,
                                             int                  max_steps,
                                             OnestepResult       *one_step);
void     onestep_compare_view_stop          (OnestepCompareView  *self);
gboolean onestep_compare_view_get_running   (OnestepCompareView  *self);
guint    onestep_compare_view_get_n_results (OnestepCompareView  *self);
OnestepResult *onestep_compare_view_get_result (OnestepCompareView *self,
                                                guint               index);

G_END_DECLS
