/* test-export.c: round trips through every export format, decoded back with libav,
 * plus cancellation and failures that must leave no file behind. */
#include "decode.h"
#include "export.h"
#include "export-sequence.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libavutil/log.h>
#include <string.h>

#define FRAMES 25
#define WIDTH 64
#define HEIGHT 48
#define FPS 25

/* One pixel of frame t at (x, y): its three RGB bytes. */
typedef void (*PixelFunc) (int     t,
                           int     x,
                           int     y,
                           int     width,
                           int     height,
                           guint8 *rgb);

static guint8 *
make_frames (int       frames,
             int       width,
             int       height,
             PixelFunc pixel)
{
  guint8 *rgb = g_malloc ((gsize) frames * width * height * 3);
  guint8 *p = rgb;

  for (int t = 0; t < frames; t++)
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++, p += 3)
        pixel (t, x, y, width, height, p);
  return rgb;
}

/* A saw-tooth gradient moving right by 4 pixels a frame (so neighbouring frames differ
 * clearly) over a vertical one. */
static void
moving_gradient (int     t,
                 int     x,
                 int     y,
                 int     width,
                 int     height,
                 guint8 *rgb)
{
  rgb[0] = (guint8) (((x + 4 * t) * 8) & 0xff);
  rgb[1] = (guint8) (y * 255 / MAX (height - 1, 1));
  rgb[2] = 96;
}

/* Smooth skin-like tones that fall between the levels of a fixed colour cube. */
static void
narrow_tones (int     t,
              int     x,
              int     y,
              int     width,
              int     height,
              guint8 *rgb)
{
  rgb[0] = (guint8) (196 + x * 40 / width);
  rgb[1] = (guint8) (140 + y * 40 / height);
  rgb[2] = (guint8) (110 + t);
}

static const OnestepClipSettings clip_settings = {
  .model = "/models/tiny-a",
  .unet_file = NULL,
  .sampler = "tts",
  .seed = 42,
  .steps = 1,
  .frames = 25,
  .width = 64,
  .height = 48,
  .fps = 7,
  .motion_bucket_id = 127,
  .noise_aug_strength = 0.02f,
  .crop_position = 0.25,
};

typedef struct {
  char         *dir;
  guint8       *rgb;
} Fixture;

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("onestep-export-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->rgb = make_frames (FRAMES, WIDTH, HEIGHT, moving_gradient);
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          remove_tree (child);
        }
      g_rmdir (path);
    }
  else
    {
      g_unlink (path);
    }
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  remove_tree (fixture->dir);
  g_free (fixture->dir);
  g_free (fixture->rgb);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The names in dir, sorted and joined by spaces: what an export left behind. */
static char *
list_dir (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, (gpointer) name);
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

static double
mean_abs_error (const guint8 *decoded,
                int           decoded_width,
                const guint8 *source,
                int           width,
                int           height)
{
  guint64 total = 0;

  for (int y = 0; y < height; y++)
    for (int x = 0; x < width * 3; x++)
      total += ABS ((int) decoded[(gsize) y * decoded_width * 3 + x] - source[(gsize) y * width * 3 + x]);
  return (double) total / ((double) width * height * 3);
}

/* Every decoded frame against the source frame the sequence put there. */
static double
clip_error (const DecodedClip *clip,
            const guint8      *rgb,
            int                frames,
            int                width,
            int                height,
            gboolean           ping_pong)
{
  int length;
  g_autofree int *sequence = _onestep_export_sequence_new (frames, ping_pong, 1, &length);
  gsize decoded_size = (gsize) clip->width * clip->height * 3;
  gsize source_size = (gsize) width * height * 3;
  double worst = 0;

  for (int i = 0; i < clip->frames; i++)
    worst = MAX (worst, mean_abs_error (clip->rgb + decoded_size * i, clip->width,
                                        rgb + source_size * sequence[i % length], width, height));
  return worst;
}

