/* onestep-window.c
 *
 * An image (dropped, pasted or opened) is shown at once, generated with one
 * step, then refined once with the chosen step count, the engine's estimate
 * after each of its steps in the preview until its clip replaces the one-step
 * clip. Any change of settings cancels the work and starts again.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <math.h>

#include "onestep-export-dialog.h"
#include "onestep-image.h"
#include "onestep-model-index.h"
#include "onestep-window-private.h"

enum {
  PROP_0,
  PROP_ENGINE,
  N_PROPS
};

enum {
  RESULT_READY,
  ERROR_REPORTED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepWindow, onestep_window, ADW_TYPE_APPLICATION_WINDOW)

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* The page of the main stack: the next step to take while there is no model
 * (getting one) or no image (dropping one), else the image and its clips. */
static const char *
onestep_window_get_page_name (OnestepWindow *self)
{
  if (self->image != NULL)
    return "main";
  if (self->model_loaded || self->model_cancellable != NULL)
    return "empty";
  return "no-model";
}

/* Brings what the window offers in line with its state: the actions, the
 * page, and the buttons and prompt beside the progress. */
void
_onestep_window_update_actions (OnestepWindow *self)
{
  gboolean can_generate = self->image != NULL && self->model_loaded;
  gboolean needs_model = !self->model_loaded && self->model_cancellable == NULL;

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.export", self->current_result != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.play-pause", self->current_result != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.generate", can_generate);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.compare", can_generate);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.stop", self->generate_cancellable != NULL);
  gtk_widget_set_visible (self->export_button, self->current_result != NULL);

  gtk_stack_set_visible_child_name (self->main_stack, onestep_window_get_page_name (self));
  gtk_widget_set_visible (self->status_bar, self->image != NULL);
  adw_view_switcher_title_set_view_switcher_enabled (self->switcher_title, self->image != NULL);
  gtk_widget_set_visible (self->stop_button, self->generate_cancellable != NULL);
  gtk_widget_set_visible (self->get_model_button, needs_model);
  if (needs_model)
    _onestep_window_set_status (self, _("Choose a model to bring this image to life"));
}

void
_onestep_window_set_status (OnestepWindow *self,
                            const char    *status)
{
  gtk_label_set_label (self->status_label, status);
}

/* A toast saying what failed and what to do, with the details a click away. */
void
_onestep_window_report_error (OnestepWindow *self,
                              const char    *what_failed,
                              const char    *hint,
                              const char    *details)
{
  g_autofree char *title = NULL;
  AdwToast *toast;

  /* Translators: "<what failed>. <what to do>" */
  title = g_strdup_printf (_("%s. %s"), what_failed, hint);
  toast = adw_toast_new (title);
  adw_toast_set_timeout (toast, 10);
  adw_toast_set_button_label (toast, _("_Details"));
  adw_toast_set_action_name (toast, "win.show-error");
  adw_toast_set_action_target_value (toast, g_variant_new ("(ss)", what_failed, details));
  adw_toast_overlay_add_toast (self->toast_overlay, toast);

  g_signal_emit (self, signals[ERROR_REPORTED], 0, what_failed, details);
}

static const char *
hint_for_error (const GError *error)
{
  if (error->domain == ONESTEP_ENGINE_ERROR)
    {
      switch ((onestep_status)error->code)
        {
        case ONESTEP_ERR_IO:
          return _("Check that the model folder is complete and readable.");
        case ONESTEP_ERR_FORMAT:
        case ONESTEP_ERR_MODEL:
          return _("Choose a Stable Video Diffusion or one-step model folder.");
        case ONESTEP_ERR_OUT_OF_MEMORY:
          return _("Try fewer frames, a smaller size or the CPU.");
        case ONESTEP_ERR_DEVICE:
          return _("Choose CPU as the device, or check the GPU driver.");
        case ONESTEP_ERR_INVALID_ARGUMENT:
          return _("Check the settings.");
        case ONESTEP_OK:
        case ONESTEP_ERR_ABORTED:
        default:
          break;
        }
    }

  return _("Try again, or try other settings.");
}

