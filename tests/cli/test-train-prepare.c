/* test-train-prepare.c: the clip reader on videos written at test time by the
 * export library and on frame folders, and `onestep-cli train prepare` end to
 * end on the tiny model: clip counts in cache.json, skipped files, refusals,
 * Ctrl+C. Usage: test-train-prepare ONESTEP_CLI MODEL_DIR */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libavutil/log.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export.h"
#include "onestep-cli-clip-reader.h"

static const char *cli_path;
static const char *model_path;

/* Frame t of a numbered clip is one flat grey whose level tells t back, even
 * after lossy coding. */
#define LEVEL_OF(t) (20 + 10 * (t))

static int
index_of_level (int level)
{
  return (level - 20 + 5) / 10;
}

typedef void (*PixelFunc) (int t, int x, int y, int width, int height, guint8 *rgb);

static void
numbered_grey (int     t,
               int     x,
               int     y,
               int     width,
               int     height,
               guint8 *rgb)
{
  rgb[0] = rgb[1] = rgb[2] = (guint8) LEVEL_OF (t);
}

/* A gradient panning right by 3 pixels a frame over a vertical one. */
static void
panning_gradient (int     t,
                  int     x,
                  int     y,
                  int     width,
                  int     height,
                  guint8 *rgb)
{
  rgb[0] = (guint8) ((x + 3 * t) * 255 / (width + 60));
  rgb[1] = (guint8) (y * 255 / MAX (height - 1, 1));
  rgb[2] = 128;
}

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

/* A video by the extension of path (.mp4, .webm, .gif); FALSE when this
 * FFmpeg cannot write it. */
static gboolean
write_video (const char *path,
             int         frames,
             int         width,
             int         height,
             int         fps,
             PixelFunc   pixel)
{
  OnestepExportFormat format;
  g_autofree guint8 *rgb = NULL;
  g_autoptr(GError) error = NULL;
  OnestepExportOptions options;

  if (!onestep_export_format_for_path (path, &format, &error))
    g_error ("%s", error->message);
  if (!onestep_export_format_available (format))
    return FALSE;
  rgb = make_frames (frames, width, height, pixel);
  onestep_export_options_init (&options, format);
  options.fps = fps;
  options.quality = 90;
  g_assert_true (onestep_export_write (path, rgb, frames, width, height, &options, NULL, &error));
  g_assert_no_error (error);
  return TRUE;
}

/* Numbered grey PNGs frame-0.png .. frame-(n-1).png: frame-10 sorts after frame-9. */
static void
write_frame_folder (const char *dir,
                    int         frames,
                    int         width,
                    int         height)
{
  g_autofree guint8 *rgb = make_frames (frames, width, height, numbered_grey);

  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  for (int t = 0; t < frames; t++)
    {
      g_autoptr(GdkPixbuf) image = gdk_pixbuf_new_from_data (rgb + (gsize) t * width * height * 3,
                                                             GDK_COLORSPACE_RGB, FALSE, 8, width,
                                                             height, width * 3, NULL, NULL);
      g_autofree char *name = g_strdup_printf ("frame-%d.png", t);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autoptr(GError) error = NULL;

      g_assert_true (gdk_pixbuf_save (image, path, "png", &error, NULL));
    }
}

static void
write_random_bytes (const char *path)
{
  guint8 bytes[4096];
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < sizeof bytes; i++)
    bytes[i] = (guint8) g_rand_int (rand);
  g_assert_true (g_file_set_contents (path, (const char *) bytes, sizeof bytes, &error));
}

static void
remove_tree (const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileEnumerator) children = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                                   G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                                                   NULL, NULL);
  GFileInfo *info;

  while (children != NULL && (info = g_file_enumerator_next_file (children, NULL, NULL)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, g_file_info_get_name (info), NULL);

      remove_tree (child);
      g_object_unref (info);
    }
  g_remove (path);
}

typedef struct {
  char *dir;    /* the test's own folder */
  char *data;   /* dir/data, the DATA argument (not created) */
  char *cache;  /* dir/cache, the CACHE argument */
} Fixture;

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("test-train-prepare-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->data = g_build_filename (fixture->dir, "data", NULL);
  fixture->cache = g_build_filename (fixture->dir, "cache", NULL);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  remove_tree (fixture->dir);
  g_free (fixture->dir);
  g_free (fixture->data);
  g_free (fixture->cache);
}

static char *
data_file (Fixture    *fixture,
           const char *name)
{
  return g_build_filename (fixture->data, name, NULL);
}

/* ---- the reader ---- */

/* Reads every frame; each must be width x height, and flat grey frames give
 * their source index into indices (NULL: not numbered). */
