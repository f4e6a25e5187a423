/* onestep-cli-image.c: the engine's view of an image. */
#include "onestep-cli.h"

onestep_image
onestep_cli_image_view (GdkPixbuf *image)
{
  onestep_image view = {
    .width = gdk_pixbuf_get_width (image),
    .height = gdk_pixbuf_get_height (image),
    .stride = gdk_pixbuf_get_rowstride (image),
    .rgb = gdk_pixbuf_read_pixels (image),
  };
  return view;
}
