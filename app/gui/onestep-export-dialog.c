/* onestep-export-dialog.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "export.h"
#include "onestep-export-dialog.h"
#include "onestep-main-context.h"

struct _OnestepExportDialog
{
  AdwWindow        parent_instance;

  AdwToastOverlay *toast_overlay;
  GtkWidget       *page;
  GtkWidget       *export_button;
  AdwComboRow     *format_row;
  AdwEntryRow     *name_row;
  AdwActionRow    *folder_row;
  GtkSpinButton   *fps_spin;
  GtkWidget       *loop_row;
  GtkSpinButton   *loop_spin;
  GtkSwitch       *ping_pong_switch;
  GtkWidget       *quality_row;
  GtkRange        *quality_scale;
  GtkProgressBar  *progress_bar;

  GSettings       *settings;
  OnestepResult   *result;
  char            *folder;
  GCancellable    *cancellable;
  guint            pulse_id;
};

typedef struct
{
  char                 *path;
  OnestepResult        *result;
  OnestepClipSettings   settings;  /* pointing into the result's params */
  OnestepExportOptions  options;
} ExportJob;

enum {
  EXPORTED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepExportDialog, onestep_export_dialog, ADW_TYPE_WINDOW)

static guint signals[N_SIGNALS];

/* In the order of the format row and of the export-format setting. */
static const char *const extensions[] = { ".mp4", ".webm", ".gif", "" };

static void
export_job_free (ExportJob *job)
{
  g_free (job->path);
  g_object_unref (job->result);
  g_free (job);
}

typedef struct
{
  GTask  *task;
  double  fraction;
} ExportProgress;

static void
export_progress_free (gpointer data)
{
  ExportProgress *progress = data;

  g_object_unref (progress->task);
  g_free (progress);
}

static gboolean
export_progress_show (gpointer data)
{
  ExportProgress *progress = data;
  OnestepExportDialog *self;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (progress->task)))
    return G_SOURCE_REMOVE;

  self = g_task_get_source_object (progress->task);
  g_clear_handle_id (&self->pulse_id, g_source_remove);
  gtk_progress_bar_set_fraction (self->progress_bar, progress->fraction);

  return G_SOURCE_REMOVE;
}

/* Runs in the export thread: hands the fraction to the dialog's thread. */
static void
export_progress_report (int      frames_written,
                        int      frames_total,
                        gpointer user_data)
{
  GTask *task = user_data;
  ExportProgress *progress = g_new0 (ExportProgress, 1);

  progress->task = g_object_ref (task);
  progress->fraction = (double)frames_written / MAX (1, frames_total);
  onestep_main_context_post (g_task_get_context (task), "[onestep] export progress",
                             export_progress_show, progress, export_progress_free);
}

static void
export_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ExportJob *job = task_data;
  GError *error = NULL;

  if (onestep_export_write (job->path, g_bytes_get_data (onestep_result_get_frames (job->result), NULL),
                            onestep_result_get_n_frames (job->result),
                            onestep_result_get_width (job->result),
                            onestep_result_get_height (job->result),
                            &job->options, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
pulse_progress (gpointer progress_bar)
{
  gtk_progress_bar_pulse (progress_bar);
  return G_SOURCE_CONTINUE;
}

static void
onestep_export_dialog_set_busy (OnestepExportDialog *self,
                                gboolean             busy)
{
  gtk_widget_set_sensitive (self->page, !busy);
  gtk_widget_set_sensitive (self->export_button,
                            !busy && onestep_export_format_available (adw_combo_row_get_selected (self->format_row)));
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), busy);

  if (busy && self->pulse_id == 0)
    self->pulse_id = g_timeout_add (100, pulse_progress, self->progress_bar);
  else if (!busy)
    g_clear_handle_id (&self->pulse_id, g_source_remove);
}

