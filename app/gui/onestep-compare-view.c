/* onestep-compare-view.c
 *
 * The first clip's preview is the clock: the others follow its frame, so all
 * cells show the same moment and its controls pause or scrub them together.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-compare-view.h"
#include "onestep-preview.h"

#define MAX_CELLS 4

static const int compared_steps[MAX_CELLS] = { 1, 2, 4, 8 };

typedef struct
{
  GtkWidget      *box;
  GtkStack       *stack;
  GtkSpinner     *spinner;
  OnestepPreview *preview;
  GtkLabel       *summary;
  GtkWidget      *export_button;
} Cell;

struct _OnestepCompareView
{
  AdwBin        parent_instance;

  GtkStack        *stack;
  GtkGrid         *grid;
  GtkToggleButton *play_button;
  GtkAdjustment   *position_adjustment;
  GtkWidget       *stop_button;

  Cell          cells[MAX_CELLS];
  guint         n_cells;
  GPtrArray    *results;
  /* Cells filled without the engine, ahead of those its runs fill. */
  guint         n_given;
  GdkTexture   *source;
  GCancellable *cancellable;
  gboolean      running;
};

enum {
  EXPORT_REQUESTED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepCompareView, onestep_compare_view, ADW_TYPE_BIN)

static guint signals[N_SIGNALS];

static void
on_export_clicked (GtkButton          *button,
                   OnestepCompareView *self)
{
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "cell-index"));

  if (index < self->results->len)
    g_signal_emit (self, signals[EXPORT_REQUESTED], 0, g_ptr_array_index (self->results, index));
}

