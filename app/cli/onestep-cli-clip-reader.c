/* onestep-cli-clip-reader.c: frames of a video (libav) or of a folder of images,
 * fitted to the clip size, for `train prepare`. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <string.h>

#include "onestep-cli-clip-reader.h"
#include "onestep-image-loader.h"
#include "onestep-cli.h"

/* A decoded video frame and its presentation time in the stream's time base. */
typedef struct {
  AVFrame *frame;
  gint64 time;
  gboolean present;
} TimedFrame;

typedef struct {
  AVFormatContext *demuxer;
  AVCodecContext *decoder;
  AVPacket *packet;
  int stream_index;
  AVRational time_base;
  /* One frame's duration in the time base: the time of frames without a
   * timestamp after the previous one, and how long the last frame shows. */
  gint64 frame_duration;
  gboolean flushing;
  gboolean at_end;
  gint64 start_time;            /* the first frame's time: target 0 */
  gint64 target;                /* the next sampled frame is the one shown at target / fps */
  TimedFrame held;              /* the latest frame shown at or before the target */
  TimedFrame incoming;          /* the frame after it, once decoded */
  gint64 last_time;             /* of the last decoded frame */
  gboolean decoded_any;
  GdkPixbuf *held_fitted;       /* held, fitted once though a slow video may repeat it */
  struct SwsContext *scaler;
} VideoSource;

struct _OnestepCliClipReader {
  int width, height, fps;
  int frames_read;
  GPtrArray *image_paths;       /* a folder of images; NULL for a video */
  guint next_image;
  VideoSource video;
};

static gboolean
set_av_error (GError     **error,
              int          ret,
              const char  *what)
{
  char reason[AV_ERROR_MAX_STRING_SIZE] = "";

  av_strerror (ret, reason, sizeof reason);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, reason);
  return FALSE;
}

static GdkPixbuf *
fit_or_fail (OnestepCliClipReader  *reader,
             GdkPixbuf             *image,
             GError               **error)
{
  GdkPixbuf *fitted = onestep_image_loader_fit (image, reader->width, reader->height);

  if (fitted == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot scale a %dx%d frame to %dx%d: out of memory",
                 gdk_pixbuf_get_width (image), gdk_pixbuf_get_height (image),
                 reader->width, reader->height);
  return fitted;
}

/* ---- folders of images ---- */

/* The lower-case file extensions of the formats gdk-pixbuf loads. */
static GHashTable *
image_extensions (void)
{
  g_autoptr(GSList) formats = gdk_pixbuf_get_formats ();
  GHashTable *extensions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (GSList *l = formats; l != NULL; l = l->next)
    {
      g_auto(GStrv) names = gdk_pixbuf_format_get_extensions (l->data);

      for (char **name = names; *name != NULL; name++)
        g_hash_table_add (extensions, g_ascii_strdown (*name, -1));
    }
  return extensions;
}

static int
compare_by_collation_key (gconstpointer a,
                          gconstpointer b)
{
  const char *const *path_a = a;
  const char *const *path_b = b;
  g_autofree char *name_a = g_filename_display_basename (*path_a);
  g_autofree char *name_b = g_filename_display_basename (*path_b);
  g_autofree char *key_a = g_utf8_collate_key_for_filename (name_a, -1);
  g_autofree char *key_b = g_utf8_collate_key_for_filename (name_b, -1);

  return strcmp (key_a, key_b);
}

GPtrArray *
onestep_cli_list_folder (const char  *path,
                         GError     **error)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, error);
  GPtrArray *paths;
  const char *name;

  if (dir == NULL)
    return NULL;
  paths = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (paths, g_build_filename (path, name, NULL));
  g_ptr_array_sort (paths, compare_by_collation_key);
  return paths;
}

static gboolean
open_image_folder (OnestepCliClipReader  *reader,
                   const char            *path,
                   GError               **error)
{
  g_autoptr(GPtrArray) entries = onestep_cli_list_folder (path, error);
  g_autoptr(GHashTable) extensions = NULL;

  if (entries == NULL)
    return FALSE;
  extensions = image_extensions ();
  reader->image_paths = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < entries->len; i++)
    {
      const char *entry = g_ptr_array_index (entries, i);
      g_autofree char *name = g_path_get_basename (entry);
      const char *dot = strrchr (name, '.');
      g_autofree char *extension = dot != NULL ? g_ascii_strdown (dot + 1, -1) : NULL;

      if (extension != NULL && g_hash_table_contains (extensions, extension))
        g_ptr_array_add (reader->image_paths, g_strdup (entry));
    }
  return TRUE;
}

