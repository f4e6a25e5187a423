/* cpu_bench.c: timing a square sgemm. */
#include "cpu_bench.h"

/* Before cblas.h: OpenBLAS pulls in <complex.h>, whose macro I clashes
 * with backend.h's parameter names. */
#include "cpu_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#define RUNS 4

static double
now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double
os_cpu_sgemm_gflops(int n, int n_threads)
{
  size_t count = (size_t)n * n;
  float *a = malloc(sizeof(float) * count), *b = malloc(sizeof(float) * count),
        *c = malloc(sizeof(float) * count);
  double best = 0.0;
  if (a && b && c) {
    for (size_t i = 0; i < count; i++) {
      a[i] = (float)(i % 7) * 0.25f - 0.75f;
      b[i] = (float)(i % 5) * 0.5f - 1.0f;
    }
    /* OpenBLAS's own threading: the machine's best rate, the yardstick. */
    openblas_set_num_threads(n_threads > 0 ? n_threads : omp_get_num_procs());
    /* The first run also warms OpenBLAS's threads and buffers; it counts
     * only if no later run is faster. */
    for (int run = 0; run < RUNS; run++) {
      double start = now_seconds();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                  c, n);
      double seconds = now_seconds() - start;
      double gflops = 2.0 * n * n * (double)n / seconds * 1e-9;
      if (gflops > best)
        best = gflops;
    }
  }
  os_cpu_blas_single_thread(); /* what the backend's ops expect */
  free(a);
  free(b);
  free(c);
  return best;
}
