// cuda_elementwise.cu: fill, activations, sums and broadcasts. Memory-bound
// grid-stride loops; every op may run in place (y == x).

#include <math.h>

#include "cuda_common.h"

#define LAUNCH_ROWS(kernel, rows, len, ...)                                                    \
  do {                                                                                         \
    if ((rows) == 0 || (len) == 0)                                                             \
      break;                                                                                   \
    kernel<<<(unsigned)(rows), os_cuda_row_threads(len), 0, cb->stream>>>(__VA_ARGS__);        \
    os_cuda_check_launch(cb, #kernel);                                                         \
  } while (0)

#define LAUNCH(kernel, n, ...)                                                                 \
  do {                                                                                         \
    size_t launch_n_ = (n);                                                                    \
    if (launch_n_ == 0)                                                                        \
      break;                                                                                   \
    kernel<<<os_cuda_blocks(launch_n_), OS_CUDA_THREADS, 0, cb->stream>>>(__VA_ARGS__);        \
    os_cuda_check_launch(cb, #kernel);                                                         \
  } while (0)

// ----------------------------------------------------------------------------
// kernels

__global__ void
fill_kernel(float *y, float value, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = value; }
}

__device__ __forceinline__ float
silu_of(float x)
{
  return x / (1.0f + expf(-x));
}

__device__ __forceinline__ float
gelu_of(float x)
{
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

__global__ void
silu_kernel(float *y, const float *x, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = silu_of(x[i]); }
}

__global__ void
gelu_kernel(float *y, const float *x, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = gelu_of(x[i]); }
}

// CLIP's activation: x * sigmoid(1.702 x).
__global__ void
quick_gelu_kernel(float *y, const float *x, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = x[i] / (1.0f + expf(-1.702f * x[i])); }
}

// y[t, c] = x[t, c] * gelu(x[t, C + c]): the feed-forward gate of the UNet.
// One block per token row.
__global__ void
geglu_kernel(float *y, const float *x, unsigned C)
{
  const float *row = x + (size_t)blockIdx.x * 2 * C;
  float *out = y + (size_t)blockIdx.x * C;
  OS_CUDA_ROW_LOOP(c, C) { out[c] = row[c] * gelu_of(row[C + c]); }
}

__global__ void
add_kernel(float *y, const float *a, const float *b, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = a[i] + b[i]; }
}

__global__ void
blend_kernel(float *y, const float *a, const float *b, float alpha, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = alpha * a[i] + (1.0f - alpha) * b[i]; }
}

__global__ void
scale_kernel(float *y, const float *x, float alpha, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] = alpha * x[i]; }
}

// x[g, r, c] += v[g, c]; one block per row (g, r).
__global__ void
add_row_vector_kernel(float *x, const float *v, unsigned R, unsigned C)
{
  float *row = x + (size_t)blockIdx.x * C;
  const float *vg = v + (size_t)(blockIdx.x / R) * C;
  OS_CUDA_ROW_LOOP(c, C) { row[c] += vg[c]; }
}

// x[n, c, p] += v[n, c]; one block per (n, c).
__global__ void
add_channel_vector_kernel(float *x, const float *v, unsigned P)
{
  float *row = x + (size_t)blockIdx.x * P;
  float add = v[blockIdx.x];
  OS_CUDA_ROW_LOOP(p, P) { row[p] += add; }
}

// y[n, c, p] += bias[c] + residual[n, c, p]; one block per (n, c).
__global__ void
bias_residual_kernel(float *y, const float *bias, const float *residual, unsigned C, unsigned P)
{
  size_t base = (size_t)blockIdx.x * P;
  float add = bias ? bias[blockIdx.x % C] : 0.0f;
  OS_CUDA_ROW_LOOP(p, P) { y[base + p] += add + (residual ? residual[base + p] : 0.0f); }
}

// ----------------------------------------------------------------------------
// ops

void
os_cuda_fill(os_backend *be, float *dst, float value, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_derived_invalidate(cb, dst, n * sizeof(float));
  LAUNCH(fill_kernel, n, dst, value, n);
}

void
os_cuda_silu(os_backend *be, float *y, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(silu_kernel, n, y, x, n);
}

void
os_cuda_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(gelu_kernel, n, y, x, n);
}

void
os_cuda_quick_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(quick_gelu_kernel, n, y, x, n);
}

void
os_cuda_geglu(os_backend *be, float *y, const float *x, int T, int C)
{
  os_cuda_backend *cb = os_cuda(be);
  // Rows of y overlap later rows of x, so in place goes through scratch.
  float *out = y == x ? (float *)os_cuda_scratch(cb, (size_t)T * C * sizeof(float), "geglu") : y;
  if (!out)
    return;
  LAUNCH_ROWS(geglu_kernel, T, C, out, x, (unsigned)C);
  if (out != y) {
    cudaMemcpyAsync(y, out, (size_t)T * C * sizeof(float), cudaMemcpyDeviceToDevice, cb->stream);
    os_cuda_check_launch(cb, "geglu copy");
    os_cuda_free(be, out);
  }
}

void
os_cuda_add(os_backend *be, float *y, const float *a, const float *b, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(add_kernel, n, y, a, b, n);
}

void
os_cuda_blend(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(blend_kernel, n, y, a, b, alpha, n);
}

void
os_cuda_scale(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(scale_kernel, n, y, x, alpha, n);
}

void
os_cuda_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(add_row_vector_kernel, (size_t)G * R, C, x, v, (unsigned)R, (unsigned)C);
}

void
os_cuda_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(add_channel_vector_kernel, (size_t)N * C, P, x, v, (unsigned)P);
}

void
os_cuda_bias_residual(os_cuda_backend *cb, float *y, const float *bias, const float *residual,
                      int N, int C, int P)
{
  if (!bias && !residual)
    return;
  LAUNCH_ROWS(bias_residual_kernel, (size_t)N * C, P, y, bias, residual, (unsigned)C,
              (unsigned)P);
}
