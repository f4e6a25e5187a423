/* export-sequence.h: the order in which source frames are written. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Source frame indices for frames input frames: forward, then with ping_pong backward
 * without the two end frames (0..n-1, n-2..1), the whole repeated repeats times.
 * Stores the count in length. */
int *_onestep_export_sequence_new (int       frames,
                                   gboolean  ping_pong,
                                   int       repeats,
                                   int      *length);

G_END_DECLS
