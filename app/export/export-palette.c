/* export-palette.c: median-cut palette over a colour histogram and nearest-colour mapping. */
#include "export-palette.h"

#include <string.h>

/* The histogram keeps 5 bits per channel; each bin also sums the exact colours so
 * that palette entries are the true mean of the pixels they stand for. */
#define HIST_BITS 5
#define HIST_SIZE (1 << (3 * HIST_BITS))

typedef struct {
  guint64 count;
  guint64 sum[3];
} Bin;

typedef struct {
  int start;  /* range in the array of occupied bin indices */
  int end;
  int axis;   /* channel with the widest spread */
  int spread;
  guint64 count;
} Box;

static inline int
bin_channel (int bin,
             int axis)
{
  return (bin >> (HIST_BITS * (2 - axis))) & ((1 << HIST_BITS) - 1);
}

static void
box_measure (Box        *box,
             const int  *occupied,
             const Bin  *bins)
{
  int lo[3] = { G_MAXINT, G_MAXINT, G_MAXINT };
  int hi[3] = { -1, -1, -1 };

  box->count = 0;
  for (int i = box->start; i < box->end; i++)
    {
      box->count += bins[occupied[i]].count;
      for (int c = 0; c < 3; c++)
        {
          int v = bin_channel (occupied[i], c);
          lo[c] = MIN (lo[c], v);
          hi[c] = MAX (hi[c], v);
        }
    }

  box->axis = 0;
  for (int c = 1; c < 3; c++)
    if (hi[c] - lo[c] > hi[box->axis] - lo[box->axis])
      box->axis = c;
  box->spread = hi[box->axis] - lo[box->axis];
}

static int
compare_on_axis (gconstpointer a,
                 gconstpointer b,
                 gpointer      axis)
{
  return bin_channel (*(const int *) a, GPOINTER_TO_INT (axis))
         - bin_channel (*(const int *) b, GPOINTER_TO_INT (axis));
}

/* The box whose split helps most: many pixels over a wide range of colour. */
static int
pick_box_to_split (const Box *boxes,
                   int        n_boxes)
{
  int best = -1;
  guint64 best_score = 0;

  for (int i = 0; i < n_boxes; i++)
    {
      guint64 score = boxes[i].count * (guint64) boxes[i].spread;

      if (boxes[i].end - boxes[i].start >= 2 && score > best_score)
        {
          best = i;
          best_score = score;
        }
    }
  return best;
}

/* Splits box at the pixel-weighted median along its widest channel. */
static void
split_box (Box       *box,
           Box       *second,
           int       *occupied,
           const Bin *bins)
{
  guint64 half = box->count / 2;
  guint64 running = 0;
  int split = box->start + 1;

  g_qsort_with_data (occupied + box->start, box->end - box->start, sizeof (int),
                     compare_on_axis, GINT_TO_POINTER (box->axis));

  for (int i = box->start; i < box->end - 1; i++)
    {
      running += bins[occupied[i]].count;
      split = i + 1;
      if (running >= half)
        break;
    }

  second->start = split;
  second->end = box->end;
  box->end = split;
  box_measure (box, occupied, bins);
  box_measure (second, occupied, bins);
}

void
_onestep_palette_build (OnestepPalette *palette,
                        const guint8   *rgb,
                        gsize           pixel_count,
                        int             max_colors)
{
  g_autofree Bin *bins = g_new0 (Bin, HIST_SIZE);
  g_autofree int *occupied = NULL;
  Box boxes[256];
  int n_occupied = 0;
  int n_boxes = 1;

  g_return_if_fail (max_colors >= 2 && max_colors <= 256);

  for (gsize p = 0; p < pixel_count; p++)
    {
      const guint8 *px = rgb + p * 3;
      int bin = ((px[0] >> (8 - HIST_BITS)) << (2 * HIST_BITS))
                | ((px[1] >> (8 - HIST_BITS)) << HIST_BITS)
                | (px[2] >> (8 - HIST_BITS));

      bins[bin].count++;
      for (int c = 0; c < 3; c++)
        bins[bin].sum[c] += px[c];
    }

  occupied = g_new (int, HIST_SIZE);
  for (int b = 0; b < HIST_SIZE; b++)
    if (bins[b].count > 0)
      occupied[n_occupied++] = b;

  boxes[0].start = 0;
  boxes[0].end = n_occupied;
  box_measure (&boxes[0], occupied, bins);

  while (n_boxes < max_colors)
    {
      int i = pick_box_to_split (boxes, n_boxes);

      if (i < 0)
        break;
      split_box (&boxes[i], &boxes[n_boxes], occupied, bins);
      n_boxes++;
    }

  memset (palette, 0, sizeof *palette);
  for (int i = 0; i < n_boxes && n_occupied > 0; i++)
    {
      guint64 sum[3] = { 0, 0, 0 };
      guint32 mean[3];

      for (int j = boxes[i].start; j < boxes[i].end; j++)
        for (int c = 0; c < 3; c++)
          sum[c] += bins[occupied[j]].sum[c];
      for (int c = 0; c < 3; c++)
        mean[c] = (guint32) ((sum[c] + boxes[i].count / 2) / boxes[i].count);
      palette->argb[i] = 0xff000000u | mean[0] << 16 | mean[1] << 8 | mean[2];
    }
  palette->n_colors = n_occupied > 0 ? n_boxes : 1;
  if (n_occupied == 0)
    palette->argb[0] = 0xff000000u;
}

/* Answers are remembered per colour at 6 bits per channel. */
#define CACHE_BITS 6

struct _OnestepPaletteMap {
  OnestepPalette palette;
  gint16 cache[1 << (3 * CACHE_BITS)];
};

OnestepPaletteMap *
_onestep_palette_map_new (const OnestepPalette *palette)
{
  OnestepPaletteMap *map = g_new (OnestepPaletteMap, 1);

  map->palette = *palette;
  memset (map->cache, 0xff, sizeof map->cache);  /* -1: not looked up yet */
  return map;
}

void
_onestep_palette_map_free (OnestepPaletteMap *map)
{
  g_free (map);
}

static int
nearest_entry (const OnestepPalette *palette,
               const guint8         *px)
{
  int best = 0;
  int best_distance = G_MAXINT;

  for (int i = 0; i < palette->n_colors; i++)
    {
      int dr = (int) ((palette->argb[i] >> 16) & 0xff) - px[0];
      int dg = (int) ((palette->argb[i] >> 8) & 0xff) - px[1];
      int db = (int) (palette->argb[i] & 0xff) - px[2];
      int distance = dr * dr + dg * dg + db * db;

      if (distance < best_distance)
        {
          best = i;
          best_distance = distance;
        }
    }
  return best;
}

guint8
_onestep_palette_map_index (OnestepPaletteMap *map,
                            const guint8      *rgb_pixel)
{
  int key = ((rgb_pixel[0] >> (8 - CACHE_BITS)) << (2 * CACHE_BITS))
            | ((rgb_pixel[1] >> (8 - CACHE_BITS)) << CACHE_BITS)
            | (rgb_pixel[2] >> (8 - CACHE_BITS));

  if (map->cache[key] < 0)
    map->cache[key] = (gint16) nearest_entry (&map->palette, rgb_pixel);
  return (guint8) map->cache[key];
}
