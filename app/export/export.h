/* export.h: writing a generated clip to MP4 (H.264), WebM (VP9), GIF or PNG frames,
 * shared by onestep-cli and the app. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  ONESTEP_EXPORT_FORMAT_MP4,
  ONESTEP_EXPORT_FORMAT_WEBM,
  ONESTEP_EXPORT_FORMAT_GIF,
  ONESTEP_EXPORT_FORMAT_PNG_FOLDER,
} OnestepExportFormat;

typedef struct {
  OnestepExportFormat format;
  int fps;
  int loop_count;      /* GIF/WebM loops: 0 = forever */
  gboolean ping_pong;  /* forward then backward */
  int quality;         /* 0 (smallest) .. 100 (best) */
  /* Generation settings written into the file's metadata (key -> value), may be NULL. */
  GHashTable *metadata;
} OnestepExportOptions;

void onestep_export_options_init (OnestepExportOptions *options, OnestepExportFormat format);

/* .mp4, .webm, .gif, otherwise a folder of PNG frames. */
OnestepExportFormat onestep_export_format_for_path (const char *path);

/* Writes frames (frames x height x width RGB8) to path through a temporary name,
 * renamed when complete; a failed or cancelled export leaves nothing behind. */
gboolean onestep_export_write (const char                 *path,
                               const guint8               *rgb,
                               int                         frames,
                               int                         width,
                               int                         height,
                               const OnestepExportOptions *options,
                               GCancellable               *cancellable,
                               GError                    **error);

G_END_DECLS
