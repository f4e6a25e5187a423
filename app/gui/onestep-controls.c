/* onestep-controls.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-controls.h"
#include "onestep-crop-view.h"
#include "onestep-image-loader.h"
#include "onestep-installed-model.h"

/* A full and a smaller size, each in both orientations. */
#define MAX_SIZE_PRESETS 4

struct _OnestepControls
{
  GtkBox          parent_instance;

  AdwComboRow    *model_row;
  GtkStringList  *model_names;
  AdwActionRow   *no_model_row;
  AdwComboRow    *device_row;
  onestep_precision precision;
  AdwActionRow   *steps_row;
  GtkSpinButton  *steps_spin;
  AdwComboRow    *sampler_row;
  GtkSpinButton  *seed_spin;
  GtkToggleButton *seed_lock_button;
  GtkSpinButton  *frames_spin;
  AdwComboRow    *size_row;
  AdwActionRow   *custom_size_row;
  GtkSpinButton  *width_spin;
  GtkSpinButton  *height_spin;
  AdwActionRow   *crop_row;
  GtkRange       *crop_scale;
  GtkWidget      *crop_view_row;
  OnestepCropView *crop_view;
  GtkSpinButton  *fps_spin;
  GtkSpinButton  *motion_spin;
  GtkSpinButton  *noise_spin;

  /* The seed lock and the custom size, kept across restarts. */
  GSettings      *settings;

  /* The models in the model row, in its order. */
  GPtrArray      *models;
  char           *model_path;
  char           *unet_file;
  int             preset_width[MAX_SIZE_PRESETS];
  int             preset_height[MAX_SIZE_PRESETS];
  guint           n_presets;
  /* The model's default size, which the presets derive from; 0 before a model. */
  int             model_width;
  int             model_height;
  /* The source image's size, which the crop is for; 0 before an image. */
  int             image_width;
  int             image_height;
  /* Non-zero while the program, not the user, changes values. */
  guint           updating;
};

enum {
  CHANGED,
  MODEL_SELECTED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepControls, onestep_controls, GTK_TYPE_BOX)

static guint signals[N_SIGNALS];

static int
round_to_64 (int value)
{
  return MAX (64, (value + 32) / 64 * 64);
}

static gboolean
onestep_controls_custom_size_chosen (OnestepControls *self)
{
  return adw_combo_row_get_selected (self->size_row) >= self->n_presets;
}

/* The frame size the settings give, preset or custom, in multiples of 64 for custom. */
static void
onestep_controls_get_size (OnestepControls *self,
                           int             *width,
                           int             *height)
{
  guint size = adw_combo_row_get_selected (self->size_row);

  if (size < self->n_presets)
    {
      *width = self->preset_width[size];
      *height = self->preset_height[size];
    }
  else
    {
      *width = round_to_64 (gtk_spin_button_get_value_as_int (self->width_spin));
      *height = round_to_64 (gtk_spin_button_get_value_as_int (self->height_spin));
    }
}

/* The custom size row while Custom is chosen; the crop row while the image's shape
 * differs from the frame's, so that some of it is cut, saying which way it moves. */
static void
onestep_controls_update_size_rows (OnestepControls *self)
{
  int width;
  int height;
  gint64 image_shape;
  gint64 frame_shape;

  gtk_widget_set_visible (GTK_WIDGET (self->custom_size_row),
                          onestep_controls_custom_size_chosen (self));

  onestep_controls_get_size (self, &width, &height);
  /* Compared as cross products: equal when the aspect ratios are. */
  image_shape = (gint64)self->image_width * height;
  frame_shape = (gint64)self->image_height * width;
  gtk_widget_set_visible (GTK_WIDGET (self->crop_row),
                          self->image_width > 0 && image_shape != frame_shape);
  gtk_widget_set_visible (self->crop_view_row, gtk_widget_get_visible (GTK_WIDGET (self->crop_row)));
  onestep_crop_view_set_frame_size (self->crop_view, width, height);
  adw_action_row_set_subtitle (self->crop_row,
                               image_shape > frame_shape ? _("From the left edge to the right edge")
                                                         : _("From the top edge to the bottom edge"));
}

