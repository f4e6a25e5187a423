/* test_util.c: see test_util.h. */
#include "test_util.h"

#include <math.h>

double relative_l2(const float *x, const float *ref, size_t n)
{
  double diff2 = 0.0, ref2 = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)x[i] - ref[i];
    diff2 += d * d;
    ref2 += (double)ref[i] * ref[i];
  }
  return sqrt(diff2 / ref2);
}

void
poll_counter_progress(const onestep_progress *progress, void *counter)
{
  ((poll_counter *)counter)->stage = progress->stage;
}

bool
poll_counter_abort(void *counter)
{
  poll_counter *c = counter;
  if (c->stage <= ONESTEP_STAGE_DECODE)
    c->polls_in[c->stage]++;
  return ++c->polls == c->stop_at;
}
