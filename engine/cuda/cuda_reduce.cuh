// cuda_reduce.cuh: warp and block sums and maxima shared by the norm and softmax kernels.
// Fixed reduction trees, so results are bitwise reproducible run to run.
#ifndef ONESTEP_CUDA_REDUCE_CUH
#define ONESTEP_CUDA_REDUCE_CUH

__device__ __forceinline__ float
os_warp_sum(float v)
{
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float
os_warp_max(float v)
{
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum (or max) over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the total. Uses 33 floats of shared memory.
template <bool is_max>
__device__ __forceinline__ float
os_block_reduce(float v)
{
  __shared__ float partial[32];
  __shared__ float total;
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = is_max ? os_warp_max(v) : os_warp_sum(v);
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < (int)(blockDim.x / 32) ? partial[lane] : (is_max ? -INFINITY : 0.0f);
    s = is_max ? os_warp_max(s) : os_warp_sum(s);
    if (lane == 0)
      total = s;
  }
  __syncthreads();
  float result = total;
  __syncthreads(); // partial/total may be reused by a following call
  return result;
}

__device__ __forceinline__ float
os_block_sum(float v)
{
  return os_block_reduce<false>(v);
}

__device__ __forceinline__ float
os_block_max(float v)
{
  return os_block_reduce<true>(v);
}

#endif