/* What the user chose for the custom size and the seed, for the next start. */
static void
onestep_controls_save_choices (OnestepControls *self)
{
  g_settings_set_boolean (self->settings, "custom-size-chosen", onestep_controls_custom_size_chosen (self));
  g_settings_set_int (self->settings, "custom-width",
                      round_to_64 (gtk_spin_button_get_value_as_int (self->width_spin)));
  g_settings_set_int (self->settings, "custom-height",
                      round_to_64 (gtk_spin_button_get_value_as_int (self->height_spin)));
  if (gtk_toggle_button_get_active (self->seed_lock_button))
    g_settings_set_uint (self->settings, "locked-seed", (guint32)gtk_spin_button_get_value (self->seed_spin));
}

static void
on_value_changed (OnestepControls *self)
{
  onestep_controls_update_size_rows (self);

  if (self->updating == 0)
    {
      onestep_controls_save_choices (self);
      g_signal_emit (self, signals[CHANGED], 0);
    }
}

/* Every clip starts as a one-step preview; the steps say how far it is then
 * refined. */
static void
on_steps_changed (OnestepControls *self)
{
  int steps = gtk_spin_button_get_value_as_int (self->steps_spin);
  g_autofree char *subtitle = NULL;

  if (steps <= 1)
    subtitle = g_strdup (_("Off: the quick one-step clip is the result"));
  else
    subtitle = g_strdup_printf (_("After the quick one-step clip, run %d steps once "
                                  "for more detail"), steps);
  adw_action_row_set_subtitle (self->steps_row, subtitle);
}

static void
on_model_names_changed (OnestepControls *self)
{
  gboolean have_models = g_list_model_get_n_items (G_LIST_MODEL (self->model_names)) > 0;

  gtk_widget_set_visible (GTK_WIDGET (self->model_row), have_models);
  gtk_widget_set_visible (GTK_WIDGET (self->no_model_row), !have_models);
}

static void
on_new_seed_clicked (OnestepControls *self)
{
  gtk_spin_button_set_value (self->seed_spin, g_random_int ());
}

static void
on_seed_lock_toggled (OnestepControls *self,
                      GtkToggleButton *button)
{
  gtk_button_set_icon_name (GTK_BUTTON (button),
                            gtk_toggle_button_get_active (button) ? "changes-prevent-symbolic"
                                                                  : "changes-allow-symbolic");
  if (self->updating == 0 && gtk_toggle_button_get_active (button))
    g_settings_set_uint (self->settings, "locked-seed", (guint32)gtk_spin_button_get_value (self->seed_spin));
}

static void
on_model_selected (OnestepControls *self)
{
  guint selected = adw_combo_row_get_selected (self->model_row);

  if (self->updating == 0 && selected < self->models->len)
    g_signal_emit (self, signals[MODEL_SELECTED], 0, g_ptr_array_index (self->models, selected));
}

static void
onestep_controls_finalize (GObject *object)
{
  OnestepControls *self = (OnestepControls *)object;

  g_clear_pointer (&self->model_path, g_free);
  g_clear_pointer (&self->unet_file, g_free);
  g_clear_pointer (&self->models, g_ptr_array_unref);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (onestep_controls_parent_class)->finalize (object);
}

static void
onestep_controls_class_init (OnestepControlsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = onestep_controls_finalize;

  /* The user changed a setting that affects the generated clip. */
  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                   0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /* The user picked another model from the list. */
  signals[MODEL_SELECTED] = g_signal_new ("model-selected", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                          1, ONESTEP_TYPE_INSTALLED_MODEL);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-controls.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, model_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, model_names);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, no_model_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, device_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, steps_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, steps_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, sampler_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, seed_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, seed_lock_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, frames_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, size_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, custom_size_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, width_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, height_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, crop_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, crop_scale);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, crop_view_row);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, crop_view);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, fps_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, motion_spin);
  gtk_widget_class_bind_template_child (widget_class, OnestepControls, noise_spin);
  gtk_widget_class_bind_template_callback (widget_class, on_value_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_steps_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_model_names_changed);
  gtk_widget_class_bind_template_callback (widget_class, on_model_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_new_seed_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_seed_lock_toggled);

  g_type_ensure (ONESTEP_TYPE_CROP_VIEW);
}

