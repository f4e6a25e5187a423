/* onestep-preferences-window.h
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define ONESTEP_TYPE_PREFERENCES_WINDOW (onestep_preferences_window_get_type ())

G_DECLARE_FINAL_TYPE (OnestepPreferencesWindow, onestep_preferences_window, ONESTEP, PREFERENCES_WINDOW, AdwPreferencesWindow)

GtkWidget *onestep_preferences_window_new (GtkWindow *parent);

G_END_DECLS
