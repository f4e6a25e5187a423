/* onestep-window.h: the main window.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-compare-view.h"
#include "onestep-engine.h"
#include "onestep-history.h"
#include "onestep-preview.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_WINDOW (onestep_window_get_type ())

G_DECLARE_FINAL_TYPE (OnestepWindow, onestep_window, ONESTEP, WINDOW, AdwApplicationWindow)

OnestepWindow      *onestep_window_new                (GtkApplication *application,
                                                       OnestepEngine  *engine);
void                onestep_window_set_model          (OnestepWindow  *self,
                                                       const char     *model_path);
gboolean            onestep_window_get_model_loaded   (OnestepWindow  *self);
gboolean            onestep_window_drop               (OnestepWindow  *self,
                                                       const GValue   *value);
void                onestep_window_open_file          (OnestepWindow  *self,
                                                       GFile          *file);
void                onestep_window_open_texture       (OnestepWindow  *self,
                                                       GdkTexture     *texture);
gboolean            onestep_window_get_busy           (OnestepWindow  *self);
OnestepResult      *onestep_window_get_current_result (OnestepWindow  *self);
OnestepPreview     *onestep_window_get_preview        (OnestepWindow  *self);
OnestepHistory     *onestep_window_get_history        (OnestepWindow  *self);
OnestepCompareView *onestep_window_get_compare_view   (OnestepWindow  *self);
GtkWindow          *onestep_window_export             (OnestepWindow  *self,
                                                       OnestepResult  *result);
void                onestep_window_restore_last_clip  (OnestepWindow  *self);

G_END_DECLS