/* GNOME panels scroll under the wheel: a spin button's own scroll controller would
 * change its value instead (and restart the generation) whenever the pointer
 * passes over it while the panel scrolls. */
static void
onestep_controls_leave_wheel_to_panel (OnestepControls *self)
{
  GtkSpinButton *spins[] = { self->steps_spin, self->seed_spin, self->frames_spin,
                             self->width_spin, self->height_spin, self->fps_spin,
                             self->motion_spin, self->noise_spin };

  for (guint i = 0; i < G_N_ELEMENTS (spins); i++)
    {
      g_autoptr(GListModel) controllers = gtk_widget_observe_controllers (GTK_WIDGET (spins[i]));
      g_autoptr(GPtrArray) scroll_controllers = g_ptr_array_new_with_free_func (g_object_unref);

      for (guint j = 0; j < g_list_model_get_n_items (controllers); j++)
        {
          g_autoptr(GtkEventController) controller = g_list_model_get_item (controllers, j);

          if (GTK_IS_EVENT_CONTROLLER_SCROLL (controller))
            g_ptr_array_add (scroll_controllers, g_steal_pointer (&controller));
        }
      for (guint j = 0; j < scroll_controllers->len; j++)
        gtk_widget_remove_controller (GTK_WIDGET (spins[i]), g_ptr_array_index (scroll_controllers, j));
    }
}

static void
onestep_controls_init (OnestepControls *self)
{
  g_autoptr(GtkStringList) sizes = gtk_string_list_new (NULL);

  self->updating++;
  gtk_widget_init_template (GTK_WIDGET (self));
  onestep_controls_leave_wheel_to_panel (self);
  onestep_crop_view_set_adjustment (self->crop_view, gtk_range_get_adjustment (self->crop_scale));
  self->models = g_ptr_array_new_with_free_func (g_object_unref);
  adw_combo_row_set_selected (self->model_row, GTK_INVALID_LIST_POSITION);
  self->settings = g_settings_new (SCHEMA_ID);
  g_settings_bind (self->settings, "seed-locked", self->seed_lock_button, "active", G_SETTINGS_BIND_DEFAULT);
  if (gtk_toggle_button_get_active (self->seed_lock_button))
    gtk_spin_button_set_value (self->seed_spin, g_settings_get_uint (self->settings, "locked-seed"));
  else
    gtk_spin_button_set_value (self->seed_spin, g_random_int ());
  gtk_spin_button_set_value (self->fps_spin, 7);
  gtk_spin_button_set_value (self->motion_spin, 127);
  gtk_spin_button_set_value (self->noise_spin, 0.02);
  gtk_spin_button_set_value (self->frames_spin, 14);
  gtk_spin_button_set_value (self->width_spin, 1024);
  gtk_spin_button_set_value (self->height_spin, 576);
  adw_combo_row_set_model (self->size_row, G_LIST_MODEL (sizes));
  on_steps_changed (self);
  on_model_names_changed (self);
  self->updating--;
}

static const char *
model_kind_label (onestep_model_kind kind)
{
  switch (kind)
    {
    case ONESTEP_MODEL_KIND_BASE_SVD:
      return _("Stable Video Diffusion");
    case ONESTEP_MODEL_KIND_CONSISTENCY:
      return _("One-step distilled");
    case ONESTEP_MODEL_KIND_UNKNOWN:
    default:
      return _("Unknown kind");
    }
}

/* The position of the size preset of width x height; n_presets when there is none. */
static guint
onestep_controls_find_preset (OnestepControls *self,
                              int              width,
                              int              height)
{
  for (guint i = 0; i < self->n_presets; i++)
    if (self->preset_width[i] == width && self->preset_height[i] == height)
      return i;

  return self->n_presets;
}

static void
onestep_controls_add_preset (OnestepControls *self,
                             GtkStringList   *names,
                             const char      *name,
                             int              width,
                             int              height)
{
  g_autofree char *label = NULL;

  if (onestep_controls_find_preset (self, width, height) < self->n_presets)
    return;

  /* Translators: a frame size preset, e.g. "Portrait (576 × 1024)" */
  label = g_strdup_printf (_("%s (%d × %d)"), name, width, height);
  gtk_string_list_append (names, label);
  self->preset_width[self->n_presets] = width;
  self->preset_height[self->n_presets] = height;
  self->n_presets++;
}

