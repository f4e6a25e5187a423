// cuda_activation.cuh: activations and their derivatives, shared by the
// elementwise ops and the norms that fuse SiLU.
#ifndef ONESTEP_CUDA_ACTIVATION_CUH
#define ONESTEP_CUDA_ACTIVATION_CUH

#include <math.h>

__device__ __forceinline__ float
sigmoid_of(float x)
{
  return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ float
silu_of(float x)
{
  return x / (1.0f + expf(-x));
}

// d/dx x s(x) = s (1 + x (1 - s))
__device__ __forceinline__ float
silu_grad_of(float x)
{
  float s = sigmoid_of(x);
  return s * (1.0f + x * (1.0f - s));
}

// exact (erf) GELU
__device__ __forceinline__ float
gelu_of(float x)
{
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

// d/dx x Phi(x) = Phi(x) + x phi(x)
__device__ __forceinline__ float
gelu_grad_of(float x)
{
  float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
  return cdf + x * pdf;
}

// CLIP's x sigmoid(1.702 x)
#define QUICK_GELU_SLOPE 1.702f

__device__ __forceinline__ float
quick_gelu_of(float x)
{
  return x / (1.0f + expf(-QUICK_GELU_SLOPE * x));
}

__device__ __forceinline__ float
quick_gelu_grad_of(float x)
{
  float s = sigmoid_of(QUICK_GELU_SLOPE * x);
  return s * (1.0f + QUICK_GELU_SLOPE * x * (1.0f - s));
}

#endif
