/* onestep-preview.c
 *
 * Frames are uploaded to a GL texture and drawn by a small shader, fitted to
 * the widget with the clip's aspect ratio. Where GL is unavailable the same
 * frames are shown as memory textures in a GtkPicture, so there is always a
 * picture. Playback follows the frame clock at the clip's frame rate.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <epoxy/gl.h>
#include <glib/gi18n.h>

#include "onestep-before-after.h"
#include "onestep-image.h"
#include "onestep-preview.h"

struct _OnestepPreview
{
  GtkWidget      parent_instance;

  GtkStack      *display_stack;
  GtkGLArea     *gl_area;
  GtkPicture    *picture;
  GtkWidget     *controls;
  GtkButton     *play_button;
  GtkAdjustment *scrubber_adjustment;
  GtkLabel      *position_label;
  GtkToggleButton *source_button;
  OnestepBeforeAfter *before_after;

  GBytes        *frames;
  int            n_frames;
  int            width;
  int            height;
  int            fps;
  int            frame;
  gboolean       playing;
  gboolean       uses_gl;

  guint          tick_id;
  gint64         play_start_time;
  int            play_start_frame;
  gboolean       updating_scrubber;

  /* GL objects, valid between realize and unrealize. */
  GLuint         program;
  GLuint         vertex_array;
  GLuint         texture;
  GLint          scale_location;
  int            texture_width;
  int            texture_height;
  /* Which frame of which clip the texture holds. */
  int            texture_frame;
  guint          texture_serial;
  guint          frames_serial;
};

enum {
  PROP_0,
  PROP_FRAME,
  PROP_PLAYING,
  PROP_SHOW_CONTROLS,
  N_PROPS
};

G_DEFINE_FINAL_TYPE (OnestepPreview, onestep_preview, GTK_TYPE_WIDGET)

static GParamSpec *properties[N_PROPS];

static const guint8 *
onestep_preview_frame_pixels (OnestepPreview *self)
{
  gsize frame_size = (gsize)self->width * self->height * 3;

  return (const guint8 *)g_bytes_get_data (self->frames, NULL) + frame_size * self->frame;
}

static void
onestep_preview_update_picture (OnestepPreview *self)
{
  g_autoptr(GdkTexture) texture = NULL;

  if (self->frames == NULL)
    {
      gtk_picture_set_paintable (self->picture, NULL);
      return;
    }

  texture = onestep_image_frame_texture (self->frames, self->frame, self->width, self->height);
  gtk_picture_set_paintable (self->picture, GDK_PAINTABLE (texture));
}

static void
onestep_preview_redraw (OnestepPreview *self)
{
  if (self->uses_gl)
    gtk_gl_area_queue_render (self->gl_area);
  else
    onestep_preview_update_picture (self);
}

static void
onestep_preview_update_position (OnestepPreview *self)
{
  g_autofree char *position = NULL;

  self->updating_scrubber = TRUE;
  gtk_adjustment_set_upper (self->scrubber_adjustment, MAX (0, self->n_frames - 1));
  gtk_adjustment_set_value (self->scrubber_adjustment, self->frame);
  self->updating_scrubber = FALSE;

  if (self->n_frames > 0)
    position = g_strdup_printf ("%d / %d", self->frame + 1, self->n_frames);
  gtk_label_set_label (self->position_label, position ? position : "");
  /* A still (the opened image) has nothing to play. */
  gtk_widget_set_sensitive (self->controls, self->n_frames > 1);
}

static void
onestep_preview_fall_back_to_picture (OnestepPreview *self,
                                      const GError   *error)
{
  g_debug ("Preview without OpenGL: %s", error->message);
  self->uses_gl = FALSE;
  gtk_stack_set_visible_child_name (self->display_stack, "picture");
  onestep_preview_update_picture (self);
}

