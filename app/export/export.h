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

/* Called after each written frame; frames_total counts the whole output sequence
 * (ping-pong and repeats included). */
typedef void (*OnestepExportProgressFunc) (int      frames_written,
                                           int      frames_total,
                                           gpointer user_data);

/* The settings a clip was generated with, written into its file: the same fields with
 * the same types from the app and from onestep-cli. */
typedef struct {
  const char *model;           /* the model folder or checkpoint (written absolute) */
  const char *unet_file;       /* the UNet replacing the model's, NULL for its own */
  const char *sampler;         /* onestep_sampler_name () of the sampler used */
  guint64     seed;            /* at most G_MAXINT64, the largest JSON integer written */
  int         steps;
  int         frames;
  int         width;
  int         height;
  int         fps;
  int         motion_bucket_id;
  float       noise_aug_strength;
  double      crop_position;   /* where the image was cut to the clip's shape: 0 its left
                                * or top edge kept, 1 its right or bottom edge, 0.5 the
                                * middle (onestep-cli's --crop-position) */
} OnestepClipSettings;

typedef struct {
  OnestepExportFormat format;
  int fps;
  int loop_count;      /* how often the clip plays, 0 = forever. GIF: the loop field of
                        * the file. MP4/WebM cannot loop, so a count > 1 repeats the
                        * clip in the file; 0 writes it once. Ignored for PNG frames. */
  gboolean ping_pong;  /* forward then backward: 0..n-1 then n-2..1, so the clip loops
                        * without showing either end frame twice (2n-2 frames) */
  int quality;         /* 0 (smallest) .. 100 (best): x264/VP9 CRF, GIF palette size */
  gboolean replace;    /* an existing file (or folder of PNG frames) at the path is
                        * replaced once the export is complete; otherwise an existing
                        * path fails the export with G_IO_ERROR_EXISTS */
  /* Written into the file, may be NULL. Containers get them as one JSON object in the
   * "comment" tag; PNG frames as tEXt chunks plus a settings.json in the folder. */
  const OnestepClipSettings *settings;
  OnestepExportProgressFunc progress;  /* may be NULL */
  gpointer progress_data;
} OnestepExportOptions;

void onestep_export_options_init (OnestepExportOptions *options, OnestepExportFormat format);

/* The format a path's extension names: .mp4, .webm or .gif (any case), a folder of PNG
 * frames for a name without an extension; any other extension is
 * G_IO_ERROR_INVALID_ARGUMENT listing the formats. */
gboolean onestep_export_format_for_path (const char           *path,
                                         OnestepExportFormat  *format,
                                         GError              **error);

/* Whether this system's FFmpeg (or gdk-pixbuf) can write the format; the Flatpak runtime
 * before GNOME 49, for example, has no H.264 encoder. */
gboolean onestep_export_format_available (OnestepExportFormat format);

/* Human-readable name, e.g. "MP4 (H.264)". */
const char *onestep_export_format_name (OnestepExportFormat format);

/* Writes frames (frames x height x width RGB8) to path through a temporary name,
 * renamed when complete; a failed or cancelled export leaves nothing behind.
 * yuv420p needs even sizes, so MP4 and WebM pad an odd width or height by one
 * repeated edge pixel. A missing encoder gives G_IO_ERROR_NOT_SUPPORTED naming a
 * format that works instead. */
gboolean onestep_export_write (const char                 *path,
                               const guint8               *rgb,
                               int                         frames,
                               int                         width,
                               int                         height,
                               const OnestepExportOptions *options,
                               GCancellable               *cancellable,
                               GError                    **error);

G_END_DECLS