static gboolean
onestep_controls_image_is_portrait (OnestepControls *self)
{
  return self->image_height > self->image_width;
}

/* The model's size and its smaller version, in the shape of the image first: a
 * portrait photo is offered portrait frames rather than being cropped to landscape.
 * Keeps the choice of a full or smaller size, or of Custom. */
static void
onestep_controls_update_presets (OnestepControls *self)
{
  g_autoptr(GtkStringList) names = gtk_string_list_new (NULL);
  gboolean was_custom = self->n_presets > 0 && onestep_controls_custom_size_chosen (self);
  gboolean was_smaller = FALSE;
  int long_side = MAX (self->model_width, self->model_height);
  int short_side = MIN (self->model_width, self->model_height);
  gboolean has_smaller = short_side >= 256;
  int small_long_side = round_to_64 (long_side / 2);
  int small_short_side = round_to_64 (short_side / 2);
  guint selected = adw_combo_row_get_selected (self->size_row);

  if (self->model_width == 0)
    return;

  if (selected < self->n_presets)
    was_smaller = MAX (self->preset_width[selected], self->preset_height[selected]) < long_side;

  self->n_presets = 0;
  if (long_side == short_side)
    {
      onestep_controls_add_preset (self, names, _("Square"), long_side, long_side);
      if (has_smaller)
        onestep_controls_add_preset (self, names, _("Smaller square"), small_long_side, small_long_side);
    }
  else if (onestep_controls_image_is_portrait (self))
    {
      onestep_controls_add_preset (self, names, _("Portrait"), short_side, long_side);
      if (has_smaller)
        onestep_controls_add_preset (self, names, _("Smaller portrait"), small_short_side, small_long_side);
      onestep_controls_add_preset (self, names, _("Landscape"), long_side, short_side);
      if (has_smaller)
        onestep_controls_add_preset (self, names, _("Smaller landscape"), small_long_side, small_short_side);
    }
  else
    {
      onestep_controls_add_preset (self, names, _("Landscape"), long_side, short_side);
      if (has_smaller)
        onestep_controls_add_preset (self, names, _("Smaller landscape"), small_long_side, small_short_side);
      onestep_controls_add_preset (self, names, _("Portrait"), short_side, long_side);
      if (has_smaller)
        onestep_controls_add_preset (self, names, _("Smaller portrait"), small_short_side, small_long_side);
    }
  gtk_string_list_append (names, _("Custom"));
  adw_combo_row_set_model (self->size_row, G_LIST_MODEL (names));

  if (was_custom)
    adw_combo_row_set_selected (self->size_row, self->n_presets);
  else
    adw_combo_row_set_selected (self->size_row, was_smaller && has_smaller ? 1 : 0);
  onestep_controls_update_size_rows (self);
}

static guint
onestep_controls_find_model (OnestepControls *self,
                             const char      *model_path,
                             const char      *unet_file)
{
  for (guint i = 0; i < self->models->len; i++)
    {
      OnestepInstalledModel *model = g_ptr_array_index (self->models, i);

      if (g_strcmp0 (onestep_installed_model_get_path (model), model_path) == 0 &&
          g_strcmp0 (onestep_installed_model_get_unet_file (model), unet_file) == 0)
        return i;
    }

  return GTK_INVALID_LIST_POSITION;
}

static void
onestep_controls_append_model (OnestepControls       *self,
                               OnestepInstalledModel *model)
{
  g_ptr_array_add (self->models, g_object_ref (model));
  gtk_string_list_append (self->model_names, onestep_installed_model_get_name (model));
}

