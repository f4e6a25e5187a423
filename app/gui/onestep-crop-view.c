/* onestep-crop-view.c
 *
 * The image is drawn whole, fitted to the widget; outside the frame of the
 * clip's shape it is dimmed. Dragging the frame moves the crop position, held
 * by an adjustment shared with the Crop Position slider, from 0 (left or top)
 * to 1 (right or bottom), as onestep_image_loader_fit_at() places it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-crop-view.h"

#define VIEW_HEIGHT 140
#define FRAME_LINE_WIDTH 2

struct _OnestepCropView
{
  GtkWidget      parent_instance;

  GdkTexture    *image;
  GtkAdjustment *adjustment;
  int            frame_width;
  int            frame_height;
  /* The crop position where the current drag started. */
  double         drag_start_position;
};

G_DEFINE_FINAL_TYPE (OnestepCropView, onestep_crop_view, GTK_TYPE_WIDGET)

/* Where the image is drawn: fitted whole into the widget, centred. */
static graphene_rect_t
onestep_crop_view_get_image_rect (OnestepCropView *self)
{
  double width = gtk_widget_get_width (GTK_WIDGET (self));
  double height = gtk_widget_get_height (GTK_WIDGET (self));
  double image_width;
  double image_height;
  double scale;

  if (self->image == NULL || width <= 0 || height <= 0)
    return GRAPHENE_RECT_INIT (0, 0, 0, 0);

  image_width = gdk_texture_get_width (self->image);
  image_height = gdk_texture_get_height (self->image);
  scale = MIN (width / image_width, height / image_height);
  return GRAPHENE_RECT_INIT ((width - image_width * scale) / 2, (height - image_height * scale) / 2,
                             image_width * scale, image_height * scale);
}

static gboolean
onestep_crop_view_cuts_sides (OnestepCropView *self)
{
  return (gint64)gdk_texture_get_width (self->image) * self->frame_height >
         (gint64)gdk_texture_get_height (self->image) * self->frame_width;
}

/* The part of the image the clip keeps, in widget coordinates. */
graphene_rect_t
onestep_crop_view_get_frame_rect (OnestepCropView *self)
{
  graphene_rect_t image = onestep_crop_view_get_image_rect (self);
  double position;

  g_return_val_if_fail (ONESTEP_IS_CROP_VIEW (self), image);

  if (self->image == NULL || self->frame_width <= 0 || self->frame_height <= 0)
    return image;

  position = self->adjustment != NULL ? gtk_adjustment_get_value (self->adjustment) : 0.5;
  if (onestep_crop_view_cuts_sides (self))
    {
      double width = image.size.height * self->frame_width / self->frame_height;

      return GRAPHENE_RECT_INIT (image.origin.x + position * (image.size.width - width), image.origin.y,
                                 width, image.size.height);
    }
  else
    {
      double height = image.size.width * self->frame_height / self->frame_width;

      return GRAPHENE_RECT_INIT (image.origin.x, image.origin.y + position * (image.size.height - height),
                                 image.size.width, height);
    }
}

static void
onestep_crop_view_snapshot (GtkWidget   *widget,
                            GtkSnapshot *snapshot)
{
  OnestepCropView *self = ONESTEP_CROP_VIEW (widget);
  graphene_rect_t image = onestep_crop_view_get_image_rect (self);
  graphene_rect_t frame = onestep_crop_view_get_frame_rect (self);
  const GdkRGBA dim = { 0, 0, 0, 0.55f };
  /* GNOME's blue accent: seen on the image and on the row's background alike. */
  const GdkRGBA line = { 0.21f, 0.52f, 0.89f, 1 };
  const float line_widths[4] = { FRAME_LINE_WIDTH, FRAME_LINE_WIDTH, FRAME_LINE_WIDTH, FRAME_LINE_WIDTH };
  const GdkRGBA line_colors[4] = { line, line, line, line };
  GskRoundedRect outline;

  if (self->image == NULL)
    return;

  gtk_snapshot_append_texture (snapshot, self->image, &image);

  /* What is cut: before and after the frame along the image. */
  gtk_snapshot_append_color (snapshot, &dim,
                             &GRAPHENE_RECT_INIT (image.origin.x, image.origin.y,
                                                  frame.origin.x - image.origin.x,
                                                  image.size.height));
  gtk_snapshot_append_color (snapshot, &dim,
                             &GRAPHENE_RECT_INIT (frame.origin.x + frame.size.width, image.origin.y,
                                                  image.origin.x + image.size.width -
                                                  (frame.origin.x + frame.size.width),
                                                  image.size.height));
  gtk_snapshot_append_color (snapshot, &dim,
                             &GRAPHENE_RECT_INIT (frame.origin.x, image.origin.y, frame.size.width,
                                                  frame.origin.y - image.origin.y));
  gtk_snapshot_append_color (snapshot, &dim,
                             &GRAPHENE_RECT_INIT (frame.origin.x, frame.origin.y + frame.size.height,
                                                  frame.size.width,
                                                  image.origin.y + image.size.height -
                                                  (frame.origin.y + frame.size.height)));

  gsk_rounded_rect_init_from_rect (&outline, &frame, 0);
  gtk_snapshot_append_border (snapshot, &outline, line_widths, line_colors);
}

