/* test_util.h: relative L2 error for the golden tests, with the common check
 * macro, and a counter of a generation's abort polls. */
#ifndef ONESTEP_GOLDEN_TEST_UTIL_H
#define ONESTEP_GOLDEN_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "onestep.h"
#include "test_check.h"

/* ||x - ref|| / ||ref|| over n values, accumulated in double. */
double relative_l2(const float *x, const float *ref, size_t n);

/* Abort polls of a generation, in all and per stage; the callback asks to stop
 * at poll number stop_at (never when 0). Pass poll_counter_progress and
 * poll_counter_abort as the request's callbacks with the counter as user data. */
typedef struct {
  onestep_stage stage;
  int polls, stop_at;
  int polls_in[ONESTEP_STAGE_DECODE + 1];
} poll_counter;

void poll_counter_progress(const onestep_progress *progress, void *counter);
bool poll_counter_abort(void *counter);

#endif