static GLuint
compile_shader (GLenum       type,
                const char  *header,
                const char  *resource,
                GError     **error)
{
  g_autoptr(GBytes) body = NULL;
  const char *sources[2];
  GLint lengths[2];
  GLuint shader;
  GLint status;

  body = g_resources_lookup_data (resource, 0, error);
  if (body == NULL)
    return 0;

  sources[0] = header;
  lengths[0] = strlen (header);
  sources[1] = g_bytes_get_data (body, NULL);
  lengths[1] = g_bytes_get_size (body);

  shader = glCreateShader (type);
  glShaderSource (shader, 2, sources, lengths);
  glCompileShader (shader);
  glGetShaderiv (shader, GL_COMPILE_STATUS, &status);
  if (status == GL_FALSE)
    {
      char log[1024] = "";

      glGetShaderInfoLog (shader, sizeof log, NULL, log);
      g_set_error (error, GDK_GL_ERROR, GDK_GL_ERROR_COMPILATION_FAILED,
                   "%s: %s", resource, log);
      glDeleteShader (shader);
      return 0;
    }

  return shader;
}

static gboolean
onestep_preview_create_program (OnestepPreview  *self,
                                gboolean         use_es,
                                GError         **error)
{
  /* The same shader bodies serve GL 3.3 core and GLES 3.0. */
  const char *header = use_es ? "#version 300 es\nprecision mediump float;\n"
                              : "#version 330 core\n";
  GLuint vertex;
  GLuint fragment;
  GLint status;

  vertex = compile_shader (GL_VERTEX_SHADER, header,
                           RESOURCE_BASE_PATH "/shaders/preview.vert", error);
  if (vertex == 0)
    return FALSE;

  fragment = compile_shader (GL_FRAGMENT_SHADER, header,
                             RESOURCE_BASE_PATH "/shaders/preview.frag", error);
  if (fragment == 0)
    {
      glDeleteShader (vertex);
      return FALSE;
    }

  self->program = glCreateProgram ();
  glAttachShader (self->program, vertex);
  glAttachShader (self->program, fragment);
  glLinkProgram (self->program);
  glDeleteShader (vertex);
  glDeleteShader (fragment);

  glGetProgramiv (self->program, GL_LINK_STATUS, &status);
  if (status == GL_FALSE)
    {
      char log[1024] = "";

      glGetProgramInfoLog (self->program, sizeof log, NULL, log);
      g_set_error (error, GDK_GL_ERROR, GDK_GL_ERROR_LINK_FAILED, "%s", log);
      glDeleteProgram (self->program);
      self->program = 0;
      return FALSE;
    }

  self->scale_location = glGetUniformLocation (self->program, "scale");

  return TRUE;
}

/* GtkGLArea 4.8 insists on desktop GL unless use-es is set; let GDK pick
 * GL or GLES, whichever the display offers, and choose shaders to match. */
static GdkGLContext *
on_gl_area_create_context (OnestepPreview *self,
                           GtkGLArea      *area)
{
  GdkSurface *surface = gtk_native_get_surface (gtk_widget_get_native (GTK_WIDGET (area)));
  g_autoptr(GError) error = NULL;
  GdkGLContext *context;

  context = gdk_surface_create_gl_context (surface, &error);
  if (context == NULL)
    {
      gtk_gl_area_set_error (area, error);
      return NULL;
    }

  gdk_gl_context_set_allowed_apis (context, GDK_GL_API_GL | GDK_GL_API_GLES);
  if (!gdk_gl_context_realize (context, &error))
    {
      gtk_gl_area_set_error (area, error);
      g_object_unref (context);
      return NULL;
    }

  return context;
}

