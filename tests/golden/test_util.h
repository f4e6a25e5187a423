/* test_util.h: relative L2 error for the golden tests, with the common check
 * macro. */
#ifndef ONESTEP_GOLDEN_TEST_UTIL_H
#define ONESTEP_GOLDEN_TEST_UTIL_H

#include <stddef.h>

#include "test_check.h"

/* ||x - ref|| / ||ref|| over n values, accumulated in double. */
double relative_l2(const float *x, const float *ref, size_t n);

#endif
