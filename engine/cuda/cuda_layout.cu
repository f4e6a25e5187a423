// cuda_layout.cu: data movement (permute_0213, upsample_nearest, concat_channels).
// One block per output row: indices are derived once per row, then the row
// is copied with coalesced reads and writes.

#include "cuda_common.h"

// y[a][c][b][i] = x[a][b][c][i] for x [A, Bd, Cd, I]: swaps the middle two axes
// (tokens <-> heads, frames <-> pixels). Output row (a, c, b).
__global__ void
permute_0213_kernel(float *y, const float *x, unsigned Bd, unsigned Cd, unsigned I)
{
  unsigned row = blockIdx.x;
  unsigned b = row % Bd, c = (row / Bd) % Cd, a = row / (Bd * Cd);
  const float *src = x + (((size_t)a * Bd + b) * Cd + c) * I;
  float *dst = y + (size_t)row * I;
  OS_CUDA_ROW_LOOP(i, I) { dst[i] = src[i]; }
}

// PyTorch's nearest index for an explicit output size: the scale is the
// float in/out and the product is floored in float (as the CPU backend does;
// one IEEE multiply, so both agree bit for bit).
__device__ __forceinline__ unsigned
nearest_source(unsigned dst, unsigned in, unsigned out)
{
  float scale = (float)in / (float)out;
  unsigned src = (unsigned)floorf((float)dst * scale);
  return src < in - 1 ? src : in - 1;
}

// Nearest-neighbour resize; output row (plane, oy).
__global__ void
upsample_nearest_kernel(float *y, const float *x, unsigned H, unsigned W, unsigned Ho,
                        unsigned Wo)
{
  unsigned row = blockIdx.x;
  unsigned oy = row % Ho, plane = row / Ho;
  const float *src = x + ((size_t)plane * H + nearest_source(oy, H, Ho)) * W;
  float *dst = y + (size_t)row * Wo;
  OS_CUDA_ROW_LOOP(ox, Wo) { dst[ox] = src[nearest_source(ox, W, Wo)]; }
}

// y [N, Ca+Cb, P] = concat(a [N, Ca, P], b [N, Cb, P]) along channels.
// Output row (n, c).
__global__ void
concat_channels_kernel(float *y, const float *a, unsigned Ca, const float *b, unsigned Cb,
                       unsigned P)
{
  unsigned row = blockIdx.x;
  unsigned c = row % (Ca + Cb), img = row / (Ca + Cb);
  const float *src = c < Ca ? a + ((size_t)img * Ca + c) * P : b + ((size_t)img * Cb + (c - Ca)) * P;
  float *dst = y + (size_t)row * P;
  OS_CUDA_ROW_LOOP(p, P) { dst[p] = src[p]; }
}

void
os_cuda_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t rows = (size_t)A * Cd * Bd;
  if (rows == 0 || I <= 0)
    return;
  permute_0213_kernel<<<(unsigned)rows, os_cuda_row_threads(I), 0, cb->stream>>>(y, x, Bd, Cd, I);
  os_cuda_check_launch(cb, "permute_0213");
}

void
os_cuda_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                         int Ho, int Wo)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t rows = (size_t)N * C * Ho;
  if (rows == 0 || Wo <= 0)
    return;
  upsample_nearest_kernel<<<(unsigned)rows, os_cuda_row_threads(Wo), 0, cb->stream>>>(y, x, H, W,
                                                                                     Ho, Wo);
  os_cuda_check_launch(cb, "upsample_nearest");
}

void
os_cuda_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b, int Cb,
                        int N, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t rows = (size_t)N * (Ca + Cb);
  if (rows == 0 || P <= 0)
    return;
  concat_channels_kernel<<<(unsigned)rows, os_cuda_row_threads(P), 0, cb->stream>>>(y, a, Ca, b,
                                                                                   Cb, P);
  os_cuda_check_launch(cb, "concat_channels");
}
