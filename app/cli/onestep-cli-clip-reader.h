/* onestep-cli-clip-reader.h: the frames of one training source, a video file
 * sampled at a frame rate or a folder of images taken in name order, each
 * fitted to the clip size. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>

G_BEGIN_DECLS

/* The entries of a folder but hidden ones, as paths in natural name order. */
GPtrArray *onestep_cli_list_folder (const char  *path,
                                    GError     **error);

typedef struct _OnestepCliClipReader OnestepCliClipReader;

/* A folder is read as image frames (every image gdk-pixbuf knows, in natural
 * name order: frame-2 before frame-10), anything else as a video that libav
 * decodes, whose frame k is the one shown at time k / fps. Frames come out
 * scaled and centre-cropped to width x height. */
OnestepCliClipReader *onestep_cli_clip_reader_open (const char  *path,
                                                    int          width,
                                                    int          height,
                                                    int          fps,
                                                    GError     **error);

/* The next frame; NULL at the end, with error set when reading failed. */
GdkPixbuf *onestep_cli_clip_reader_next (OnestepCliClipReader  *reader,
                                         GError               **error);

/* Frames returned so far. */
int onestep_cli_clip_reader_frames_read (OnestepCliClipReader *reader);

void onestep_cli_clip_reader_free (OnestepCliClipReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OnestepCliClipReader, onestep_cli_clip_reader_free)

G_END_DECLS
