/* onestep-window.c
 *
 * An image (dropped, pasted or opened) is generated at once with one step,
 * then refined with more steps up to the chosen count, each result replacing
 * the preview. Any change of settings cancels the work and starts again.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-controls.h"
#include "onestep-export-dialog.h"
#include "onestep-image.h"
#include "onestep-model-index.h"
#include "onestep-window.h"

/* 1, 2, 4, ... 32 and the chosen count: at most 7 runs for 50 steps. */
#define MAX_RUNS 8

struct _OnestepWindow
{
  AdwApplicationWindow  parent_instance;

  AdwToastOverlay      *toast_overlay;
  AdwViewSwitcherTitle *switcher_title;
  GtkWidget            *export_button;
  GtkStack             *main_stack;
  AdwViewStack         *view_stack;
  OnestepPreview       *preview;
  GtkLabel             *status_label;
  GtkProgressBar       *progress_bar;
  GtkWidget            *stop_button;
  OnestepControls      *controls;
  OnestepHistory       *history;
  OnestepCompareView   *compare_view;

  OnestepEngine        *engine;
  GSettings            *settings;

  GdkTexture           *source;
  GBytes               *image;
  int                   image_width;
  int                   image_height;

  char                 *model_path;
  char                 *unet_file;
  GCancellable         *model_cancellable;
  gboolean              model_loaded;

  GCancellable         *generate_cancellable;
  int                   generate_fps;
  gboolean              have_result;
  OnestepResult        *current_result;
};

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

static void
onestep_window_update_actions (OnestepWindow *self)
{
  gboolean can_generate = self->image != NULL && self->model_loaded;

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.export", self->current_result != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.play-pause", self->current_result != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.generate", can_generate);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.compare", can_generate);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.stop", self->generate_cancellable != NULL);
  gtk_widget_set_visible (self->export_button, self->current_result != NULL);
}

static void
onestep_window_set_status (OnestepWindow *self,
                           const char    *status)
{
  gtk_label_set_label (self->status_label, status);
}

/* A toast saying what failed and what to do, with the details a click away. */
static void
onestep_window_report_error (OnestepWindow *self,
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
  onestep_window_report_error (self, what_failed, hint_for_error (error), error->message);
}

static void
onestep_window_cancel_generation (OnestepWindow *self)
{
  if (self->generate_cancellable == NULL)
    return;

  g_cancellable_cancel (self->generate_cancellable);
  g_clear_object (&self->generate_cancellable);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  onestep_window_update_actions (self);
}

static void
onestep_window_show_result (OnestepWindow *self,
                            OnestepResult *result)
{
  g_set_object (&self->current_result, result);
  onestep_preview_set_frames (self->preview, onestep_result_get_frames (result),
                              onestep_result_get_n_frames (result),
                              onestep_result_get_width (result),
                              onestep_result_get_height (result),
                              onestep_result_get_params (result)->fps);
  onestep_window_update_actions (self);
}

