/* onestep-image.h: turning dropped images into the engine's RGB8 input, and
 * the engine's frames back into textures.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

GBytes     *onestep_image_rgb_from_texture (GdkTexture *texture);
GBytes     *onestep_image_fit              (GBytes     *rgb,
                                            int         width,
                                            int         height,
                                            int         target_width,
                                            int         target_height,
                                            double      crop_position);
GdkTexture *onestep_image_frame_texture    (GBytes     *frames,
                                            int         frame,
                                            int         width,
                                            int         height);

G_END_DECLS