static void
onestep_window_show_error (OnestepWindow *self,
                           const char    *what_failed,
                           const GError  *error)
{
  _onestep_window_report_error (self, what_failed, hint_for_error (error), error->message);
}

static void
onestep_window_stop_progress_clock (OnestepWindow *self)
{
  g_clear_handle_id (&self->progress_timeout_id, g_source_remove);
  g_clear_pointer (&self->progress_text, g_free);
}

void
_onestep_window_cancel_generation (OnestepWindow *self)
{
  if (self->generate_cancellable == NULL)
    return;

  g_cancellable_cancel (self->generate_cancellable);
  g_clear_object (&self->generate_cancellable);
  onestep_window_stop_progress_clock (self);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  _onestep_window_update_actions (self);
}

/* Lets the preview compare frames of this size, cropped from the source at
 * crop_position, with the source image. */
static void
onestep_window_compare_with_source (OnestepWindow *self,
                                    int            width,
                                    int            height,
                                    double         crop_position)
{
  if (self->fitted_source == NULL ||
      gdk_texture_get_width (self->fitted_source) != width ||
      gdk_texture_get_height (self->fitted_source) != height ||
      self->fitted_crop_position != crop_position)
    {
      g_autoptr(GBytes) fitted = onestep_image_fit (self->image, self->image_width,
                                                    self->image_height, width, height,
                                                    crop_position);

      g_clear_object (&self->fitted_source);
      if (fitted != NULL)
        self->fitted_source = onestep_image_frame_texture (fitted, 0, width, height);
      self->fitted_crop_position = crop_position;
    }
  onestep_preview_set_source (self->preview, self->fitted_source);
}

static void
onestep_window_show_result (OnestepWindow *self,
                            OnestepResult *result)
{
  g_set_object (&self->current_result, result);
  onestep_window_compare_with_source (self, onestep_result_get_width (result),
                                      onestep_result_get_height (result),
                                      onestep_result_get_params (result)->crop_position);
  onestep_preview_set_frames (self->preview, onestep_result_get_frames (result),
                              onestep_result_get_n_frames (result),
                              onestep_result_get_width (result),
                              onestep_result_get_height (result),
                              onestep_result_get_params (result)->fps);
  _onestep_window_update_actions (self);
}

/* What the Stop button does. The engine returns at its next abort check, a
 * moment later (longer in the middle of a long layer): until then the window
 * says it is stopping. The one-step clip, if there is one, is what the
 * generation leaves, so History keeps it. */
void
_onestep_window_stop_generation (OnestepWindow *self)
{
  if (self->generate_cancellable == NULL)
    return;

  if (self->one_step_result != NULL && self->current_result == self->one_step_result)
    {
      onestep_window_show_result (self, self->one_step_result);
      onestep_history_add (self->history, self->one_step_result);
    }
  g_set_object (&self->stopping_cancellable, self->generate_cancellable);
  _onestep_window_cancel_generation (self);
  _onestep_window_set_status (self, _("Stopping…"));
}

static char *
describe_progress (const OnestepEngineProgress *progress)
{
  int step = onestep_engine_progress_get_run_step (progress);

  if (progress->stage == ONESTEP_STAGE_DENOISE)
    {
      if (progress->run == 0)
        return g_strdup_printf (_("Generating: step %d of %d"), step, progress->run_steps);
      return g_strdup_printf (_("Refining with %d steps: step %d of %d"), progress->run_steps,
                              step, progress->run_steps);
    }

  if (progress->run > 0)
    return g_strdup_printf (_("Refining with %d steps…"), progress->run_steps);

  switch (progress->stage)
    {
    case ONESTEP_STAGE_LOAD:
      return g_strdup (_("Loading the model…"));
    case ONESTEP_STAGE_CLIP:
      return g_strdup (_("Looking at the image…"));
    case ONESTEP_STAGE_ENCODE:
      return g_strdup (_("Encoding the image…"));
    case ONESTEP_STAGE_DECODE:
      return g_strdup (_("Decoding frames…"));
    case ONESTEP_STAGE_DENOISE:
    default:
      return g_strdup ("");
    }
}

