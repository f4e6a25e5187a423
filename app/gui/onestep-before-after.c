/* onestep-before-after.c
 *
 * Laid over the preview, as Upscayl compares an image with its upscaled
 * version: the "before" picture (the source image as the engine sees it) left
 * of a divider the pointer drags, the preview's current frame showing through
 * on its right. The picture is fitted as the preview fits its frames: whole,
 * centred, with its aspect ratio, so the two line up.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-before-after.h"

/* The keyboard moves the divider by this much of the picture's width. */
#define KEY_STEP 0.05
#define HANDLE_SIZE 28.f
#define DIVIDER_WIDTH 2.f
#define LABEL_MARGIN 8.f

struct _OnestepBeforeAfter
{
  GtkWidget   parent_instance;

  GdkTexture *before;
  /* The divider, from 0 (the picture's left edge) to 1 (its right edge). */
  double      position;
  double      drag_start_x;
};

enum {
  PROP_0,
  PROP_BEFORE,
  PROP_POSITION,
  N_PROPS
};

G_DEFINE_FINAL_TYPE (OnestepBeforeAfter, onestep_before_after, GTK_TYPE_WIDGET)

static GParamSpec *properties[N_PROPS];

/* Where the picture lies in the widget. */
static graphene_rect_t
picture_bounds (OnestepBeforeAfter *self)
{
  float width = gtk_widget_get_width (GTK_WIDGET (self));
  float height = gtk_widget_get_height (GTK_WIDGET (self));
  float aspect = (float)gdk_texture_get_width (self->before) / gdk_texture_get_height (self->before);
  float fitted_width = MIN (width, height * aspect);
  float fitted_height = fitted_width / aspect;

  return GRAPHENE_RECT_INIT ((width - fitted_width) / 2, (height - fitted_height) / 2,
                             fitted_width, fitted_height);
}

/* A label naming one side, on a dark plate in the picture's top corner. */
static void
append_label (OnestepBeforeAfter *self,
              GtkSnapshot        *snapshot,
              const char         *text,
              float               x,
              float               y,
              gboolean            right_aligned)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), text);
  int text_width;
  int text_height;
  float padding = 6.f;
  graphene_rect_t plate;
  GskRoundedRect rounded;

  pango_layout_get_pixel_size (layout, &text_width, &text_height);
  plate = GRAPHENE_RECT_INIT (right_aligned ? x - text_width - 2 * padding : x, y,
                              text_width + 2 * padding, text_height + padding);
  gsk_rounded_rect_init_from_rect (&rounded, &plate, 6.f);
  gtk_snapshot_push_rounded_clip (snapshot, &rounded);
  gtk_snapshot_append_color (snapshot, &(GdkRGBA) { 0, 0, 0, 0.6f }, &plate);
  gtk_snapshot_pop (snapshot);

  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (plate.origin.x + padding,
                                                          plate.origin.y + padding / 2));
  gtk_snapshot_append_layout (snapshot, layout, &(GdkRGBA) { 1, 1, 1, 1 });
  gtk_snapshot_restore (snapshot);
}

static void
onestep_before_after_snapshot (GtkWidget   *widget,
                               GtkSnapshot *snapshot)
{
  OnestepBeforeAfter *self = ONESTEP_BEFORE_AFTER (widget);
  graphene_rect_t bounds;
  float divider_x;
  GskRoundedRect handle;
  const GdkRGBA white = { 1, 1, 1, 1 };
  const GdkRGBA outline = { 0, 0, 0, 0.4f };

  if (self->before == NULL)
    return;

  bounds = picture_bounds (self);
  divider_x = bounds.origin.x + (float)self->position * bounds.size.width;

  gtk_snapshot_push_clip (snapshot, &GRAPHENE_RECT_INIT (bounds.origin.x, bounds.origin.y,
                                                         divider_x - bounds.origin.x,
                                                         bounds.size.height));
  gtk_snapshot_append_texture (snapshot, self->before, &bounds);
  gtk_snapshot_pop (snapshot);

  append_label (self, snapshot, _("Image"), bounds.origin.x + LABEL_MARGIN,
                bounds.origin.y + LABEL_MARGIN, FALSE);
  append_label (self, snapshot, _("Clip"), bounds.origin.x + bounds.size.width - LABEL_MARGIN,
                bounds.origin.y + LABEL_MARGIN, TRUE);

  gtk_snapshot_append_color (snapshot, &white,
                             &GRAPHENE_RECT_INIT (divider_x - DIVIDER_WIDTH / 2, bounds.origin.y,
                                                  DIVIDER_WIDTH, bounds.size.height));
  gsk_rounded_rect_init_from_rect (&handle,
                                   &GRAPHENE_RECT_INIT (divider_x - HANDLE_SIZE / 2,
                                                        bounds.origin.y + (bounds.size.height - HANDLE_SIZE) / 2,
                                                        HANDLE_SIZE, HANDLE_SIZE),
                                   HANDLE_SIZE / 2);
  gtk_snapshot_push_rounded_clip (snapshot, &handle);
  gtk_snapshot_append_color (snapshot, &white, &handle.bounds);
  gtk_snapshot_pop (snapshot);
  gtk_snapshot_append_border (snapshot, &handle, (float[4]) { 1, 1, 1, 1 },
                              (GdkRGBA[4]) { outline, outline, outline, outline });
}

