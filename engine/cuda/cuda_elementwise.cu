// cuda_elementwise.cu: fill, activations, sums and broadcasts. Memory-bound
// grid-stride loops; every op may run in place (y == x).

#include <math.h>

#include "cuda_common.h"

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
__global__ void
geglu_kernel(float *y, const float *x, size_t T, size_t C)
{
  OS_CUDA_GRID_STRIDE(i, T * C)
  {
    size_t t = i / C, c = i % C;
    const float *row = x + t * 2 * C;
    y[i] = row[c] * gelu_of(row[C + c]);
  }
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

// x[g, r, c] += v[g, c]
__global__ void
add_row_vector_kernel(float *x, const float *v, size_t R, size_t C, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    size_t g = i / (R * C), c = i % C;
    x[i] += v[g * C + c];
  }
}

// x[n, c, p] += v[n, c]
__global__ void
add_channel_vector_kernel(float *x, const float *v, size_t P, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { x[i] += v[i / P]; }
}

// y[n, c, p] += bias[c] + residual[n, c, p]
__global__ void
bias_residual_kernel(float *y, const float *bias, const float *residual, size_t C, size_t P,
                     size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    float add = bias ? bias[(i / P) % C] : 0.0f;
    if (residual)
      add += residual[i];
    y[i] += add;
  }
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
  LAUNCH(geglu_kernel, (size_t)T * C, y, x, (size_t)T, (size_t)C);
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
  size_t n = (size_t)G * R * C;
  LAUNCH(add_row_vector_kernel, n, x, v, (size_t)R, (size_t)C, n);
}

void
os_cuda_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t n = (size_t)N * C * P;
  LAUNCH(add_channel_vector_kernel, n, x, v, (size_t)P, n);
}

void
os_cuda_bias_residual(os_cuda_backend *cb, float *y, const float *bias, const float *residual,
                      int N, int C, int P)
{
  if (!bias && !residual)
    return;
  size_t n = (size_t)N * C * P;
  LAUNCH(bias_residual_kernel, n, y, bias, residual, (size_t)C, (size_t)P, n);
}