static void
on_export_done (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  OnestepExportDialog *self = ONESTEP_EXPORT_DIALOG (object);
  ExportJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  gboolean written = g_task_propagate_boolean (G_TASK (result), &error);

  /* Cancelled with the dialog, which is gone now. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  onestep_export_dialog_set_busy (self, FALSE);

  if (written)
    {
      g_signal_emit (self, signals[EXPORTED], 0, job->path);
      gtk_window_destroy (GTK_WINDOW (self));
      return;
    }

  adw_toast_overlay_add_toast (self->toast_overlay,
                               adw_toast_new_format (_("Could not export: %s"), error->message));
}

static void
clip_settings_for_result (OnestepResult       *result,
                          OnestepClipSettings *settings)
{
  const OnestepParams *params = onestep_result_get_params (result);

  settings->model = params->model_path;
  settings->unet_file = params->unet_file;
  settings->sampler = onestep_sampler_name (onestep_result_get_sampler (result));
  settings->seed = params->seed;
  settings->steps = params->steps;
  settings->frames = params->frames;
  settings->width = params->width;
  settings->height = params->height;
  settings->fps = params->fps;
  settings->motion_bucket_id = params->motion_bucket_id;
  settings->noise_aug_strength = (float) params->noise_aug_strength;
  settings->crop_position = params->crop_position;
}

/* name, else name-2, name-3...: the first that, with the extension, is free in folder. */
static char *
unique_name (const char *folder,
             const char *name,
             const char *extension)
{
  char *candidate = g_strdup (name);

  for (int n = 2;; n++)
    {
      g_autofree char *file_name = g_strconcat (candidate, extension, NULL);
      g_autofree char *path = g_build_filename (folder, file_name, NULL);

      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        return candidate;
      g_free (candidate);
      candidate = g_strdup_printf ("%s-%d", name, n);
    }
}

static void
onestep_export_dialog_start (OnestepExportDialog *self,
                             const char          *path,
                             gboolean             replace)
{
  g_autoptr(GTask) task = NULL;
  guint format = adw_combo_row_get_selected (self->format_row);
  ExportJob *job;

  job = g_new0 (ExportJob, 1);
  job->path = g_strdup (path);
  job->result = g_object_ref (self->result);
  clip_settings_for_result (job->result, &job->settings);
  onestep_export_options_init (&job->options, format);
  job->options.fps = gtk_spin_button_get_value_as_int (self->fps_spin);
  job->options.loop_count = gtk_spin_button_get_value_as_int (self->loop_spin);
  job->options.ping_pong = gtk_switch_get_active (self->ping_pong_switch);
  job->options.quality = (int)gtk_range_get_value (self->quality_scale);
  job->options.replace = replace;
  job->options.settings = &job->settings;

  g_settings_set_enum (self->settings, "export-format", format);
  g_settings_set_string (self->settings, "export-folder", self->folder);
  g_settings_set_int (self->settings, "export-fps", job->options.fps);
  g_settings_set_boolean (self->settings, "export-ping-pong", job->options.ping_pong);

  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  onestep_export_dialog_set_busy (self, TRUE);

  task = g_task_new (self, self->cancellable, on_export_done, NULL);
  g_task_set_source_tag (task, onestep_export_dialog_export);
  job->options.progress = export_progress_report;
  job->options.progress_data = task;
  g_task_set_task_data (task, job, (GDestroyNotify)export_job_free);
  g_task_run_in_thread (task, export_thread);
}

/* The chosen name with the format's extension; NULL (and a toast) when it is unusable. */
static char *
onestep_export_dialog_dup_file_name (OnestepExportDialog *self)
{
  const char *name = gtk_editable_get_text (GTK_EDITABLE (self->name_row));

  if (name[0] == '\0' || strchr (name, G_DIR_SEPARATOR) != NULL)
    {
      adw_toast_overlay_add_toast (self->toast_overlay,
                                   adw_toast_new (_("Enter a file name without slashes")));
      return NULL;
    }
  return g_strconcat (name, extensions[adw_combo_row_get_selected (self->format_row)], NULL);
}

static void
on_replace_response (AdwMessageDialog    *question,
                     const char          *response,
                     OnestepExportDialog *self)
{
  const char *extension = extensions[adw_combo_row_get_selected (self->format_row)];
  const char *name = gtk_editable_get_text (GTK_EDITABLE (self->name_row));
  g_autofree char *file_name = g_strconcat (name, extension, NULL);
  g_autofree char *path = NULL;

  if (g_str_equal (response, "rename"))
    {
      g_autofree char *free_name = unique_name (self->folder, name, extension);

      gtk_editable_set_text (GTK_EDITABLE (self->name_row), free_name);
      g_free (file_name);
      file_name = g_strconcat (free_name, extension, NULL);
    }
  else if (!g_str_equal (response, "replace"))
    return;

  path = g_build_filename (self->folder, file_name, NULL);
  onestep_export_dialog_start (self, path, g_str_equal (response, "replace"));
}

/* Asks whether to replace the existing file_name or to export under a free name. */
static void
onestep_export_dialog_ask_replace (OnestepExportDialog *self,
                                   const char          *file_name)
{
  const char *extension = extensions[adw_combo_row_get_selected (self->format_row)];
  g_autofree char *free_name = unique_name (self->folder,
                                            gtk_editable_get_text (GTK_EDITABLE (self->name_row)),
                                            extension);
  g_autofree char *free_file_name = g_strconcat (free_name, extension, NULL);
  AdwMessageDialog *question;

  question = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_WINDOW (self), NULL, NULL));
  adw_message_dialog_format_heading (question, _("Replace “%s”?"), file_name);
  adw_message_dialog_format_body (question,
                                  _("It already exists in “%s”. Keep both to save this clip as “%s”."),
                                  self->folder, free_file_name);
  adw_message_dialog_add_responses (question, "cancel", _("_Cancel"), "rename", _("_Keep Both"),
                                    "replace", _("_Replace"), NULL);
  adw_message_dialog_set_response_appearance (question, "replace", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (question, "rename");
  adw_message_dialog_set_close_response (question, "cancel");
  g_signal_connect_object (question, "response", G_CALLBACK (on_replace_response), self, 0);
  gtk_window_present (GTK_WINDOW (question));
}

