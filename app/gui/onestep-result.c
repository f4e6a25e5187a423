/* onestep-result.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-image.h"
#include "onestep-result.h"

struct _OnestepResult
{
  GObject          parent_instance;

  GBytes          *frames;
  int              n_frames;
  int              width;
  int              height;
  OnestepParams   *params;
  onestep_sampler  sampler;
  int              nfe;
  double           seconds;
  GdkTexture      *source;
};

G_DEFINE_FINAL_TYPE (OnestepResult, onestep_result, G_TYPE_OBJECT)

static void
onestep_result_finalize (GObject *object)
{
  OnestepResult *self = (OnestepResult *)object;

  g_clear_pointer (&self->frames, g_bytes_unref);
  g_clear_pointer (&self->params, onestep_params_free);
  g_clear_object (&self->source);

  G_OBJECT_CLASS (onestep_result_parent_class)->finalize (object);
}

static void
onestep_result_class_init (OnestepResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = onestep_result_finalize;
}

static void
onestep_result_init (OnestepResult *self)
{
}

OnestepResult *
onestep_result_new (GBytes              *frames,
                    int                  n_frames,
                    int                  width,
                    int                  height,
                    const OnestepParams *params,
                    onestep_sampler      sampler,
                    int                  nfe,
                    double               seconds)
{
  OnestepResult *self;

  g_return_val_if_fail (frames != NULL, NULL);
  g_return_val_if_fail (n_frames > 0 && width > 0 && height > 0, NULL);
  g_return_val_if_fail (g_bytes_get_size (frames) == (gsize)n_frames * width * height * 3, NULL);
  g_return_val_if_fail (params != NULL, NULL);

  self = g_object_new (ONESTEP_TYPE_RESULT, NULL);
  self->frames = g_bytes_ref (frames);
  self->n_frames = n_frames;
  self->width = width;
  self->height = height;
  self->params = onestep_params_copy (params);
  self->sampler = sampler;
  self->nfe = nfe;
  self->seconds = seconds;

  return self;
}

GBytes *
onestep_result_get_frames (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), NULL);
  return self->frames;
}

int
onestep_result_get_n_frames (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), 0);
  return self->n_frames;
}

int
onestep_result_get_width (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), 0);
  return self->width;
}

int
onestep_result_get_height (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), 0);
  return self->height;
}

const OnestepParams *
onestep_result_get_params (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), NULL);
  return self->params;
}

onestep_sampler
onestep_result_get_sampler (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), ONESTEP_SAMPLER_AUTO);
  return self->sampler;
}

int
onestep_result_get_nfe (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), 0);
  return self->nfe;
}

double
onestep_result_get_seconds (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), 0);
  return self->seconds;
}

/* The image the clip was generated from, for restoring it from the history. */
GdkTexture *
onestep_result_get_source (OnestepResult *self)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), NULL);
  return self->source;
}

void
onestep_result_set_source (OnestepResult *self,
                           GdkTexture    *source)
{
  g_return_if_fail (ONESTEP_IS_RESULT (self));
  g_set_object (&self->source, source);
}

GdkTexture *
onestep_result_create_texture (OnestepResult *self,
                               int            frame)
{
  g_return_val_if_fail (ONESTEP_IS_RESULT (self), NULL);
  g_return_val_if_fail (frame >= 0 && frame < self->n_frames, NULL);

  return onestep_image_frame_texture (self->frames, frame, self->width, self->height);
}

static const char *
sampler_label (onestep_sampler sampler)
{
  switch (sampler)
    {
    case ONESTEP_SAMPLER_EULER:
      return _("Euler");
    case ONESTEP_SAMPLER_CM:
      return _("Consistency multistep");
    case ONESTEP_SAMPLER_TTS:
      return _("Time travel");
    case ONESTEP_SAMPLER_AUTO:
    default:
      return _("Automatic");
    }
}

/* A one-line description: steps, sampler, UNet evaluations and time. */
char *
onestep_result_dup_summary (OnestepResult *self)
{
  g_autofree char *steps = NULL;
  g_autofree char *nfe = NULL;

  g_return_val_if_fail (ONESTEP_IS_RESULT (self), NULL);

  steps = g_strdup_printf (ngettext ("%d step", "%d steps", self->params->steps),
                           self->params->steps);
  nfe = g_strdup_printf (ngettext ("%d UNet evaluation", "%d UNet evaluations", self->nfe),
                         self->nfe);

  /* Translators: steps · sampler · UNet evaluations · seconds, e.g.
   * "2 steps · Euler · 4 UNet evaluations · 1.3 s" */
  return g_strdup_printf (_("%s · %s · %s · %.1f s"), steps, sampler_label (self->sampler),
                          nfe, self->seconds);
}
