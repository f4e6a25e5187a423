// cuda_layout.cu: data movement (permute_0213, upsample_nearest, concat_channels).
// One thread per output element, reads gathered; all memory-bound.

#include "cuda_common.h"

// y[a][c][b][i] = x[a][b][c][i] for x [A, Bd, Cd, I]: swaps the middle two axes
// (tokens <-> heads, frames <-> pixels).
__global__ void
permute_0213_kernel(float *y, const float *x, size_t Bd, size_t Cd, size_t I, size_t n)
{
  OS_CUDA_GRID_STRIDE(o, n)
  {
    size_t i = o % I;
    size_t rest = o / I;
    size_t b = rest % Bd;
    rest /= Bd;
    size_t c = rest % Cd;
    size_t a = rest / Cd;
    y[o] = x[((a * Bd + b) * Cd + c) * I + i];
  }
}

// Nearest-neighbour resize: source index floor(dst * in / out), as PyTorch's "nearest".
__global__ void
upsample_nearest_kernel(float *y, const float *x, size_t H, size_t W, size_t Ho, size_t Wo,
                        size_t n)
{
  OS_CUDA_GRID_STRIDE(o, n)
  {
    size_t ox = o % Wo;
    size_t oy = (o / Wo) % Ho;
    size_t plane = o / (Wo * Ho);
    y[o] = x[plane * H * W + (oy * H / Ho) * W + ox * W / Wo];
  }
}

// y [N, Ca+Cb, P] = concat(a [N, Ca, P], b [N, Cb, P]) along channels.
__global__ void
concat_channels_kernel(float *y, const float *a, size_t Ca, const float *b, size_t Cb, size_t P,
                       size_t n)
{
  OS_CUDA_GRID_STRIDE(o, n)
  {
    size_t p = o % P;
    size_t c = (o / P) % (Ca + Cb);
    size_t img = o / (P * (Ca + Cb));
    y[o] = c < Ca ? a[(img * Ca + c) * P + p] : b[(img * Cb + (c - Ca)) * P + p];
  }
}

void
os_cuda_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t n = (size_t)A * Bd * Cd * I;
  if (n == 0)
    return;
  permute_0213_kernel<<<os_cuda_blocks(n), OS_CUDA_THREADS, 0, cb->stream>>>(y, x, Bd, Cd, I, n);
  os_cuda_check_launch(cb, "permute_0213");
}

void
os_cuda_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                         int Ho, int Wo)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t n = (size_t)N * C * Ho * Wo;
  if (n == 0)
    return;
  upsample_nearest_kernel<<<os_cuda_blocks(n), OS_CUDA_THREADS, 0, cb->stream>>>(y, x, H, W, Ho,
                                                                                 Wo, n);
  os_cuda_check_launch(cb, "upsample_nearest");
}

void
os_cuda_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b, int Cb,
                        int N, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t n = (size_t)N * (Ca + Cb) * P;
  if (n == 0)
    return;
  concat_channels_kernel<<<os_cuda_blocks(n), OS_CUDA_THREADS, 0, cb->stream>>>(y, a, Ca, b, Cb,
                                                                                P, n);
  os_cuda_check_launch(cb, "concat_channels");
}
