// cuda_types.cuh: float <-> 16-bit conversion for templated kernels, and the
// element access through a buffer's view that the storage-aware kernels use.
#ifndef ONESTEP_CUDA_TYPES_CUH
#define ONESTEP_CUDA_TYPES_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_common.h"

template <typename T> __device__ __forceinline__ T os_from_float(float v);

template <> __device__ __forceinline__ float
os_from_float<float>(float v)
{
  return v;
}

template <> __device__ __forceinline__ __half
os_from_float<__half>(float v)
{
  return __float2half_rn(v);
}

template <> __device__ __forceinline__ __nv_bfloat16
os_from_float<__nv_bfloat16>(float v)
{
  return __float2bfloat16_rn(v);
}

// Element i of a view as float32. The type is the same for every thread of a
// launch, so the branch costs no divergence, and one kernel serves every
// combination of its buffers' types (an op with three buffers would otherwise
// need 27 instantiations); memory-bound kernels do not notice the compare.
__device__ __forceinline__ float
os_load(os_cuda_view v, size_t i)
{
  switch (v.type) {
  case OS_CUDA_STORE_F16:
    return __half2float(((const __half *)v.ptr)[i]);
  case OS_CUDA_STORE_BF16:
    return __bfloat162float(((const __nv_bfloat16 *)v.ptr)[i]);
  default:
    return ((const float *)v.ptr)[i];
  }
}

// Element i of a view = x, rounded to nearest even in a 16-bit type.
__device__ __forceinline__ void
os_store(os_cuda_view v, size_t i, float x)
{
  switch (v.type) {
  case OS_CUDA_STORE_F16:
    ((__half *)v.ptr)[i] = __float2half_rn(x);
    break;
  case OS_CUDA_STORE_BF16:
    ((__nv_bfloat16 *)v.ptr)[i] = __float2bfloat16_rn(x);
    break;
  default:
    ((float *)v.ptr)[i] = x;
  }
}

// The view of element i onwards (NULL stays NULL).
__host__ __device__ __forceinline__ os_cuda_view
os_view_at(os_cuda_view v, size_t i)
{
  if (!v.ptr)
    return v;
  return os_cuda_view{ (char *)v.ptr + i * (v.type == OS_CUDA_STORE_F32 ? 4 : 2), v.type };
}

#endif
