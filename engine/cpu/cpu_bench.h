/* cpu_bench.h: the machine's own sgemm rate, the yardstick for `bench`. */
#ifndef ONESTEP_CPU_BENCH_H
#define ONESTEP_CPU_BENCH_H

/* GFLOP/s of an n x n x n cblas_sgemm on n_threads threads (0: all cores),
 * best of a few runs; 0 when the matrices cannot be allocated. */
double os_cpu_sgemm_gflops(int n, int n_threads);

#endif