static void
move_divider_to (OnestepBeforeAfter *self,
                 double              x)
{
  graphene_rect_t bounds;

  if (self->before == NULL)
    return;

  bounds = picture_bounds (self);
  onestep_before_after_set_position (self, (x - bounds.origin.x) / MAX (bounds.size.width, 1.f));
}

static void
on_drag_begin (GtkGestureDrag     *gesture,
               double              x,
               double              y,
               OnestepBeforeAfter *self)
{
  self->drag_start_x = x;
  move_divider_to (self, x);
}

static void
on_drag_update (GtkGestureDrag     *gesture,
                double              offset_x,
                double              offset_y,
                OnestepBeforeAfter *self)
{
  move_divider_to (self, self->drag_start_x + offset_x);
}

static gboolean
on_key_pressed (GtkEventControllerKey *controller,
                guint                  keyval,
                guint                  keycode,
                GdkModifierType        state,
                OnestepBeforeAfter    *self)
{
  switch (keyval)
    {
    case GDK_KEY_Left:
    case GDK_KEY_KP_Left:
      onestep_before_after_set_position (self, self->position - KEY_STEP);
      return TRUE;
    case GDK_KEY_Right:
    case GDK_KEY_KP_Right:
      onestep_before_after_set_position (self, self->position + KEY_STEP);
      return TRUE;
    default:
      return FALSE;
    }
}

static void
onestep_before_after_dispose (GObject *object)
{
  OnestepBeforeAfter *self = ONESTEP_BEFORE_AFTER (object);

  g_clear_object (&self->before);

  G_OBJECT_CLASS (onestep_before_after_parent_class)->dispose (object);
}

static void
onestep_before_after_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  OnestepBeforeAfter *self = ONESTEP_BEFORE_AFTER (object);

  switch (prop_id)
    {
    case PROP_BEFORE:
      g_value_set_object (value, self->before);
      break;

    case PROP_POSITION:
      g_value_set_double (value, self->position);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_before_after_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  OnestepBeforeAfter *self = ONESTEP_BEFORE_AFTER (object);

  switch (prop_id)
    {
    case PROP_BEFORE:
      onestep_before_after_set_before (self, g_value_get_object (value));
      break;

    case PROP_POSITION:
      onestep_before_after_set_position (self, g_value_get_double (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_before_after_class_init (OnestepBeforeAfterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_before_after_dispose;
  object_class->get_property = onestep_before_after_get_property;
  object_class->set_property = onestep_before_after_set_property;
  widget_class->snapshot = onestep_before_after_snapshot;

  properties[PROP_BEFORE] =
    g_param_spec_object ("before", NULL, NULL, GDK_TYPE_TEXTURE,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_POSITION] =
    g_param_spec_double ("position", NULL, NULL, 0, 1, 0.5,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_css_name (widget_class, "onestep-before-after");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_SLIDER);
}

static void
onestep_before_after_init (OnestepBeforeAfter *self)
{
  GtkGesture *drag = gtk_gesture_drag_new ();
  GtkEventController *keys = gtk_event_controller_key_new ();

  self->position = 0.5;
  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "col-resize");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Divider between the image and the clip"),
                                  GTK_ACCESSIBLE_PROPERTY_VALUE_MIN, 0.0,
                                  GTK_ACCESSIBLE_PROPERTY_VALUE_MAX, 100.0,
                                  GTK_ACCESSIBLE_PROPERTY_VALUE_NOW, 50.0,
                                  -1);

  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));
  g_signal_connect (keys, "key-pressed", G_CALLBACK (on_key_pressed), self);
  gtk_widget_add_controller (GTK_WIDGET (self), keys);
}

/* before: the picture left of the divider, or NULL for none. */
void
onestep_before_after_set_before (OnestepBeforeAfter *self,
                                 GdkTexture         *before)
{
  g_return_if_fail (ONESTEP_IS_BEFORE_AFTER (self));
  g_return_if_fail (before == NULL || GDK_IS_TEXTURE (before));

  if (!g_set_object (&self->before, before))
    return;

  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BEFORE]);
}

GdkTexture *
onestep_before_after_get_before (OnestepBeforeAfter *self)
{
  g_return_val_if_fail (ONESTEP_IS_BEFORE_AFTER (self), NULL);
  return self->before;
}

double
onestep_before_after_get_position (OnestepBeforeAfter *self)
{
  g_return_val_if_fail (ONESTEP_IS_BEFORE_AFTER (self), 0);
  return self->position;
}

void
onestep_before_after_set_position (OnestepBeforeAfter *self,
                                   double              position)
{
  g_return_if_fail (ONESTEP_IS_BEFORE_AFTER (self));

  position = CLAMP (position, 0.0, 1.0);
  if (position == self->position)
    return;

  self->position = position;
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_VALUE_NOW, position * 100, -1);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_POSITION]);
}
