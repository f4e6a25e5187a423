/* onestep-history.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-history.h"

/* Each result keeps its frames in memory; older ones make way. */
#define MAX_RESULTS 24

struct _OnestepHistory
{
  AdwBin      parent_instance;

  GtkListBox *list_box;
  GListStore *results;
};

enum {
  RESULT_ACTIVATED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepHistory, onestep_history, ADW_TYPE_BIN)

static guint signals[N_SIGNALS];

static GtkWidget *
create_row (gpointer item,
            gpointer user_data)
{
  OnestepResult *result = item;
  const OnestepParams *params = onestep_result_get_params (result);
  g_autoptr(GdkTexture) thumbnail = onestep_result_create_texture (result, 0);
  g_autofree char *frames = NULL;
  g_autofree char *title = NULL;
  g_autofree char *subtitle = NULL;
  GtkWidget *picture;
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

  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), picture);
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
onestep_history_dispose (GObject *object)
{
  OnestepHistory *self = (OnestepHistory *)object;

  g_clear_object (&self->results);

  G_OBJECT_CLASS (onestep_history_parent_class)->dispose (object);
}

static void
onestep_history_class_init (OnestepHistoryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_history_dispose;

  signals[RESULT_ACTIVATED] =
    g_signal_new ("result-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, ONESTEP_TYPE_RESULT);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-history.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepHistory, list_box);
  gtk_widget_class_bind_template_callback (widget_class, on_row_activated);
}

static void
onestep_history_init (OnestepHistory *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->results = g_list_store_new (ONESTEP_TYPE_RESULT);
  gtk_list_box_bind_model (self->list_box, G_LIST_MODEL (self->results), create_row, NULL, NULL);
}

void
onestep_history_add (OnestepHistory *self,
                     OnestepResult  *result)
{
  g_return_if_fail (ONESTEP_IS_HISTORY (self));
  g_return_if_fail (ONESTEP_IS_RESULT (result));

  g_list_store_insert (self->results, 0, result);
  if (g_list_model_get_n_items (G_LIST_MODEL (self->results)) > MAX_RESULTS)
    g_list_store_remove (self->results, MAX_RESULTS);
  gtk_widget_set_visible (GTK_WIDGET (self), TRUE);
}

guint
onestep_history_get_len (OnestepHistory *self)
{
  g_return_val_if_fail (ONESTEP_IS_HISTORY (self), 0);
  return g_list_model_get_n_items (G_LIST_MODEL (self->results));
}
