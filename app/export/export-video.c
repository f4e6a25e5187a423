/* export-video.c: MP4 (libx264), WebM (libvpx-vp9) and GIF with libavcodec's
 * send/receive API and libavformat's muxers. */
#include "export-palette.h"
#include "export-private.h"

#include <glib/gi18n-lib.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <string.h>

typedef struct {
  const char        *muxer;    /* libavformat short name */
  const char        *encoder;  /* libavcodec encoder name */
  enum AVPixelFormat pix_fmt;
} VideoFormat;

static const VideoFormat video_formats[] = {
  [ONESTEP_EXPORT_FORMAT_MP4] = { "mp4", "libx264", AV_PIX_FMT_YUV420P },
  [ONESTEP_EXPORT_FORMAT_WEBM] = { "webm", "libvpx-vp9", AV_PIX_FMT_YUV420P },
  [ONESTEP_EXPORT_FORMAT_GIF] = { "gif", "gif", AV_PIX_FMT_PAL8 },
};

typedef struct {
  const OnestepExportJob *job;
  const VideoFormat      *format;
  AVFormatContext        *muxer;
  AVCodecContext         *encoder;
  AVStream               *stream;
  AVFrame                *frame;
  AVPacket               *packet;
  struct SwsContext      *scaler;       /* RGB24 -> yuv420p */
  OnestepPaletteMap      *palette_map;  /* GIF */
  OnestepPalette          palette;
  guint8                 *padded;       /* a source frame grown to the encoded size */
  int                     width;        /* encoded size */
  int                     height;
  gboolean                needs_trailer;  /* header written, trailer not yet */
} VideoWriter;

gboolean
_onestep_export_video_available (OnestepExportFormat format)
{
  const VideoFormat *video = &video_formats[format];

  return avcodec_find_encoder_by_name (video->encoder) != NULL
         && av_guess_format (video->muxer, NULL, NULL) != NULL;
}

/* format takes the path, then FFmpeg's reason. */
static gboolean G_GNUC_PRINTF (3, 0)
set_av_error (GError    **error,
              int         averror,
              const char *format,
              const char *path)
{
  char reason[AV_ERROR_MAX_STRING_SIZE] = "";

  av_strerror (averror, reason, sizeof reason);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (AVUNERROR (averror)),
               format, path, reason);
  return FALSE;
}

/* Quality 0..100 (checked by onestep_export_write) onto each encoder's useful
 * CRF range (lower CRF = better). */
static void
set_quality_options (VideoWriter   *writer,
                     AVDictionary **options)
{
  int quality = writer->job->options->quality;

  switch (writer->job->options->format)
    {
    case ONESTEP_EXPORT_FORMAT_MP4:
      av_dict_set_int (options, "crf", 40 - quality * 28 / 100, 0);
      av_dict_set (options, "preset", "medium", 0);
      break;
    case ONESTEP_EXPORT_FORMAT_WEBM:
      /* Constant quality mode needs bit rate 0. */
      writer->encoder->bit_rate = 0;
      av_dict_set_int (options, "crf", 55 - quality * 40 / 100, 0);
      av_dict_set (options, "deadline", "good", 0);
      av_dict_set (options, "cpu-used", "4", 0);
      av_dict_set (options, "row-mt", "1", 0);
      break;
    case ONESTEP_EXPORT_FORMAT_GIF:
    case ONESTEP_EXPORT_FORMAT_PNG_FOLDER:
      break;
    }
}

static void
set_muxer_options (VideoWriter   *writer,
                   AVDictionary **options)
{
  const OnestepExportOptions *export_options = writer->job->options;

  switch (export_options->format)
    {
    case ONESTEP_EXPORT_FORMAT_MP4:
      /* moov before mdat, so players can start before the whole file is read. */
      av_dict_set (options, "movflags", "+faststart", 0);
      break;
    case ONESTEP_EXPORT_FORMAT_GIF:
      /* The muxer's loop is 0 for forever, else the repeats after the first play,
       * -1 for none. */
      if (export_options->loop_count == 0)
        av_dict_set_int (options, "loop", 0, 0);
      else
        av_dict_set_int (options, "loop",
                         export_options->loop_count == 1 ? -1 : export_options->loop_count - 1, 0);
      break;
    case ONESTEP_EXPORT_FORMAT_WEBM:
    case ONESTEP_EXPORT_FORMAT_PNG_FOLDER:
      break;
    }
}