static void
assert_settings_json (const char *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *object;

  g_assert_nonnull (json);
  json_parser_load_from_data (parser, json, -1, &error);
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpuint (json_object_get_size (object), ==, 12);
  g_assert_cmpstr (json_object_get_string_member (object, "model"), ==, "/models/tiny-a");
  g_assert_true (json_object_get_null_member (object, "unet_file"));
  g_assert_cmpstr (json_object_get_string_member (object, "sampler"), ==, "tts");
  g_assert_cmpint (json_object_get_int_member (object, "seed"), ==, 42);
  g_assert_cmpint (json_object_get_int_member (object, "steps"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (object, "frames"), ==, 25);
  g_assert_cmpint (json_object_get_int_member (object, "width"), ==, 64);
  g_assert_cmpint (json_object_get_int_member (object, "height"), ==, 48);
  g_assert_cmpint (json_object_get_int_member (object, "fps"), ==, 7);
  g_assert_cmpint (json_object_get_int_member (object, "motion_bucket_id"), ==, 127);
  g_assert_cmpfloat (json_object_get_double_member (object, "noise_aug_strength"), ==, 0.02);
  g_assert_cmpfloat (json_object_get_double_member (object, "crop_position"), ==, 0.25);
}

static char *
export_clip (Fixture             *fixture,
             const char          *name,
             OnestepExportOptions *options,
             int                  width,
             int                  height,
             const guint8        *rgb)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (fixture->dir, name, NULL);

  options->fps = FPS;
  options->settings = &clip_settings;
  onestep_export_write (path, rgb ? rgb : fixture->rgb, FRAMES, width, height,
                        options, NULL, &error);
  g_assert_no_error (error);
  return path;
}

/* Exports as export_clip() does and decodes the file back. */
static DecodedClip *
export_and_decode (Fixture              *fixture,
                   const char           *name,
                   OnestepExportOptions *options,
                   int                   width,
                   int                   height,
                   const guint8         *rgb)
{
  g_autofree char *path = export_clip (fixture, name, options, width, height, rgb);
  g_autoptr(GError) error = NULL;
  DecodedClip *clip = decoded_clip_read (path, &error);

  g_assert_no_error (error);
  return clip;
}

typedef struct {
  const char *name;
  OnestepExportFormat format;
  const char *codec;
  double max_error;  /* per channel, 0..255, worst frame */
} RoundTrip;

static const RoundTrip round_trips[] = {
  { "clip.mp4", ONESTEP_EXPORT_FORMAT_MP4, "h264", 6.0 },
  { "clip.webm", ONESTEP_EXPORT_FORMAT_WEBM, "vp9", 6.0 },
  { "clip.gif", ONESTEP_EXPORT_FORMAT_GIF, "gif", 4.0 },
};

static void
test_round_trip (Fixture       *fixture,
                 gconstpointer  data)
{
  const RoundTrip *trip = data;
  OnestepExportOptions options;
  OnestepExportFormat format;
  g_autofree char *listing = NULL;
  g_autoptr(DecodedClip) clip = NULL;
  double worst;

  g_assert_true (onestep_export_format_for_path (trip->name, &format, NULL));
  g_assert_cmpint (format, ==, trip->format);
  g_assert_true (onestep_export_format_available (trip->format));
  onestep_export_options_init (&options, trip->format);
  clip = export_and_decode (fixture, trip->name, &options, WIDTH, HEIGHT, NULL);
  g_assert_cmpstr (clip->codec, ==, trip->codec);
  g_assert_cmpint (clip->frames, ==, FRAMES);
  g_assert_cmpint (clip->width, ==, WIDTH);
  g_assert_cmpint (clip->height, ==, HEIGHT);
  g_assert_cmpfloat_with_epsilon (clip->frame_seconds, 1.0 / FPS, 1e-6);
  assert_settings_json (clip->comment);
  worst = clip_error (clip, fixture->rgb, FRAMES, WIDTH, HEIGHT, FALSE);
  g_test_message ("worst frame error %.2f (neighbouring source frames differ by %.2f)", worst,
                  mean_abs_error (fixture->rgb, WIDTH, fixture->rgb + (gsize) WIDTH * HEIGHT * 3,
                                  WIDTH, HEIGHT));
  g_assert_cmpfloat (worst, <, trip->max_error);

  listing = list_dir (fixture->dir);
  g_assert_cmpstr (listing, ==, trip->name);
}

