/* golden_compare.c: see golden_compare.h. */
#include "golden_compare.h"

#include <math.h>

double
os_golden_rel_err(const float *x, const float *ref, size_t n, double *max_abs)
{
  double diff2 = 0.0, ref2 = 0.0, largest = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)x[i] - ref[i];
    diff2 += d * d;
    ref2 += (double)ref[i] * ref[i];
    largest = fabs(d) > largest ? fabs(d) : largest;
  }
  *max_abs = largest;
  double rel = ref2 > 0.0 ? sqrt(diff2 / ref2) : sqrt(diff2);
  return isnan(rel) ? INFINITY : rel;
}
