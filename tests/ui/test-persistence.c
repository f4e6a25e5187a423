/* test-persistence.c: what the application keeps across a restart.
 *
 * Each restart test runs the real application twice, in two subprocesses that
 * share one data and one config folder (GSettings' keyfile backend): the first
 * makes clips and choices, the second, a new process, must find them again.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/resource.h>

#include "onestep-controls.h"
#include "onestep-export-dialog.h"
#include "onestep-history.h"
#include "onestep-installed-model.h"
#include "onestep-model-index.h"
#include "ui-test-util.h"

/* Sorts before every entry the application names, so it is the oldest. */
#define CORRUPT_ENTRY "20000101-000000-000000-00000000"
#define LEFTOVER_SAVE ".saving-20000101-000000-000000-00000001"
#define LOCKED_SEED 4242
#define CUSTOM_WIDTH 128
#define CUSTOM_HEIGHT 64
#define EXPORT_FPS 12

static char *test_root;

static char *
dup_history_folder (void)
{
  return g_build_filename (g_get_user_data_dir (), "onestep", "history", NULL);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

/* The entry folders on disk, sorted, hidden ones (saves under way) included. */
static GPtrArray *
list_history_folder (void)
{
  g_autofree char *folder = dup_history_folder ();
  g_autoptr(GDir) dir = g_dir_open (folder, 0, NULL);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  return names;
}

static guint
count_complete_entries (void)
{
  g_autoptr(GPtrArray) names = list_history_folder ();
  guint n = 0;

  for (guint i = 0; i < names->len; i++)
    n += ((const char *)g_ptr_array_index (names, i))[0] != '.';
  return n;
}

static gboolean
history_folder_holds (gpointer n_entries)
{
  g_autoptr(GPtrArray) names = list_history_folder ();

  return names->len == GPOINTER_TO_UINT (n_entries) && count_complete_entries () == names->len;
}

static OnestepHistory *
get_history (void)
{
  return onestep_window_get_history (ui_test_get_window ());
}

static gboolean
history_loaded (gpointer data)
{
  return onestep_history_get_loaded (get_history ());
}

static char *
checksum_frames (OnestepResult *result)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, onestep_result_get_frames (result));
}

static char *
dup_expected_checksum_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "expected-frames.sha256", NULL);
}

/* Starts the application with two steps, so a clip and its refinement. */
static void
start_app_with_model (void)
{
  g_autoptr(GSettings) settings = g_settings_new (SCHEMA_ID);

  g_settings_set_int (settings, "default-steps", 2);
  ui_test_start_app ();
  g_assert_true (ui_test_wait_until (history_loaded, NULL));
  ui_test_load_model ();
}

static void
run_in_subprocess (const char *path)
{
  /* Its stdout is a TAP stream of its own, kept out of this one. */
  g_test_trap_subprocess (path, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* Points the application's data and config folders at fresh folders of this
 * test, which its subprocesses inherit. */
static void
use_fresh_folders (const char *name)
{
  g_autofree char *data = g_build_filename (test_root, name, "data", NULL);
  g_autofree char *config = g_build_filename (test_root, name, "config", NULL);

  g_assert_cmpint (g_mkdir_with_parents (data, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (config, 0700), ==, 0);
  g_setenv ("XDG_DATA_HOME", data, TRUE);
  g_setenv ("XDG_CONFIG_HOME", config, TRUE);
}

/* First run: two clips, kept on disk (History records each generation once: one
 * with a single step, then the same image and seed refined with two); a corrupt
 * entry and an interrupted save are left beside them for the second run to cope
 * with. */
static void
history_first_run (void)
{
  g_autofree char *folder = dup_history_folder ();
  g_autofree char *corrupt = g_build_filename (folder, CORRUPT_ENTRY, NULL);
  g_autofree char *corrupt_json = g_build_filename (corrupt, "entry.json", NULL);
  g_autofree char *leftover = g_build_filename (folder, LEFTOVER_SAVE, NULL);
  g_autofree char *leftover_frame = g_build_filename (leftover, "frame-0001.png", NULL);
  g_autofree char *checksum = NULL;
  g_autofree char *checksum_path = dup_expected_checksum_path ();
  OnestepResult *result;

  start_app_with_model ();
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("steps_spin")), 1);
  result = ui_test_open_and_wait (g_getenv ("ONESTEP_TEST_IMAGE"));
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("steps_spin")), 2);
  result = ui_test_wait_for_new_result (result);
  g_assert_cmpuint (onestep_history_get_len (get_history ()), ==, 2);
  g_assert_true (ui_test_wait_until (history_folder_holds, GUINT_TO_POINTER (2)));

  checksum = checksum_frames (result);
  g_assert_true (g_file_set_contents (checksum_path, checksum, -1, NULL));
  g_assert_cmpint (g_mkdir (corrupt, 0700), ==, 0);
  g_assert_true (g_file_set_contents (corrupt_json, "{ \"version\": 1, \"frames\": ", -1, NULL));
  g_assert_cmpint (g_mkdir (leftover, 0700), ==, 0);
  g_assert_true (g_file_set_contents (leftover_frame, "half a PNG", -1, NULL));

  ui_test_stop_app ();
}

