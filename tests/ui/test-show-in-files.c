/* test-show-in-files.c: after an export, the toast's Show in Files asks the file
 * manager, over D-Bus, to show the exported file. The test is the file manager:
 * it owns org.freedesktop.FileManager1 on its own session bus (dbus-run-session)
 * and records what it is asked. Where no one owns that name, the folder is opened
 * with the default application for folders: a script of the test's, made the
 * default through its own XDG folders, which writes down what it opened.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

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
/* Where the test's application for folders writes what it opened. */
static char *opened_record;

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

static gboolean
file_exists (gpointer path)
{
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static gboolean
file_manager_gone (gpointer data)
{
  g_autoptr(GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = TRUE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", "org.freedesktop.FileManager1"),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return !has_owner;
}

/* Without a FileManager1 on the bus, the folder opens in the default application
 * for folders. */
static void
check_fallback_opens_folder (const char *exported)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = g_path_get_dirname (exported);
  g_autofree char *folder_uri = NULL;
  g_autofree char *opened = NULL;

  g_assert_true (ui_test_wait_until (file_manager_gone, NULL));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (ui_test_get_window ()), "win.show-in-files", "s",
                                             exported));
  g_assert_true (ui_test_wait_until (file_exists, opened_record));
  g_assert_true (g_file_get_contents (opened_record, &opened, NULL, &error));
  g_assert_no_error (error);
  folder_uri = g_filename_to_uri (folder, NULL, &error);
  g_assert_no_error (error);
  g_strstrip (opened);
  g_test_message ("opened: %s", opened);
  /* %u gives a local folder as a path or as a URI, as the launcher likes. */
  g_assert_true (g_str_equal (opened, folder) || g_str_equal (opened, folder_uri));
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

  g_bus_unown_name (owner_id);
  check_fallback_opens_folder (exported);

  ui_test_stop_app ();
  ui_test_remove_tree (export_dir);
}

/* An application for folders (inode/directory), the default in config_dir, that
 * writes the URI it is given to opened_record. */
static void
install_folder_opener (const char *data_dir,
                       const char *config_dir)
{
  g_autofree char *applications = g_build_filename (data_dir, "applications", NULL);
  g_autofree char *script = g_build_filename (data_dir, "open-folder.sh", NULL);
  g_autofree char *script_text = g_strdup_printf ("#!/bin/sh\nprintf '%%s\\n' \"$1\" > '%s'\n",
                                                  opened_record);
  g_autofree char *desktop = g_build_filename (applications, "onestep-test-folders.desktop", NULL);
  g_autofree char *desktop_text = g_strdup_printf ("[Desktop Entry]\nType=Application\n"
                                                   "Name=Test Folders\nExec=%s %%u\n"
                                                   "MimeType=inode/directory;\n", script);
  g_autofree char *mimeapps = g_build_filename (config_dir, "mimeapps.list", NULL);

  g_assert_cmpint (g_mkdir_with_parents (applications, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (config_dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (script, script_text, -1, NULL));
  g_assert_cmpint (g_chmod (script, 0700), ==, 0);
  g_assert_true (g_file_set_contents (desktop, desktop_text, -1, NULL));
  g_assert_true (g_file_set_contents (mimeapps, "[Default Applications]\n"
                                                "inode/directory=onestep-test-folders.desktop\n", -1, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *config_dir = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  data_dir = g_dir_make_tmp ("onestep-show-in-files-data-XXXXXX", &error);
  g_assert_no_error (error);
  config_dir = g_build_filename (data_dir, "config", NULL);
  opened_record = g_build_filename (data_dir, "opened", NULL);
  install_folder_opener (data_dir, config_dir);
  /* History entries of this run stay in this folder; GIO finds the test's
   * application for folders, and takes it as the default. */
  g_setenv ("XDG_DATA_HOME", data_dir, TRUE);
  g_setenv ("XDG_CONFIG_HOME", config_dir, TRUE);

  g_test_add_func ("/export/show-in-files", test_show_in_files);
  status = g_test_run ();

  ui_test_remove_tree (data_dir);
  g_strfreev (shown_uris);
  g_free (opened_record);
  return status;
}