static char *
describe_time_left (double seconds)
{
  int minutes = (int)round (seconds / 60);
  int n;

  if (seconds < 60)
    {
      n = MAX ((int)ceil (seconds), 1);
      return g_strdup_printf (ngettext ("%d second left", "%d seconds left", n), n);
    }
  if (minutes < 120)
    return g_strdup_printf (ngettext ("About %d minute left", "About %d minutes left", minutes),
                            minutes);
  n = (int)round (seconds / 3600);
  return g_strdup_printf (ngettext ("About %d hour left", "About %d hours left", n), n);
}

/* The bar and the status line at now: the engine's latest report, moved on by
 * the time since within the work it had under way. */
static void
onestep_window_update_progress (OnestepWindow *self)
{
  gint64 now = g_get_monotonic_time ();
  double seconds_left = onestep_engine_progress_get_seconds_left (&self->progress, now);

  self->shown_fraction = MAX (self->shown_fraction,
                              onestep_engine_progress_get_fraction (&self->progress, now));
  gtk_progress_bar_set_fraction (self->progress_bar, self->shown_fraction);

  if (seconds_left >= 0 && self->progress_text[0] != '\0')
    {
      g_autofree char *time_left = describe_time_left (seconds_left);
      /* Translators: "<what the engine is doing> · <time left>" */
      g_autofree char *status = g_strdup_printf (_("%s · %s"), self->progress_text, time_left);

      _onestep_window_set_status (self, status);
    }
  else
    _onestep_window_set_status (self, self->progress_text);
}

static gboolean
on_progress_clock (gpointer user_data)
{
  onestep_window_update_progress (user_data);
  return G_SOURCE_CONTINUE;
}

static void
on_generate_progress (const OnestepEngineProgress *progress,
                      gpointer                     user_data)
{
  OnestepWindow *self = user_data;

  self->progress = *progress;
  self->progress.preview = NULL;
  g_free (self->progress_text);
  self->progress_text = describe_progress (progress);
  onestep_window_update_progress (self);
  if (self->progress_timeout_id == 0)
    self->progress_timeout_id = g_timeout_add (250, on_progress_clock, self);

  /* Each step of the chosen count shows its estimate, over the one-step clip. */
  if (progress->preview != NULL && (!self->have_result || progress->run > 0))
    {
      onestep_window_compare_with_source (self, progress->preview_width, progress->preview_height,
                                          self->generate_crop_position);
      onestep_preview_set_frames (self->preview, progress->preview, progress->preview_frames,
                                  progress->preview_width, progress->preview_height,
                                  self->generate_fps);
    }
}

static void
on_generate_result (OnestepResult *result,
                    gpointer       user_data)
{
  OnestepWindow *self = user_data;

  onestep_result_set_source (result, self->source);
  self->have_result = TRUE;
  onestep_window_show_result (self, result);
  /* History records the generation once, with the chosen step count's clip; the
   * one-step clip stays for Compare. */
  if (onestep_result_get_params (result)->steps < self->generate_steps)
    g_set_object (&self->one_step_result, result);
  else
    onestep_history_add (self->history, result);
  g_signal_emit (self, signals[RESULT_READY], 0, result);
}