static gboolean
model_loaded_and_idle (gpointer data)
{
  return onestep_window_get_model_loaded (ui_test_get_window ()) &&
         !onestep_window_get_busy (ui_test_get_window ());
}

static gboolean
is_widget (GtkWidget     *widget,
           gconstpointer  wanted)
{
  return widget == wanted;
}

static GtkWidget *
get_history_row (guint position)
{
  GtkListBox *list_box = GTK_LIST_BOX (gtk_widget_get_template_child (GTK_WIDGET (get_history ()),
                                                                      ONESTEP_TYPE_HISTORY, "list_box"));

  return GTK_WIDGET (gtk_list_box_get_row_at_index (list_box, position));
}

static gboolean
is_delete_button (GtkWidget     *widget,
                  gconstpointer  data)
{
  return GTK_IS_BUTTON (widget) &&
         g_strcmp0 (gtk_widget_get_tooltip_text (widget), "Delete") == 0;
}

/* Second run, a new process: the clips are back, newest first, with their settings
 * and frames; the corrupt entry is named in a message and skipped; Delete removes an
 * entry's files. */
static void
history_second_run (void)
{
  g_autofree char *checksum_path = dup_expected_checksum_path ();
  g_autofree char *expected_checksum = NULL;
  g_autofree char *restored_checksum = NULL;
  g_autoptr(OnestepResult) newest = NULL;
  g_autoptr(OnestepResult) oldest = NULL;
  g_autoptr(GPtrArray) names = NULL;
  OnestepHistory *history;
  GtkLabel *problems;
  GtkListBox *list_box;
  GtkWidget *delete_button;
  OnestepWindow *window;

  window = ui_test_start_app ();
  history = get_history ();
  g_assert_true (ui_test_wait_until (history_loaded, NULL));
  g_assert_cmpuint (onestep_history_get_len (history), ==, 2);
  newest = onestep_history_dup_result (history, 0);
  oldest = onestep_history_dup_result (history, 1);

  /* The window opens on the newest clip once the model of the first run has loaded. */
  g_assert_true (ui_test_wait_until (model_loaded_and_idle, NULL));
  g_assert_true (onestep_window_get_current_result (window) == newest);
  g_assert_nonnull (ui_test_find_mapped_widget (GTK_WIDGET (window), is_widget, history));
  g_assert_cmpint (onestep_result_get_params (newest)->steps, ==, 2);
  g_assert_cmpint (onestep_result_get_params (oldest)->steps, ==, 1);
  g_assert_cmpuint (onestep_result_get_params (newest)->seed, ==, onestep_result_get_params (oldest)->seed);
  g_assert_cmpstr (onestep_result_get_params (newest)->model_path, ==, g_getenv ("ONESTEP_TEST_MODEL"));
  g_assert_nonnull (onestep_result_get_source (newest));
  g_assert_true (g_file_get_contents (checksum_path, &expected_checksum, NULL, NULL));
  restored_checksum = checksum_frames (newest);
  g_assert_cmpstr (restored_checksum, ==, expected_checksum);

  /* The corrupt entry is named; the interrupted save is gone. */
  problems = GTK_LABEL (gtk_widget_get_template_child (GTK_WIDGET (history), ONESTEP_TYPE_HISTORY,
                                                       "problems_label"));
  g_test_message ("%s", gtk_label_get_label (problems));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (problems)));
  g_assert_nonnull (strstr (gtk_label_get_label (problems), CORRUPT_ENTRY));
  names = list_history_folder ();
  g_assert_cmpuint (names->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (names, 0), ==, CORRUPT_ENTRY);

  ui_test_wait_for_paint (GTK_WIDGET (window));
  ui_test_save_screenshot (GTK_WIDGET (window), "history-restored.png");

  /* Choosing a row brings its clip and settings back. */
  list_box = GTK_LIST_BOX (gtk_widget_get_template_child (GTK_WIDGET (history), ONESTEP_TYPE_HISTORY,
                                                          "list_box"));
  g_signal_emit_by_name (list_box, "row-activated", get_history_row (1));
  g_assert_true (onestep_window_get_current_result (window) == oldest);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (ui_test_get_controls_child ("steps_spin"))),
                   ==, 1);
  g_signal_emit_by_name (list_box, "row-activated", get_history_row (0));
  g_assert_true (onestep_window_get_current_result (window) == newest);
  g_assert_cmpuint ((guint32)gtk_spin_button_get_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("seed_spin"))),
                    ==, onestep_result_get_params (newest)->seed);

  /* Delete on the older row: gone from the list and from the disk. */
  delete_button = ui_test_find_mapped_widget (get_history_row (1), is_delete_button, NULL);
  g_assert_nonnull (delete_button);
  g_signal_emit_by_name (delete_button, "clicked");
  g_assert_cmpuint (onestep_history_get_len (history), ==, 1);
  g_assert_true (ui_test_wait_until (history_folder_holds, GUINT_TO_POINTER (2)));

  ui_test_stop_app ();
}