/* Offsets of the top-level boxes named a and b in an MP4 file. */
static void
find_boxes (const char *path,
            const char *a,
            gint64     *offset_a,
            const char *b,
            gint64     *offset_b)
{
  g_autofree char *contents = NULL;
  gsize length;
  gsize offset = 0;

  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  *offset_a = *offset_b = -1;
  while (offset + 8 <= length)
    {
      const guint8 *box = (const guint8 *) contents + offset;
      guint64 size = (guint64) box[0] << 24 | box[1] << 16 | box[2] << 8 | box[3];

      if (memcmp (box + 4, a, 4) == 0)
        *offset_a = offset;
      if (memcmp (box + 4, b, 4) == 0)
        *offset_b = offset;
      if (size == 1 && offset + 16 <= length)
        size = GUINT64_FROM_BE (*(const guint64 *) (box + 8));
      else if (size == 0)
        size = length - offset;
      g_assert_cmpuint (size, >=, 8);
      offset += size;
    }
}

static void
test_mp4_faststart (Fixture       *fixture,
                    gconstpointer  data)
{
  OnestepExportOptions options;
  g_autofree char *path = NULL;
  gint64 moov, mdat;

  onestep_export_options_init (&options, ONESTEP_EXPORT_FORMAT_MP4);
  path = export_clip (fixture, "clip.mp4", &options, WIDTH, HEIGHT, NULL);
  find_boxes (path, "moov", &moov, "mdat", &mdat);
  g_assert_cmpint (moov, >, 0);
  g_assert_cmpint (mdat, >, moov);
}

/* 25 frames forward then 23 back: 0..24, 23..1. */
static void
test_ping_pong (Fixture       *fixture,
                gconstpointer  data)
{
  const RoundTrip *trip = data;
  OnestepExportOptions options;
  g_autoptr(DecodedClip) clip = NULL;

  onestep_export_options_init (&options, trip->format);
  options.ping_pong = TRUE;
  clip = export_and_decode (fixture, trip->name, &options, WIDTH, HEIGHT, NULL);
  g_assert_cmpint (clip->frames, ==, 2 * FRAMES - 2);
  g_assert_cmpfloat (clip_error (clip, fixture->rgb, FRAMES, WIDTH, HEIGHT, TRUE), <, trip->max_error);
}

static void
test_sequence (void)
{
  static const int expected[] = { 0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1 };
  g_autofree int *forward = NULL;
  g_autofree int *ping_pong = NULL;
  g_autofree int *two = NULL;
  int length;

  forward = _onestep_export_sequence_new (3, FALSE, 1, &length);
  g_assert_cmpint (length, ==, 3);
  g_assert_cmpint (forward[2], ==, 2);

  ping_pong = _onestep_export_sequence_new (5, TRUE, 2, &length);
  g_assert_cmpmem (ping_pong, length * sizeof (int), expected, sizeof expected);

  /* Nothing lies between the ends of a two-frame clip. */
  two = _onestep_export_sequence_new (2, TRUE, 1, &length);
  g_assert_cmpint (length, ==, 2);
}

/* MP4 and WebM cannot loop, so a count of plays is written out. */
static void
test_webm_loop_count (Fixture       *fixture,
                      gconstpointer  data)
{
  OnestepExportOptions options;
  g_autoptr(DecodedClip) clip = NULL;

  onestep_export_options_init (&options, ONESTEP_EXPORT_FORMAT_WEBM);
  options.loop_count = 2;
  clip = export_and_decode (fixture, "twice.webm", &options, WIDTH, HEIGHT, NULL);
  g_assert_cmpint (clip->frames, ==, 2 * FRAMES);
}

/* The loop field of the NETSCAPE2.0 extension: repeats after the first play. */
static int
gif_loop_field (const char *path)
{
  g_autofree char *contents = NULL;
  gsize length;
  const char *found;

  g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
  found = memmem (contents, length, "NETSCAPE2.0", 11);
  if (found == NULL)
    return -1;
  return (guint8) found[13] | (guint8) found[14] << 8;
}

