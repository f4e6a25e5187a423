// cuda_launch.cuh: launch shorthands shared by the kernels' files. They expect
// the backend in a variable `cb`, and check every launch.
#ifndef ONESTEP_CUDA_LAUNCH_CUH
#define ONESTEP_CUDA_LAUNCH_CUH

#include "cuda_common.h"

// The device address and stored type behind a buffer pointer.
#define VIEW(p) os_cuda_view_of(cb, p)

// A grid-stride kernel over n elements.
#define LAUNCH(kernel, n, ...)                                                                 \
  do {                                                                                         \
    size_t launch_n_ = (n);                                                                    \
    if (launch_n_ == 0)                                                                        \
      break;                                                                                   \
    kernel<<<os_cuda_blocks(launch_n_), OS_CUDA_THREADS, 0, cb->stream>>>(__VA_ARGS__);        \
    os_cuda_check_launch(cb, #kernel);                                                         \
  } while (0)

// One block per row of len elements (OS_CUDA_ROW_LOOP).
#define LAUNCH_ROWS(kernel, rows, len, ...)                                                    \
  do {                                                                                         \
    if ((rows) == 0 || (len) == 0)                                                             \
      break;                                                                                   \
    kernel<<<(unsigned)(rows), os_cuda_row_threads(len), 0, cb->stream>>>(__VA_ARGS__);        \
    os_cuda_check_launch(cb, #kernel);                                                         \
  } while (0)

#endif
