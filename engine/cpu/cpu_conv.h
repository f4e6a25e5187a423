/* cpu_conv.h: the two ways the CPU backend computes conv2d (arguments as
 * backend.h's conv2d, operands already rounded if wanted). os_cpu_conv2d
 * picks one; the bench (cpu_bench.c) times each. */
#ifndef ONESTEP_CPU_CONV_H
#define ONESTEP_CPU_CONV_H

#include "cpu_internal.h"

/* im2col bands and single-threaded OpenBLAS sgemms over OpenMP workers. */
void os_cpu_conv2d_lowered(os_backend *be, float *y, const float *x, const float *W,
                           const float *bias, const float *residual, int N, int Cin, int H,
                           int Wd, int Cout, int KH, int KW, int stride, int pad_top,
                           int pad_left, int pad_bottom, int pad_right);

/* oneDNN's direct convolution in its blocked layouts, with reorders from and
 * to NCHW. Only when oneDNN offers a JIT direct kernel for the shape (those
 * sum every output in one fixed order, whatever the thread count); returns
 * false having written nothing otherwise (and, should oneDNN fail midway,
 * false too: the caller's recomputation overwrites all of y). Always false
 * in a build without oneDNN (cpu_conv_onednn_none.c). Keeps up to 192 MiB
 * of blocked copies between calls, and its kernels, for the process. */
bool os_cpu_conv2d_onednn(os_backend *be, float *y, const float *x, const float *W,
                          const float *bias, const float *residual, int N, int Cin, int H,
                          int Wd, int Cout, int KH, int KW, int stride, int pad_top,
                          int pad_left, int pad_bottom, int pad_right);

/* The most blocked input + output bytes one oneDNN call takes (larger
 * convolutions go in steps of images or bands of rows); 0 restores the
 * default (64 MiB). For tests, which run the steps on small shapes. */
void os_cpu_conv2d_onednn_set_step_bytes(size_t bytes);

/* Whether conv2d hands a convolution of this kind to oneDNN (it still falls
 * back to the lowering when oneDNN has no direct kernel for the shape). A
 * rule on the kind of convolution only, from the bench's measurements. */
bool os_cpu_conv2d_prefers_onednn(int Cin, int Cout, int KH, int KW, int stride);

#endif