static void
test_gif_loop_count (Fixture       *fixture,
                     gconstpointer  data)
{
  OnestepExportOptions options;
  g_autofree char *forever = NULL;
  g_autofree char *three = NULL;
  g_autofree char *once = NULL;

  onestep_export_options_init (&options, ONESTEP_EXPORT_FORMAT_GIF);
  forever = export_clip (fixture, "forever.gif", &options, WIDTH, HEIGHT, NULL);
  options.loop_count = 3;
  three = export_clip (fixture, "three.gif", &options, WIDTH, HEIGHT, NULL);
  options.loop_count = 1;
  once = export_clip (fixture, "once.gif", &options, WIDTH, HEIGHT, NULL);

  g_assert_cmpint (gif_loop_field (forever), ==, 0);
  g_assert_cmpint (gif_loop_field (three), ==, 2);
  g_assert_cmpint (gif_loop_field (once), ==, -1);
}

/* A palette built from the clip beats the fixed 3-3-2 cube (plain rgb8) by far. */
static void
test_gif_palette_quality (Fixture       *fixture,
                          gconstpointer  data)
{
  OnestepExportOptions options;
  g_autoptr(DecodedClip) clip = NULL;
  double palette_error, cube_error = 0;
  gsize frame_size = (gsize) WIDTH * HEIGHT * 3;
  g_autofree guint8 *rgb = make_frames (FRAMES, WIDTH, HEIGHT, narrow_tones);
  g_autofree guint8 *cube = g_malloc (frame_size * FRAMES);

  for (gsize i = 0; i < frame_size * FRAMES; i++)
    {
      int levels = (i % 3 == 2) ? 4 : 8;
      double step = 255.0 / (levels - 1);

      cube[i] = (guint8) (((int) (rgb[i] / step + 0.5)) * step + 0.5);
    }
  for (int f = 0; f < FRAMES; f++)
    cube_error = MAX (cube_error, mean_abs_error (cube + f * frame_size, WIDTH,
                                                  rgb + f * frame_size, WIDTH, HEIGHT));

  onestep_export_options_init (&options, ONESTEP_EXPORT_FORMAT_GIF);
  clip = export_and_decode (fixture, "clip.gif", &options, WIDTH, HEIGHT, rgb);
  palette_error = clip_error (clip, rgb, FRAMES, WIDTH, HEIGHT, FALSE);
  g_test_message ("worst frame error: palette %.2f, rgb8 cube %.2f", palette_error, cube_error);
  g_assert_cmpfloat (palette_error * 4, <, cube_error);
}