static void
onestep_crop_view_measure (GtkWidget      *widget,
                           GtkOrientation  orientation,
                           int             for_size,
                           int            *minimum,
                           int            *natural,
                           int            *minimum_baseline,
                           int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_VERTICAL ? VIEW_HEIGHT : 0;
  *natural = VIEW_HEIGHT;
}

static void
on_drag_begin (GtkGestureDrag  *gesture,
               double           x,
               double           y,
               OnestepCropView *self)
{
  if (self->adjustment != NULL)
    self->drag_start_position = gtk_adjustment_get_value (self->adjustment);
}

/* Moves the frame with the pointer: across the whole travel of the frame, the
 * position goes from 0 to 1. */
static void
on_drag_update (GtkGestureDrag  *gesture,
                double           offset_x,
                double           offset_y,
                OnestepCropView *self)
{
  graphene_rect_t image = onestep_crop_view_get_image_rect (self);
  graphene_rect_t frame = onestep_crop_view_get_frame_rect (self);
  gboolean sides = onestep_crop_view_cuts_sides (self);
  double travel = sides ? image.size.width - frame.size.width : image.size.height - frame.size.height;

  if (self->adjustment == NULL || self->image == NULL || travel <= 0)
    return;

  gtk_adjustment_set_value (self->adjustment,
                            self->drag_start_position + (sides ? offset_x : offset_y) / travel);
}

static void
onestep_crop_view_dispose (GObject *object)
{
  OnestepCropView *self = (OnestepCropView *)object;

  onestep_crop_view_set_adjustment (self, NULL);
  g_clear_object (&self->image);

  G_OBJECT_CLASS (onestep_crop_view_parent_class)->dispose (object);
}

static void
onestep_crop_view_class_init (OnestepCropViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_crop_view_dispose;
  widget_class->snapshot = onestep_crop_view_snapshot;
  widget_class->measure = onestep_crop_view_measure;

  gtk_widget_class_set_css_name (widget_class, "onestep-crop-view");
  /* The Crop Position slider beside it is the accessible control. */
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
onestep_crop_view_init (OnestepCropView *self)
{
  GtkGesture *drag = gtk_gesture_drag_new ();

  self->drag_start_position = 0.5;
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "move");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("The part of the image the clip keeps"), -1);
}

void
onestep_crop_view_set_image (OnestepCropView *self,
                             GdkTexture      *image)
{
  g_return_if_fail (ONESTEP_IS_CROP_VIEW (self));
  g_return_if_fail (image == NULL || GDK_IS_TEXTURE (image));

  if (g_set_object (&self->image, image))
    gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* The clip's size, whose shape the frame has. */
void
onestep_crop_view_set_frame_size (OnestepCropView *self,
                                  int              width,
                                  int              height)
{
  g_return_if_fail (ONESTEP_IS_CROP_VIEW (self));

  self->frame_width = width;
  self->frame_height = height;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* The crop position, 0 to 1, that the frame shows and dragging changes. */
void
onestep_crop_view_set_adjustment (OnestepCropView *self,
                                  GtkAdjustment   *adjustment)
{
  g_return_if_fail (ONESTEP_IS_CROP_VIEW (self));
  g_return_if_fail (adjustment == NULL || GTK_IS_ADJUSTMENT (adjustment));

  if (self->adjustment != NULL)
    g_signal_handlers_disconnect_by_func (self->adjustment, gtk_widget_queue_draw, self);
  g_set_object (&self->adjustment, adjustment);
  if (adjustment != NULL)
    g_signal_connect_swapped (adjustment, "value-changed", G_CALLBACK (gtk_widget_queue_draw), self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}
