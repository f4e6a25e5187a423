/* onestep-window-private.h: what the window's source files share.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include "onestep-controls.h"
#include "onestep-installed-model.h"
#include "onestep-window.h"

G_BEGIN_DECLS

struct _OnestepWindow
{
  AdwApplicationWindow  parent_instance;

  AdwToastOverlay      *toast_overlay;
  AdwViewSwitcherTitle *switcher_title;
  GtkWidget            *export_button;
  GtkStack             *main_stack;
  AdwViewStack         *view_stack;
  OnestepPreview       *preview;
  GtkWidget            *status_bar;
  GtkLabel             *status_label;
  GtkProgressBar       *progress_bar;
  GtkWidget            *get_model_button;
  GtkWidget            *stop_button;
  OnestepControls      *controls;
  OnestepHistory       *history;
  OnestepCompareView   *compare_view;

  OnestepEngine        *engine;
  /* Cancelled when the window goes: stops image loading and pasting. */
  GCancellable         *cancellable;
  GSettings            *settings;

  GdkTexture           *source;
  /* The source image as the engine sees it at the frames' size (scaled and
   * centre-cropped), for the preview's before/after view. */
  GdkTexture           *fitted_source;
  double                fitted_crop_position;
  GBytes               *image;
  int                   image_width;
  int                   image_height;

  /* The model that works; the one being loaded replaces it only once it has loaded. */
  char                 *model_path;
  char                 *unet_file;
  char                 *loading_model_path;
  char                 *loading_unet_file;
  GCancellable         *model_cancellable;
  gboolean              model_loaded;

  /* Set until the newest clip of the history is shown, or an image opened. */
  gboolean              restore_last_clip;

  GCancellable         *generate_cancellable;
  /* A stopped generation, until the engine has returned from it. */
  GCancellable         *stopping_cancellable;
  int                   generate_fps;
  double                generate_crop_position;
  /* The chosen step count: the generation runs one step first, then this. */
  int                   generate_steps;
  gboolean              have_result;
  /* The one-step clip of the latest generation with the current settings:
   * shown until the chosen step count's clip takes its place, then kept for
   * Compare, which need not make it again. */
  OnestepResult        *one_step_result;
  /* The engine's latest report, and what moves the bar and the time left on
   * between reports. */
  OnestepEngineProgress progress;
  char                 *progress_text;
  double                shown_fraction;
  guint                 progress_timeout_id;
  OnestepResult        *current_result;
};

void _onestep_window_update_actions     (OnestepWindow  *self);
void _onestep_window_set_status         (OnestepWindow  *self,
                                         const char     *status);
void _onestep_window_report_error       (OnestepWindow  *self,
                                         const char     *what_failed,
                                         const char     *hint,
                                         const char     *details);
void _onestep_window_cancel_generation  (OnestepWindow  *self);
void _onestep_window_stop_generation    (OnestepWindow  *self);
void _onestep_window_set_source         (OnestepWindow  *self,
                                         GdkTexture     *source);
char *_onestep_window_dup_models_folder (OnestepWindow  *self);
void _onestep_window_load_installed_models (OnestepWindow *self);
void _onestep_window_use_model          (OnestepWindow  *self,
                                         OnestepInstalledModel *model);
void _onestep_window_generate           (OnestepWindow  *self);
void _onestep_window_dnd_init           (OnestepWindow  *self);
void _onestep_window_class_actions_init (GtkWidgetClass *widget_class);

G_END_DECLS
