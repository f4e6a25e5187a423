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

/* The crop position of onestep_image_loader_fit_at() that keeps the middle. */
#define ONESTEP_CROP_CENTRE 0.5

/* Scales (covering) and centre-crops to width x height; the image itself when it
 * already has that size; NULL when out of memory. Safe in any thread. */
GdkPixbuf *onestep_image_loader_fit  (GdkPixbuf     *image,
                                      int            width,
                                      int            height);

/* As onestep_image_loader_fit(), with the crop window placed along the side that is
 * cut: 0 keeps the left or top edge, 1 the right or bottom edge, ONESTEP_CROP_CENTRE
 * the middle. Portrait photos fitted to a landscape size keep the faces at their top
 * this way, rather than losing them to a centred crop. */
GdkPixbuf *onestep_image_loader_fit_at (GdkPixbuf   *image,
                                        int          width,
                                        int          height,
                                        double       crop_position);

G_END_DECLS