/* Writes the clip with the chosen options; the same as pressing Export. An existing
 * file of that name is only replaced when the user says so. */
void
onestep_export_dialog_export (OnestepExportDialog *self)
{
  g_autofree char *file_name = NULL;
  g_autofree char *path = NULL;

  g_return_if_fail (ONESTEP_IS_EXPORT_DIALOG (self));

  file_name = onestep_export_dialog_dup_file_name (self);
  if (file_name == NULL)
    return;

  path = g_build_filename (self->folder, file_name, NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    onestep_export_dialog_ask_replace (self, file_name);
  else
    onestep_export_dialog_start (self, path, FALSE);
}

static void
on_export_clicked (OnestepExportDialog *self)
{
  onestep_export_dialog_export (self);
}

static void
on_cancel_clicked (OnestepExportDialog *self)
{
  /* A running export is stopped; it leaves no partial file behind. */
  g_cancellable_cancel (self->cancellable);
  gtk_window_destroy (GTK_WINDOW (self));
}

static void
on_format_changed (OnestepExportDialog *self)
{
  guint format = adw_combo_row_get_selected (self->format_row);
  gboolean available = onestep_export_format_available (format);

  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->format_row),
                               available ? "" : _("This system cannot write this format: choose another"));
  gtk_widget_set_sensitive (self->export_button, available);

  gtk_widget_set_sensitive (self->loop_row, format == ONESTEP_EXPORT_FORMAT_GIF ||
                                            format == ONESTEP_EXPORT_FORMAT_WEBM);
  gtk_widget_set_sensitive (self->quality_row, format != ONESTEP_EXPORT_FORMAT_PNG_FOLDER);
}

static void
onestep_export_dialog_set_folder (OnestepExportDialog *self,
                                  const char          *folder)
{
  g_free (self->folder);
  self->folder = g_strdup (folder);
  adw_action_row_set_subtitle (self->folder_row, folder);
}

