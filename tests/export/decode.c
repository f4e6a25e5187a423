/* decode.c: reads an exported clip back with libavformat/libavcodec for the tests. */
#include "decode.h"

#include <gio/gio.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

typedef struct {
  AVFormatContext *demuxer;
  AVCodecContext  *decoder;
  AVFrame         *frame;
  AVPacket        *packet;
  int              stream_index;
  GByteArray      *rgb;
  gint64           first_pts;
  gint64           last_pts;
} Reader;

static gboolean
fail (GError **error, int ret, const char *what)
{
  char reason[AV_ERROR_MAX_STRING_SIZE] = "";

  av_strerror (ret, reason, sizeof reason);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, reason);
  return FALSE;
}

static void
append_rgb (Reader      *reader,
            DecodedClip *clip)
{
  AVFrame *frame = reader->frame;
  struct SwsContext *scaler;
  gsize size = (gsize) frame->width * frame->height * 3;
  guint old_len = reader->rgb->len;
  uint8_t *planes[1];
  int strides[1] = { frame->width * 3 };

  g_byte_array_set_size (reader->rgb, old_len + size);
  planes[0] = reader->rgb->data + old_len;
  scaler = sws_getContext (frame->width, frame->height, frame->format,
                           frame->width, frame->height, AV_PIX_FMT_RGB24,
                           SWS_BILINEAR | SWS_ACCURATE_RND, NULL, NULL, NULL);
  sws_scale (scaler, (const uint8_t * const *) frame->data, frame->linesize,
             0, frame->height, planes, strides);
  sws_freeContext (scaler);

  if (clip->frames == 0)
    reader->first_pts = frame->best_effort_timestamp;
  reader->last_pts = frame->best_effort_timestamp;
  clip->frames++;
}

static gboolean
drain (Reader      *reader,
       DecodedClip *clip,
       GError     **error)
{
  for (;;)
    {
      int ret = avcodec_receive_frame (reader->decoder, reader->frame);

      if (ret == AVERROR (EAGAIN) || ret == AVERROR_EOF)
        return TRUE;
      if (ret < 0)
        return fail (error, ret, "receive frame");
      append_rgb (reader, clip);
      av_frame_unref (reader->frame);
    }
}

static gboolean
read_all (Reader      *reader,
          const char  *path,
          DecodedClip *clip,
          GError     **error)
{
  const AVCodec *codec = NULL;
  AVDictionaryEntry *comment;
  AVStream *stream;
  int ret;

  ret = avformat_open_input (&reader->demuxer, path, NULL, NULL);
  if (ret < 0)
    return fail (error, ret, "open");
  ret = avformat_find_stream_info (reader->demuxer, NULL);
  if (ret < 0)
    return fail (error, ret, "stream info");
  ret = av_find_best_stream (reader->demuxer, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (ret < 0)
    return fail (error, ret, "video stream");
  reader->stream_index = ret;
  stream = reader->demuxer->streams[ret];

  comment = av_dict_get (reader->demuxer->metadata, "comment", NULL, 0);
  clip->comment = comment ? g_strdup (comment->value) : NULL;
  clip->codec = g_strdup (codec->name);

  reader->decoder = avcodec_alloc_context3 (codec);
  avcodec_parameters_to_context (reader->decoder, stream->codecpar);
  ret = avcodec_open2 (reader->decoder, codec, NULL);
  if (ret < 0)
    return fail (error, ret, "open decoder");
  clip->width = reader->decoder->width;
  clip->height = reader->decoder->height;

  while (av_read_frame (reader->demuxer, reader->packet) >= 0)
    {
      gboolean ok = TRUE;

      if (reader->packet->stream_index == reader->stream_index)
        ok = avcodec_send_packet (reader->decoder, reader->packet) >= 0
             && drain (reader, clip, error);
      av_packet_unref (reader->packet);
      if (!ok)
        return error == NULL || *error != NULL ? FALSE : fail (error, AVERROR_INVALIDDATA, "decode");
    }
  avcodec_send_packet (reader->decoder, NULL);
  if (!drain (reader, clip, error))
    return FALSE;

  if (clip->frames > 1)
    clip->frame_seconds = (reader->last_pts - reader->first_pts) * av_q2d (stream->time_base)
                          / (clip->frames - 1);
  return TRUE;
}

DecodedClip *
decoded_clip_read (const char *path,
                   GError    **error)
{
  DecodedClip *clip = g_new0 (DecodedClip, 1);
  Reader reader = { 0 };
  gboolean ok;

  reader.frame = av_frame_alloc ();
  reader.packet = av_packet_alloc ();
  reader.rgb = g_byte_array_new ();

  ok = read_all (&reader, path, clip, error);

  avcodec_free_context (&reader.decoder);
  avformat_close_input (&reader.demuxer);
  av_frame_free (&reader.frame);
  av_packet_free (&reader.packet);
  clip->rgb = g_byte_array_free (reader.rgb, FALSE);

  if (!ok)
    g_clear_pointer (&clip, decoded_clip_free);
  return clip;
}

void
decoded_clip_free (DecodedClip *clip)
{
  g_free (clip->codec);
  g_free (clip->comment);
  g_free (clip->rgb);
  g_free (clip);
}
