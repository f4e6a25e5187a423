// cuda_layer_norm.cu: LayerNorm over the last dim of x [T, C]; one block per
// row, two passes (mean, then squared deviations) for accuracy. May run in place.

#include "cuda_common.h"
#include "cuda_reduce.cuh"

__global__ void
layer_norm_kernel(float *y, const float *x, const float *gamma, const float *beta, int C,
                  float eps)
{
  const float *row = x + (size_t)blockIdx.x * C;
  float *out = y + (size_t)blockIdx.x * C;
  float sum = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    sum += row[c];
  float mean = os_block_sum(sum) / C;
  float sq = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float d = row[c] - mean;
    sq += d * d;
  }
  float rstd = rsqrtf(os_block_sum(sq) / C + eps);
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float v = (row[c] - mean) * rstd;
    out[c] = v * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
  }
}

void
os_cuda_layer_norm(os_backend *be, float *y, const float *x, const float *gamma,
                   const float *beta, int T, int C, float eps)
{
  os_cuda_backend *cb = os_cuda(be);
  if (T <= 0 || C <= 0)
    return;
  int threads = C >= 1024 ? 256 : 128;
  // Rows go on grid.x (up to 2^31 - 1), so any token count fits one launch.
  layer_norm_kernel<<<T, threads, 0, cb->stream>>>(y, x, gamma, beta, C, eps);
  os_cuda_check_launch(cb, "layer_norm");
}