static void
test_history_restart (void)
{
  if (!ui_test_have_display ())
    return;

  use_fresh_folders ("history-restart");
  run_in_subprocess ("/history/restart/subprocess/first-run");
  run_in_subprocess ("/history/restart/subprocess/second-run");
}

/* Whether the label says two things: both clips have failed to save. */
static gboolean
label_has_two_lines (gpointer label)
{
  const char *text = gtk_label_get_label (label);
  const char *newline = strchr (text, '\n');

  return newline != NULL && strchr (newline + 1, '\n') == NULL;
}

/* A disk too full for a clip: the history says so, and nothing partial is left. */
static void
history_full_disk_run (void)
{
  struct rlimit limit = { 0 };
  struct rlimit unlimited = { 0 };
  OnestepResult *result;
  GtkLabel *problems;
  g_autoptr(GPtrArray) names = NULL;

  start_app_with_model ();

  /* Files may grow to 1 KiB, less than a frame: writes past it fail as on a full
   * disk (EFBIG instead of ENOSPC), once the signal that would end the process is
   * ignored. */
  signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &unlimited), ==, 0);
  limit.rlim_cur = 1024;
  limit.rlim_max = unlimited.rlim_max;
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);

  /* Two generations, so two clips to save: one step, then two (History records each
   * generation once). */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("steps_spin")), 1);
  result = ui_test_open_and_wait (g_getenv ("ONESTEP_TEST_IMAGE"));
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("steps_spin")), 2);
  ui_test_wait_for_new_result (result);
  problems = GTK_LABEL (gtk_widget_get_template_child (GTK_WIDGET (get_history ()), ONESTEP_TYPE_HISTORY,
                                                       "problems_label"));
  g_assert_true (ui_test_wait_until (label_has_two_lines, problems));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (problems)));
  g_test_message ("%s", gtk_label_get_label (problems));
  g_assert_nonnull (strstr (gtk_label_get_label (problems), "could not be kept"));
  /* The clips stay in this session. */
  g_assert_cmpuint (onestep_history_get_len (get_history ()), ==, 2);

  /* Neither failed save left a folder, complete or not. */
  names = list_history_folder ();
  g_assert_cmpuint (names->len, ==, 0);

  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &unlimited), ==, 0);
  ui_test_wait_for_paint (GTK_WIDGET (ui_test_get_window ()));
  ui_test_save_screenshot (GTK_WIDGET (get_history ()), "history-disk-full.png");
  ui_test_stop_app ();
}

static void
test_history_full_disk (void)
{
  if (!ui_test_have_display ())
    return;

  use_fresh_folders ("history-full-disk");
  run_in_subprocess ("/history/full-disk/subprocess/run");
}

static void
on_exported (OnestepExportDialog *dialog,
             const char          *path,
             char               **exported)
{
  *exported = g_strdup (path);
}

static gboolean
is_set (gpointer data)
{
  return *(char **)data != NULL;
}

/* First run: the user locks a seed, picks a custom size and exports at another
 * frame rate, forwards and backwards. */
