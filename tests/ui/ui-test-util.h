/* ui-test-util.h: starting the real application in-process and waiting on,
 * finding and photographing its widgets, for the ui tests of persistence and
 * input.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "onestep-application.h"
#include "onestep-window.h"

G_BEGIN_DECLS

typedef gboolean (*UiCondition) (gpointer data);
typedef gboolean (*UiWidgetPredicate) (GtkWidget     *widget,
                                       gconstpointer  data);

/* Under xvfb-run; FALSE (and the test skipped) without a display. */
gboolean       ui_test_have_display      (void);

OnestepWindow *ui_test_start_app         (void);
void           ui_test_stop_app          (void);
OnestepWindow *ui_test_get_window        (void);

gboolean       ui_test_wait_until        (UiCondition        condition,
                                          gpointer           data);
void           ui_test_wait_for_paint    (GtkWidget         *widget);
/* The widget as drawn now, at its allocated size. */
GdkTexture    *ui_test_render_widget     (GtkWidget         *widget);
void           ui_test_save_screenshot   (GtkWidget         *widget,
                                          const char        *name);
GtkWidget     *ui_test_find_mapped_widget (GtkWidget        *root,
                                           UiWidgetPredicate predicate,
                                           gconstpointer     data);
gboolean       ui_test_is_button_labelled (GtkWidget        *widget,
                                           gconstpointer     label);
GtkWindow     *ui_test_find_window       (GType              type);
GObject       *ui_test_get_controls_child (const char       *name);

/* Loads the test model and waits until it is ready. */
void           ui_test_load_model        (void);
/* Opens image_path and waits until the window is idle with a new clip. */
OnestepResult *ui_test_open_and_wait     (const char        *image_path);
/* Waits until the window is idle with a clip other than previous. */
OnestepResult *ui_test_wait_for_new_result (OnestepResult   *previous);

/* Runs onestep-cli generate on image with the settings of result, into output. */
void           ui_test_generate_with_cli (OnestepResult     *result,
                                          const char        *image,
                                          const char        *output);
void           ui_test_remove_tree       (const char        *path);

G_END_DECLS
