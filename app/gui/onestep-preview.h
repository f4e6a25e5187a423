/* onestep-preview.h: plays a clip in a loop, drawn with OpenGL.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define ONESTEP_TYPE_PREVIEW (onestep_preview_get_type ())

G_DECLARE_FINAL_TYPE (OnestepPreview, onestep_preview, ONESTEP, PREVIEW, GtkWidget)

GtkWidget *onestep_preview_new          (void);
void       onestep_preview_set_frames   (OnestepPreview *self,
                                         GBytes         *frames,
                                         int             n_frames,
                                         int             width,
                                         int             height,
                                         int             fps);
void       onestep_preview_set_source   (OnestepPreview *self,
                                         GdkTexture     *source);
int        onestep_preview_get_n_frames (OnestepPreview *self);
int        onestep_preview_get_frame    (OnestepPreview *self);
void       onestep_preview_set_frame    (OnestepPreview *self,
                                         int             frame);
void       onestep_preview_step         (OnestepPreview *self,
                                         int             delta);
gboolean   onestep_preview_get_playing  (OnestepPreview *self);
void       onestep_preview_set_playing  (OnestepPreview *self,
                                         gboolean        playing);
gboolean   onestep_preview_get_uses_gl  (OnestepPreview *self);

G_END_DECLS
