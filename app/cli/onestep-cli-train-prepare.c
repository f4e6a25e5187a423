/* onestep-cli-train-prepare.c: `onestep-cli train prepare`, a folder of videos
 * and frame folders encoded into a latent cache of clips for training. */
#include <libavutil/log.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "onestep-cli-clip-reader.h"
#include "onestep-cli.h"
#include "onestep_train.h"

#define UNSET INT_MIN
#define MAX_SIDE 16384

static volatile sig_atomic_t interrupted;

static void
on_interrupt (int signum)
{
  interrupted = 1;
}

typedef struct {
  onestep_cache_writer *writer;
  int frames, width, height, fps;
  guint files_done, files_total;
  GPtrArray *problems;   /* "NAME: REASON" for each file skipped or cut short */
  gboolean on_terminal;  /* one progress line redrawn, rather than a line a file */
} Preparation;

typedef enum {
  FILE_DONE,
  FILE_INTERRUPTED,
  FILE_WRITER_FAILED,
} FileOutcome;

/* reading: the file being read, or NULL after a file is done. */
static void
print_progress (Preparation *prep,
                const char  *reading)
{
  int clips = onestep_cache_writer_count (prep->writer);

  if (prep->on_terminal)
    fprintf (stderr, "\r\033[Kfiles %u/%u, clips written %d%s%s", prep->files_done,
             prep->files_total, clips, reading != NULL ? ", reading " : "",
             reading != NULL ? reading : "");
  else if (reading == NULL)
    fprintf (stderr, "files %u/%u, clips written %d\n", prep->files_done, prep->files_total, clips);
}

static void
clear_progress (Preparation *prep)
{
  if (prep->on_terminal)
    fprintf (stderr, "\r\033[K");
}

static void
report_problem (Preparation *prep,
                const char  *name,
                const char  *format,
                ...) G_GNUC_PRINTF (3, 4);

static void
report_problem (Preparation *prep,
                const char  *name,
                const char  *format,
                ...)
{
  va_list args;
  g_autofree char *reason = NULL;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  clear_progress (prep);
  onestep_cli_fail ("%s: %s", name, reason);
  g_ptr_array_add (prep->problems, g_strdup_printf ("%s: %s", name, reason));
}

/* Cuts one source into consecutive clips of prep->frames frames and encodes
 * them; frames left over after the last whole clip are dropped. A file that
 * cannot be read is reported and skipped; clips encoded before a decoding
 * failure stay in the cache. */
static FileOutcome
prepare_file (Preparation   *prep,
              const char    *path,
              onestep_error *engine_error)
{
  g_autofree char *name = g_filename_display_basename (path);
  gboolean is_folder = g_file_test (path, G_FILE_TEST_IS_DIR);
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepCliClipReader) reader = NULL;
  g_autoptr(GPtrArray) clip = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree onestep_image *views = g_new (onestep_image, prep->frames);
  GdkPixbuf *frame;
  int clips = 0;

  print_progress (prep, name);
  reader = onestep_cli_clip_reader_open (path, prep->width, prep->height, prep->fps, &error);
  if (reader == NULL && interrupted)
    return FILE_INTERRUPTED;
  if (reader == NULL)
    {
      report_problem (prep, name, "skipped: %s", error->message);
      return FILE_DONE;
    }
  while (!interrupted && (frame = onestep_cli_clip_reader_next (reader, &error)) != NULL)
    {
      g_ptr_array_add (clip, frame);
      if ((int) clip->len < prep->frames)
        continue;
      for (int i = 0; i < prep->frames; i++)
        views[i] = onestep_cli_image_view (g_ptr_array_index (clip, i));
      if (onestep_cache_writer_add (prep->writer, views, engine_error) != ONESTEP_OK)
        return FILE_WRITER_FAILED;
      g_ptr_array_set_size (clip, 0);
      clips++;
      print_progress (prep, name);
    }
  if (interrupted)
    return FILE_INTERRUPTED;

  if (error != NULL && clips > 0)
    report_problem (prep, name, "cut short after %d clips, which are kept: %s", clips, error->message);
  else if (error != NULL)
    report_problem (prep, name, "skipped: %s", error->message);
  else if (clips == 0 && is_folder)
    report_problem (prep, name, "skipped: a clip needs %d frames, the folder has only %d",
                    prep->frames, onestep_cli_clip_reader_frames_read (reader));
  else if (clips == 0)
    report_problem (prep, name, "skipped: a clip needs %d frames, the video has only %d at %d fps",
                    prep->frames, onestep_cli_clip_reader_frames_read (reader), prep->fps);
  return FILE_DONE;
}

static void
print_summary (Preparation *prep,
               const char  *cache)
{
  int clips = onestep_cache_writer_count (prep->writer);

  if (clips > 0)
    fprintf (stderr, "wrote %d clips of %d frames of %dx%d at %d fps to %s\n", clips,
             prep->frames, prep->width, prep->height, prep->fps, cache);
  if (prep->problems->len > 0)
    {
      fprintf (stderr, "%u of %u files skipped or cut short:\n", prep->problems->len,
               prep->files_total);
      for (guint i = 0; i < prep->problems->len; i++)
        fprintf (stderr, "  %s\n", (const char *) g_ptr_array_index (prep->problems, i));
    }
}