static char *
describe_progress (const OnestepEngineProgress *progress)
{
  int step = MIN (progress->step + 1, progress->n_steps);

  if (progress->stage == ONESTEP_STAGE_DENOISE)
    {
      if (progress->run == 0)
        return g_strdup_printf (_("Generating: step %d of %d"), step, progress->n_steps);
      return g_strdup_printf (_("Refining with %d steps: step %d of %d"), progress->run_steps,
                              step, progress->n_steps);
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

static void
on_generate_progress (const OnestepEngineProgress *progress,
                      gpointer                     user_data)
{
  OnestepWindow *self = user_data;
  g_autofree char *status = describe_progress (progress);

  onestep_window_set_status (self, status);
  gtk_progress_bar_set_fraction (self->progress_bar, progress->fraction);

  /* The latent preview is only worth showing until the first clip exists. */
  if (progress->preview != NULL && !self->have_result)
    onestep_preview_set_frames (self->preview, progress->preview, progress->preview_frames,
                                progress->preview_width, progress->preview_height,
                                self->generate_fps);
}

static void
on_generate_result (OnestepResult *result,
                    gpointer       user_data)
{
  OnestepWindow *self = user_data;

  onestep_result_set_source (result, self->source);
  self->have_result = TRUE;
  onestep_window_show_result (self, result);
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
  gboolean superseded = g_task_get_cancellable (G_TASK (result)) != self->generate_cancellable;
  gboolean ok;

  ok = onestep_engine_generate_finish (ONESTEP_ENGINE (object), result, &error);
  if (superseded)
    return;

  g_clear_object (&self->generate_cancellable);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  onestep_window_update_actions (self);

  if (ok)
    {
      g_autofree char *summary = onestep_result_dup_summary (self->current_result);
      g_autofree char *status = g_strdup_printf (_("Done: %s"), summary);

      onestep_window_set_status (self, status);
    }
  else
    {
      onestep_window_set_status (self, _("Generation failed"));
      onestep_window_show_error (self, _("Generation failed"), error);
    }
}

static void
onestep_window_generate (OnestepWindow *self)
{
  g_autoptr(OnestepParams) params = NULL;
  int runs[MAX_RUNS];
  guint n_runs = 0;

  if (self->image == NULL || !self->model_loaded)
    return;

  onestep_window_cancel_generation (self);
  params = onestep_controls_get_params (self->controls);

  runs[n_runs++] = 1;
  for (int steps = 2; steps < params->steps && n_runs < MAX_RUNS - 1; steps *= 2)
    runs[n_runs++] = steps;
  if (params->steps > 1)
    runs[n_runs++] = params->steps;

  self->generate_cancellable = g_cancellable_new ();
  self->generate_fps = params->fps;
  self->have_result = FALSE;
  onestep_window_set_status (self, _("Starting…"));
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), TRUE);
  onestep_window_update_actions (self);

  onestep_engine_generate_async (self->engine, self->image, self->image_width, self->image_height,
                                 params, runs, n_runs, on_generate_progress, on_generate_result,
                                 self, self->generate_cancellable, on_generate_done,
                                 g_object_ref (self));
}

static void
on_controls_changed (OnestepWindow *self)
{
  onestep_window_generate (self);
}

static void
on_history_result_activated (OnestepWindow *self,
                             OnestepResult *result)
{
  g_autofree char *summary = onestep_result_dup_summary (result);
  g_autofree char *status = g_strdup_printf (_("From the history: %s"), summary);
  GdkTexture *source = onestep_result_get_source (result);

  onestep_window_cancel_generation (self);
  onestep_controls_set_params (self->controls, onestep_result_get_params (result));
  if (source != NULL && source != self->source)
    {
      g_set_object (&self->source, source);
      g_clear_pointer (&self->image, g_bytes_unref);
      self->image = onestep_image_rgb_from_texture (source);
      self->image_width = gdk_texture_get_width (source);
      self->image_height = gdk_texture_get_height (source);
    }
  self->have_result = TRUE;
  onestep_window_show_result (self, result);
  onestep_window_set_status (self, status);
  adw_view_stack_set_visible_child_name (self->view_stack, "preview");
}

static void
on_exported (OnestepWindow *self,
             const char    *path)
{
  g_autofree char *name = g_path_get_basename (path);

  adw_toast_overlay_add_toast (self->toast_overlay,
                               adw_toast_new_format (_("Exported “%s”"), name));
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
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          onestep_window_set_status (self, _("No model"));
          onestep_window_show_error (self, _("The model could not be loaded"), error);
        }
      return;
    }

  self->model_loaded = TRUE;
  onestep_controls_set_model (self->controls, self->model_path, self->unet_file, &info,
                              g_settings_get_int (self->settings, "default-steps"));
  onestep_window_set_status (self, "");
  onestep_window_update_actions (self);
  onestep_window_generate (self);
}

