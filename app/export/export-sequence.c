/* export-sequence.c: forward, ping-pong and repeated frame orders. */
#include "export-sequence.h"

int *
_onestep_export_sequence_new (int       frames,
                              gboolean  ping_pong,
                              int       repeats,
                              int      *length)
{
  int backward = (ping_pong && frames > 2) ? frames - 2 : 0;
  int cycle = frames + backward;
  int *sequence;
  int n = 0;

  g_return_val_if_fail (frames > 0 && repeats > 0, NULL);

  sequence = g_new (int, (gsize) cycle * repeats);
  for (int r = 0; r < repeats; r++)
    {
      for (int i = 0; i < frames; i++)
        sequence[n++] = i;
      for (int i = 0; i < backward; i++)
        sequence[n++] = frames - 2 - i;
    }

  *length = n;
  return sequence;
}