static void
on_generate_done (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(OnestepWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  GCancellable *cancellable = g_task_get_cancellable (G_TASK (result));
  gboolean ok;

  ok = onestep_engine_generate_finish (ONESTEP_ENGINE (object), result, &error);
  if (cancellable == self->stopping_cancellable)
    {
      g_clear_object (&self->stopping_cancellable);
      /* Unless another generation has started meanwhile, and says so. */
      if (self->generate_cancellable == NULL)
        _onestep_window_set_status (self, _("Stopped"));
      return;
    }
  if (cancellable != self->generate_cancellable)
    return;

  g_clear_object (&self->generate_cancellable);
  onestep_window_stop_progress_clock (self);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  _onestep_window_update_actions (self);

  if (ok && self->current_result != NULL)
    {
      g_autofree char *summary = onestep_result_dup_summary (self->current_result);
      g_autofree char *status = g_strdup_printf (_("Done: %s"), summary);

      _onestep_window_set_status (self, status);
    }
  else if (!ok)
    {
      _onestep_window_set_status (self, _("Generation failed"));
      onestep_window_show_error (self, _("Generation failed"), error);
    }
}

/* Shows the one-step clip at once, then runs the chosen step count once, its
 * estimate after every step in the preview. */
void
_onestep_window_generate (OnestepWindow *self)
{
  g_autoptr(OnestepParams) params = NULL;
  int runs[2];
  guint n_runs = 0;

  if (self->image == NULL || !self->model_loaded)
    return;

  _onestep_window_cancel_generation (self);
  g_clear_object (&self->one_step_result);
  params = onestep_controls_get_params (self->controls);

  runs[n_runs++] = 1;
  if (params->steps > 1)
    runs[n_runs++] = params->steps;

  self->generate_cancellable = g_cancellable_new ();
  self->generate_fps = params->fps;
  self->generate_crop_position = params->crop_position;
  self->generate_steps = params->steps;
  self->have_result = FALSE;
  self->shown_fraction = 0;
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  _onestep_window_set_status (self, _("Starting…"));
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), TRUE);
  _onestep_window_update_actions (self);

  onestep_engine_generate_async (self->engine, self->image, self->image_width, self->image_height,
                                 params, runs, n_runs, on_generate_progress, on_generate_result,
                                 self, self->generate_cancellable, on_generate_done,
                                 g_object_ref (self));
}

static void
on_controls_changed (OnestepWindow *self)
{
  _onestep_window_generate (self);
}

/* The image that clips are generated from, kept as packed RGB for the engine. */
void
_onestep_window_set_source (OnestepWindow *self,
                            GdkTexture    *source)
{
  g_set_object (&self->source, source);
  g_clear_object (&self->fitted_source);
  g_clear_pointer (&self->image, g_bytes_unref);
  self->image = onestep_image_rgb_from_texture (source);
  self->image_width = gdk_texture_get_width (source);
  self->image_height = gdk_texture_get_height (source);
  onestep_controls_set_image (self->controls, source);
}

static void
on_history_result_activated (OnestepWindow *self,
                             OnestepResult *result)
{
  g_autofree char *summary = onestep_result_dup_summary (result);
  g_autofree char *status = g_strdup_printf (_("From the history: %s"), summary);
  GdkTexture *source = onestep_result_get_source (result);

  _onestep_window_cancel_generation (self);
  /* The settings become the entry's, which the one-step clip was not made with. */
  g_clear_object (&self->one_step_result);
  onestep_controls_set_params (self->controls, onestep_result_get_params (result));
  if (source != NULL && source != self->source)
    _onestep_window_set_source (self, source);
  self->have_result = TRUE;
  onestep_window_show_result (self, result);
  _onestep_window_set_status (self, status);
  adw_view_stack_set_visible_child_name (self->view_stack, "preview");
}

/* Brings back the newest clip of the history, as onestep_window_restore_last_clip()
 * asked, once the history is read and no model loads (whose end would generate from
 * the image again); not once an image is open. */
static void
onestep_window_try_restore_last_clip (OnestepWindow *self)
{
  g_autoptr(OnestepResult) last = NULL;

  if (!self->restore_last_clip || self->image != NULL || self->model_cancellable != NULL ||
      !onestep_history_get_loaded (self->history))
    return;

  self->restore_last_clip = FALSE;
  if (onestep_history_get_len (self->history) == 0)
    return;
  last = onestep_history_dup_result (self->history, 0);
  if (onestep_result_get_source (last) != NULL)
    on_history_result_activated (self, last);
}

