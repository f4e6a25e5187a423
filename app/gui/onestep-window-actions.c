/* onestep-window-actions.c: the window's actions (win.*).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-model-manager.h"
#include "onestep-secret-token-provider.h"
#include "onestep-show-in-files.h"
#include "onestep-window-private.h"

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
  /* Listed even where gdk-pixbuf has no WebP loader, which opening then explains. */
  gtk_file_filter_add_mime_type (filter, "image/webp");

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
  g_autofree char *models_folder = _onestep_window_dup_models_folder (self);
  GtkFileChooserNative *chooser;

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

/* The catalogue, downloads and imports for the models folder; tokens for
 * gated models go to the keyring. */
static void
manage_models_action (GtkWidget  *widget,
                      const char *action_name,
                      GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);
  g_autofree char *models_folder = _onestep_window_dup_models_folder (self);
  g_autoptr(OnestepTokenProvider) tokens = onestep_secret_token_provider_new ();
  g_autoptr(OnestepModelCatalog) catalog = NULL;
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(OnestepModelDownloader) downloader = NULL;
  g_autoptr(GError) error = NULL;
  OnestepModelManager *manager;

  if ((catalog = onestep_model_catalog_new_default (&error)) == NULL ||
      (index = onestep_model_index_new (models_folder, &error)) == NULL)
    {
      _onestep_window_report_error (self, _("The models could not be listed"),
                                    _("Choose another models folder in the preferences."),
                                    error->message);
      return;
    }

  downloader = onestep_model_downloader_new (index, tokens);
  manager = onestep_model_manager_new (GTK_WINDOW (self), catalog, index, downloader, tokens);
  g_signal_connect_object (manager, "model-chosen", G_CALLBACK (_onestep_window_use_model), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (manager, "models-changed",
                           G_CALLBACK (_onestep_window_load_installed_models), self,
                           G_CONNECT_SWAPPED);
  gtk_window_present (GTK_WINDOW (manager));
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
  /* Cancelled: the window has closed. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

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
  gdk_clipboard_read_texture_async (gtk_widget_get_clipboard (widget),
                                    ONESTEP_WINDOW (widget)->cancellable,
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
  _onestep_window_generate (ONESTEP_WINDOW (widget));
}

static void
stop_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  OnestepWindow *self = ONESTEP_WINDOW (widget);

  onestep_compare_view_stop (self->compare_view);
  if (self->generate_cancellable != NULL)
    _onestep_window_stop_generation (self);
  else
    _onestep_window_set_status (self, _("Stopped"));
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

  /* The engine runs one job at a time: the comparison goes first, not after the
   * preview's whole refinement. */
  if (self->generate_cancellable != NULL)
    {
      _onestep_window_cancel_generation (self);
      _onestep_window_set_status (self, _("Stopped for the comparison"));
    }
  params = onestep_controls_get_params (self->controls);
  adw_view_stack_set_visible_child_name (self->view_stack, "compare");
  onestep_compare_view_run (self->compare_view, self->engine, self->image, self->image_width,
                            self->image_height, self->source, params, 8, self->one_step_result);
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

static void
on_shown_in_files (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!onestep_show_in_files_finish (result, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    _onestep_window_report_error (ONESTEP_WINDOW (object), _("The folder could not be opened"),
                                  _("Open it in your file manager."), error->message);
}

/* The parameter: the path of an exported clip. */
static void
show_in_files_action (GtkWidget  *widget,
                      const char *action_name,
                      GVariant   *parameter)
{
  g_autoptr(GFile) file = g_file_new_for_path (g_variant_get_string (parameter, NULL));

  onestep_show_in_files_async (GTK_WINDOW (widget), file, ONESTEP_WINDOW (widget)->cancellable,
                               on_shown_in_files, NULL);
}

void
_onestep_window_class_actions_init (GtkWidgetClass *widget_class)
{
  gtk_widget_class_install_action (widget_class, "win.open", NULL, open_action);
  gtk_widget_class_install_action (widget_class, "win.paste", NULL, paste_action);
  gtk_widget_class_install_action (widget_class, "win.export", NULL, export_action);
  gtk_widget_class_install_action (widget_class, "win.play-pause", NULL, play_pause_action);
  gtk_widget_class_install_action (widget_class, "win.generate", NULL, generate_action);
  gtk_widget_class_install_action (widget_class, "win.stop", NULL, stop_action);
  gtk_widget_class_install_action (widget_class, "win.compare", NULL, compare_action);
  gtk_widget_class_install_action (widget_class, "win.choose-model", NULL, choose_model_action);
  gtk_widget_class_install_action (widget_class, "win.manage-models", NULL, manage_models_action);
  gtk_widget_class_install_action (widget_class, "win.show-error", "(ss)", show_error_action);
  gtk_widget_class_install_action (widget_class, "win.show-in-files", "s", show_in_files_action);
}