static void
on_gl_area_realize (OnestepPreview *self,
                    GtkGLArea      *area)
{
  g_autoptr(GError) error = NULL;
  GdkGLContext *context;

  gtk_gl_area_make_current (area);
  if (gtk_gl_area_get_error (area) != NULL)
    {
      onestep_preview_fall_back_to_picture (self, gtk_gl_area_get_error (area));
      return;
    }

  context = gtk_gl_area_get_context (area);
  if (!onestep_preview_create_program (self, gdk_gl_context_get_api (context) == GDK_GL_API_GLES,
                                       &error))
    {
      gtk_gl_area_set_error (area, error);
      onestep_preview_fall_back_to_picture (self, error);
      return;
    }

  glGenVertexArrays (1, &self->vertex_array);
  glGenTextures (1, &self->texture);
  glBindTexture (GL_TEXTURE_2D, self->texture);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri (GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  self->texture_width = 0;
  self->texture_height = 0;
  self->texture_frame = -1;
  self->uses_gl = TRUE;
}

static void
on_gl_area_unrealize (OnestepPreview *self,
                      GtkGLArea      *area)
{
  gtk_gl_area_make_current (area);
  if (gtk_gl_area_get_error (area) != NULL)
    return;

  if (self->texture != 0)
    glDeleteTextures (1, &self->texture);
  if (self->vertex_array != 0)
    glDeleteVertexArrays (1, &self->vertex_array);
  if (self->program != 0)
    glDeleteProgram (self->program);
  self->texture = 0;
  self->vertex_array = 0;
  self->program = 0;
}

static void
onestep_preview_upload_frame (OnestepPreview *self)
{
  if (self->texture_frame == self->frame && self->texture_serial == self->frames_serial)
    return;

  glBindTexture (GL_TEXTURE_2D, self->texture);
  glPixelStorei (GL_UNPACK_ALIGNMENT, 1);
  if (self->texture_width != self->width || self->texture_height != self->height)
    {
      glTexImage2D (GL_TEXTURE_2D, 0, GL_RGB8, self->width, self->height, 0,
                    GL_RGB, GL_UNSIGNED_BYTE, onestep_preview_frame_pixels (self));
      self->texture_width = self->width;
      self->texture_height = self->height;
    }
  else
    {
      glTexSubImage2D (GL_TEXTURE_2D, 0, 0, 0, self->width, self->height,
                       GL_RGB, GL_UNSIGNED_BYTE, onestep_preview_frame_pixels (self));
    }

  self->texture_frame = self->frame;
  self->texture_serial = self->frames_serial;
}

static gboolean
on_gl_area_render (OnestepPreview *self,
                   GdkGLContext   *context,
                   GtkGLArea      *area)
{
  double view_aspect;
  double frame_aspect;
  float scale_x = 1.f;
  float scale_y = 1.f;

  glClearColor (0, 0, 0, 0);
  glClear (GL_COLOR_BUFFER_BIT);

  if (self->frames == NULL || self->program == 0)
    return TRUE;

  onestep_preview_upload_frame (self);

  view_aspect = (double)MAX (1, gtk_widget_get_width (GTK_WIDGET (area))) /
                MAX (1, gtk_widget_get_height (GTK_WIDGET (area)));
  frame_aspect = (double)self->width / self->height;
  if (frame_aspect > view_aspect)
    scale_y = view_aspect / frame_aspect;
  else
    scale_x = frame_aspect / view_aspect;

  glUseProgram (self->program);
  glUniform2f (self->scale_location, scale_x, scale_y);
  glActiveTexture (GL_TEXTURE0);
  glBindTexture (GL_TEXTURE_2D, self->texture);
  glBindVertexArray (self->vertex_array);
  glDrawArrays (GL_TRIANGLE_STRIP, 0, 4);
  glBindVertexArray (0);
  glUseProgram (0);

  return TRUE;
}

static void
onestep_preview_show_frame (OnestepPreview *self,
                            int             frame)
{
  frame = CLAMP (frame, 0, MAX (0, self->n_frames - 1));
  if (frame == self->frame)
    return;

  self->frame = frame;
  onestep_preview_update_position (self);
  onestep_preview_redraw (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRAME]);
}

static gboolean
onestep_preview_tick (GtkWidget     *widget,
                      GdkFrameClock *frame_clock,
                      gpointer       user_data)
{
  OnestepPreview *self = ONESTEP_PREVIEW (widget);
  gint64 now = gdk_frame_clock_get_frame_time (frame_clock);
  gint64 elapsed_frames;

  if (self->play_start_time == 0)
    {
      self->play_start_time = now;
      self->play_start_frame = self->frame;
    }

  elapsed_frames = (now - self->play_start_time) * self->fps / G_USEC_PER_SEC;
  onestep_preview_show_frame (self, (self->play_start_frame + elapsed_frames) % self->n_frames);

  return G_SOURCE_CONTINUE;
}