static gboolean
open_encoder (VideoWriter *writer,
              GError     **error)
{
  const AVCodec *codec = avcodec_find_encoder_by_name (writer->format->encoder);
  AVDictionary *options = NULL;
  int fps = writer->job->options->fps;
  int ret;

  if (codec == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("Could not write “%s”: FFmpeg has no %s encoder"),
                   writer->job->path, writer->format->encoder);
      return FALSE;
    }

  writer->encoder = avcodec_alloc_context3 (codec);
  writer->encoder->width = writer->width;
  writer->encoder->height = writer->height;
  writer->encoder->pix_fmt = writer->format->pix_fmt;
  writer->encoder->time_base = (AVRational) { 1, fps };
  writer->encoder->framerate = (AVRational) { fps, 1 };
  writer->encoder->gop_size = 2 * fps;
  if (writer->format->pix_fmt == AV_PIX_FMT_YUV420P)
    {
      /* What swscale's RGB -> YUV conversion produces by default. */
      writer->encoder->colorspace = AVCOL_SPC_SMPTE170M;
      writer->encoder->color_range = AVCOL_RANGE_MPEG;
    }
  if (writer->muxer->oformat->flags & AVFMT_GLOBALHEADER)
    writer->encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

  set_quality_options (writer, &options);
  ret = avcodec_open2 (writer->encoder, codec, &options);
  av_dict_free (&options);
  if (ret < 0)
    return set_av_error (error, ret, _("Could not start the video encoder for “%s”: %s"),
                         writer->job->path);

  writer->stream = avformat_new_stream (writer->muxer, NULL);
  writer->stream->time_base = writer->encoder->time_base;
  writer->stream->avg_frame_rate = writer->encoder->framerate;
  ret = avcodec_parameters_from_context (writer->stream->codecpar, writer->encoder);
  if (ret < 0)
    return set_av_error (error, ret, _("Could not set up the video stream of “%s”: %s"),
                         writer->job->path);
  return TRUE;
}

static gboolean
open_output (VideoWriter *writer,
             const char  *path,
             GError     **error)
{
  AVDictionary *options = NULL;
  int ret;

  ret = avformat_alloc_output_context2 (&writer->muxer, NULL, writer->format->muxer, path);
  if (ret < 0)
    return set_av_error (error, ret, _("Could not prepare “%s”: %s"), writer->job->path);

  if (!open_encoder (writer, error))
    return FALSE;

  if (writer->job->settings_json != NULL)
    av_dict_set (&writer->muxer->metadata, "comment", writer->job->settings_json, 0);

  ret = avio_open (&writer->muxer->pb, path, AVIO_FLAG_WRITE);
  if (ret < 0)
    return set_av_error (error, ret, _("Could not write “%s”: %s"), writer->job->path);

  set_muxer_options (writer, &options);
  ret = avformat_write_header (writer->muxer, &options);
  av_dict_free (&options);
  if (ret < 0)
    return set_av_error (error, ret, _("Could not write the header of “%s”: %s"),
                         writer->job->path);
  writer->needs_trailer = TRUE;
  return TRUE;
}

static gboolean
prepare_conversion (VideoWriter *writer,
                    GError     **error)
{
  const OnestepExportJob *job = writer->job;

  writer->frame = av_frame_alloc ();
  writer->packet = av_packet_alloc ();
  writer->frame->format = writer->format->pix_fmt;
  writer->frame->width = writer->width;
  writer->frame->height = writer->height;
  if (av_frame_get_buffer (writer->frame, 0) < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   _("Not enough memory to export “%s”"), job->path);
      return FALSE;
    }

  if (writer->format->pix_fmt == AV_PIX_FMT_PAL8)
    {
      /* One palette for the whole clip, from its own colours: 32..256 entries. */
      int colors = 32 + job->options->quality * 224 / 100;

      _onestep_palette_build (&writer->palette, job->rgb,
                              (gsize) job->frames * job->width * job->height, colors);
      writer->palette_map = _onestep_palette_map_new (&writer->palette);
      return TRUE;
    }

  /* swscale's SIMD code reads a little past the end of its input. */
  writer->padded = g_malloc ((gsize) writer->width * writer->height * 3
                             + AV_INPUT_BUFFER_PADDING_SIZE);
  writer->scaler = sws_getContext (writer->width, writer->height, AV_PIX_FMT_RGB24,
                                   writer->width, writer->height, writer->format->pix_fmt,
                                   SWS_BILINEAR | SWS_ACCURATE_RND, NULL, NULL, NULL);
  if (writer->scaler == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Could not set up the colour conversion for “%s”"), job->path);
      return FALSE;
    }
  return TRUE;
}

/* Copies a source frame into the encoded size, repeating the last column and row. */
static void
pad_frame (VideoWriter  *writer,
           const guint8 *source)
{
  const OnestepExportJob *job = writer->job;
  gsize source_stride = (gsize) job->width * 3;
  gsize stride = (gsize) writer->width * 3;

  for (int y = 0; y < writer->height; y++)
    {
      const guint8 *from = source + MIN (y, job->height - 1) * source_stride;
      guint8 *to = writer->padded + y * stride;

      memcpy (to, from, source_stride);
      for (int x = job->width; x < writer->width; x++)
        memcpy (to + x * 3, from + source_stride - 3, 3);
    }
}