static void
test_png_folder (Fixture       *fixture,
                 gconstpointer  data)
{
  OnestepExportOptions options;
  OnestepExportFormat format;
  g_autofree char *path = NULL;
  g_autofree char *first = NULL;
  g_autofree char *last = NULL;
  g_autofree char *settings = NULL;
  g_autofree char *listing = NULL;
  g_autofree char *json = NULL;
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  g_autoptr(GError) error = NULL;
  gsize frame_size = (gsize) WIDTH * HEIGHT * 3;

  g_assert_true (onestep_export_format_for_path ("frames", &format, NULL));
  g_assert_cmpint (format, ==, ONESTEP_EXPORT_FORMAT_PNG_FOLDER);
  onestep_export_options_init (&options, ONESTEP_EXPORT_FORMAT_PNG_FOLDER);
  path = export_clip (fixture, "frames", &options, WIDTH, HEIGHT, NULL);

  first = g_build_filename (path, "frame-0001.png", NULL);
  last = g_build_filename (path, "frame-0025.png", NULL);
  g_assert_true (g_file_test (first, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (last, G_FILE_TEST_IS_REGULAR));

  pixbuf = gdk_pixbuf_new_from_file (last, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_width (pixbuf), ==, WIDTH);
  g_assert_cmpint (gdk_pixbuf_get_height (pixbuf), ==, HEIGHT);
  g_assert_cmpint (gdk_pixbuf_get_rowstride (pixbuf), ==, WIDTH * 3);
  g_assert_cmpmem (gdk_pixbuf_get_pixels (pixbuf), frame_size,
                   fixture->rgb + frame_size * (FRAMES - 1), frame_size);
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::seed"), ==, "42");
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::model"), ==, "/models/tiny-a");
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::noise_aug_strength"), ==, "0.02");
  g_assert_null (gdk_pixbuf_get_option (pixbuf, "tEXt::unet_file"));

  settings = g_build_filename (path, "settings.json", NULL);
  g_assert_true (g_file_get_contents (settings, &json, NULL, NULL));
  assert_settings_json (json);

  listing = list_dir (fixture->dir);
  g_assert_cmpstr (listing, ==, "frames");
}

/* yuv420p needs even sizes: odd ones are padded by one repeated edge pixel. */
static void
test_odd_size (Fixture       *fixture,
               gconstpointer  data)
{
  static const struct { int width, height; } sizes[] = { { 34, 18 }, { 35, 19 } };
  const RoundTrip *trip = data;

  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      int width = sizes[s].width, height = sizes[s].height;
      g_autofree guint8 *rgb = make_frames (FRAMES, width, height, moving_gradient);
      g_autofree char *name = g_strdup_printf ("%dx%d-%s", width, height, trip->name);
      g_autoptr(DecodedClip) clip = NULL;
      gboolean even_only = trip->format != ONESTEP_EXPORT_FORMAT_GIF;
      OnestepExportOptions options;

      onestep_export_options_init (&options, trip->format);
      clip = export_and_decode (fixture, name, &options, width, height, rgb);
      g_assert_cmpint (clip->frames, ==, FRAMES);
      g_assert_cmpint (clip->width, ==, even_only ? (width + 1) / 2 * 2 : width);
      g_assert_cmpint (clip->height, ==, even_only ? (height + 1) / 2 * 2 : height);
      g_assert_cmpfloat (clip_error (clip, rgb, FRAMES, width, height, FALSE), <, 2 * trip->max_error);
    }
}

static const OnestepExportFormat all_formats[] = {
  ONESTEP_EXPORT_FORMAT_MP4, ONESTEP_EXPORT_FORMAT_WEBM,
  ONESTEP_EXPORT_FORMAT_GIF, ONESTEP_EXPORT_FORMAT_PNG_FOLDER,
};

static const char *const all_names[] = { "clip.mp4", "clip.webm", "clip.gif", "frames" };