/* The application's first window opens where the last session ended: on the newest
 * clip of the history, with its image and settings. */
void
onestep_window_restore_last_clip (OnestepWindow *self)
{
  g_return_if_fail (ONESTEP_IS_WINDOW (self));

  self->restore_last_clip = TRUE;
  onestep_window_try_restore_last_clip (self);
}

static void
on_exported (OnestepWindow *self,
             const char    *path)
{
  g_autofree char *name = g_path_get_basename (path);
  AdwToast *toast = adw_toast_new_format (_("Exported “%s”"), name);

  adw_toast_set_button_label (toast, _("Show in _Files"));
  adw_toast_set_action_name (toast, "win.show-in-files");
  adw_toast_set_action_target_value (toast, g_variant_new_string (path));
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

GtkWindow *
onestep_window_export (OnestepWindow *self,
                       OnestepResult *result)
{
  OnestepExportDialog *dialog;

  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), NULL);
  g_return_val_if_fail (ONESTEP_IS_RESULT (result), NULL);

  dialog = onestep_export_dialog_new (GTK_WINDOW (self), result);
  g_signal_connect_object (dialog, "exported", G_CALLBACK (on_exported), self, G_CONNECT_SWAPPED);
  gtk_window_present (GTK_WINDOW (dialog));

  return GTK_WINDOW (dialog);
}

static void
on_compare_export_requested (OnestepWindow *self,
                             OnestepResult *result)
{
  onestep_window_export (self, result);
}

static void
on_model_loaded (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(OnestepWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  onestep_model_info info;
  gboolean superseded = g_task_get_cancellable (G_TASK (result)) != self->model_cancellable;
  gboolean ok;

  ok = onestep_engine_load_model_finish (ONESTEP_ENGINE (object), result, &info, &error);
  if (superseded)
    return;

  g_clear_object (&self->model_cancellable);

  if (!ok)
    {
      /* The engine went back to the model that worked, if any. */
      self->model_loaded = self->model_path != NULL;
      onestep_controls_show_current_model (self->controls);
      _onestep_window_update_actions (self);
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          _onestep_window_set_status (self, self->model_loaded ? "" : _("No model"));
          onestep_window_show_error (self, _("The model could not be loaded"), error);
        }
      onestep_window_try_restore_last_clip (self);
      return;
    }

  g_free (self->model_path);
  self->model_path = g_steal_pointer (&self->loading_model_path);
  g_free (self->unet_file);
  self->unet_file = g_steal_pointer (&self->loading_unet_file);
  g_settings_set_string (self->settings, "model-path", self->model_path);
  g_settings_set_string (self->settings, "model-unet-file", self->unet_file ? self->unet_file : "");
  self->model_loaded = TRUE;
  onestep_controls_set_model (self->controls, self->model_path, self->unet_file, &info,
                              g_settings_get_int (self->settings, "default-steps"));
  _onestep_window_set_status (self, "");
  _onestep_window_update_actions (self);
  _onestep_window_generate (self);
  onestep_window_try_restore_last_clip (self);
}

static void
onestep_window_load_model (OnestepWindow *self,
                           const char    *model_path,
                           const char    *unet_file)
{
  g_autoptr(OnestepParams) params = NULL;

  _onestep_window_cancel_generation (self);
  if (self->model_cancellable != NULL)
    g_cancellable_cancel (self->model_cancellable);
  g_clear_object (&self->model_cancellable);
  self->model_cancellable = g_cancellable_new ();
  self->model_loaded = FALSE;
  _onestep_window_update_actions (self);
  _onestep_window_set_status (self, _("Loading the model…"));

  g_free (self->loading_model_path);
  self->loading_model_path = g_strdup (model_path);
  g_free (self->loading_unet_file);
  self->loading_unet_file = g_strdup (unet_file);
  params = onestep_controls_get_params (self->controls);
  onestep_engine_load_model_async (self->engine, model_path, unet_file, params->device,
                                   params->precision, self->model_cancellable, on_model_loaded,
                                   g_object_ref (self));
}