static void
onestep_window_load_model (OnestepWindow *self,
                           const char    *model_path,
                           const char    *unet_file)
{
  g_autoptr(OnestepParams) params = NULL;

  g_settings_set_string (self->settings, "model-path", model_path);
  g_settings_set_string (self->settings, "model-unet-file", unet_file ? unet_file : "");

  onestep_window_cancel_generation (self);
  if (self->model_cancellable != NULL)
    g_cancellable_cancel (self->model_cancellable);
  g_clear_object (&self->model_cancellable);
  self->model_cancellable = g_cancellable_new ();
  self->model_loaded = FALSE;
  onestep_window_update_actions (self);
  onestep_window_set_status (self, _("Loading the model…"));

  g_free (self->model_path);
  self->model_path = g_strdup (model_path);
  g_free (self->unet_file);
  self->unet_file = g_strdup (unet_file);
  params = onestep_controls_get_params (self->controls);
  onestep_engine_load_model_async (self->engine, model_path, unet_file, params->device,
                                   self->model_cancellable, on_model_loaded, g_object_ref (self));
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

static void
on_model_selected (OnestepWindow         *self,
                   OnestepInstalledModel *model)
{
  onestep_window_load_model (self, onestep_installed_model_get_path (model),
                             onestep_installed_model_get_unet_file (model));
}

/* Lists the models of the index in the models folder. */
static void
onestep_window_load_installed_models (OnestepWindow *self)
{
  g_autofree char *models_dir = g_settings_get_string (self->settings, "models-folder");
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(GPtrArray) models = NULL;
  g_autoptr(GError) error = NULL;

  if (models_dir[0] == '\0')
    {
      g_free (models_dir);
      models_dir = onestep_model_index_dup_default_dir ();
    }

  index = onestep_model_index_new (models_dir, &error);
  if (index == NULL)
    {
      onestep_window_report_error (self, _("The models folder could not be read"),
                                   _("Choose another models folder in the preferences."),
                                   error->message);
      return;
    }

  models = onestep_model_index_dup_models (index);
  onestep_controls_set_installed_models (self->controls, models);
}

gboolean
onestep_window_get_model_loaded (OnestepWindow *self)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), FALSE);
  return self->model_loaded;
}

static void
on_texture_loaded (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  OnestepWindow *self = ONESTEP_WINDOW (object);
  GFile *file = user_data;
  g_autoptr(GdkTexture) texture = NULL;
  g_autoptr(GError) error = NULL;

  texture = g_task_propagate_pointer (G_TASK (result), &error);
  if (texture == NULL)
    {
      g_autofree char *name = g_file_get_basename (file);
      g_autofree char *what = g_strdup_printf (_("“%s” could not be opened as an image"), name);

      onestep_window_report_error (self, what, _("Try a PNG or JPEG file."), error->message);
      return;
    }

  onestep_window_open_texture (self, texture);
}

static void
load_texture_thread (GTask        *task,
                     gpointer      source_object,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  GError *error = NULL;
  GdkTexture *texture = gdk_texture_new_from_file (task_data, &error);

  if (texture != NULL)
    g_task_return_pointer (task, texture, g_object_unref);
  else
    g_task_return_error (task, error);
}

/* Reads an image file in a thread, then opens it. */
void
onestep_window_open_file (OnestepWindow *self,
                          GFile         *file)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ONESTEP_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  task = g_task_new (self, NULL, on_texture_loaded, file);
  g_task_set_source_tag (task, onestep_window_open_file);
  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, load_texture_thread);
}

/* Makes the image the current one and starts generating from it. */
void
onestep_window_open_texture (OnestepWindow *self,
                             GdkTexture    *texture)
{
  g_return_if_fail (ONESTEP_IS_WINDOW (self));
  g_return_if_fail (GDK_IS_TEXTURE (texture));

  g_set_object (&self->source, texture);
  g_clear_pointer (&self->image, g_bytes_unref);
  self->image = onestep_image_rgb_from_texture (texture);
  self->image_width = gdk_texture_get_width (texture);
  self->image_height = gdk_texture_get_height (texture);

  onestep_controls_prepare_new_image (self->controls);
  gtk_stack_set_visible_child_name (self->main_stack, "main");
  adw_view_switcher_title_set_view_switcher_enabled (self->switcher_title, TRUE);
  adw_view_stack_set_visible_child_name (self->view_stack, "preview");
  onestep_preview_clear (self->preview);
  g_clear_object (&self->current_result);
  onestep_window_update_actions (self);

  if (self->model_loaded)
    onestep_window_generate (self);
  else if (self->model_cancellable == NULL)
    {
      AdwToast *toast = adw_toast_new (_("Choose a model to bring the image to life"));

      adw_toast_set_button_label (toast, _("_Choose Model"));
      adw_toast_set_action_name (toast, "win.choose-model");
      adw_toast_overlay_add_toast (self->toast_overlay, toast);
      onestep_window_set_status (self, _("No model"));
    }
  /* Otherwise the model is loading and generation starts when it is ready. */
}

