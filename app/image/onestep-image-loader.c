/* onestep-image-loader.c: reading and fitting the conditioning image. */
#include <math.h>

#include "onestep-image-loader.h"

GdkPixbuf *
onestep_image_loader_load (GFile         *file,
                           GCancellable  *cancellable,
                           GError       **error)
{
  g_autofree char *name = g_file_get_parse_name (file);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GFileInputStream) stream = g_file_read (file, cancellable, &local_error);
  g_autoptr(GdkPixbuf) loaded = NULL;
  g_autoptr(GdkPixbuf) oriented = NULL;

  if (stream != NULL)
    loaded = gdk_pixbuf_new_from_stream (G_INPUT_STREAM (stream), cancellable, &local_error);
  if (loaded == NULL)
    {
      g_set_error (error, local_error->domain, local_error->code,
                   "cannot read image %s: %s", name, local_error->message);
      return NULL;
    }

  oriented = gdk_pixbuf_apply_embedded_orientation (loaded);
  if (gdk_pixbuf_get_colorspace (oriented) != GDK_COLORSPACE_RGB ||
      gdk_pixbuf_get_bits_per_sample (oriented) != 8)
    {
      g_set_error (error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_UNKNOWN_TYPE,
                   "image %s is not 8-bit RGB", name);
      return NULL;
    }

  /* The pipeline converts to RGB by dropping alpha, as PIL's convert("RGB") does. */
  if (gdk_pixbuf_get_has_alpha (oriented))
    {
      int width = gdk_pixbuf_get_width (oriented);
      int height = gdk_pixbuf_get_height (oriented);
      GdkPixbuf *rgb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, height);
      const guint8 *src = gdk_pixbuf_read_pixels (oriented);
      guint8 *dst = gdk_pixbuf_get_pixels (rgb);
      int src_stride = gdk_pixbuf_get_rowstride (oriented);
      int dst_stride = gdk_pixbuf_get_rowstride (rgb);

      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
          for (int c = 0; c < 3; c++)
            dst[y * dst_stride + 3 * x + c] = src[y * src_stride + 4 * x + c];
      return rgb;
    }

  return g_steal_pointer (&oriented);
}

/* Where the crop starts along a side with overflow pixels to cut. The centre rounds
 * down, as the crop always did, so centred clips stay the same. */
static int
crop_offset (int    overflow,
             double crop_position)
{
  if (crop_position == ONESTEP_CROP_CENTRE)
    return overflow / 2;
  return (int) lround (CLAMP (crop_position, 0.0, 1.0) * overflow);
}

GdkPixbuf *
onestep_image_loader_fit (GdkPixbuf *image,
                          int        width,
                          int        height)
{
  return onestep_image_loader_fit_at (image, width, height, ONESTEP_CROP_CENTRE);
}

GdkPixbuf *
onestep_image_loader_fit_at (GdkPixbuf *image,
                             int        width,
                             int        height,
                             double     crop_position)
{
  int src_width = gdk_pixbuf_get_width (image);
  int src_height = gdk_pixbuf_get_height (image);
  double scale;
  int scaled_width, scaled_height;
  g_autoptr(GdkPixbuf) scaled = NULL;
  GdkPixbuf *cropped;

  if (src_width == width && src_height == height)
    return g_object_ref (image);

  scale = MAX ((double) width / src_width, (double) height / src_height);
  scaled_width = MAX (width, (int) ceil (src_width * scale - 1e-9));
  scaled_height = MAX (height, (int) ceil (src_height * scale - 1e-9));
  /* Hyper filtering avoids aliasing when shrinking; bilinear is enough to enlarge. */
  scaled = gdk_pixbuf_scale_simple (image, scaled_width, scaled_height,
                                    scale < 1.0 ? GDK_INTERP_HYPER : GDK_INTERP_BILINEAR);
  if (scaled == NULL)
    return NULL;

  cropped = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, height);
  if (cropped == NULL)
    return NULL;
  gdk_pixbuf_copy_area (scaled, crop_offset (scaled_width - width, crop_position),
                        crop_offset (scaled_height - height, crop_position),
                        width, height, cropped, 0, 0);
  return cropped;
}