/* Loads a model folder (or checkpoint) and makes it the current one. */
void
onestep_window_set_model (OnestepWindow *self,
                          const char    *model_path)
{
  g_return_if_fail (ONESTEP_IS_WINDOW (self));
  g_return_if_fail (model_path != NULL);

  onestep_window_load_model (self, model_path, NULL);
}

/* Loads a model of the index (the Model row's choice, or the model manager's). */
void
_onestep_window_use_model (OnestepWindow         *self,
                           OnestepInstalledModel *model)
{
  onestep_window_load_model (self, onestep_installed_model_get_path (model),
                             onestep_installed_model_get_unet_file (model));
}

/* The models folder of the settings, or the default one while none is chosen. */
char *
_onestep_window_dup_models_folder (OnestepWindow *self)
{
  g_autofree char *folder = g_settings_get_string (self->settings, "models-folder");

  if (folder[0] == '\0')
    return onestep_model_index_dup_default_dir ();
  return g_steal_pointer (&folder);
}

/* Lists the video models of the index in the models folder (not the feature
 * networks that only training uses). */
void
_onestep_window_load_installed_models (OnestepWindow *self)
{
  g_autofree char *models_dir = _onestep_window_dup_models_folder (self);
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(GPtrArray) models = NULL;
  g_autoptr(GError) error = NULL;

  index = onestep_model_index_new (models_dir, &error);
  if (index == NULL)
    {
      _onestep_window_report_error (self, _("The models folder could not be read"),
                                    _("Choose another models folder in the preferences."),
                                    error->message);
      return;
    }

  models = onestep_model_index_dup_image_to_video_models (index);
  onestep_controls_set_installed_models (self->controls, models);
}

gboolean
onestep_window_get_model_loaded (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), FALSE);
  return self->model_loaded;
}

static gboolean
onestep_window_close_request (GtkWindow *window)
{
  OnestepWindow *self = ONESTEP_WINDOW (window);
  int width;
  int height;

  gtk_window_get_default_size (window, &width, &height);
  g_settings_set_int (self->settings, "window-width", width);
  g_settings_set_int (self->settings, "window-height", height);
  g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));

  _onestep_window_cancel_generation (self);
  onestep_compare_view_stop (self->compare_view);

  return GTK_WINDOW_CLASS (onestep_window_parent_class)->close_request (window);
}

/* Taken by the next generation (which makes a new engine context for it). */
static void
on_precision_changed (OnestepWindow *self)
{
  onestep_controls_set_precision (self->controls, g_settings_get_enum (self->settings, "gpu-precision"));
}

static void
onestep_window_constructed (GObject *object)
{
  OnestepWindow *self = (OnestepWindow *)object;
  g_autofree char *model_path = NULL;
  g_autofree char *unet_file = NULL;

  G_OBJECT_CLASS (onestep_window_parent_class)->constructed (object);

  _onestep_window_load_installed_models (self);
  g_signal_connect_object (self->settings, "changed::models-folder",
                           G_CALLBACK (_onestep_window_load_installed_models), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::gpu-precision",
                           G_CALLBACK (on_precision_changed), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->history, "notify::loaded",
                           G_CALLBACK (onestep_window_try_restore_last_clip), self, G_CONNECT_SWAPPED);

  model_path = g_settings_get_string (self->settings, "model-path");
  unet_file = g_settings_get_string (self->settings, "model-unet-file");
  if (model_path[0] != '\0' && g_file_test (model_path, G_FILE_TEST_EXISTS))
    onestep_window_load_model (self, model_path, unet_file[0] != '\0' ? unet_file : NULL);
}

