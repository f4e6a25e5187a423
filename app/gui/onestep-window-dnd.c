/* onestep-window-dnd.c: images arriving by drag and drop or from files.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-image-loader.h"
#include "onestep-window-private.h"

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
  /* Cancelled: the window has closed. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  if (texture == NULL)
    {
      g_autofree char *name = g_file_get_basename (file);
      g_autofree char *what = g_strdup_printf (_("“%s” could not be opened as an image"), name);

      _onestep_window_report_error (self, what, _("Try a PNG or JPEG file."), error->message);
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
  g_autoptr(GdkPixbuf) image = onestep_image_loader_load (task_data, cancellable, &error);

  if (image != NULL)
    g_task_return_pointer (task, gdk_texture_new_for_pixbuf (image), g_object_unref);
  else
    g_task_return_error (task, error);
}

/* Reads an image file in a thread, as onestep-cli does, then opens it. */
void
onestep_window_open_file (OnestepWindow *self,
                          GFile         *file)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ONESTEP_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  task = g_task_new (self, self->cancellable, on_texture_loaded, file);
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

  _onestep_window_set_source (self, texture);
  onestep_controls_prepare_new_image (self->controls);
  adw_view_stack_set_visible_child_name (self->view_stack, "preview");
  /* The image itself, until the first clip takes its place. */
  onestep_preview_set_frames (self->preview, self->image, 1, self->image_width,
                              self->image_height, 1);
  onestep_preview_set_source (self->preview, NULL);
  g_clear_object (&self->current_result);
  _onestep_window_update_actions (self);

  /* Without a model the window asks for one; while one loads, generation
   * starts when it is ready. */
  if (self->model_loaded)
    _onestep_window_generate (self);
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

void
_onestep_window_dnd_init (OnestepWindow *self)
{
  GType drop_types[] = { GDK_TYPE_FILE_LIST, G_TYPE_FILE, GDK_TYPE_TEXTURE };
  GtkDropTarget *drop_target;

  drop_target = gtk_drop_target_new (G_TYPE_INVALID, GDK_ACTION_COPY);
  gtk_drop_target_set_gtypes (drop_target, drop_types, G_N_ELEMENTS (drop_types));
  g_signal_connect_object (drop_target, "drop", G_CALLBACK (on_drop), self, G_CONNECT_SWAPPED);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop_target));
}
