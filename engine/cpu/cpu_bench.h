/* cpu_bench.h: the machine's own sgemm rate, the yardstick for `bench`, and
 * the CPU backend's two ways of computing conv2d timed side by side. */
#ifndef ONESTEP_CPU_BENCH_H
#define ONESTEP_CPU_BENCH_H

#include <stdbool.h>

#include "backend.h"

/* GFLOP/s of an n x n x n cblas_sgemm on n_threads threads (0: all cores),
 * best of a few runs; 0 when the matrices cannot be allocated. */
double os_cpu_sgemm_gflops(int n, int n_threads);

/* One conv2d of SVD's UNet, VAE or CLIP image encoder, at a size that takes
 * a fraction of a second on a small CPU. */
typedef struct {
  const char *name;
  int N, Cin, H, W, Cout, K, stride, pad_top, pad_left, pad_bottom, pad_right;
  bool residual; /* fused residual add, as the resnets' second convolution */
} os_cpu_conv_case;

extern const os_cpu_conv_case os_cpu_conv_cases[];
extern const int os_cpu_conv_n_cases;

/* GFLOP/s of one way: by the wall clock, and per second of CPU time of the
 * whole process (steadier where other processes share the cores; on one
 * thread the two agree on an idle machine). */
typedef struct {
  double wall, cpu;
} os_cpu_conv_rate;

typedef struct {
  double gflop;             /* work of one call */
  os_cpu_conv_rate lowered; /* im2col + OpenBLAS */
  os_cpu_conv_rate onednn;  /* oneDNN direct kernel with its reorders; 0: no such kernel */
  bool onednn_chosen;       /* which of the two the backend's conv2d uses */
} os_cpu_conv_timing;

/* Best of `runs` calls of each way on the CPU backend `be` (with its thread
 * count), alternating so that other load on the machine hits both alike.
 * False when the tensors cannot be allocated. */
bool os_cpu_conv_bench(os_backend *be, const os_cpu_conv_case *c, int runs,
                       os_cpu_conv_timing *timing);

#endif