static void
onestep_window_dispose (GObject *object)
{
  OnestepWindow *self = (OnestepWindow *)object;

  _onestep_window_cancel_generation (self);
  if (self->model_cancellable != NULL)
    g_cancellable_cancel (self->model_cancellable);
  g_clear_object (&self->model_cancellable);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->model_path, g_free);
  g_clear_pointer (&self->unet_file, g_free);
  g_clear_pointer (&self->loading_model_path, g_free);
  g_clear_pointer (&self->loading_unet_file, g_free);
  g_clear_object (&self->stopping_cancellable);
  g_clear_object (&self->one_step_result);
  g_clear_object (&self->current_result);
  g_clear_object (&self->source);
  g_clear_object (&self->fitted_source);
  g_clear_pointer (&self->image, g_bytes_unref);
  g_clear_object (&self->engine);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (onestep_window_parent_class)->dispose (object);
}

static void
onestep_window_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  OnestepWindow *self = ONESTEP_WINDOW (object);

  switch (prop_id)
    {
    case PROP_ENGINE:
      self->engine = g_value_dup_object (value);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_window_class_init (OnestepWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->constructed = onestep_window_constructed;
  object_class->dispose = onestep_window_dispose;
  object_class->set_property = onestep_window_set_property;
  window_class->close_request = onestep_window_close_request;

  properties[PROP_ENGINE] =
    g_param_spec_object ("engine", NULL, NULL, ONESTEP_TYPE_ENGINE,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* A clip is ready: the one-step result or a refinement. */
  signals[RESULT_READY] = g_signal_new ("result-ready", G_TYPE_FROM_CLASS (klass),
                                        G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 1, ONESTEP_TYPE_RESULT);
  /* A problem was shown to the user: what failed, and the details. */
  signals[ERROR_REPORTED] = g_signal_new ("error-reported", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-window.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, switcher_title);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, export_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, view_stack);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, preview);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, status_bar);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, status_label);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, get_model_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, stop_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, controls);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, history);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, compare_view);
  gtk_widget_class_bind_template_callback (widget_class, on_controls_changed);
  gtk_widget_class_bind_template_callback_full (widget_class, "on_model_selected",
                                                G_CALLBACK (_onestep_window_use_model));
  gtk_widget_class_bind_template_callback (widget_class, on_history_result_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_compare_export_requested);

  _onestep_window_class_actions_init (widget_class);

  g_type_ensure (ONESTEP_TYPE_PREVIEW);
  g_type_ensure (ONESTEP_TYPE_CONTROLS);
  g_type_ensure (ONESTEP_TYPE_HISTORY);
  g_type_ensure (ONESTEP_TYPE_COMPARE_VIEW);
}

static void
onestep_window_init (OnestepWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->cancellable = g_cancellable_new ();
  self->settings = g_settings_new (SCHEMA_ID);
  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  onestep_controls_set_device (self->controls, g_settings_get_enum (self->settings, "default-device"));
  onestep_controls_set_precision (self->controls, g_settings_get_enum (self->settings, "gpu-precision"));

  _onestep_window_dnd_init (self);

  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  _onestep_window_update_actions (self);
}

OnestepWindow *
onestep_window_new (GtkApplication *application,
                    OnestepEngine  *engine)
{
  return g_object_new (ONESTEP_TYPE_WINDOW,
                       "application", application,
                       "engine", engine,
                       NULL);
}

gboolean
onestep_window_get_busy (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), FALSE);
  return self->generate_cancellable != NULL || self->model_cancellable != NULL;
}

OnestepResult *
onestep_window_get_current_result (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), NULL);
  return self->current_result;
}

OnestepPreview *
onestep_window_get_preview (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), NULL);
  return self->preview;
}

OnestepHistory *
onestep_window_get_history (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), NULL);
  return self->history;
}

OnestepCompareView *
onestep_window_get_compare_view (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), NULL);
  return self->compare_view;
}