static int
read_all (const char *path,
          int         width,
          int         height,
          int         fps,
          GArray     *indices)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepCliClipReader) reader = onestep_cli_clip_reader_open (path, width, height, fps, &error);
  GdkPixbuf *frame;
  int n = 0;

  g_assert_no_error (error);
  while ((frame = onestep_cli_clip_reader_next (reader, &error)) != NULL)
    {
      const guint8 *centre = gdk_pixbuf_read_pixels (frame) +
                             (height / 2) * gdk_pixbuf_get_rowstride (frame) + (width / 2) * 3;

      g_assert_cmpint (gdk_pixbuf_get_width (frame), ==, width);
      g_assert_cmpint (gdk_pixbuf_get_height (frame), ==, height);
      g_assert_false (gdk_pixbuf_get_has_alpha (frame));
      if (indices != NULL)
        {
          int index = index_of_level (centre[1]);

          g_assert_cmpint (abs (centre[1] - LEVEL_OF (index)), <=, 3);
          g_array_append_val (indices, index);
        }
      g_object_unref (frame);
      n++;
    }
  g_assert_no_error (error);
  g_assert_cmpint (onestep_cli_clip_reader_frames_read (reader), ==, n);
  return n;
}

/* Frame k at fps is the source frame shown at k / fps: for 20 frames at 10 fps,
 * the latest i with i / 10 <= k / fps, while k / fps < 2 s. */
static void
check_sampling (const char *path)
{
  static const int rates[] = { 10, 4, 25, 7 };

  for (gsize r = 0; r < G_N_ELEMENTS (rates); r++)
    {
      g_autoptr(GArray) indices = g_array_new (FALSE, FALSE, sizeof (int));
      int fps = rates[r];
      int expected = 2 * fps;

      read_all (path, 32, 24, fps, indices);
      g_test_message ("%s at %d fps: %u frames", path, fps, indices->len);
      g_assert_cmpint (indices->len, ==, expected);
      for (int k = 0; k < (int) indices->len; k++)
        g_assert_cmpint (g_array_index (indices, int, k), ==, k * 10 / fps);
    }
}

static void
test_reader_sampling (Fixture       *fixture,
                      gconstpointer  user_data)
{
  static const char *const names[] = { "numbered.mp4", "numbered.webm", "numbered.gif" };

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = data_file (fixture, names[i]);

      if (write_video (path, 20, 32, 24, 10, numbered_grey))
        check_sampling (path);
      else
        g_test_message ("%s: this FFmpeg cannot write it", names[i]);
    }
}

/* A 64x96 portrait video comes out as 48x32 frames, one per source frame at its own rate. */
static void
test_reader_fits_size (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autofree char *path = data_file (fixture, "pan.webm");

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  if (!write_video (path, 12, 64, 96, 7, panning_gradient))
    {
      g_test_skip ("this FFmpeg cannot write WebM");
      return;
    }
  g_assert_cmpint (read_all (path, 48, 32, 7, NULL), ==, 12);
}

static void
test_reader_frame_folder (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(GArray) indices = g_array_new (FALSE, FALSE, sizeof (int));
  g_autofree char *notes = data_file (fixture, "notes.txt");

  write_frame_folder (fixture->data, 12, 40, 30);
  /* Not an image: ignored. */
  g_assert_true (g_file_set_contents (notes, "not a frame", -1, NULL));
  g_assert_cmpint (read_all (fixture->data, 32, 24, 1, indices), ==, 12);
  for (int k = 0; k < 12; k++)
    g_assert_cmpint (g_array_index (indices, int, k), ==, k);
}

static void
test_reader_corrupt (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autofree char *path = data_file (fixture, "corrupt.mp4");
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepCliClipReader) reader = NULL;

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  write_random_bytes (path);
  reader = onestep_cli_clip_reader_open (path, 32, 24, 7, &error);
  g_assert_null (reader);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_test_message ("%s", error->message);
}

/* ---- onestep-cli train prepare ---- */

typedef struct {
  int status;       /* exit status, or 128 + signal */
  char *err;        /* stderr */
} RunResult;

static void
run_result_clear (RunResult *result)
{
  g_free (result->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RunResult, run_result_clear)

static int
exit_status_of (int wait_status)
{
  return WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
}

static void
prepare_argv (Fixture    *fixture,
              GPtrArray  *argv)
{
  const char *const args[] = { cli_path, "train", "prepare", "--model", model_path,
                               "--frames", "2", "--width", "48", "--height", "32",
                               "--device", "cpu", "--threads", "1" };

  for (gsize i = 0; i < G_N_ELEMENTS (args); i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, fixture->data);
  g_ptr_array_add (argv, fixture->cache);
  g_ptr_array_add (argv, NULL);
}

static void
run_prepare (Fixture   *fixture,
             RunResult *result)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int wait_status;

  prepare_argv (fixture, argv);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                               NULL, NULL, &result->err, &wait_status, &error));
  g_assert_no_error (error);
  result->status = exit_status_of (wait_status);
  g_test_message ("exit %d, stderr:\n%s", result->status, result->err);
}