/* Selects the current model in the list, adding it when it is not there. */
static void
onestep_controls_select_current_model (OnestepControls *self)
{
  guint position;

  if (self->model_path == NULL)
    {
      adw_combo_row_set_selected (self->model_row, GTK_INVALID_LIST_POSITION);
      return;
    }

  position = onestep_controls_find_model (self, self->model_path, self->unet_file);
  if (position == GTK_INVALID_LIST_POSITION)
    {
      g_autofree char *name = g_path_get_basename (self->model_path);
      g_autoptr(OnestepInstalledModel) chosen =
        onestep_installed_model_new (self->model_path, name, ONESTEP_INSTALLED_KIND_DIFFUSERS,
                                     ONESTEP_INSTALLED_SOURCE_IMPORT, self->model_path,
                                     self->unet_file, NULL);

      onestep_controls_append_model (self, chosen);
      position = self->models->len - 1;
    }

  adw_combo_row_set_selected (self->model_row, position);
}

/* Selects the loaded model in the model row again, e.g. after another one failed to load. */
void
onestep_controls_show_current_model (OnestepControls *self)
{
  g_return_if_fail (ONESTEP_IS_CONTROLS (self));

  self->updating++;
  onestep_controls_select_current_model (self);
  self->updating--;
}

/* Offers the models of the user's index; LoRAs are left out, as they need a
 * base model chosen with them. */
void
onestep_controls_set_installed_models (OnestepControls *self,
                                       GPtrArray       *models)
{
  g_return_if_fail (ONESTEP_IS_CONTROLS (self));
  g_return_if_fail (models != NULL);

  self->updating++;

  g_ptr_array_set_size (self->models, 0);
  gtk_string_list_splice (self->model_names, 0,
                          g_list_model_get_n_items (G_LIST_MODEL (self->model_names)), NULL);
  for (guint i = 0; i < models->len; i++)
    if (onestep_installed_model_get_kind (g_ptr_array_index (models, i)) != ONESTEP_INSTALLED_KIND_LORA)
      onestep_controls_append_model (self, g_ptr_array_index (models, i));
  onestep_controls_select_current_model (self);

  self->updating--;
}

/* Shows the loaded model and resets the controls to its defaults; steps
 * overrides the model's default step count when positive. */
void
onestep_controls_set_model (OnestepControls          *self,
                            const char               *model_path,
                            const char               *unet_file,
                            const onestep_model_info *info,
                            int                       steps)
{
  g_autofree char *subtitle = NULL;
  g_autofree char *device = NULL;
  int custom_width;
  int custom_height;
  int max_steps;

  g_return_if_fail (ONESTEP_IS_CONTROLS (self));
  g_return_if_fail (model_path != NULL && info != NULL);

  self->updating++;

  g_free (self->model_path);
  self->model_path = g_strdup (model_path);
  g_free (self->unet_file);
  self->unet_file = g_strdup (unet_file);
  onestep_controls_select_current_model (self);
  /* The device name may go on to say why CUDA is not used: that is for the tooltip. */
  device = g_strndup (info->device_name, strcspn (info->device_name, ";"));
  subtitle = g_strdup_printf ("%s · %s", model_kind_label (info->kind), device);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->model_row), subtitle);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->model_row), info->device_name);

  max_steps = info->kind == ONESTEP_MODEL_KIND_CONSISTENCY ? 8 : 50;
  gtk_spin_button_set_range (self->steps_spin, 1, max_steps);
  gtk_spin_button_set_value (self->steps_spin, steps > 0 ? steps : info->default_steps);
  adw_combo_row_set_selected (self->sampler_row, ONESTEP_SAMPLER_AUTO);
  gtk_spin_button_set_value (self->frames_spin, info->default_frames);

  /* The custom size the user chose before, else the model's. */
  custom_width = g_settings_get_int (self->settings, "custom-width");
  custom_height = g_settings_get_int (self->settings, "custom-height");
  gtk_spin_button_set_value (self->width_spin, round_to_64 (custom_width > 0 ? custom_width : info->default_width));
  gtk_spin_button_set_value (self->height_spin, round_to_64 (custom_height > 0 ? custom_height : info->default_height));

  self->model_width = info->default_width;
  self->model_height = info->default_height;
  self->n_presets = 0;
  onestep_controls_update_presets (self);
  if (g_settings_get_boolean (self->settings, "custom-size-chosen"))
    adw_combo_row_set_selected (self->size_row, self->n_presets);
  onestep_controls_update_size_rows (self);

  self->updating--;
}