/* Opens what was dropped: a file, the first of a list of files, or an image. */
gboolean
onestep_window_drop (OnestepWindow *self,
                     const GValue  *value)
{
  g_return_val_if_fail (ONESTEP_IS_WINDOW (self), FALSE);

  if (G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    {
      GSList *files = gdk_file_list_get_files (g_value_get_boxed (value));
      gboolean opened = files != NULL;

      if (opened)
        onestep_window_open_file (self, files->data);
      g_slist_free (files);
      return opened;
    }

  if (G_VALUE_HOLDS (value, G_TYPE_FILE))
    {
      onestep_window_open_file (self, g_value_get_object (value));
      return TRUE;
    }

  if (G_VALUE_HOLDS (value, GDK_TYPE_TEXTURE))
    {
      onestep_window_open_texture (self, g_value_get_object (value));
      return TRUE;
    }

  return FALSE;
}

static gboolean
on_drop (OnestepWindow *self,
         const GValue  *value,
         double         x,
         double         y)
{
  return onestep_window_drop (self, value);
}

static void
on_image_chosen (GtkNativeDialog *chooser,
                 int              response,
                 OnestepWindow   *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));

      onestep_window_open_file (self, file);
    }

  gtk_native_dialog_destroy (chooser);
  g_object_unref (chooser);
}

static void
open_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);
  GtkFileChooserNative *chooser;
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, _("Images"));
  gtk_file_filter_add_pixbuf_formats (filter);

  chooser = gtk_file_chooser_native_new (_("Open Image"), GTK_WINDOW (self),
                                         GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect_object (chooser, "response", G_CALLBACK (on_image_chosen), self, 0);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
on_model_chosen (GtkNativeDialog *chooser,
                 int              response,
                 OnestepWindow   *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = g_file_get_path (folder);

      if (path != NULL)
        onestep_window_set_model (self, path);
    }

  gtk_native_dialog_destroy (chooser);
  g_object_unref (chooser);
}

static void
choose_model_action (GtkWidget  *widget,
                     const char *action_name,
                     GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);
  g_autofree char *models_folder = g_settings_get_string (self->settings, "models-folder");
  GtkFileChooserNative *chooser;

  if (models_folder[0] == '\0')
    {
      g_free (models_folder);
      models_folder = onestep_model_index_dup_default_dir ();
    }

  chooser = gtk_file_chooser_native_new (_("Choose Model Folder"), GTK_WINDOW (self),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                         _("_Select"), _("_Cancel"));
  if (g_file_test (models_folder, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GFile) folder = g_file_new_for_path (models_folder);

      gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), folder, NULL);
    }
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect_object (chooser, "response", G_CALLBACK (on_model_chosen), self, 0);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
on_clipboard_texture (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(OnestepWindow) self = user_data;
  g_autoptr(GdkTexture) texture = NULL;
  g_autoptr(GError) error = NULL;

  texture = gdk_clipboard_read_texture_finish (GDK_CLIPBOARD (object), result, &error);
  if (texture == NULL)
    {
      adw_toast_overlay_add_toast (self->toast_overlay,
                                   adw_toast_new (_("The clipboard holds no image. Copy an image, then paste it here.")));
      return;
    }

  onestep_window_open_texture (self, texture);
}

static void
paste_action (GtkWidget  *widget,
              const char *action_name,
              GVariant   *parameter)
{
  gdk_clipboard_read_texture_async (gtk_widget_get_clipboard (widget), NULL,
                                    on_clipboard_texture, g_object_ref (widget));
}

static void
export_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);

  if (self->current_result != NULL)
    onestep_window_export (self, self->current_result);
}

static void
play_pause_action (GtkWidget  *widget,
                   const char *action_name,
                   GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);

  onestep_preview_set_playing (self->preview, !onestep_preview_get_playing (self->preview));
}

static void
generate_action (GtkWidget  *widget,
                 const char *action_name,
                 GVariant   *parameter)
{
  onestep_window_generate (ONESTEP_WINDOW (widget));
}

static void
stop_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);

  onestep_window_cancel_generation (self);
  onestep_compare_view_stop (self->compare_view);
  onestep_window_set_status (self, _("Stopped"));
}

static void
compare_action (GtkWidget  *widget,
                const char *action_name,
                GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);
  g_autoptr(OnestepParams) params = NULL;

  if (self->image == NULL || !self->model_loaded)
    return;

  params = onestep_controls_get_params (self->controls);
  adw_view_stack_set_visible_child_name (self->view_stack, "compare");
  onestep_compare_view_run (self->compare_view, self->engine, self->image, self->image_width,
                            self->image_height, self->source, params, 8);
}

