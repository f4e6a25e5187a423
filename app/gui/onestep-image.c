/* onestep-image.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include <gdk-pixbuf/gdk-pixbuf.h>

#include "onestep-image.h"
#include "onestep-image-loader.h"

/* Packed RGB8 of the texture; transparent areas become white, as on a page. */
GBytes *
onestep_image_rgb_from_texture (GdkTexture *texture)
{
  int width;
  int height;
  gsize stride;
  g_autofree guint8 *argb = NULL;
  guint8 *rgb;

  g_return_val_if_fail (GDK_IS_TEXTURE (texture), NULL);

  width = gdk_texture_get_width (texture);
  height = gdk_texture_get_height (texture);
  stride = (gsize)width * 4;
  argb = g_malloc (stride * height);
  rgb = g_malloc ((gsize)width * height * 3);

  /* Premultiplied CAIRO_FORMAT_ARGB32, in native byte order. */
  gdk_texture_download (texture, argb, stride);

  for (gsize i = 0; i < (gsize)width * height; i++)
    {
      const guint32 pixel = ((const guint32 *)argb)[i];
      const guint8 transparency = 255 - (pixel >> 24);

      rgb[3 * i + 0] = ((pixel >> 16) & 0xff) + transparency;
      rgb[3 * i + 1] = ((pixel >> 8) & 0xff) + transparency;
      rgb[3 * i + 2] = (pixel & 0xff) + transparency;
    }

  return g_bytes_new_take (rgb, (gsize)width * height * 3);
}

static void
free_pixels (guchar   *pixels,
             gpointer  user_data)
{
  g_bytes_unref (user_data);
}

/* The image fitted to the target size as onestep-cli fits it: scaled to cover,
 * then cropped at crop_position (see onestep_image_loader_fit_at()), so the subject
 * is not stretched. Safe in any thread. */
GBytes *
onestep_image_fit (GBytes *rgb,
                   int     width,
                   int     height,
                   int     target_width,
                   int     target_height,
                   double  crop_position)
{
  g_autoptr(GdkPixbuf) source = NULL;
  g_autoptr(GdkPixbuf) fitted = NULL;
  const guint8 *fitted_pixels;
  guint8 *packed;
  int rowstride;

  g_return_val_if_fail (rgb != NULL, NULL);
  g_return_val_if_fail (g_bytes_get_size (rgb) == (gsize)width * height * 3, NULL);
  g_return_val_if_fail (target_width > 0 && target_height > 0, NULL);

  if (width == target_width && height == target_height)
    return g_bytes_ref (rgb);

  source = gdk_pixbuf_new_from_data ((const guchar *)g_bytes_get_data (rgb, NULL), GDK_COLORSPACE_RGB,
                                     FALSE, 8, width, height, width * 3,
                                     free_pixels, g_bytes_ref (rgb));
  fitted = onestep_image_loader_fit_at (source, target_width, target_height, crop_position);
  if (fitted == NULL)
    return NULL;

  fitted_pixels = gdk_pixbuf_read_pixels (fitted);
  rowstride = gdk_pixbuf_get_rowstride (fitted);
  packed = g_malloc ((gsize)target_width * target_height * 3);
  for (int y = 0; y < target_height; y++)
    memcpy (packed + (gsize)y * target_width * 3, fitted_pixels + (gsize)y * rowstride,
            (gsize)target_width * 3);

  return g_bytes_new_take (packed, (gsize)target_width * target_height * 3);
}

/* Frame number frame of packed RGB8 frames, sharing their memory. */
GdkTexture *
onestep_image_frame_texture (GBytes *frames,
                             int     frame,
                             int     width,
                             int     height)
{
  gsize frame_size = (gsize)width * height * 3;
  g_autoptr(GBytes) pixels = g_bytes_new_from_bytes (frames, frame * frame_size, frame_size);

  return gdk_memory_texture_new (width, height, GDK_MEMORY_R8G8B8, pixels, (gsize)width * 3);
}
