/* onestep-image-loader.h: the conditioning image as the app and onestep-cli both read
 * it, and its fit to the generation size, so one photo gives one clip. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* Loads an image file as 8-bit RGB: the EXIF orientation applied, alpha dropped (as
 * the reference pipeline's PIL convert("RGB") does). Safe in any thread. */
GdkPixbuf *onestep_image_loader_load (GFile         *file,
                                      GCancellable  *cancellable,
                                      GError       **error);

/* Scales (covering) and centre-crops to width x height; the image itself when it
 * already has that size; NULL when out of memory. Safe in any thread. */
GdkPixbuf *onestep_image_loader_fit  (GdkPixbuf     *image,
                                      int            width,
                                      int            height);

G_END_DECLS