static void
show_error_action (GtkWidget  *widget,
                   const char *action_name,
                   GVariant   *parameter)
{
  const char *heading;
  const char *body;
  GtkWidget *dialog;

  g_variant_get (parameter, "(&s&s)", &heading, &body);
  dialog = adw_message_dialog_new (GTK_WINDOW (widget), heading, body);
  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
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

  onestep_window_cancel_generation (self);
  onestep_compare_view_stop (self->compare_view);

  return GTK_WINDOW_CLASS (onestep_window_parent_class)->close_request (window);
}

static void
onestep_window_constructed (GObject *object)
{
  OnestepWindow *self = (OnestepWindow *)object;
  g_autofree char *model_path = NULL;
  g_autofree char *unet_file = NULL;

  G_OBJECT_CLASS (onestep_window_parent_class)->constructed (object);

  onestep_window_load_installed_models (self);
  g_signal_connect_object (self->settings, "changed::models-folder",
                           G_CALLBACK (onestep_window_load_installed_models), self,
                           G_CONNECT_SWAPPED);

  model_path = g_settings_get_string (self->settings, "model-path");
  unet_file = g_settings_get_string (self->settings, "model-unet-file");
  if (model_path[0] != '\0' && g_file_test (model_path, G_FILE_TEST_EXISTS))
    onestep_window_load_model (self, model_path, unet_file[0] != '\0' ? unet_file : NULL);
}

static void
onestep_window_dispose (GObject *object)
{
  OnestepWindow *self = (OnestepWindow *)object;

  onestep_window_cancel_generation (self);
  if (self->model_cancellable != NULL)
    g_cancellable_cancel (self->model_cancellable);
  g_clear_object (&self->model_cancellable);
  g_clear_pointer (&self->model_path, g_free);
  g_clear_pointer (&self->unet_file, g_free);
  g_clear_object (&self->current_result);
  g_clear_object (&self->source);
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
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, status_label);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, stop_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, controls);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, history);
  gtk_widget_class_bind_template_child (widget_class, OnestepWindow, compare_view);
  gtk_widget_class_bind_template_callback (widget_class, on_controls_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_model_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_history_result_activated);
  gtk_widget_class_bind_template_callback (widget_class, on_compare_export_requested);

  gtk_widget_class_install_action (widget_class, "win.open", NULL, open_action);
  gtk_widget_class_install_action (widget_class, "win.paste", NULL, paste_action);
  gtk_widget_class_install_action (widget_class, "win.export", NULL, export_action);
  gtk_widget_class_install_action (widget_class, "win.play-pause", NULL, play_pause_action);
  gtk_widget_class_install_action (widget_class, "win.generate", NULL, generate_action);
  gtk_widget_class_install_action (widget_class, "win.stop", NULL, stop_action);
  gtk_widget_class_install_action (widget_class, "win.compare", NULL, compare_action);
  gtk_widget_class_install_action (widget_class, "win.choose-model", NULL, choose_model_action);
  gtk_widget_class_install_action (widget_class, "win.show-error", "(ss)", show_error_action);

  g_type_ensure (ONESTEP_TYPE_PREVIEW);
  g_type_ensure (ONESTEP_TYPE_CONTROLS);
  g_type_ensure (ONESTEP_TYPE_HISTORY);
  g_type_ensure (ONESTEP_TYPE_COMPARE_VIEW);
}

static void
onestep_window_init (OnestepWindow *self)
{
  GType drop_types[] = { GDK_TYPE_FILE_LIST, G_TYPE_FILE, GDK_TYPE_TEXTURE };
  GtkDropTarget *drop_target;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (SCHEMA_ID);
  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  onestep_controls_set_device (self->controls, g_settings_get_enum (self->settings, "default-device"));

  drop_target = gtk_drop_target_new (G_TYPE_INVALID, GDK_ACTION_COPY);
  gtk_drop_target_set_gtypes (drop_target, drop_types, G_N_ELEMENTS (drop_types));
  g_signal_connect_object (drop_target, "drop", G_CALLBACK (on_drop), self, G_CONNECT_SWAPPED);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop_target));

  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  onestep_window_update_actions (self);
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