static GdkPixbuf *
next_image (OnestepCliClipReader  *reader,
            GError               **error)
{
  g_autoptr(GdkPixbuf) image = NULL;
  g_autoptr(GFile) file = NULL;

  if (reader->next_image >= reader->image_paths->len)
    return NULL;
  file = g_file_new_for_path (g_ptr_array_index (reader->image_paths, reader->next_image));
  image = onestep_image_loader_load (file, NULL, error);
  if (image == NULL)
    return NULL;
  reader->next_image++;
  return fit_or_fail (reader, image, error);
}

/* ---- videos ---- */

static gboolean
open_video (OnestepCliClipReader  *reader,
            const char            *path,
            GError               **error)
{
  VideoSource *video = &reader->video;
  const AVCodec *codec = NULL;
  AVStream *stream;
  AVRational rate;
  int ret;

  ret = avformat_open_input (&video->demuxer, path, NULL, NULL);
  if (ret < 0)
    return set_av_error (error, ret, "cannot open as a video");
  ret = avformat_find_stream_info (video->demuxer, NULL);
  if (ret < 0)
    return set_av_error (error, ret, "cannot read the streams");
  ret = av_find_best_stream (video->demuxer, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (ret < 0)
    return set_av_error (error, ret, "no video stream that this FFmpeg decodes");
  video->stream_index = ret;
  stream = video->demuxer->streams[ret];
  video->time_base = stream->time_base;

  video->decoder = avcodec_alloc_context3 (codec);
  video->packet = av_packet_alloc ();
  video->held.frame = av_frame_alloc ();
  video->incoming.frame = av_frame_alloc ();
  if (video->decoder == NULL || video->packet == NULL || video->held.frame == NULL ||
      video->incoming.frame == NULL)
    return set_av_error (error, AVERROR (ENOMEM), "cannot start decoding");
  ret = avcodec_parameters_to_context (video->decoder, stream->codecpar);
  if (ret >= 0)
    ret = avcodec_open2 (video->decoder, codec, NULL);
  if (ret < 0)
    return set_av_error (error, ret, "cannot open the decoder");

  /* Without a frame rate in the file, frames without timestamps are taken one
   * per sampled frame, as they are. */
  rate = stream->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0)
    rate = stream->r_frame_rate;
  if (rate.num <= 0 || rate.den <= 0)
    rate = (AVRational) { reader->fps, 1 };
  video->frame_duration = MAX (1, av_rescale_q (1, av_inv_q (rate), video->time_base));
  return TRUE;
}

/* Decodes the next frame into timed: 1, 0 at the end of the stream, -1 on failure. */
static int
decode_frame (VideoSource  *video,
              TimedFrame   *timed,
              GError      **error)
{
  for (;;)
    {
      int ret = avcodec_receive_frame (video->decoder, timed->frame);

      if (ret >= 0)
        {
          gint64 stamp = timed->frame->best_effort_timestamp;

          if (stamp != AV_NOPTS_VALUE)
            timed->time = stamp;
          else
            timed->time = video->decoded_any ? video->last_time + video->frame_duration : 0;
          video->last_time = timed->time;
          video->decoded_any = TRUE;
          timed->present = TRUE;
          return 1;
        }
      if (ret == AVERROR_EOF)
        return 0;
      if (ret != AVERROR (EAGAIN) || video->flushing)
        {
          set_av_error (error, ret, "cannot decode");
          return -1;
        }

      /* The decoder needs the next packet of the video stream, or the end. */
      for (;;)
        {
          ret = av_read_frame (video->demuxer, video->packet);
          if (ret == AVERROR_EOF)
            {
              video->flushing = TRUE;
              ret = avcodec_send_packet (video->decoder, NULL);
              break;
            }
          if (ret < 0)
            {
              set_av_error (error, ret, "cannot read");
              return -1;
            }
          if (video->packet->stream_index == video->stream_index)
            {
              ret = avcodec_send_packet (video->decoder, video->packet);
              av_packet_unref (video->packet);
              break;
            }
          av_packet_unref (video->packet);
        }
      if (ret < 0)
        {
          set_av_error (error, ret, "cannot decode");
          return -1;
        }
    }
}

