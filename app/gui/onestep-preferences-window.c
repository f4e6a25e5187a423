/* onestep-preferences-window.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-export-dialog.h"
#include "onestep-model-index.h"
#include "onestep-preferences-window.h"

struct _OnestepPreferencesWindow
{
  AdwPreferencesWindow  parent_instance;

  AdwActionRow         *models_folder_row;
  AdwComboRow          *device_row;
  AdwComboRow          *precision_row;
  GtkSpinButton        *steps_spin;
  AdwActionRow         *export_folder_row;
  AdwComboRow          *format_row;

  GSettings            *settings;
};

G_DEFINE_FINAL_TYPE (OnestepPreferencesWindow, onestep_preferences_window, ADW_TYPE_PREFERENCES_WINDOW)

static void
update_folder_row (AdwActionRow *row,
                   const char   *folder,
                   const char   *default_folder)
{
  g_autofree char *subtitle = NULL;

  if (folder[0] != '\0')
    adw_action_row_set_subtitle (row, folder);
  else
    {
      /* Translators: the folder used while none is chosen */
      subtitle = g_strdup_printf (_("Default: %s"), default_folder);
      adw_action_row_set_subtitle (row, subtitle);
    }
}

static void
on_settings_changed (OnestepPreferencesWindow *self)
{
  g_autofree char *models = g_settings_get_string (self->settings, "models-folder");
  g_autofree char *exports = g_settings_get_string (self->settings, "export-folder");
  g_autofree char *default_models = onestep_model_index_dup_default_dir ();

  update_folder_row (self->models_folder_row, models, default_models);
  update_folder_row (self->export_folder_row, exports, onestep_export_dialog_get_default_folder ());
  adw_combo_row_set_selected (self->device_row, g_settings_get_enum (self->settings, "default-device"));
  adw_combo_row_set_selected (self->precision_row, g_settings_get_enum (self->settings, "gpu-precision"));
  adw_combo_row_set_selected (self->format_row, g_settings_get_enum (self->settings, "export-format"));
}

static void
on_device_selected (OnestepPreferencesWindow *self)
{
  g_settings_set_enum (self->settings, "default-device", adw_combo_row_get_selected (self->device_row));
}

static void
on_precision_selected (OnestepPreferencesWindow *self)
{
  g_settings_set_enum (self->settings, "gpu-precision", adw_combo_row_get_selected (self->precision_row));
}

static void
on_format_selected (OnestepPreferencesWindow *self)
{
  g_settings_set_enum (self->settings, "export-format", adw_combo_row_get_selected (self->format_row));
}

static void
on_folder_chosen (GtkNativeDialog          *chooser,
                  int                       response,
                  OnestepPreferencesWindow *self)
{
  const char *key = g_object_get_data (G_OBJECT (chooser), "settings-key");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = g_file_get_path (folder);

      if (path != NULL)
        g_settings_set_string (self->settings, key, path);
    }

  gtk_native_dialog_destroy (chooser);
  g_object_unref (chooser);
}

static void
choose_folder (OnestepPreferencesWindow *self,
               const char               *title,
               const char               *key)
{
  GtkFileChooserNative *chooser;

  chooser = gtk_file_chooser_native_new (title, GTK_WINDOW (self),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                         _("_Select"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_object_set_data (G_OBJECT (chooser), "settings-key", (gpointer)key);
  g_signal_connect_object (chooser, "response", G_CALLBACK (on_folder_chosen), self, 0);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
on_choose_models_folder (OnestepPreferencesWindow *self)
{
  choose_folder (self, _("Choose Models Folder"), "models-folder");
}

static void
on_choose_export_folder (OnestepPreferencesWindow *self)
{
  choose_folder (self, _("Choose Export Folder"), "export-folder");
}

static void
onestep_preferences_window_dispose (GObject *object)
{
  OnestepPreferencesWindow *self = (OnestepPreferencesWindow *)object;

  g_clear_object (&self->settings);

  G_OBJECT_CLASS (onestep_preferences_window_parent_class)->dispose (object);
}

static void
onestep_preferences_window_class_init (OnestepPreferencesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_preferences_window_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-preferences-window.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepPreferencesWindow, models_folder_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreferencesWindow, device_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreferencesWindow, precision_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreferencesWindow, steps_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreferencesWindow, export_folder_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreferencesWindow, format_row);
  gtk_widget_class_bind_template_callback (widget_class, on_device_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_precision_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_format_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_choose_models_folder);
  gtk_widget_class_bind_template_callback (widget_class, on_choose_export_folder);
}

static void
onestep_preferences_window_init (OnestepPreferencesWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (SCHEMA_ID);
  on_settings_changed (self);
  g_signal_connect_object (self->settings, "changed", G_CALLBACK (on_settings_changed), self,
                           G_CONNECT_SWAPPED);
  g_settings_bind (self->settings, "default-steps", self->steps_spin, "value", G_SETTINGS_BIND_DEFAULT);
}

GtkWidget *
onestep_preferences_window_new (GtkWindow *parent)
{
  return g_object_new (ONESTEP_TYPE_PREFERENCES_WINDOW, "transient-for", parent, NULL);
}