/* Checks an option the user must give: at least 1 and at most max. */
static gboolean
check_range (const char *option,
             int         value,
             int         max)
{
  if (value == UNSET)
    {
      onestep_cli_fail ("train prepare needs %s", option);
      return FALSE;
    }
  if (value < 1 || value > max)
    {
      onestep_cli_fail ("%s %d: must be between 1 and %d", option, value, max);
      return FALSE;
    }
  return TRUE;
}

int
onestep_cli_train_prepare (int    argc,
                           char **argv)
{
  g_autofree char *model = NULL, *device_name = NULL;
  int frames = UNSET, width = UNSET, height = UNSET, fps = 7, threads = 0;
  g_auto(GStrv) paths = NULL;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Base model folder (its VAE and image encoder encode the clips)", "PATH" },
    { "frames", 0, 0, G_OPTION_ARG_INT, &frames, "Frames of a clip", "F" },
    { "width", 0, 0, G_OPTION_ARG_INT, &width, "Width in pixels (frames are scaled and centre-cropped)", "W" },
    { "height", 0, 0, G_OPTION_ARG_INT, &height, "Height in pixels", "H" },
    { "fps", 0, 0, G_OPTION_ARG_INT, &fps, "Frame rate videos are sampled at (default 7)", "N" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu, cuda or auto (default)", "D" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &paths, NULL, "DATA CACHE" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new (
    "- encode the videos and frame folders in DATA into a new latent cache CACHE");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) sources = NULL;
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  onestep_context_params params = onestep_context_default_params ();
  onestep_error engine_error = { 0 };
  FileOutcome outcome = FILE_DONE;
  Preparation prep = { 0 };
  onestep_context *ctx;
  const char *data, *cache;
  int status;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (model == NULL || paths == NULL || g_strv_length (paths) != 2)
    {
      onestep_cli_fail ("train prepare needs --model PATH, --frames, --width, --height, DATA and CACHE");
      return 2;
    }
  if (!check_range ("--frames", frames, 1024) || !check_range ("--width", width, MAX_SIDE) ||
      !check_range ("--height", height, MAX_SIDE) || !check_range ("--fps", fps, 1000))
    return 2;
  if (threads < 0)
    {
      onestep_cli_fail ("--threads %d: must be at least 0", threads);
      return 2;
    }
  if (!onestep_cli_parse_device (device_name, &params.device, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  params.n_threads = threads;
  data = paths[0];
  cache = paths[1];

  if (!g_file_test (data, G_FILE_TEST_EXISTS))
    {
      onestep_cli_fail ("DATA %s does not exist", data);
      return 1;
    }
  if (!g_file_test (data, G_FILE_TEST_IS_DIR))
    {
      onestep_cli_fail ("DATA %s is not a folder", data);
      return 1;
    }
  sources = onestep_cli_list_folder (data, &error);
  if (sources == NULL)
    {
      onestep_cli_fail ("cannot read DATA %s: %s", data, error->message);
      return 1;
    }
  if (sources->len == 0)
    {
      onestep_cli_fail ("DATA %s is empty: it should hold videos or folders of frames", data);
      return 1;
    }
  if (g_file_test (cache, G_FILE_TEST_EXISTS))
    {
      onestep_cli_fail ("cache %s already exists; choose a new name", cache);
      return 1;
    }

  signal (SIGINT, on_interrupt);
  ctx = onestep_context_new (model, &params, &engine_error);
  if (ctx == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }
  prep.writer = onestep_cache_writer_new (ctx, cache, frames, width, height, (float) fps,
                                          &engine_error);
  if (prep.writer == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      onestep_context_free (ctx);
      return 1;
    }
  fprintf (stderr, "model %s on %s; %u files in %s\n", model,
           onestep_context_get_info (ctx)->device_name, sources->len, data);

  prep.frames = frames;
  prep.width = width;
  prep.height = height;
  prep.fps = fps;
  prep.files_total = sources->len;
  prep.problems = problems;
  prep.on_terminal = isatty (STDERR_FILENO);
  /* libav's own messages would break into the progress line; each failure is
   * reported once, per file, instead. */
  av_log_set_level (AV_LOG_QUIET);

  for (guint i = 0; i < sources->len && outcome == FILE_DONE && !interrupted; i++)
    {
      outcome = prepare_file (&prep, g_ptr_array_index (sources, i), &engine_error);
      if (outcome == FILE_DONE)
        {
          prep.files_done++;
          print_progress (&prep, NULL);
        }
    }
  clear_progress (&prep);

  status = 1;
  if (interrupted)
    onestep_cli_fail ("interrupted; nothing written to %s", cache);
  else if (outcome == FILE_WRITER_FAILED)
    onestep_cli_fail ("%s; nothing written to %s", engine_error.message, cache);
  else if (onestep_cache_writer_count (prep.writer) == 0)
    {
      print_summary (&prep, cache);
      onestep_cli_fail ("no clip could be made from %s; nothing written to %s", data, cache);
    }
  else if (onestep_cache_writer_finish (prep.writer, &engine_error) != ONESTEP_OK)
    onestep_cli_fail ("%s; nothing written to %s", engine_error.message, cache);
  else
    {
      print_summary (&prep, cache);
      status = 0;
    }
  onestep_cache_writer_free (prep.writer);
  onestep_context_free (ctx);
  signal (SIGINT, SIG_DFL);
  return interrupted ? 128 + SIGINT : status;
}
