// cuda_types.cuh: float -> GEMM operand type conversion for templated kernels.
#ifndef ONESTEP_CUDA_TYPES_CUH
#define ONESTEP_CUDA_TYPES_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

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

#endif