static int
cache_clip_count (Fixture *fixture)
{
  g_autofree char *path = g_build_filename (fixture->cache, "cache.json", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *root;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (root, "frames"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (root, "width"), ==, 48);
  g_assert_cmpint (json_object_get_int_member (root, "height"), ==, 32);
  g_assert_cmpint (json_object_get_int_member (root, "fps"), ==, 7);
  return (int) json_object_get_int_member (root, "clips");
}

/* The test's folder holds DATA and, when with_cache, CACHE; never a partial cache. */
static void
assert_test_folder_holds (Fixture  *fixture,
                          gboolean  with_cache)
{
  g_autoptr(GDir) dir = g_dir_open (fixture->dir, 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (!g_str_equal (name, "data") && !(with_cache && g_str_equal (name, "cache")))
      g_error ("left behind in the test folder: %s", name);
}

static void
assert_failed_with (const RunResult *result,
                    const char      *message)
{
  g_assert_cmpint (result->status, >, 0);
  g_assert_cmpint (result->status, <, 128);
  g_assert_nonnull (strstr (result->err, message));
}

/* Each source gives its whole clips of 2 frames at 7 fps; the others are
 * skipped with their reason. */
static void
test_prepare_mixed (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autofree char *pan_mp4 = data_file (fixture, "pan.mp4");
  g_autofree char *pan_webm = data_file (fixture, "pan.webm");
  g_autofree char *frames = data_file (fixture, "frames");
  g_autofree char *still = data_file (fixture, "still.gif");
  g_autofree char *corrupt = data_file (fixture, "corrupt.mp4");
  g_auto(RunResult) result = { 0 };
  int expected = 0;

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  /* 16 frames at 14 fps: 8 frames at 7 fps, 4 clips. */
  if (write_video (pan_mp4, 16, 64, 96, 14, panning_gradient))
    expected += 4;
  /* 13 frames at 7 fps: 6 clips and a frame left over. */
  if (write_video (pan_webm, 13, 96, 64, 7, panning_gradient))
    expected += 6;
  /* 5 images: 2 clips. */
  write_frame_folder (frames, 5, 48, 32);
  expected += 2;
  /* One frame: too short. */
  g_assert_true (write_video (still, 1, 48, 32, 7, panning_gradient));
  write_random_bytes (corrupt);

  run_prepare (fixture, &result);
  g_assert_cmpint (result.status, ==, 0);
  g_assert_cmpint (cache_clip_count (fixture), ==, expected);
  g_assert_nonnull (strstr (result.err, "corrupt.mp4: skipped: cannot open as a video"));
  g_assert_nonnull (strstr (result.err, "still.gif: skipped: a clip needs 2 frames, the video has only 1 at 7 fps"));
  g_assert_nonnull (strstr (result.err, "2 of 5 files skipped"));
  assert_test_folder_holds (fixture, TRUE);
}

static void
test_prepare_nothing_usable (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autofree char *corrupt = data_file (fixture, "corrupt.mp4");
  g_autofree char *frames = data_file (fixture, "frames");
  g_auto(RunResult) result = { 0 };

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  write_random_bytes (corrupt);
  write_frame_folder (frames, 1, 48, 32);
  run_prepare (fixture, &result);
  assert_failed_with (&result, "no clip could be made");
  g_assert_nonnull (strstr (result.err, "frames: skipped: a clip needs 2 frames, the folder has only 1"));
  assert_test_folder_holds (fixture, FALSE);
}

static void
test_prepare_empty_data (Fixture       *fixture,
                         gconstpointer  user_data)
{
  g_auto(RunResult) result = { 0 };

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  run_prepare (fixture, &result);
  assert_failed_with (&result, "is empty");
  assert_test_folder_holds (fixture, FALSE);
}

static void
test_prepare_missing_data (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_auto(RunResult) result = { 0 };

  run_prepare (fixture, &result);
  assert_failed_with (&result, "does not exist");
  g_assert_false (g_file_test (fixture->cache, G_FILE_TEST_EXISTS));
}

static void
test_prepare_existing_cache (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autofree char *frames = data_file (fixture, "frames");
  g_autofree char *contents = NULL;
  g_auto(RunResult) result = { 0 };

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  write_frame_folder (frames, 4, 48, 32);
  g_assert_true (g_file_set_contents (fixture->cache, "precious", -1, NULL));
  run_prepare (fixture, &result);
  assert_failed_with (&result, "already exists");
  g_assert_true (g_file_get_contents (fixture->cache, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "precious");
}

/* Ctrl+C while the second source is being opened: the first one's clips are in
 * the partial cache, and nothing is left. The second source is a named pipe,
 * so the command cannot finish before the test has sent SIGINT. */
static void
test_prepare_interrupted (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autofree char *first = data_file (fixture, "a-frames");
  g_autofree char *pipe_path = data_file (fixture, "b-pipe.mp4");
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) err = g_string_new (NULL);
  g_autoptr(GIOChannel) channel = NULL;
  g_autofree char *line = NULL;
  GPid pid;
  int err_fd, pipe_fd, wait_status;
  pid_t exited;

  g_assert_cmpint (g_mkdir (fixture->data, 0755), ==, 0);
  write_frame_folder (first, 4, 48, 32);
  g_assert_cmpint (mkfifo (pipe_path, 0644), ==, 0);

  prepare_argv (fixture, argv);
  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv->pdata, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                                           NULL, NULL, &pid, NULL, NULL, &err_fd, &error));
  g_assert_no_error (error);
  channel = g_io_channel_unix_new (err_fd);
  g_io_channel_set_close_on_unref (channel, TRUE);

  /* Wait until the first source's clips are written. */
  while (g_io_channel_read_line (channel, &line, NULL, NULL, NULL) == G_IO_STATUS_NORMAL)
    {
      g_string_append (err, line);
      if (strstr (line, "files 1/2, clips written 2") != NULL)
        break;
      g_clear_pointer (&line, g_free);
    }
  g_assert_nonnull (strstr (err->str, "files 1/2, clips written 2"));
  g_assert_cmpint (kill (pid, SIGINT), ==, 0);

  /* Let the command past the pipe if it got there before stopping (ENXIO:
   * nobody has it open for reading yet), then read the rest. */
  while ((exited = waitpid (pid, &wait_status, WNOHANG)) == 0)
    {
      pipe_fd = open (pipe_path, O_WRONLY | O_NONBLOCK);
      if (pipe_fd >= 0)
        {
          close (pipe_fd);
          break;
        }
      g_assert_cmpint (errno, ==, ENXIO);
      g_usleep (10000);
    }
  g_clear_pointer (&line, g_free);
  while (g_io_channel_read_line (channel, &line, NULL, NULL, NULL) == G_IO_STATUS_NORMAL)
    {
      g_string_append (err, line);
      g_clear_pointer (&line, g_free);
    }
  if (exited == 0)
    g_assert_cmpint (waitpid (pid, &wait_status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_test_message ("exit %d, stderr:\n%s", exit_status_of (wait_status), err->str);

  /* It stopped by itself, not killed by the signal. */
  g_assert_true (WIFEXITED (wait_status));
  g_assert_cmpint (WEXITSTATUS (wait_status), ==, 128 + SIGINT);
  g_assert_nonnull (strstr (err->str, "interrupted; nothing written"));
  assert_test_folder_holds (fixture, FALSE);
}

static void
add_test (const char *name,
          void      (*func) (Fixture *, gconstpointer))
{
  g_test_add (name, Fixture, NULL, fixture_set_up, func, fixture_tear_down);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc != 3)
    {
      g_printerr ("usage: %s ONESTEP_CLI MODEL_DIR\n", argv[0]);
      return 2;
    }
  cli_path = argv[1];
  model_path = argv[2];
  /* The encoders' statistics would bury the test's own messages. */
  av_log_set_level (AV_LOG_ERROR);

  add_test ("/train-prepare/reader/sampling", test_reader_sampling);
  add_test ("/train-prepare/reader/fits-size", test_reader_fits_size);
  add_test ("/train-prepare/reader/frame-folder", test_reader_frame_folder);
  add_test ("/train-prepare/reader/corrupt", test_reader_corrupt);
  add_test ("/train-prepare/cli/mixed", test_prepare_mixed);
  add_test ("/train-prepare/cli/nothing-usable", test_prepare_nothing_usable);
  add_test ("/train-prepare/cli/empty-data", test_prepare_empty_data);
  add_test ("/train-prepare/cli/missing-data", test_prepare_missing_data);
  add_test ("/train-prepare/cli/existing-cache", test_prepare_existing_cache);
  add_test ("/train-prepare/cli/interrupted", test_prepare_interrupted);
  return g_test_run ();
}
