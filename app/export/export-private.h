/* export-private.h: what the format writers of the export library share. */
#pragma once

#include "export.h"

G_BEGIN_DECLS

/* One export in progress: the source frames and the order to write them in. */
typedef struct {
  const char                 *path;      /* where the export goes, for messages */
  const guint8               *rgb;       /* frames x height x width RGB8 */
  int                         frames;
  int                         width;
  int                         height;
  const int                  *sequence;  /* source frame index of each output frame */
  int                         length;
  const OnestepExportOptions *options;
  const char                 *settings_json;  /* the settings as JSON, NULL if none */
} OnestepExportJob;

static inline const guint8 *
_onestep_export_job_frame (const OnestepExportJob *job,
                           int                     output_index)
{
  gsize frame_size = (gsize) job->width * job->height * 3;

  return job->rgb + frame_size * job->sequence[output_index];
}

/* Reports progress and checks for cancellation after output frame i was written. */
gboolean _onestep_export_job_frame_done (const OnestepExportJob *job,
                                         int                     output_index,
                                         GCancellable           *cancellable,
                                         GError                **error);

/* Whether libavformat/libavcodec here have the muxer and encoder for format. */
gboolean _onestep_export_video_available (OnestepExportFormat format);

/* Writes job to the file at path (a temporary name) with libavformat. */
gboolean _onestep_export_encode_video (const char             *path,
                                       const OnestepExportJob *job,
                                       GCancellable           *cancellable,
                                       GError                **error);

/* Writes job as frame-0001.png... plus settings.json into the existing folder dir. */
gboolean _onestep_export_write_png_folder (const char             *dir,
                                           const OnestepExportJob *job,
                                           GCancellable           *cancellable,
                                           GError                **error);

/* Adds text as a GIF comment extension just before the trailer of the GIF at path. */
gboolean _onestep_export_gif_add_comment (const char  *path,
                                          const char  *text,
                                          GError     **error);

G_END_DECLS