static void
on_folder_chosen (GtkNativeDialog     *chooser,
                  int                  response,
                  OnestepExportDialog *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = g_file_get_path (folder);

      if (path != NULL)
        onestep_export_dialog_set_folder (self, path);
    }

  gtk_native_dialog_destroy (chooser);
  g_object_unref (chooser);
}

static void
on_choose_folder_clicked (OnestepExportDialog *self)
{
  GtkFileChooserNative *chooser;

  chooser = gtk_file_chooser_native_new (_("Choose Export Folder"), GTK_WINDOW (self),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                         _("_Select"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (on_folder_chosen), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
onestep_export_dialog_dispose (GObject *object)
{
  OnestepExportDialog *self = (OnestepExportDialog *)object;

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->pulse_id, g_source_remove);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->settings);
  g_clear_object (&self->result);
  g_clear_pointer (&self->folder, g_free);

  G_OBJECT_CLASS (onestep_export_dialog_parent_class)->dispose (object);
}

static void
onestep_export_dialog_class_init (OnestepExportDialogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_export_dialog_dispose;

  /* The clip was written to this path. */
  signals[EXPORTED] = g_signal_new ("exported", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-export-dialog.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, page);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, export_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, format_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, name_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, folder_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, fps_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, loop_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, loop_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, ping_pong_switch);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, quality_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, quality_scale);
  gtk_widget_class_bind_template_child (widget_class, OnestepExportDialog, progress_bar);
  gtk_widget_class_bind_template_callback (widget_class, on_export_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_cancel_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_format_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_choose_folder_clicked);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

/* Where clips go while no export folder is chosen. */
const char *
onestep_export_dialog_get_default_folder (void)
{
  const char *videos = g_get_user_special_dir (G_USER_DIRECTORY_VIDEOS);

  return videos != NULL ? videos : g_get_home_dir ();
}

static void
onestep_export_dialog_init (OnestepExportDialog *self)
{
  g_autofree char *folder = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (SCHEMA_ID);
  folder = g_settings_get_string (self->settings, "export-folder");
  onestep_export_dialog_set_folder (self, folder[0] != '\0' ? folder
                                                             : onestep_export_dialog_get_default_folder ());
  adw_combo_row_set_selected (self->format_row, g_settings_get_enum (self->settings, "export-format"));
  gtk_switch_set_active (self->ping_pong_switch, g_settings_get_boolean (self->settings, "export-ping-pong"));
  on_format_changed (self);
}

OnestepExportDialog *
onestep_export_dialog_new (GtkWindow     *parent,
                           OnestepResult *result)
{
  OnestepExportDialog *self;
  const OnestepParams *params;
  g_autofree char *name = NULL;
  g_autofree char *free_name = NULL;
  int export_fps;

  g_return_val_if_fail (ONESTEP_IS_RESULT (result), NULL);

  self = g_object_new (ONESTEP_TYPE_EXPORT_DIALOG, "transient-for", parent, NULL);
  self->result = g_object_ref (result);
  params = onestep_result_get_params (result);
  /* The rate of the last export, else the one the clip was generated for. */
  export_fps = g_settings_get_int (self->settings, "export-fps");
  gtk_spin_button_set_value (self->fps_spin, export_fps > 0 ? export_fps : params->fps);
  /* Every setting that can tell two clips of one image apart, and a free name. */
  name = g_strdup_printf ("onestep-%u-%s-%dsteps-%dx%d-%dframes-%dfps-motion%d", params->seed,
                          onestep_sampler_name (onestep_result_get_sampler (result)), params->steps,
                          params->width, params->height, params->frames, params->fps,
                          params->motion_bucket_id);
  free_name = unique_name (self->folder, name,
                           extensions[adw_combo_row_get_selected (self->format_row)]);
  gtk_editable_set_text (GTK_EDITABLE (self->name_row), free_name);

  return self;
}