static void
fill_frame (VideoWriter  *writer,
            const guint8 *source)
{
  AVFrame *frame = writer->frame;

  if (writer->palette_map != NULL)
    {
      for (int y = 0; y < writer->height; y++)
        {
          const guint8 *row = source + (gsize) y * writer->width * 3;
          guint8 *indices = frame->data[0] + (gsize) y * frame->linesize[0];

          for (int x = 0; x < writer->width; x++)
            indices[x] = _onestep_palette_map_index (writer->palette_map, row + x * 3);
        }
      memcpy (frame->data[1], writer->palette.argb, sizeof writer->palette.argb);
      return;
    }

  {
    const guint8 *planes[1] = { writer->padded };
    int strides[1] = { writer->width * 3 };

    pad_frame (writer, source);
    sws_scale (writer->scaler, planes, strides, 0, writer->height,
               frame->data, frame->linesize);
  }
}

/* Sends frame (NULL to flush) and writes every packet the encoder has ready. */
static gboolean
encode (VideoWriter *writer,
        AVFrame     *frame,
        GError     **error)
{
  int ret = avcodec_send_frame (writer->encoder, frame);

  if (ret < 0)
    return set_av_error (error, ret, _("Could not encode “%s”: %s"), writer->job->path);

  for (;;)
    {
      ret = avcodec_receive_packet (writer->encoder, writer->packet);
      if (ret == AVERROR (EAGAIN) || ret == AVERROR_EOF)
        return TRUE;
      if (ret < 0)
        return set_av_error (error, ret, _("Could not encode “%s”: %s"), writer->job->path);

      /* Each frame lasts one tick, the last one included. */
      if (writer->packet->duration == 0)
        writer->packet->duration = 1;
      av_packet_rescale_ts (writer->packet, writer->encoder->time_base, writer->stream->time_base);
      writer->packet->stream_index = writer->stream->index;
      ret = av_interleaved_write_frame (writer->muxer, writer->packet);
      if (ret < 0)
        return set_av_error (error, ret, _("Could not write “%s”: %s"), writer->job->path);
    }
}

static gboolean
write_frames (VideoWriter  *writer,
              GCancellable *cancellable,
              GError      **error)
{
  const OnestepExportJob *job = writer->job;
  int ret;

  for (int i = 0; i < job->length; i++)
    {
      ret = av_frame_make_writable (writer->frame);
      if (ret < 0)
        return set_av_error (error, ret, _("Could not encode “%s”: %s"), job->path);
      fill_frame (writer, _onestep_export_job_frame (job, i));
      writer->frame->pts = i;
      if (!encode (writer, writer->frame, error)
          || !_onestep_export_job_frame_done (job, i, cancellable, error))
        return FALSE;
    }

  if (!encode (writer, NULL, error))
    return FALSE;
  writer->needs_trailer = FALSE;
  ret = av_write_trailer (writer->muxer);
  if (ret < 0)
    return set_av_error (error, ret, _("Could not finish “%s”: %s"), job->path);
  return TRUE;
}

static gboolean
close_output (VideoWriter *writer,
              GError     **error)
{
  int ret = 0;

  /* Some muxers (GIF) free what they hold back only in the trailer; the file is
   * removed after a failure anyway. */
  if (writer->needs_trailer)
    av_write_trailer (writer->muxer);
  if (writer->muxer != NULL && writer->muxer->pb != NULL)
    ret = avio_closep (&writer->muxer->pb);
  avformat_free_context (writer->muxer);
  avcodec_free_context (&writer->encoder);
  av_frame_free (&writer->frame);
  av_packet_free (&writer->packet);
  sws_freeContext (writer->scaler);
  g_clear_pointer (&writer->palette_map, _onestep_palette_map_free);
  g_free (writer->padded);

  if (ret < 0 && error != NULL && *error == NULL)
    return set_av_error (error, ret, _("Could not write “%s”: %s"), writer->job->path);
  return ret >= 0;
}

gboolean
_onestep_export_encode_video (const char             *path,
                              const OnestepExportJob *job,
                              GCancellable           *cancellable,
                              GError                **error)
{
  VideoWriter writer = { .job = job, .format = &video_formats[job->options->format] };
  gboolean ok;

  /* yuv420p stores chroma per 2x2 block, so x264 and VP9 want even sizes. */
  writer.width = job->width;
  writer.height = job->height;
  if (writer.format->pix_fmt == AV_PIX_FMT_YUV420P)
    {
      writer.width += job->width % 2;
      writer.height += job->height % 2;
    }

  ok = open_output (&writer, path, error)
       && prepare_conversion (&writer, error)
       && write_frames (&writer, cancellable, error);
  ok = close_output (&writer, ok ? error : NULL) && ok;

  if (ok && job->options->format == ONESTEP_EXPORT_FORMAT_GIF && job->settings_json != NULL)
    ok = _onestep_export_gif_add_comment (path, job->settings_json, error);
  return ok;
}