static void
onestep_preview_update_playback (OnestepPreview *self)
{
  gboolean should_tick = self->playing && self->n_frames > 1 && self->fps > 0;

  gtk_button_set_icon_name (self->play_button, self->playing ? "media-playback-pause-symbolic"
                                                             : "media-playback-start-symbolic");

  if (should_tick && self->tick_id == 0)
    {
      self->play_start_time = 0;
      self->tick_id = gtk_widget_add_tick_callback (GTK_WIDGET (self), onestep_preview_tick,
                                                    NULL, NULL);
    }
  else if (!should_tick && self->tick_id != 0)
    {
      gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->tick_id);
      self->tick_id = 0;
    }
}

static void
on_previous_clicked (OnestepPreview *self)
{
  onestep_preview_set_playing (self, FALSE);
  onestep_preview_step (self, -1);
}

static void
on_next_clicked (OnestepPreview *self)
{
  onestep_preview_set_playing (self, FALSE);
  onestep_preview_step (self, 1);
}

static void
on_play_clicked (OnestepPreview *self)
{
  onestep_preview_set_playing (self, !self->playing);
}

static void
on_scrubber_value_changed (OnestepPreview *self,
                           GtkRange       *range)
{
  if (self->updating_scrubber)
    return;

  onestep_preview_set_frame (self, (int)(gtk_range_get_value (range) + 0.5));
}

static void
onestep_preview_dispose (GObject *object)
{
  OnestepPreview *self = (OnestepPreview *)object;

  if (self->tick_id != 0)
    {
      gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->tick_id);
      self->tick_id = 0;
    }

  gtk_widget_dispose_template (GTK_WIDGET (self), ONESTEP_TYPE_PREVIEW);
  g_clear_pointer (&self->frames, g_bytes_unref);

  G_OBJECT_CLASS (onestep_preview_parent_class)->dispose (object);
}

static void
onestep_preview_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  OnestepPreview *self = ONESTEP_PREVIEW (object);

  switch (prop_id)
    {
    case PROP_FRAME:
      g_value_set_int (value, self->frame);
      break;

    case PROP_PLAYING:
      g_value_set_boolean (value, self->playing);
      break;

    case PROP_SHOW_CONTROLS:
      g_value_set_boolean (value, gtk_widget_get_visible (self->controls));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_preview_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  OnestepPreview *self = ONESTEP_PREVIEW (object);

  switch (prop_id)
    {
    case PROP_FRAME:
      onestep_preview_set_frame (self, g_value_get_int (value));
      break;

    case PROP_PLAYING:
      onestep_preview_set_playing (self, g_value_get_boolean (value));
      break;

    case PROP_SHOW_CONTROLS:
      gtk_widget_set_visible (self->controls, g_value_get_boolean (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_preview_class_init (OnestepPreviewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_preview_dispose;
  object_class->get_property = onestep_preview_get_property;
  object_class->set_property = onestep_preview_set_property;

  properties[PROP_FRAME] =
    g_param_spec_int ("frame", NULL, NULL, 0, G_MAXINT, 0,
                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_PLAYING] =
    g_param_spec_boolean ("playing", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SHOW_CONTROLS] =
    g_param_spec_boolean ("show-controls", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-preview.ui");
  /* Bound, though never used by name, so that gtk_widget_dispose_template() unparents it. */
  gtk_widget_class_bind_template_child_full (widget_class, "display_overlay", FALSE, 0);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, display_stack);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, gl_area);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, picture);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, controls);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, play_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, scrubber_adjustment);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, position_label);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, source_button);
  gtk_widget_class_bind_template_child (widget_class, OnestepPreview, before_after);
  gtk_widget_class_bind_template_callback (widget_class, on_gl_area_create_context);
  gtk_widget_class_bind_template_callback (widget_class, on_gl_area_realize);
  gtk_widget_class_bind_template_callback (widget_class, on_gl_area_unrealize);
  gtk_widget_class_bind_template_callback (widget_class, on_gl_area_render);
  gtk_widget_class_bind_template_callback (widget_class, on_previous_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_next_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_play_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_scrubber_value_changed);
  gtk_widget_class_set_css_name (widget_class, "onestep-preview");

  g_type_ensure (ONESTEP_TYPE_BEFORE_AFTER);
}

