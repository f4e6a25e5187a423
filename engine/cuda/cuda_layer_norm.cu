// cuda_layer_norm.cu: LayerNorm over the last dim of x [T, C]; one block per
// row, two passes (mean, then squared deviations) for accuracy. May run in
// place. The forward reads and writes any stored type; statistics are fp32.
// The backward recomputes each row's statistics the same way; dgamma and
// dbeta are column sums (sum_rows) of dy xhat and dy.

#include "cuda_common.h"
#include "cuda_reduce.cuh"
#include "cuda_types.cuh"

// The row's mean and 1 / sqrt(var + eps), as every thread of the block sees them.
__device__ __forceinline__ void
row_statistics(os_cuda_view row, int C, float eps, float *mean_out, float *rstd_out)
{
  float sum = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    sum += os_load(row, c);
  float mean = os_block_sum(sum) / C;
  float sq = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float d = os_load(row, c) - mean;
    sq += d * d;
  }
  *mean_out = mean;
  *rstd_out = rsqrtf(os_block_sum(sq) / C + eps);
}

__global__ void
layer_norm_kernel(os_cuda_view y, os_cuda_view x, os_cuda_view gamma, os_cuda_view beta, int C,
                  float eps)
{
  os_cuda_view row = os_view_at(x, (size_t)blockIdx.x * C);
  os_cuda_view out = os_view_at(y, (size_t)blockIdx.x * C);
  float mean, rstd;
  row_statistics(row, C, eps, &mean, &rstd);
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float v = (os_load(row, c) - mean) * rstd;
    os_store(out, c,
             v * (gamma.ptr ? os_load(gamma, c) : 1.0f) + (beta.ptr ? os_load(beta, c) : 0.0f));
  }
}

// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dy
// gamma (dx may be NULL); dy_xhat (may be NULL) = dy xhat, for dgamma.
__global__ void
layer_norm_backward_kernel(float *dx, float *dy_xhat, const float *dy, const float *x,
                           const float *gamma, int C, float eps)
{
  size_t base = (size_t)blockIdx.x * C;
  const float *row = x + base, *grad = dy + base;
  float mean, rstd;
  row_statistics(os_cuda_view{ (void *)row, OS_CUDA_STORE_F32 }, C, eps, &mean, &rstd);
  double dxhat_sum = 0.0, dxhat_xhat_sum = 0.0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float xhat = (row[c] - mean) * rstd;
    float dxhat = grad[c] * (gamma ? gamma[c] : 1.0f);
    dxhat_sum += dxhat;
    dxhat_xhat_sum += (double)dxhat * xhat;
    if (dy_xhat)
      dy_xhat[base + c] = grad[c] * xhat;
  }
  float mean_dxhat = (float)(os_block_sum(dxhat_sum) / C);
  float mean_dxhat_xhat = (float)(os_block_sum(dxhat_xhat_sum) / C);
  if (!dx)
    return;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float xhat = (row[c] - mean) * rstd;
    float dxhat = grad[c] * (gamma ? gamma[c] : 1.0f);
    dx[base + c] += rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
  }
}

static int
threads_for(int C)
{
  return C >= 1024 ? 256 : 128;
}

void
os_cuda_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                   const float *beta, int T, int C, float eps)
{
  os_cuda_backend *cb = os_cuda(be);
  if (T <= 0 || C <= 0)
    return;
  // Rows go on grid.x (up to 2^31 - 1), so any token count fits one launch.
  layer_norm_kernel<<<T, threads_for(C), 0, cb->stream>>>(
      os_cuda_view_of(cb, y), os_cuda_view_of(cb, x), os_cuda_view_of(cb, gamma),
      os_cuda_view_of(cb, beta), C, eps);
  os_cuda_check_launch(cb, "layer_norm");
}

void
os_cuda_layer_norm_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x, const float *gamma, int T, int C,
                            float eps)
{
  os_cuda_backend *cb = os_cuda(be);
  if (T <= 0 || C <= 0)
    return;
  float *dy_xhat = NULL;
  if (dgamma &&
      !(dy_xhat = (float *)os_cuda_scratch(cb, (size_t)T * C * sizeof(float), "layer_norm dy xhat")))
    return;
  if (dx || dgamma) {
    layer_norm_backward_kernel<<<T, threads_for(C), 0, cb->stream>>>(dx, dy_xhat, dy, x, gamma, C,
                                                                     eps);
    os_cuda_check_launch(cb, "layer_norm_backward");
  }
  if (dgamma)
    os_cuda_sum_rows(be, dgamma, dy_xhat, 1, T, C);
  if (dbeta)
    os_cuda_sum_rows(be, dbeta, dy, 1, T, C);
  os_cuda_free(be, dy_xhat);
}
