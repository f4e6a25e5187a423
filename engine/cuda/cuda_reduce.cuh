// cuda_reduce.cuh: warp and block sums and maxima shared by the norm and softmax kernels.
// Fixed reduction trees, so results are bitwise reproducible run to run.
#ifndef ONESTEP_CUDA_REDUCE_CUH
#define ONESTEP_CUDA_REDUCE_CUH

template <typename T>
__device__ __forceinline__ T
os_warp_sum(T v)
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

// Sum (or max, float only) over the block (blockDim.x a multiple of 32, at
// most 1024); every thread gets the total. Uses 33 values of shared memory.
template <typename T, bool is_max>
__device__ __forceinline__ T
os_warp_reduce(T v)
{
  if constexpr (is_max)
    return os_warp_max(v);
  else
    return os_warp_sum(v);
}

template <typename T, bool is_max>
__device__ __forceinline__ T
os_block_reduce(T v)
{
  __shared__ T partial[32];
  __shared__ T total;
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = os_warp_reduce<T, is_max>(v);
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T s = lane < (int)(blockDim.x / 32) ? partial[lane] : (is_max ? (T)-INFINITY : (T)0);
    s = os_warp_reduce<T, is_max>(s);
    if (lane == 0)
      total = s;
  }
  __syncthreads();
  T result = total;
  __syncthreads(); // partial/total may be reused by a following call
  return result;
}

// float, or double where a reduction must not lose digits (dot, loss, gradient sums)
template <typename T>
__device__ __forceinline__ T
os_block_sum(T v)
{
  return os_block_reduce<T, false>(v);
}

__device__ __forceinline__ float
os_block_max(float v)
{
  return os_block_reduce<float, true>(v);
}

#endif