static void
settings_first_run (void)
{
  g_autoptr(GSettings) settings = g_settings_new (SCHEMA_ID);
  g_autofree char *export_dir = g_build_filename (test_root, "settings-exports", NULL);
  g_autofree char *exported = NULL;
  OnestepResult *result;
  GtkWindow *dialog;
  AdwComboRow *size_row;

  start_app_with_model ();
  result = ui_test_open_and_wait (g_getenv ("ONESTEP_TEST_IMAGE"));

  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("seed_spin")), LOCKED_SEED);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (ui_test_get_controls_child ("seed_lock_button")), TRUE);
  size_row = ADW_COMBO_ROW (ui_test_get_controls_child ("size_row"));
  adw_combo_row_set_selected (size_row, g_list_model_get_n_items (adw_combo_row_get_model (size_row)) - 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("width_spin")), CUSTOM_WIDTH);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (ui_test_get_controls_child ("height_spin")), CUSTOM_HEIGHT);
  result = ui_test_wait_for_new_result (result);
  g_assert_cmpint (onestep_result_get_width (result), ==, CUSTOM_WIDTH);

  g_assert_cmpint (g_mkdir_with_parents (export_dir, 0700), ==, 0);
  g_settings_set_string (settings, "export-folder", export_dir);
  g_settings_set_enum (settings, "export-format", 2 /* gif */);
  dialog = onestep_window_export (ui_test_get_window (), result);
  g_signal_connect (dialog, "exported", G_CALLBACK (on_exported), &exported);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (gtk_widget_get_template_child (GTK_WIDGET (dialog),
                                                                             ONESTEP_TYPE_EXPORT_DIALOG,
                                                                             "fps_spin")), EXPORT_FPS);
  gtk_switch_set_active (GTK_SWITCH (gtk_widget_get_template_child (GTK_WIDGET (dialog),
                                                                    ONESTEP_TYPE_EXPORT_DIALOG,
                                                                    "ping_pong_switch")), TRUE);
  onestep_export_dialog_export (ONESTEP_EXPORT_DIALOG (dialog));
  g_assert_true (ui_test_wait_until (is_set, &exported));

  ui_test_stop_app ();
  ui_test_remove_tree (export_dir);
}

/* Second run, a new process: the seed is still locked (a new image keeps it), the
 * custom size is chosen, and the export dialog proposes the last rate and ping-pong. */
static void
settings_second_run (void)
{
  g_autofree char *history_folder = dup_history_folder ();
  OnestepResult *result;
  GtkWindow *dialog;
  AdwComboRow *size_row;
  GObject *fps_spin;
  GObject *ping_pong_switch;

  /* Without the first run's clips, whose settings the window would restore. */
  ui_test_remove_tree (history_folder);
  start_app_with_model ();
  g_assert_true (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (ui_test_get_controls_child ("seed_lock_button"))));
  size_row = ADW_COMBO_ROW (ui_test_get_controls_child ("size_row"));
  g_assert_cmpuint (adw_combo_row_get_selected (size_row), ==,
                    g_list_model_get_n_items (adw_combo_row_get_model (size_row)) - 1);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (ui_test_get_controls_child ("width_spin"))),
                   ==, CUSTOM_WIDTH);
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (ui_test_get_controls_child ("height_spin"))),
                   ==, CUSTOM_HEIGHT);

  result = ui_test_open_and_wait (g_getenv ("ONESTEP_TEST_IMAGE"));
  g_assert_cmpuint (onestep_result_get_params (result)->seed, ==, LOCKED_SEED);
  g_assert_cmpint (onestep_result_get_width (result), ==, CUSTOM_WIDTH);
  g_assert_cmpint (onestep_result_get_height (result), ==, CUSTOM_HEIGHT);
  ui_test_wait_for_paint (GTK_WIDGET (ui_test_get_window ()));
  ui_test_save_screenshot (GTK_WIDGET (ui_test_get_window ()), "settings-restored.png");

  dialog = onestep_window_export (ui_test_get_window (), result);
  fps_spin = gtk_widget_get_template_child (GTK_WIDGET (dialog), ONESTEP_TYPE_EXPORT_DIALOG, "fps_spin");
  ping_pong_switch = gtk_widget_get_template_child (GTK_WIDGET (dialog), ONESTEP_TYPE_EXPORT_DIALOG,
                                                    "ping_pong_switch");
  g_assert_cmpint (gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (fps_spin)), ==, EXPORT_FPS);
  g_assert_true (gtk_switch_get_active (GTK_SWITCH (ping_pong_switch)));
  ui_test_wait_for_paint (GTK_WIDGET (dialog));
  ui_test_save_screenshot (GTK_WIDGET (dialog), "export-dialog-restored.png");
  gtk_window_destroy (dialog);

  ui_test_stop_app ();
}

