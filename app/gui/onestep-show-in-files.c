/* onestep-show-in-files.c
 *
 * The file manager's org.freedesktop.FileManager1 interface opens the folder
 * with the file selected; where no file manager offers it (or the sandbox
 * does not let the call through), the folder itself is opened instead.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "onestep-show-in-files.h"

#define FILE_MANAGER_NAME "org.freedesktop.FileManager1"
#define FILE_MANAGER_PATH "/org/freedesktop/FileManager1"
/* Long enough for a file manager that D-Bus activation has to start. */
#define FILE_MANAGER_TIMEOUT_MS 10000

typedef struct
{
  GtkWindow *parent;
  GFile     *file;
} ShowJob;

static void
show_job_free (ShowJob *job)
{
  g_clear_object (&job->parent);
  g_object_unref (job->file);
  g_free (job);
}

static void
on_folder_shown (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (gtk_show_uri_full_finish (GTK_WINDOW (object), result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
show_folder (GTask *task)
{
  ShowJob *job = g_task_get_task_data (task);
  g_autoptr(GFile) folder = g_file_get_parent (job->file);
  g_autofree char *uri = g_file_get_uri (folder != NULL ? folder : job->file);

  gtk_show_uri_full (job->parent, uri, GDK_CURRENT_TIME, g_task_get_cancellable (task),
                     on_folder_shown, g_object_ref (task));
}

static void
on_items_shown (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (object), result, &error);
  if (reply != NULL)
    g_task_return_boolean (task, TRUE);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    {
      g_debug ("%s.ShowItems failed, opening the folder instead: %s", FILE_MANAGER_NAME, error->message);
      show_folder (task);
    }
}

/* Opens the folder of file in the file manager with file selected, or else the
 * folder alone. */
void
onestep_show_in_files_async (GtkWindow           *parent,
                             GFile               *file,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autofree char *uri = NULL;
  const char *uris[2] = { NULL, NULL };
  ShowJob *job;

  g_return_if_fail (parent == NULL || GTK_IS_WINDOW (parent));
  g_return_if_fail (G_IS_FILE (file));

  job = g_new0 (ShowJob, 1);
  job->parent = parent != NULL ? g_object_ref (parent) : NULL;
  job->file = g_object_ref (file);
  task = g_task_new (parent, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_show_in_files_async);
  g_task_set_task_data (task, job, (GDestroyNotify)show_job_free);

  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, cancellable, NULL);
  if (bus == NULL)
    {
      show_folder (task);
      return;
    }

  uri = g_file_get_uri (file);
  uris[0] = uri;
  /* ShowItems (as uris, s startup_id) */
  g_dbus_connection_call (bus, FILE_MANAGER_NAME, FILE_MANAGER_PATH, FILE_MANAGER_NAME, "ShowItems",
                          g_variant_new ("(^ass)", uris, ""), NULL, G_DBUS_CALL_FLAGS_NONE,
                          FILE_MANAGER_TIMEOUT_MS, cancellable, on_items_shown, g_object_ref (task));
}

gboolean
onestep_show_in_files_finish (GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