static void
onestep_compare_view_add_cell (OnestepCompareView *self,
                               guint               index,
                               int                 steps)
{
  Cell *cell = &self->cells[index];
  g_autofree char *title = NULL;
  GtkWidget *spinner;
  GtkWidget *heading;
  GtkWidget *footer;
  GtkWidget *labels;

  cell->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_add_css_class (cell->box, "card");
  gtk_widget_add_css_class (cell->box, "compare-cell");

  cell->stack = GTK_STACK (gtk_stack_new ());
  gtk_widget_set_vexpand (GTK_WIDGET (cell->stack), TRUE);
  gtk_widget_set_size_request (GTK_WIDGET (cell->stack), 280, 180);
  spinner = gtk_spinner_new ();
  cell->spinner = GTK_SPINNER (spinner);
  gtk_spinner_set_spinning (GTK_SPINNER (spinner), TRUE);
  gtk_widget_set_size_request (spinner, 32, 32);
  gtk_widget_set_halign (spinner, GTK_ALIGN_CENTER);
  gtk_widget_set_valign (spinner, GTK_ALIGN_CENTER);
  gtk_stack_add_named (cell->stack, spinner, "waiting");
  cell->preview = ONESTEP_PREVIEW (onestep_preview_new ());
  gtk_stack_add_named (cell->stack, GTK_WIDGET (cell->preview), "preview");
  gtk_box_append (GTK_BOX (cell->box), GTK_WIDGET (cell->stack));

  /* The bar under the grid drives the first preview, which the others follow. */
  g_object_set (cell->preview, "show-controls", FALSE, NULL);
  if (index == 0)
    {
      g_object_bind_property (cell->preview, "playing", self->play_button, "active",
                              G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
      g_object_bind_property (cell->preview, "frame", self->position_adjustment, "value",
                              G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
    }
  else
    {
      g_object_set (cell->preview, "playing", FALSE, NULL);
      g_object_bind_property (self->cells[0].preview, "frame", cell->preview, "frame",
                              G_BINDING_SYNC_CREATE);
    }

  footer = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_add_css_class (footer, "compare-footer");
  labels = gtk_box_new (GTK_ORIENTATION_VERTICAL, 3);
  gtk_widget_set_hexpand (labels, TRUE);
  title = g_strdup_printf (ngettext ("%d step", "%d steps", steps), steps);
  heading = gtk_label_new (title);
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  gtk_widget_add_css_class (heading, "heading");
  gtk_box_append (GTK_BOX (labels), heading);
  cell->summary = GTK_LABEL (gtk_label_new (_("Waiting…")));
  gtk_label_set_xalign (cell->summary, 0);
  gtk_label_set_wrap (cell->summary, TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (cell->summary), "dim-label");
  gtk_widget_add_css_class (GTK_WIDGET (cell->summary), "caption");
  gtk_box_append (GTK_BOX (labels), GTK_WIDGET (cell->summary));
  gtk_box_append (GTK_BOX (footer), labels);

  cell->export_button = gtk_button_new_with_mnemonic (_("_Export…"));
  gtk_widget_set_valign (cell->export_button, GTK_ALIGN_CENTER);
  gtk_widget_set_sensitive (cell->export_button, FALSE);
  g_object_set_data (G_OBJECT (cell->export_button), "cell-index", GUINT_TO_POINTER (index));
  g_signal_connect (cell->export_button, "clicked", G_CALLBACK (on_export_clicked), self);
  gtk_accessible_update_property (GTK_ACCESSIBLE (cell->export_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, title, -1);
  gtk_box_append (GTK_BOX (footer), cell->export_button);
  gtk_box_append (GTK_BOX (cell->box), footer);

  gtk_grid_attach (self->grid, cell->box, index % 2, index / 2, 1, 1);
}

static void
on_play_toggled (OnestepCompareView *self)
{
  gtk_button_set_icon_name (GTK_BUTTON (self->play_button),
                            gtk_toggle_button_get_active (self->play_button)
                              ? "media-playback-pause-symbolic"
                              : "media-playback-start-symbolic");
}

static void
onestep_compare_view_clear (OnestepCompareView *self)
{
  for (guint i = 0; i < self->n_cells; i++)
    gtk_grid_remove (self->grid, self->cells[i].box);
  memset (self->cells, 0, sizeof self->cells);
  self->n_cells = 0;
  g_ptr_array_set_size (self->results, 0);
  gtk_adjustment_set_upper (self->position_adjustment, 0);
}

static void
onestep_compare_view_set_running (OnestepCompareView *self,
                                  gboolean            running)
{
  self->running = running;
  gtk_widget_set_sensitive (self->stop_button, running);
}

static void
on_progress (const OnestepEngineProgress *progress,
             gpointer                     user_data)
{
  OnestepCompareView *self = user_data;
  g_autofree char *text = NULL;

  guint cell = self->n_given + progress->run;

  if (cell >= self->n_cells || progress->stage != ONESTEP_STAGE_DENOISE)
    return;

  text = g_strdup_printf (_("Step %d of %d"), onestep_engine_progress_get_run_step (progress),
                          progress->run_steps);
  gtk_label_set_label (self->cells[cell].summary, text);
}

static void
on_result (OnestepResult *result,
           gpointer       user_data)
{
  OnestepCompareView *self = user_data;
  Cell *cell;
  g_autofree char *summary = NULL;

  if (self->results->len >= self->n_cells)
    return;

  if (self->results->len == 0)
    gtk_adjustment_set_upper (self->position_adjustment, onestep_result_get_n_frames (result) - 1);

  cell = &self->cells[self->results->len];
  onestep_result_set_source (result, self->source);
  g_ptr_array_add (self->results, g_object_ref (result));

  onestep_preview_set_frames (cell->preview, onestep_result_get_frames (result),
                              onestep_result_get_n_frames (result),
                              onestep_result_get_width (result),
                              onestep_result_get_height (result),
                              onestep_result_get_params (result)->fps);
  gtk_stack_set_visible_child_name (cell->stack, "preview");
  summary = onestep_result_dup_summary (result);
  gtk_label_set_label (cell->summary, summary);
  gtk_widget_set_sensitive (cell->export_button, TRUE);
}

static void
on_generate_done (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(OnestepCompareView) self = user_data;
  g_autoptr(GError) error = NULL;
  gboolean superseded = g_task_get_cancellable (G_TASK (result)) != self->cancellable;

  if (!onestep_engine_generate_finish (ONESTEP_ENGINE (object), result, &error) &&
      !superseded && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      for (guint i = self->results->len; i < self->n_cells; i++)
        gtk_label_set_label (self->cells[i].summary, error->message);
    }

  if (!superseded)
    onestep_compare_view_set_running (self, FALSE);
}

static void
onestep_compare_view_dispose (GObject *object)
{
  OnestepCompareView *self = (OnestepCompareView *)object;

  onestep_compare_view_stop (self);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->source);
  g_clear_pointer (&self->results, g_ptr_array_unref);

  G_OBJECT_CLASS (onestep_compare_view_parent_class)->dispose (object);
}

static void
onestep_compare_view_class_init (OnestepCompareViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_compare_view_dispose;

  /* The user picked this clip to export. */
  signals[EXPORT_REQUESTED] =
    g_signal_new ("export-requested", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, ONESTEP_TYPE_RESULT);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-compare-view.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepCompareView, stack);
  gtk_widget_class_bind_template_child (widget_class, OnestepCompareView, grid);
  gtk_widget_class_bind_template_child (widget_class, OnestepCompareView, play_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepCompareView, position_adjustment);
  gtk_widget_class_bind_template_child (widget_class, OnestepCompareView, stop_button);
  gtk_widget_class_bind_template_callback (widget_class, on_play_toggled);
  gtk_widget_class_bind_template_callback (widget_class, onestep_compare_view_stop);

  g_type_ensure (ONESTEP_TYPE_PREVIEW);
}

static void
onestep_compare_view_init (OnestepCompareView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->results = g_ptr_array_new_with_free_func (g_object_unref);
}

/* Generates the image with each step count up to max_steps, replacing the
 * previous comparison. one_step (nullable), the one-step clip already made
 * with these settings, takes the first cell instead of a run. */
void
onestep_compare_view_run (OnestepCompareView  *self,
                          OnestepEngine       *engine,
                          GBytes              *image,
                          int                  image_width,
                          int                  image_height,
                          GdkTexture          *source,
                          const OnestepParams *params,
                          int                  max_steps,
                          OnestepResult       *one_step)
{
  int steps[MAX_CELLS];
  guint n_steps = 0;

  g_return_if_fail (ONESTEP_IS_COMPARE_VIEW (self));
  g_return_if_fail (ONESTEP_IS_ENGINE (engine));
  g_return_if_fail (image != NULL && params != NULL);

  onestep_compare_view_stop (self);
  onestep_compare_view_clear (self);
  g_set_object (&self->source, source);

  for (guint i = 0; i < MAX_CELLS; i++)
    if (compared_steps[i] <= MAX (1, max_steps))
      steps[n_steps++] = compared_steps[i];

  for (guint i = 0; i < n_steps; i++)
    onestep_compare_view_add_cell (self, i, steps[i]);
  self->n_cells = n_steps;
  gtk_stack_set_visible_child_name (self->stack, "grid");

  self->n_given = 0;
  if (one_step != NULL)
    {
      on_result (one_step, self);
      self->n_given = 1;
    }
  if (self->n_given == n_steps)
    return;

  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  onestep_compare_view_set_running (self, TRUE);
  onestep_engine_generate_async (engine, image, image_width, image_height, params,
                                 steps + self->n_given, n_steps - self->n_given, on_progress,
                                 on_result, self, self->cancellable, on_generate_done,
                                 g_object_ref (self));
}

/* Stops the comparison; the cells still waiting say so. */
void
onestep_compare_view_stop (OnestepCompareView *self)
{
  g_return_if_fail (ONESTEP_IS_COMPARE_VIEW (self));

  g_cancellable_cancel (self->cancellable);
  if (self->running)
    for (guint i = self->results->len; i < self->n_cells; i++)
      {
        gtk_spinner_set_spinning (self->cells[i].spinner, FALSE);
        gtk_label_set_label (self->cells[i].summary, _("Stopped"));
      }
  onestep_compare_view_set_running (self, FALSE);
}

gboolean
onestep_compare_view_get_running (OnestepCompareView *self)
{
  g_return_val_if_fail (ONESTEP_IS_COMPARE_VIEW (self), FALSE);
  return self->running;
}

guint
onestep_compare_view_get_n_results (OnestepCompareView *self)
{
  g_return_val_if_fail (ONESTEP_IS_COMPARE_VIEW (self), 0);
  return self->results->len;
}

OnestepResult *
onestep_compare_view_get_result (OnestepCompareView *self,
                                 guint               index)
{
  g_return_val_if_fail (ONESTEP_IS_COMPARE_VIEW (self), NULL);
  g_return_val_if_fail (index < self->results->len, NULL);
  return g_ptr_array_index (self->results, index);
}