static void
test_cancel_before (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();

  g_cancellable_cancel (cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++)
    {
      g_autofree char *path = g_build_filename (fixture->dir, all_names[i], NULL);
      g_autofree char *listing = NULL;
      g_autoptr(GError) error = NULL;
      OnestepExportOptions options;

      onestep_export_options_init (&options, all_formats[i]);
      g_assert_false (onestep_export_write (path, fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                            &options, cancellable, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      listing = list_dir (fixture->dir);
      g_assert_cmpstr (listing, ==, "");
    }
}

typedef struct {
  GCancellable *cancellable;
  int cancel_at;
  int last_written;
  int total;
} CancelAt;

static void
cancel_at_frame (int      frames_written,
                 int      frames_total,
                 gpointer user_data)
{
  CancelAt *cancel = user_data;

  g_assert_cmpint (frames_written, ==, cancel->last_written + 1);
  cancel->last_written = frames_written;
  cancel->total = frames_total;
  if (frames_written == cancel->cancel_at)
    g_cancellable_cancel (cancel->cancellable);
}

/* Cancelled from the progress callback half way: the partial output is removed. */
static void
test_cancel_during (Fixture       *fixture,
                    gconstpointer  data)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autofree char *path = g_build_filename (fixture->dir, all_names[i], NULL);
      g_autofree char *listing = NULL;
      g_autoptr(GError) error = NULL;
      CancelAt cancel = { cancellable, 10, 0, 0 };
      OnestepExportOptions options;

      onestep_export_options_init (&options, all_formats[i]);
      options.ping_pong = TRUE;
      options.settings = &clip_settings;
      options.progress = cancel_at_frame;
      options.progress_data = &cancel;
      g_assert_false (onestep_export_write (path, fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                            &options, cancellable, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpint (cancel.last_written, ==, 10);
      g_assert_cmpint (cancel.total, ==, 2 * FRAMES - 2);
      listing = list_dir (fixture->dir);
      g_assert_cmpstr (listing, ==, "");
    }
}

/* Runs as root in CI, so unwritable means a folder that cannot exist or hold files. */
static void
test_unwritable (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autofree char *plain_file = g_build_filename (fixture->dir, "plain-file", NULL);

  g_assert_true (g_file_set_contents (plain_file, "x", 1, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++)
    {
      g_autofree char *missing = g_build_filename (fixture->dir, "missing", all_names[i], NULL);
      g_autofree char *under_file = g_build_filename (plain_file, all_names[i], NULL);
      g_autofree char *in_proc = g_build_filename ("/proc", all_names[i], NULL);
      const char *paths[] = { missing, under_file, in_proc };
      OnestepExportOptions options;

      onestep_export_options_init (&options, all_formats[i]);
      for (guint p = 0; p < G_N_ELEMENTS (paths); p++)
        {
          g_autoptr(GError) error = NULL;
          g_autofree char *listing = NULL;

          g_assert_false (onestep_export_write (paths[p], fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                                &options, NULL, &error));
          g_assert_nonnull (error);
          g_assert_nonnull (strstr (error->message, paths[p]));
          listing = list_dir (fixture->dir);
          g_assert_cmpstr (listing, ==, "plain-file");
        }
      g_assert_false (g_file_test (in_proc, G_FILE_TEST_EXISTS));
    }
}

/* The target is a folder with something in it: the export is complete but cannot be
 * renamed into place, and the finished temporary file must go too. */
static void
test_rename_fails (Fixture       *fixture,
                   gconstpointer  data)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++)
    {
      g_autofree char *path = g_build_filename (fixture->dir, all_names[i], NULL);
      g_autofree char *inside = g_build_filename (path, "keep", NULL);
      g_autofree char *listing = NULL;
      g_autofree char *inner_listing = NULL;
      g_autoptr(GError) error = NULL;
      OnestepExportOptions options;

      g_assert_cmpint (g_mkdir (path, 0755), ==, 0);
      g_assert_true (g_file_set_contents (inside, "x", 1, NULL));
      onestep_export_options_init (&options, all_formats[i]);
      options.settings = &clip_settings;
      g_assert_false (onestep_export_write (path, fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                            &options, NULL, &error));
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, path));
      listing = list_dir (fixture->dir);
      g_assert_cmpstr (listing, ==, all_names[i]);
      inner_listing = list_dir (path);
      g_assert_cmpstr (inner_listing, ==, "keep");
      remove_tree (path);
    }
}

