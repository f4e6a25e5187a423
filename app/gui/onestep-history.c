/* onestep-history.c
 *
 * Every result is kept on disk (see onestep-history-store.c) and shown again
 * at the next start; a row's Delete removes its files.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-history.h"
#include "onestep-history-store.h"

/* Each result keeps its frames in memory; older ones make way, on disk too. */
#define MAX_RESULTS 24

struct _OnestepHistory
{
  AdwBin        parent_instance;

  GtkListBox   *list_box;
  GtkLabel     *problems_label;

  GListStore   *results;
  /* The entry name on disk of each result in results. */
  GHashTable   *entry_names;
  char         *folder;
  GCancellable *cancellable;
  guint         n_saving;
  gboolean      loaded;
};

enum {
  PROP_0,
  PROP_LOADED,
  N_PROPS
};

enum {
  RESULT_ACTIVATED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepHistory, onestep_history, ADW_TYPE_BIN)

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
onestep_history_update_visible (OnestepHistory *self)
{
  gtk_widget_set_visible (GTK_WIDGET (self),
                          g_list_model_get_n_items (G_LIST_MODEL (self->results)) > 0 ||
                          gtk_widget_get_visible (GTK_WIDGET (self->problems_label)));
}

/* Adds a line to the message under the list, which says what went wrong with the
 * files of the history. */
static void
onestep_history_add_problem (OnestepHistory *self,
                             const char     *problem)
{
  const char *shown = gtk_label_get_label (self->problems_label);
  g_autofree char *text = NULL;

  g_message ("%s", problem);
  text = shown[0] != '\0' ? g_strconcat (shown, "\n", problem, NULL) : g_strdup (problem);
  gtk_label_set_label (self->problems_label, text);
  gtk_widget_set_visible (GTK_WIDGET (self->problems_label), TRUE);
  onestep_history_update_visible (self);
}

static void
on_deleted (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(OnestepHistory) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!onestep_history_store_delete_finish (result, &error))
    {
      g_autofree char *problem = g_strdup_printf (_("A deleted clip’s files could not be removed: %s"),
                                                  error->message);

      onestep_history_add_problem (self, problem);
    }
}

static void
onestep_history_delete_entry (OnestepHistory *self,
                              const char     *entry_name)
{
  onestep_history_store_delete_async (self->folder, entry_name, NULL, on_deleted, g_object_ref (self));
}

/* Takes the result out of the list and its entry off the disk. */
static void
onestep_history_remove_at (OnestepHistory *self,
                           guint           position)
{
  g_autoptr(OnestepResult) result = g_list_model_get_item (G_LIST_MODEL (self->results), position);
  g_autofree char *entry_name = NULL;

  g_hash_table_steal_extended (self->entry_names, result, NULL, (gpointer *)&entry_name);
  g_list_store_remove (self->results, position);
  if (entry_name != NULL)
    onestep_history_delete_entry (self, entry_name);
  onestep_history_update_visible (self);
}

static void
on_delete_clicked (GtkButton      *button,
                   OnestepHistory *self)
{
  GtkWidget *row = gtk_widget_get_ancestor (GTK_WIDGET (button), GTK_TYPE_LIST_BOX_ROW);

  onestep_history_remove_at (self, gtk_list_box_row_get_index (GTK_LIST_BOX_ROW (row)));
}

static GtkWidget *
create_row (gpointer item,
            gpointer user_data)
{
  OnestepHistory *self = user_data;
  OnestepResult *result = item;
  const OnestepParams *params = onestep_result_get_params (result);
  g_autoptr(GdkTexture) thumbnail = onestep_result_create_texture (result, 0);
  g_autofree char *frames = NULL;
  g_autofree char *title = NULL;
  g_autofree char *subtitle = NULL;
  GtkWidget *picture;
  GtkWidget *delete_button;
  GtkWidget *row;

  frames = g_strdup_printf (ngettext ("%d frame", "%d frames", params->frames), params->frames);
  /* Translators: a history entry, e.g. "Seed 1234 · 576 × 320 · 14 frames" */
  title = g_strdup_printf (_("Seed %u · %d × %d · %s"), params->seed,
                           params->width, params->height, frames);
  subtitle = onestep_result_dup_summary (result);

  picture = gtk_picture_new_for_paintable (GDK_PAINTABLE (thumbnail));
  gtk_picture_set_content_fit (GTK_PICTURE (picture), GTK_CONTENT_FIT_COVER);
  gtk_widget_set_size_request (picture, 64, 40);
  gtk_widget_set_valign (picture, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (picture, "history-thumbnail");

  delete_button = gtk_button_new_from_icon_name ("user-trash-symbolic");
  gtk_widget_set_valign (delete_button, GTK_ALIGN_CENTER);
  gtk_widget_set_tooltip_text (delete_button, _("Delete"));
  gtk_widget_add_css_class (delete_button, "flat");
  gtk_accessible_update_property (GTK_ACCESSIBLE (delete_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Delete this clip"), -1);
  g_signal_connect_object (delete_button, "clicked", G_CALLBACK (on_delete_clicked), self, 0);

  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), picture);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), delete_button);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (row),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, title,
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, subtitle,
                                  -1);

  return row;
}

static void
on_row_activated (OnestepHistory *self,
                  GtkListBoxRow  *row)
{
  g_autoptr(OnestepResult) result =
    g_list_model_get_item (G_LIST_MODEL (self->results), gtk_list_box_row_get_index (row));

  g_signal_emit (self, signals[RESULT_ACTIVATED], 0, result);
}