void
onestep_controls_set_device (OnestepControls *self,
                             onestep_device   device)
{
  g_return_if_fail (ONESTEP_IS_CONTROLS (self));

  self->updating++;
  adw_combo_row_set_selected (self->device_row, device);
  self->updating--;
}

/* The GPU precision is a preference, not a row: kept for the params. */
void
onestep_controls_set_precision (OnestepControls   *self,
                                onestep_precision  precision)
{
  g_return_if_fail (ONESTEP_IS_CONTROLS (self));

  self->precision = precision;
}

OnestepParams *
onestep_controls_get_params (OnestepControls *self)
{
  OnestepParams *params;

  g_return_val_if_fail (ONESTEP_IS_CONTROLS (self), NULL);

  params = onestep_params_new ();
  params->model_path = g_strdup (self->model_path);
  params->unet_file = g_strdup (self->unet_file);
  /* The rows list the enum values in order. */
  params->device = adw_combo_row_get_selected (self->device_row);
  params->precision = self->precision;
  params->sampler = adw_combo_row_get_selected (self->sampler_row);
  params->steps = gtk_spin_button_get_value_as_int (self->steps_spin);
  params->seed = (guint32)gtk_spin_button_get_value (self->seed_spin);
  params->frames = gtk_spin_button_get_value_as_int (self->frames_spin);
  params->fps = gtk_spin_button_get_value_as_int (self->fps_spin);
  params->motion_bucket_id = gtk_spin_button_get_value_as_int (self->motion_spin);
  params->noise_aug_strength = gtk_spin_button_get_value (self->noise_spin);
  params->crop_position = gtk_range_get_value (self->crop_scale);
  onestep_controls_get_size (self, &params->width, &params->height);

  return params;
}

/* Restores settings, e.g. from the history, without emitting "changed". */
void
onestep_controls_set_params (OnestepControls     *self,
                             const OnestepParams *params)
{
  guint size;

  g_return_if_fail (ONESTEP_IS_CONTROLS (self));
  g_return_if_fail (params != NULL);

  self->updating++;

  adw_combo_row_set_selected (self->device_row, params->device);
  adw_combo_row_set_selected (self->sampler_row, params->sampler);
  gtk_spin_button_set_value (self->steps_spin, params->steps);
  gtk_spin_button_set_value (self->seed_spin, params->seed);
  gtk_spin_button_set_value (self->frames_spin, params->frames);
  gtk_spin_button_set_value (self->fps_spin, params->fps);
  gtk_spin_button_set_value (self->motion_spin, params->motion_bucket_id);
  gtk_spin_button_set_value (self->noise_spin, params->noise_aug_strength);
  gtk_range_set_value (self->crop_scale, params->crop_position);

  size = onestep_controls_find_preset (self, params->width, params->height);
  adw_combo_row_set_selected (self->size_row, size);
  if (size == self->n_presets)
    {
      gtk_spin_button_set_value (self->width_spin, params->width);
      gtk_spin_button_set_value (self->height_spin, params->height);
    }
  onestep_controls_update_size_rows (self);

  self->updating--;
}

/* The image clips are made from, for the crop rows; see also
 * onestep_controls_prepare_new_image(). */
void
onestep_controls_set_image (OnestepControls *self,
                            GdkTexture      *image)
{
  g_return_if_fail (ONESTEP_IS_CONTROLS (self));
  g_return_if_fail (GDK_IS_TEXTURE (image));

  self->image_width = gdk_texture_get_width (image);
  self->image_height = gdk_texture_get_height (image);
  onestep_crop_view_set_image (self->crop_view, image);
  onestep_controls_update_size_rows (self);
}

/* A new image gets a new random seed unless the seed is locked, frames of its own
 * orientation, and a centred crop. */
void
onestep_controls_prepare_new_image (OnestepControls *self)
{
  g_return_if_fail (ONESTEP_IS_CONTROLS (self));

  self->updating++;
  if (!gtk_toggle_button_get_active (self->seed_lock_button))
    gtk_spin_button_set_value (self->seed_spin, g_random_int ());
  gtk_range_set_value (self->crop_scale, ONESTEP_CROP_CENTRE);
  onestep_controls_update_presets (self);
  self->updating--;
}