/* An existing export is kept unless replace is set; replaced, nothing else is left. */
static void
test_replace (Fixture       *fixture,
              gconstpointer  data)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++)
    {
      g_autofree char *path = g_build_filename (fixture->dir, all_names[i], NULL);
      g_autofree char *listing = NULL;
      g_autoptr(GError) error = NULL;
      OnestepExportOptions options;

      onestep_export_options_init (&options, all_formats[i]);
      g_assert_true (onestep_export_write (path, fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                           &options, NULL, &error));
      g_assert_no_error (error);
      g_assert_false (onestep_export_write (path, fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                            &options, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
      g_clear_error (&error);
      options.replace = TRUE;
      g_assert_true (onestep_export_write (path, fixture->rgb, FRAMES, WIDTH, HEIGHT,
                                           &options, NULL, &error));
      g_assert_no_error (error);
      listing = list_dir (fixture->dir);
      g_assert_cmpstr (listing, ==, all_names[i]);
      remove_tree (path);
    }
}

static void
test_invalid_arguments (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autofree char *path = g_build_filename (fixture->dir, "clip.mp4", NULL);
  g_autofree char *listing = NULL;
  OnestepExportOptions options;
  struct { int fps, quality, loop_count, frames, width; const char *word; } cases[] = {
    { 0, 80, 0, FRAMES, WIDTH, "fps" },
    { FPS, 101, 0, FRAMES, WIDTH, "quality" },
    { FPS, 80, -1, FRAMES, WIDTH, "loop_count" },
    { FPS, 80, 0, 0, WIDTH, "frames" },
    { FPS, 80, 0, FRAMES, 0, "width" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;

      onestep_export_options_init (&options, ONESTEP_EXPORT_FORMAT_MP4);
      options.fps = cases[i].fps;
      options.quality = cases[i].quality;
      options.loop_count = cases[i].loop_count;
      g_assert_false (onestep_export_write (path, fixture->rgb, cases[i].frames, cases[i].width,
                                            HEIGHT, &options, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, cases[i].word));
    }
  listing = list_dir (fixture->dir);
  g_assert_cmpstr (listing, ==, "");
}

/* The format a path names, or the error for an unknown extension. */
static int
format_of (const char *path)
{
  OnestepExportFormat format;
  g_autoptr(GError) error = NULL;

  if (onestep_export_format_for_path (path, &format, &error))
    return format;
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, ".mp4"));
  g_assert_nonnull (strstr (error->message, ".webm"));
  g_assert_nonnull (strstr (error->message, ".gif"));
  g_assert_nonnull (strstr (error->message, "PNG frames"));
  return -1;
}

static void
test_format_names (void)
{
  g_assert_cmpint (format_of ("/a/B.MP4"), ==, ONESTEP_EXPORT_FORMAT_MP4);
  g_assert_cmpint (format_of ("x.webm"), ==, ONESTEP_EXPORT_FORMAT_WEBM);
  g_assert_cmpint (format_of ("x.Gif"), ==, ONESTEP_EXPORT_FORMAT_GIF);
  g_assert_cmpint (format_of ("x.mp4/out"), ==, ONESTEP_EXPORT_FORMAT_PNG_FOLDER);
  g_assert_cmpint (format_of ("out/.frames"), ==, ONESTEP_EXPORT_FORMAT_PNG_FOLDER);
  g_assert_cmpint (format_of ("x.avi"), ==, -1);
  g_assert_cmpint (format_of ("x.mp4.part"), ==, -1);
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++)
    g_assert_nonnull (onestep_export_format_name (all_formats[i]));
}

#define ADD(name, func, data) \
  g_test_add (name, Fixture, data, fixture_set_up, func, fixture_tear_down)

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  av_log_set_level (AV_LOG_ERROR);

  g_test_add_func ("/export/format-names", test_format_names);
  g_test_add_func ("/export/sequence", test_sequence);
  for (guint i = 0; i < G_N_ELEMENTS (round_trips); i++)
    {
      g_autofree char *round = g_strdup_printf ("/export/round-trip/%s", round_trips[i].name);
      g_autofree char *ping = g_strdup_printf ("/export/ping-pong/%s", round_trips[i].name);
      g_autofree char *odd = g_strdup_printf ("/export/odd-size/%s", round_trips[i].name);

      ADD (round, test_round_trip, &round_trips[i]);
      ADD (ping, test_ping_pong, &round_trips[i]);
      ADD (odd, test_odd_size, &round_trips[i]);
    }
  ADD ("/export/mp4-faststart", test_mp4_faststart, NULL);
  ADD ("/export/webm-loop-count", test_webm_loop_count, NULL);
  ADD ("/export/gif-loop-count", test_gif_loop_count, NULL);
  ADD ("/export/gif-palette-quality", test_gif_palette_quality, NULL);
  ADD ("/export/png-folder", test_png_folder, NULL);
  ADD ("/export/cancel-before", test_cancel_before, NULL);
  ADD ("/export/cancel-during", test_cancel_during, NULL);
  ADD ("/export/unwritable", test_unwritable, NULL);
  ADD ("/export/rename-fails", test_rename_fails, NULL);
  ADD ("/export/replace", test_replace, NULL);
  ADD ("/export/invalid-arguments", test_invalid_arguments, NULL);

  return g_test_run ();
}