static GdkPixbuf *
frame_to_pixbuf (VideoSource  *video,
                 AVFrame      *frame,
                 GError      **error)
{
  g_autoptr(GdkPixbuf) image = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, frame->width, frame->height);
  uint8_t *planes[1];
  int strides[1];

  if (image == NULL)
    {
      set_av_error (error, AVERROR (ENOMEM), "cannot convert a frame to RGB");
      return NULL;
    }
  video->scaler = sws_getCachedContext (video->scaler, frame->width, frame->height, frame->format,
                                        frame->width, frame->height, AV_PIX_FMT_RGB24,
                                        SWS_BILINEAR | SWS_ACCURATE_RND, NULL, NULL, NULL);
  if (video->scaler == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "cannot convert %s frames to RGB", av_get_pix_fmt_name (frame->format));
      return NULL;
    }
  /* The frame's own matrix and range: HD video is mostly BT.709, some full range. */
  sws_setColorspaceDetails (video->scaler, sws_getCoefficients (frame->colorspace),
                            frame->color_range == AVCOL_RANGE_JPEG,
                            sws_getCoefficients (SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
  planes[0] = gdk_pixbuf_get_pixels (image);
  strides[0] = gdk_pixbuf_get_rowstride (image);
  sws_scale (video->scaler, (const uint8_t * const *) frame->data, frame->linesize, 0,
             frame->height, planes, strides);
  return g_steal_pointer (&image);
}

/* Whether target / fps comes before time (relative to the first frame). */
static gboolean
target_before (OnestepCliClipReader *reader,
               gint64                time)
{
  VideoSource *video = &reader->video;

  return av_compare_ts (video->target, (AVRational) { 1, reader->fps },
                        time - video->start_time, video->time_base) < 0;
}

static GdkPixbuf *
next_video_frame (OnestepCliClipReader  *reader,
                  GError               **error)
{
  VideoSource *video = &reader->video;

  if (!video->held.present)
    {
      if (decode_frame (video, &video->held, error) <= 0)
        return NULL;
      video->start_time = video->held.time;
    }
  for (;;)
    {
      gint64 shown_until;

      if (!video->incoming.present && !video->at_end)
        {
          int decoded = decode_frame (video, &video->incoming, error);

          if (decoded < 0)
            return NULL;
          video->at_end = decoded == 0;
        }
      shown_until = video->incoming.present ? video->incoming.time
                                            : video->held.time + video->frame_duration;
      if (target_before (reader, shown_until))
        {
          if (video->held_fitted == NULL)
            {
              g_autoptr(GdkPixbuf) image = frame_to_pixbuf (video, video->held.frame, error);

              if (image == NULL)
                return NULL;
              video->held_fitted = fit_or_fail (reader, image, error);
              if (video->held_fitted == NULL)
                return NULL;
            }
          video->target++;
          return g_object_ref (video->held_fitted);
        }
      if (!video->incoming.present)
        return NULL;

      /* Later targets show the incoming frame or one after it. */
      av_frame_unref (video->held.frame);
      av_frame_move_ref (video->held.frame, video->incoming.frame);
      video->held.time = video->incoming.time;
      video->incoming.present = FALSE;
      g_clear_object (&video->held_fitted);
    }
}

static void
video_source_clear (VideoSource *video)
{
  avcodec_free_context (&video->decoder);
  avformat_close_input (&video->demuxer);
  av_packet_free (&video->packet);
  av_frame_free (&video->held.frame);
  av_frame_free (&video->incoming.frame);
  g_clear_object (&video->held_fitted);
  g_clear_pointer (&video->scaler, sws_freeContext);
}

/* ---- either ---- */

OnestepCliClipReader *
onestep_cli_clip_reader_open (const char  *path,
                              int          width,
                              int          height,
                              int          fps,
                              GError     **error)
{
  OnestepCliClipReader *reader;
  gboolean opened;

  g_return_val_if_fail (width > 0 && height > 0 && fps > 0, NULL);

  reader = g_new0 (OnestepCliClipReader, 1);
  reader->width = width;
  reader->height = height;
  reader->fps = fps;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    opened = open_image_folder (reader, path, error);
  else
    opened = open_video (reader, path, error);
  if (!opened)
    g_clear_pointer (&reader, onestep_cli_clip_reader_free);
  return reader;
}

GdkPixbuf *
onestep_cli_clip_reader_next (OnestepCliClipReader  *reader,
                              GError               **error)
{
  GdkPixbuf *frame;

  if (reader->image_paths != NULL)
    frame = next_image (reader, error);
  else
    frame = next_video_frame (reader, error);
  if (frame != NULL)
    reader->frames_read++;
  return frame;
}

int
onestep_cli_clip_reader_frames_read (OnestepCliClipReader *reader)
{
  return reader->frames_read;
}

void
onestep_cli_clip_reader_free (OnestepCliClipReader *reader)
{
  if (reader == NULL)
    return;
  g_clear_pointer (&reader->image_paths, g_ptr_array_unref);
  video_source_clear (&reader->video);
  g_free (reader);
}
