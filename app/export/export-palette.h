/* export-palette.h: an optimal palette for a clip (median cut) and mapping pixels to it,
 * so that GIFs get the clip's own colours rather than a fixed rgb8 cube. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  guint32 argb[256];  /* 0xAARRGGBB in native byte order, as libavutil's PAL8 wants */
  int     n_colors;
} OnestepPalette;

/* Builds at most max_colors (2..256) colours from pixel_count RGB8 pixels. */
void _onestep_palette_build (OnestepPalette *palette,
                             const guint8   *rgb,
                             gsize           pixel_count,
                             int             max_colors);

typedef struct _OnestepPaletteMap OnestepPaletteMap;

/* Maps colours to their nearest palette entry, remembering earlier answers. */
OnestepPaletteMap *_onestep_palette_map_new   (const OnestepPalette *palette);
void               _onestep_palette_map_free  (OnestepPaletteMap    *map);
guint8             _onestep_palette_map_index (OnestepPaletteMap    *map,
                                               const guint8         *rgb_pixel);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OnestepPaletteMap, _onestep_palette_map_free)

G_END_DECLS
