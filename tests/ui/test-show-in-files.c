/* test-show-in-files.c: after an export, the toast's Show in Files asks the file
 * manager, over D-Bus, to show the exported file. The test is the file manager:
 * it owns org.freedesktop.FileManager1 on its own session bus (dbus-run-session)
 * and records what it is asked.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "onestep-export-dialog.h"
#include "ui-test-util.h"

static const char file_manager_xml[] =
  "<node>"
  "  <interface name='org.freedesktop.FileManager1'>"
  "    <method name='ShowItems'>"
  "      <arg type='as' name='uris' direction='in'/>"
  "      <arg type='s' name='startup_id' direction='in'/>"
  "    </method>"
  "  </interface>"
  "</node>";

/* The URIs of the last ShowItems call. */
static char **shown_uris;
static gboolean name_owned;

static void
on_file_manager_call (GDBusConnection       *connection,
                      const char            *sender,
                      const char            *object_path,
                      const char            *interface_name,
                      const char            *method_name,
                      GVariant              *parameters,
                      GDBusMethodInvocation *invocation,
                      gpointer               user_data)
{
  g_assert_cmpstr (method_name, ==, "ShowItems");
  g_strfreev (shown_uris);
  g_variant_get (parameters, "(^as&s)", &shown_uris, NULL);
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static const GDBusInterfaceVTable file_manager_vtable = { on_file_manager_call, NULL, NULL, { 0 } };

static void
on_bus_acquired (GDBusConnection *connection,
                 const char      *name,
                 gpointer         user_data)
{
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (file_manager_xml, NULL);
  g_autoptr(GError) error = NULL;

  g_dbus_connection_register_object (connection, "/org/freedesktop/FileManager1", info->interfaces[0],
                                     &file_manager_vtable, NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
on_name_acquired (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  name_owned = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *)data;
}

static gboolean
is_set (gpointer data)
{
  return *(gpointer *)data != NULL;
}

static void
on_exported (OnestepExportDialog *dialog,
             const char          *path,
             char               **exported)
{
  *exported = g_strdup (path);
}

static gboolean
toast_button_shown (gpointer data)
{
  return ui_test_find_mapped_widget (GTK_WIDGET (ui_test_get_window ()), ui_test_is_button_labelled,
                                     "Show in _Files") != NULL;
}

static void
test_show_in_files (void)
{
  g_autoptr(GSettings) settings = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *export_dir = NULL;
  g_autofree char *exported = NULL;
  g_autofree char *exported_uri = NULL;
  OnestepResult *result;
  GtkWindow *dialog;
  GtkWidget *button;
  guint owner_id;

  if (!ui_test_have_display ())
    return;

  owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, "org.freedesktop.FileManager1", G_BUS_NAME_OWNER_FLAGS_NONE,
                             on_bus_acquired, on_name_acquired, NULL, NULL, NULL);
  g_assert_true (ui_test_wait_until (is_true, &name_owned));

  export_dir = g_dir_make_tmp ("onestep-show-in-files-XXXXXX", &error);
  g_assert_no_error (error);
  settings = g_settings_new (SCHEMA_ID);
  g_settings_set_int (settings, "default-steps", 1);
  g_settings_set_string (settings, "export-folder", export_dir);
  g_settings_set_enum (settings, "export-format", 2 /* gif */);

  ui_test_start_app ();
  ui_test_load_model ();
  result = ui_test_open_and_wait (g_getenv ("ONESTEP_TEST_IMAGE"));

  dialog = onestep_window_export (ui_test_get_window (), result);
  g_signal_connect (dialog, "exported", G_CALLBACK (on_exported), &exported);
  onestep_export_dialog_export (ONESTEP_EXPORT_DIALOG (dialog));
  g_assert_true (ui_test_wait_until (is_set, &exported));

  /* The toast that says so offers to show the file. */
  g_assert_true (ui_test_wait_until (toast_button_shown, NULL));
  ui_test_wait_for_paint (GTK_WIDGET (ui_test_get_window ()));
  ui_test_save_screenshot (GTK_WIDGET (ui_test_get_window ()), "export-show-in-files.png");

  button = ui_test_find_mapped_widget (GTK_WIDGET (ui_test_get_window ()), ui_test_is_button_labelled,
                                       "Show in _Files");
  g_signal_emit_by_name (button, "clicked");
  g_assert_true (ui_test_wait_until (is_set, &shown_uris));
  exported_uri = g_filename_to_uri (exported, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (shown_uris), ==, 1);
  g_assert_cmpstr (shown_uris[0], ==, exported_uri);

  ui_test_stop_app ();
  g_bus_unown_name (owner_id);
  ui_test_remove_tree (export_dir);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data_dir = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  data_dir = g_dir_make_tmp ("onestep-show-in-files-data-XXXXXX", &error);
  g_assert_no_error (error);
  /* History entries of this run stay in this folder. */
  g_setenv ("XDG_DATA_HOME", data_dir, TRUE);

  g_test_add_func ("/export/show-in-files", test_show_in_files);
  status = g_test_run ();

  ui_test_remove_tree (data_dir);
  g_strfreev (shown_uris);
  return status;
}