static void
onestep_preview_init (OnestepPreview *self)
{
  self->playing = TRUE;
  self->texture_frame = -1;
  gtk_widget_init_template (GTK_WIDGET (self));
  onestep_preview_update_position (self);
}

GtkWidget *
onestep_preview_new (void)
{
  return g_object_new (ONESTEP_TYPE_PREVIEW, NULL);
}

/* Shows a new clip, keeping the playback position when the frame count allows. */
void
onestep_preview_set_frames (OnestepPreview *self,
                            GBytes         *frames,
                            int             n_frames,
                            int             width,
                            int             height,
                            int             fps)
{
  g_return_if_fail (ONESTEP_IS_PREVIEW (self));
  g_return_if_fail (frames != NULL);
  g_return_if_fail (n_frames > 0 && width > 0 && height > 0);
  g_return_if_fail (g_bytes_get_size (frames) == (gsize)n_frames * width * height * 3);

  g_bytes_ref (frames);
  g_clear_pointer (&self->frames, g_bytes_unref);
  self->frames = frames;
  self->n_frames = n_frames;
  self->width = width;
  self->height = height;
  self->fps = MAX (1, fps);
  self->frames_serial++;

  if (self->frame >= n_frames)
    onestep_preview_show_frame (self, 0);

  onestep_preview_update_position (self);
  onestep_preview_update_playback (self);
  onestep_preview_redraw (self);
}

/* The source image to compare the frames with, at their size; NULL while the
 * preview shows the source itself, or there is none. */
void
onestep_preview_set_source (OnestepPreview *self,
                            GdkTexture     *source)
{
  g_return_if_fail (ONESTEP_IS_PREVIEW (self));
  g_return_if_fail (source == NULL || GDK_IS_TEXTURE (source));

  onestep_before_after_set_before (self->before_after, source);
  gtk_widget_set_sensitive (GTK_WIDGET (self->source_button), source != NULL);
  if (source == NULL)
    gtk_toggle_button_set_active (self->source_button, FALSE);
}

int
onestep_preview_get_n_frames (OnestepPreview *self)
{
  g_return_val_if_fail (ONESTEP_IS_PREVIEW (self), 0);
  return self->n_frames;
}

int
onestep_preview_get_frame (OnestepPreview *self)
{
  g_return_val_if_fail (ONESTEP_IS_PREVIEW (self), 0);
  return self->frame;
}

void
onestep_preview_set_frame (OnestepPreview *self,
                           int             frame)
{
  g_return_if_fail (ONESTEP_IS_PREVIEW (self));

  /* A seek restarts the playback clock from there. */
  self->play_start_time = 0;
  onestep_preview_show_frame (self, frame);
}

/* Moves by delta frames, wrapping around the loop. */
void
onestep_preview_step (OnestepPreview *self,
                      int             delta)
{
  g_return_if_fail (ONESTEP_IS_PREVIEW (self));

  if (self->n_frames == 0)
    return;

  onestep_preview_set_frame (self, ((self->frame + delta) % self->n_frames + self->n_frames) %
                                   self->n_frames);
}

gboolean
onestep_preview_get_playing (OnestepPreview *self)
{
  g_return_val_if_fail (ONESTEP_IS_PREVIEW (self), FALSE);
  return self->playing;
}

void
onestep_preview_set_playing (OnestepPreview *self,
                             gboolean        playing)
{
  g_return_if_fail (ONESTEP_IS_PREVIEW (self));

  playing = !!playing;
  if (playing == self->playing)
    return;

  self->playing = playing;
  onestep_preview_update_playback (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PLAYING]);
}

/* Whether frames are drawn with OpenGL rather than the picture fallback. */
gboolean
onestep_preview_get_uses_gl (OnestepPreview *self)
{
  g_return_val_if_fail (ONESTEP_IS_PREVIEW (self), FALSE);
  return self->uses_gl;
}