static void
test_settings_restart (void)
{
  if (!ui_test_have_display ())
    return;

  use_fresh_folders ("settings-restart");
  run_in_subprocess ("/settings/restart/subprocess/first-run");
  run_in_subprocess ("/settings/restart/subprocess/second-run");
}

static gboolean
model_row_lists (gpointer name)
{
  GListModel *names = G_LIST_MODEL (ui_test_get_controls_child ("model_names"));

  for (guint i = 0; i < g_list_model_get_n_items (names); i++)
    {
      g_autoptr(GtkStringObject) item = g_list_model_get_item (names, i);

      if (g_strcmp0 (gtk_string_object_get_string (item), name) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Choosing another models folder in the preferences lists its models at once. */
static void
models_folder_run (void)
{
  g_autoptr(GSettings) settings = g_settings_new (SCHEMA_ID);
  g_autofree char *models_dir = g_build_filename (test_root, "other-models", NULL);
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(OnestepInstalledModel) model = NULL;
  g_autoptr(GError) error = NULL;
  GtkWindow *preferences;

  g_assert_cmpint (g_mkdir_with_parents (models_dir, 0700), ==, 0);
  index = onestep_model_index_new (models_dir, &error);
  g_assert_no_error (error);
  model = onestep_installed_model_new ("tiny-from-folder", "Tiny From Another Folder",
                                       ONESTEP_INSTALLED_KIND_DIFFUSERS, ONESTEP_INSTALLED_SOURCE_IMPORT,
                                       g_getenv ("ONESTEP_TEST_MODEL"), NULL, NULL);
  g_assert_true (onestep_model_index_add (index, model, &error));
  g_assert_no_error (error);

  ui_test_start_app ();
  g_assert_false (model_row_lists ("Tiny From Another Folder"));

  g_action_group_activate_action (G_ACTION_GROUP (gtk_window_get_application (GTK_WINDOW (ui_test_get_window ()))),
                                  "preferences", NULL);
  preferences = ui_test_find_window (ADW_TYPE_PREFERENCES_WINDOW);
  g_assert_nonnull (preferences);
  /* What the folder chooser of the Models Folder row does with the chosen folder. */
  g_settings_set_string (settings, "models-folder", models_dir);
  g_assert_true (ui_test_wait_until (model_row_lists, "Tiny From Another Folder"));
  ui_test_wait_for_paint (GTK_WIDGET (preferences));
  ui_test_save_screenshot (GTK_WIDGET (preferences), "preferences-models-folder.png");
  gtk_window_destroy (preferences);

  ui_test_stop_app ();
  ui_test_remove_tree (models_dir);
}

static void
test_models_folder (void)
{
  if (!ui_test_have_display ())
    return;

  use_fresh_folders ("models-folder");
  run_in_subprocess ("/settings/models-folder/subprocess/run");
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  if (!g_test_subprocess ())
    {
      /* The runs of a test share their folders through the environment; the
       * keyfile backend keeps the settings on disk, for the second run. */
      test_root = g_dir_make_tmp ("onestep-persistence-XXXXXX", &error);
      g_assert_no_error (error);
      g_setenv ("GSETTINGS_BACKEND", "keyfile", TRUE);
      g_setenv ("ONESTEP_PERSISTENCE_ROOT", test_root, TRUE);
    }
  else
    test_root = g_strdup (g_getenv ("ONESTEP_PERSISTENCE_ROOT"));

  g_test_add_func ("/history/restart", test_history_restart);
  g_test_add_func ("/history/restart/subprocess/first-run", history_first_run);
  g_test_add_func ("/history/restart/subprocess/second-run", history_second_run);
  g_test_add_func ("/history/full-disk", test_history_full_disk);
  g_test_add_func ("/history/full-disk/subprocess/run", history_full_disk_run);
  g_test_add_func ("/settings/restart", test_settings_restart);
  g_test_add_func ("/settings/restart/subprocess/first-run", settings_first_run);
  g_test_add_func ("/settings/restart/subprocess/second-run", settings_second_run);
  g_test_add_func ("/settings/models-folder", test_models_folder);
  g_test_add_func ("/settings/models-folder/subprocess/run", models_folder_run);
  status = g_test_run ();

  if (!g_test_subprocess ())
    ui_test_remove_tree (test_root);
  g_free (test_root);
  return status;
}
