/* bench_conv.c: the CPU backend's conv2d, its own im2col + OpenBLAS lowering
 * against oneDNN's direct kernels, on SVD-shaped convolutions; with the
 * machine's sgemm rate as the yardstick.
 * Usage: bench-conv [threads (0: all cores)] [runs] */
#include <stdio.h>
#include <stdlib.h>

#include "cpu_bench.h"

int
main(int argc, char **argv)
{
  int threads = argc > 1 ? atoi(argv[1]) : 0, runs = argc > 2 ? atoi(argv[2]) : 5;
  onestep_error error = { 0 };
  os_backend *be = os_backend_cpu_new(threads, &error);
  if (!be) {
    fprintf(stderr, "bench-conv: %s\n", error.message);
    return 1;
  }
  printf("sgemm 2048^3: %.1f GFLOP/s\n", os_cpu_sgemm_gflops(2048, threads));
  printf("GFLOP/s: best wall-clock rate; in brackets GFLOP per CPU-second, all threads\n");
  printf("%-38s %6s %16s %16s %6s  %s\n", "convolution", "GFLOP", "lowered", "oneDNN",
         "ratio", "conv2d uses");
  for (int i = 0; i < os_cpu_conv_n_cases; i++) {
    const os_cpu_conv_case *c = &os_cpu_conv_cases[i];
    os_cpu_conv_timing t;
    if (!os_cpu_conv_bench(be, c, runs, &t)) {
      fprintf(stderr, "bench-conv: out of memory for %s\n", c->name);
      return 1;
    }
    bool onednn = t.onednn_chosen && t.onednn.wall > 0.0;
    printf("%-38s %6.2f %7.1f (%6.1f) %7.1f (%6.1f) %6.2f  %s\n", c->name, t.gflop,
           t.lowered.wall, t.lowered.cpu, t.onednn.wall, t.onednn.cpu,
           t.onednn.wall / t.lowered.wall, onednn ? "oneDNN" : "lowered");
    fflush(stdout);
  }
  be->ops->destroy(be);
  return 0;
}
