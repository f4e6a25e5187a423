/* golden_compare.h: one tensor against its reference. */
#ifndef ONESTEP_GOLDEN_COMPARE_H
#define ONESTEP_GOLDEN_COMPARE_H

#include <stddef.h>

/* ||x - ref|| / ||ref|| (an all-zero reference: ||x - ref||), infinity for
 * NaN; *max_abs gets the largest absolute difference. */
double os_golden_rel_err(const float *x, const float *ref, size_t n, double *max_abs);

#endif