static void
on_loaded (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(OnestepHistory) self = user_data;
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GError) error = NULL;

  entries = onestep_history_store_load_finish (result, &problems, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  if (entries == NULL)
    {
      g_autofree char *problem = g_strdup_printf (_("The history could not be read: %s"), error->message);

      onestep_history_add_problem (self, problem);
    }
  else
    {
      /* Older than the results of this session, which may have come meanwhile. */
      for (guint i = 0; i < entries->len; i++)
        {
          OnestepHistoryEntry *entry = g_ptr_array_index (entries, i);

          if (g_list_model_get_n_items (G_LIST_MODEL (self->results)) >= MAX_RESULTS)
            break;
          g_hash_table_insert (self->entry_names, entry->result, g_strdup (entry->name));
          g_list_store_append (self->results, entry->result);
        }
      for (guint i = 0; i < problems->len; i++)
        onestep_history_add_problem (self, g_ptr_array_index (problems, i));
    }

  self->loaded = TRUE;
  onestep_history_update_visible (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADED]);
}

static void
onestep_history_dispose (GObject *object)
{
  OnestepHistory *self = (OnestepHistory *)object;

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->results);
  g_clear_pointer (&self->entry_names, g_hash_table_unref);
  g_clear_pointer (&self->folder, g_free);

  G_OBJECT_CLASS (onestep_history_parent_class)->dispose (object);
}

static void
onestep_history_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  OnestepHistory *self = ONESTEP_HISTORY (object);

  switch (prop_id)
    {
    case PROP_LOADED:
      g_value_set_boolean (value, self->loaded);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_history_class_init (OnestepHistoryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_history_dispose;
  object_class->get_property = onestep_history_get_property;

  /* The entries saved by earlier sessions have been read. */
  properties[PROP_LOADED] =
    g_param_spec_boolean ("loaded", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[RESULT_ACTIVATED] =
    g_signal_new ("result-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, ONESTEP_TYPE_RESULT);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-history.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepHistory, list_box);
  gtk_widget_class_bind_template_child (widget_class, OnestepHistory, problems_label);
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
}

static void
onestep_history_init (OnestepHistory *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->results = g_list_store_new (ONESTEP_TYPE_RESULT);
  self->entry_names = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  self->cancellable = g_cancellable_new ();
  self->folder = onestep_history_store_dup_default_folder ();
  gtk_list_box_bind_model (self->list_box, G_LIST_MODEL (self->results), create_row, self, NULL);

  onestep_history_store_load_async (self->folder, MAX_RESULTS, self->cancellable, on_loaded,
                                    g_object_ref (self));
}

typedef struct
{
  OnestepHistory *history;
  OnestepResult  *result;
  char           *entry_name;
} SavedEntry;

static void
saved_entry_free (SavedEntry *saved)
{
  g_object_unref (saved->history);
  g_object_unref (saved->result);
  g_free (saved->entry_name);
  g_free (saved);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SavedEntry, saved_entry_free)

static void
on_saved (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(SavedEntry) saved = user_data;
  OnestepHistory *self = saved->history;
  const char *entry_name = self->entry_names != NULL ? g_hash_table_lookup (self->entry_names, saved->result)
                                                     : NULL;
  g_autoptr(GError) error = NULL;
  GApplication *application = g_application_get_default ();

  if (application != NULL)
    g_application_release (application);
  self->n_saving--;

  if (!onestep_history_store_save_finish (result, &error))
    {
      g_autofree char *problem = NULL;

      if (self->entry_names == NULL)
        return;
      problem = g_strdup_printf (_("A clip could not be kept for the next start: %s"), error->message);
      onestep_history_add_problem (self, problem);
      return;
    }

  /* Deleted, or pushed out by newer clips, while it was being saved. */
  if (g_strcmp0 (entry_name, saved->entry_name) != 0)
    onestep_history_delete_entry (self, saved->entry_name);
}

void
onestep_history_add (OnestepHistory *self,
                     OnestepResult  *result)
{
  SavedEntry *saved;
  GApplication *application = g_application_get_default ();

  g_return_if_fail (ONESTEP_IS_HISTORY (self));
  g_return_if_fail (ONESTEP_IS_RESULT (result));

  saved = g_new0 (SavedEntry, 1);
  saved->history = g_object_ref (self);
  saved->result = g_object_ref (result);
  saved->entry_name = onestep_history_store_new_entry_name ();
  g_hash_table_insert (self->entry_names, result, g_strdup (saved->entry_name));
  g_list_store_insert (self->results, 0, result);
  if (g_list_model_get_n_items (G_LIST_MODEL (self->results)) > MAX_RESULTS)
    onestep_history_remove_at (self, MAX_RESULTS);
  onestep_history_update_visible (self);

  /* The application stays up until the clip is on disk. */
  if (application != NULL)
    g_application_hold (application);
  self->n_saving++;
  onestep_history_store_save_async (self->folder, saved->entry_name, result, NULL, on_saved, saved);
}

guint
onestep_history_get_len (OnestepHistory *self)
{
  g_return_val_if_fail (ONESTEP_IS_HISTORY (self), 0);
  return g_list_model_get_n_items (G_LIST_MODEL (self->results));
}

/* Whether the entries of earlier sessions have been read (and shown). */
gboolean
onestep_history_get_loaded (OnestepHistory *self)
{
  g_return_val_if_fail (ONESTEP_IS_HISTORY (self), FALSE);
  return self->loaded;
}

/* Whether clips are still being written to disk. */
gboolean
onestep_history_get_saving (OnestepHistory *self)
{
  g_return_val_if_fail (ONESTEP_IS_HISTORY (self), FALSE);
  return self->n_saving > 0;
}

/* The position-th result, newest first; a new reference. */
OnestepResult *
onestep_history_dup_result (OnestepHistory *self,
                            guint           position)
{
  g_return_val_if_fail (ONESTEP_IS_HISTORY (self), NULL);
  return g_list_model_get_item (G_LIST_MODEL (self->results), position);
}
