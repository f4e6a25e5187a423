/* decode.h: reads an exported clip back with libavformat/libavcodec for the tests. */
#pragma once

#include <glib.h>

typedef struct {
  char    *codec;          /* decoder name, e.g. "h264" */
  char    *comment;        /* the container's "comment" tag, or NULL */
  int      width;
  int      height;
  int      frames;         /* decoded frames */
  double   frame_seconds;  /* mean time between decoded frames */
  guint8  *rgb;            /* frames x height x width RGB8 */
} DecodedClip;

DecodedClip *decoded_clip_read (const char *path, GError **error);
void         decoded_clip_free (DecodedClip *clip);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DecodedClip, decoded_clip_free)
