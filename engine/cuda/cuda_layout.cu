// cuda_layout.cu: data movement (permute_0213, upsample_nearest, concat_channels)
// and the backwards of the last two (upsample_nearest_backward, split_channels).
// Row-shaped copies derive their indices once per row, then copy the row with
// coalesced reads and writes; permute_0213 with single-element rows is a
// batched matrix transpose through shared-memory tiles. permute_0213 moves
// stored elements as raw bits (converting x into y's type first when the two
// differ); the forwards otherwise read and write through views.

#include <stdint.h>

#include "cuda_common.h"
#include "cuda_types.cuh"

#define TRANSPOSE_TILE 32
#define TRANSPOSE_ROWS 8 // thread rows per tile: each thread moves 4 elements
#define ROW_WARPS 8      // row segments per block of the row copy (one warp each)
#define ROW_SEGMENT 1024 // elements of a row per warp (32 per lane)

// y[a][c][b] = x[a][b][c] for x [A, Bd, Cd] of elements of type T (raw bits
// of 4 or 2 bytes). A block moves a 32x32 tile: it reads 32 rows of x along c
// (coalesced), and writes 32 rows of y along b (coalesced) from the
// transposed tile; the padded column keeps the transposed reads free of bank
// conflicts. Grid: x over tiles of c, y and z (striding) over tiles of b and
// over a.
template <typename T>
__global__ void __launch_bounds__(TRANSPOSE_TILE * TRANSPOSE_ROWS)
transpose_kernel(T *y, const T *x, unsigned A, unsigned Bd, unsigned Cd)
{
  __shared__ T tile[TRANSPOSE_TILE][TRANSPOSE_TILE + 1];
  unsigned c0 = blockIdx.x * TRANSPOSE_TILE;
  unsigned b_tiles = (Bd + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
  unsigned tx = threadIdx.x;
  for (unsigned a = blockIdx.z; a < A; a += gridDim.z) {
    const T *xa = x + (size_t)a * Bd * Cd;
    T *ya = y + (size_t)a * Bd * Cd;
    for (unsigned bt = blockIdx.y; bt < b_tiles; bt += gridDim.y) {
      unsigned b0 = bt * TRANSPOSE_TILE;
      __syncthreads(); // the previous tile has been written out
      for (unsigned r = threadIdx.y; r < TRANSPOSE_TILE; r += TRANSPOSE_ROWS)
        if (b0 + r < Bd && c0 + tx < Cd)
          tile[r][tx] = xa[(size_t)(b0 + r) * Cd + c0 + tx];
      __syncthreads();
      for (unsigned r = threadIdx.y; r < TRANSPOSE_TILE; r += TRANSPOSE_ROWS)
        if (c0 + r < Cd && b0 + tx < Bd)
          ya[(size_t)(c0 + r) * Bd + b0 + tx] = tile[tx][r];
    }
  }
}

// y[a][c][b][i] = x[a][b][c][i] for x [A, Bd, Cd, I] with rows of I units
// of type V (one stored element's raw bits, or 16 bytes when rows allow it). One warp per segment of
// ROW_SEGMENT elements of an output row (a, c, b), so long rows (the
// decoder's frames <-> channels swaps, rows of a whole image) still spread
// over every SM; the grid strides over (row, segment) items.
template <typename V>
__global__ void __launch_bounds__(ROW_WARPS * 32)
permute_rows_kernel(V *y, const V *x, size_t rows, unsigned Bd, unsigned Cd, unsigned I)
{
  unsigned lane = threadIdx.x % 32;
  unsigned segments = (I + ROW_SEGMENT - 1) / ROW_SEGMENT;
  size_t items = rows * segments;
  size_t first = (size_t)blockIdx.x * ROW_WARPS + threadIdx.x / 32;
  for (size_t item = first; item < items; item += (size_t)gridDim.x * ROW_WARPS) {
    size_t row = item / segments;
    unsigned begin = (unsigned)(item % segments) * ROW_SEGMENT;
    unsigned end = I - begin < ROW_SEGMENT ? I : begin + ROW_SEGMENT;
    size_t b = row % Bd, c = (row / Bd) % Cd, a = row / ((size_t)Bd * Cd);
    const V *src = x + ((a * Bd + b) * Cd + c) * I;
    V *dst = y + row * I;
    for (unsigned i = begin + lane; i < end; i += 32)
      dst[i] = src[i];
  }
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
upsample_nearest_kernel(os_cuda_view y, os_cuda_view x, unsigned H, unsigned W, unsigned Ho,
                        unsigned Wo)
{
  unsigned row = blockIdx.x;
  unsigned oy = row % Ho, plane = row / Ho;
  os_cuda_view src = os_view_at(x, ((size_t)plane * H + nearest_source(oy, H, Ho)) * W);
  os_cuda_view dst = os_view_at(y, (size_t)row * Wo);
  OS_CUDA_ROW_LOOP(ox, Wo) { os_store(dst, ox, os_load(src, nearest_source(ox, W, Wo))); }
}

// The outputs [begin, end) whose nearest source is `src`: a contiguous range,
// since nearest_source is monotonic. The estimate src * out / in lands at or
// next to the boundary; the loops move it to where float rounding puts it.
__device__ __forceinline__ void
nearest_range(unsigned src, unsigned in, unsigned out, unsigned *begin, unsigned *end)
{
  unsigned d = (unsigned)(((unsigned long long)src * out) / in);
  while (d > 0 && nearest_source(d - 1, in, out) >= src)
    d--;
  while (d < out && nearest_source(d, in, out) < src)
    d++;
  *begin = d;
  while (d < out && nearest_source(d, in, out) == src)
    d++;
  *end = d;
}

// dx[plane, iy, ix] += every dy that upsample_nearest copied from it, added in
// output order (rows, then columns), as a scatter over dy would. Gathering
// per source pixel needs no atomics, so the sum is reproducible. Row (plane, iy).
__global__ void
upsample_nearest_backward_kernel(float *dx, const float *dy, unsigned H, unsigned W, unsigned Ho,
                                 unsigned Wo)
{
  unsigned row = blockIdx.x;
  unsigned iy = row % H, plane = row / H;
  unsigned oy_begin, oy_end;
  nearest_range(iy, H, Ho, &oy_begin, &oy_end);
  const float *grad = dy + (size_t)plane * Ho * Wo;
  float *out = dx + (size_t)row * W;
  OS_CUDA_ROW_LOOP(ix, W)
  {
    unsigned ox_begin, ox_end;
    nearest_range(ix, W, Wo, &ox_begin, &ox_end);
    float acc = out[ix];
    for (unsigned oy = oy_begin; oy < oy_end; oy++)
      for (unsigned ox = ox_begin; ox < ox_end; ox++)
        acc += grad[(size_t)oy * Wo + ox];
    out[ix] = acc;
  }
}

// y [N, Ca+Cb, P] = concat(a [N, Ca, P], b [N, Cb, P]) along channels.
// Output row (n, c).
__global__ void
concat_channels_kernel(os_cuda_view y, os_cuda_view a, unsigned Ca, os_cuda_view b, unsigned Cb,
                       unsigned P)
{
  unsigned row = blockIdx.x;
  unsigned c = row % (Ca + Cb), img = row / (Ca + Cb);
  os_cuda_view src = c < Ca ? os_view_at(a, ((size_t)img * Ca + c) * P)
                            : os_view_at(b, ((size_t)img * Cb + (c - Ca)) * P);
  os_cuda_view dst = os_view_at(y, (size_t)row * P);
  OS_CUDA_ROW_LOOP(p, P) { os_store(dst, p, os_load(src, p)); }
}

// concat_channels' backward: da += dy's first Ca channels, db += the rest
// (either may be NULL). Row (n, c) of dy.
__global__ void
split_channels_kernel(float *da, float *db, const float *dy, unsigned Ca, unsigned Cb, unsigned P)
{
  unsigned row = blockIdx.x;
  unsigned c = row % (Ca + Cb), img = row / (Ca + Cb);
  float *dst = c < Ca ? (da ? da + ((size_t)img * Ca + c) * P : NULL)
                      : (db ? db + ((size_t)img * Cb + (c - Ca)) * P : NULL);
  if (!dst)
    return;
  const float *src = dy + (size_t)row * P;
  OS_CUDA_ROW_LOOP(p, P) { dst[p] += src[p]; }
}

static unsigned
grid_limit(size_t n, size_t limit)
{
  return (unsigned)(n < limit ? (n ? n : 1) : limit);
}

// The permutation of raw elements of `elem` bytes (4 or 2) of one stored type.
static void
permute_raw(os_cuda_backend *cb, void *y, const void *x, size_t elem, int A, int Bd, int Cd,
            int I)
{
  size_t rows = (size_t)A * Cd * Bd;
  if (I == 1) {
    dim3 grid(grid_limit(((size_t)Cd + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE, INT32_MAX),
              grid_limit(((size_t)Bd + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE, 65535),
              grid_limit((size_t)A, 65535));
    dim3 block(TRANSPOSE_TILE, TRANSPOSE_ROWS);
    if (elem == 4)
      transpose_kernel<<<grid, block, 0, cb->stream>>>((uint32_t *)y, (const uint32_t *)x, A, Bd,
                                                       Cd);
    else
      transpose_kernel<<<grid, block, 0, cb->stream>>>((uint16_t *)y, (const uint16_t *)x, A, Bd,
                                                       Cd);
    return;
  }
  size_t row_bytes = (size_t)I * elem;
  bool vec16 = row_bytes % 16 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)y % 16 == 0;
  size_t row_len = vec16 ? row_bytes / 16 : (size_t)I;
  size_t items = rows * ((row_len + ROW_SEGMENT - 1) / ROW_SEGMENT);
  unsigned blocks = grid_limit((items + ROW_WARPS - 1) / ROW_WARPS, 65535u * 16u);
  if (vec16)
    permute_rows_kernel<<<blocks, ROW_WARPS * 32, 0, cb->stream>>>(
        (uint4 *)y, (const uint4 *)x, rows, Bd, Cd, (unsigned)row_len);
  else if (elem == 4)
    permute_rows_kernel<<<blocks, ROW_WARPS * 32, 0, cb->stream>>>(
        (uint32_t *)y, (const uint32_t *)x, rows, Bd, Cd, (unsigned)I);
  else
    permute_rows_kernel<<<blocks, ROW_WARPS * 32, 0, cb->stream>>>(
        (uint16_t *)y, (const uint16_t *)x, rows, Bd, Cd, (unsigned)I);
}

void
os_cuda_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int I)
{
  os_cuda_backend *cb = os_cuda(be);
  if (I <= 0 || (size_t)A * Cd * Bd == 0)
    return;
  size_t n = (size_t)A * Cd * Bd * I;
  os_cuda_view to = os_cuda_view_of(cb, y), from = os_cuda_view_of(cb, x);
  size_t elem = os_cuda_dtype_size(to.type);
  // x in another type: converted into y's first, so the permutation moves raw bits
  void *converted = NULL;
  if (from.type != to.type) {
    converted = os_cuda_scratch(cb, n * elem, "permute_0213 conversion");
    if (!converted)
      return;
    os_cuda_convert(cb, os_cuda_view{ converted, to.type }, from, n);
    from.ptr = converted;
  }
  permute_raw(cb, to.ptr, from.ptr, elem, A, Bd, Cd, I);
  os_cuda_check_launch(cb, "permute_0213");
  os_cuda_free(be, converted);
}

void
os_cuda_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                         int Ho, int Wo)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t rows = (size_t)N * C * Ho;
  if (rows == 0 || Wo <= 0)
    return;
  upsample_nearest_kernel<<<(unsigned)rows, os_cuda_row_threads(Wo), 0, cb->stream>>>(
      os_cuda_view_of(cb, y), os_cuda_view_of(cb, x), H, W, Ho, Wo);
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
  concat_channels_kernel<<<(unsigned)rows, os_cuda_row_threads(P), 0, cb->stream>>>(
      os_cuda_view_of(cb, y), os_cuda_view_of(cb, a), Ca, os_cuda_view_of(cb, b), Cb, P);
  os_cuda_check_launch(cb, "concat_channels");
}

void
os_cuda_upsample_nearest_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                  int H, int W, int Ho, int Wo)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t rows = (size_t)N * C * H;
  if (rows == 0 || W <= 0 || Ho <= 0 || Wo <= 0)
    return;
  upsample_nearest_backward_kernel<<<(unsigned)rows, os_cuda_row_threads(W), 0, cb->stream>>>(
      dx, dy, H, W, Ho, Wo);
  os_cuda_check_launch(cb, "upsample_nearest_backward");
}

void
os_cuda_split_channels(os_backend *be, float *da, float *db, const float *dy, int Ca, int Cb,
                       int N, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t rows = (size_t)N * (Ca + Cb);
  if (rows == 0 || P <= 0 || (!da && !db))
    return;
  split_channels_kernel<<<(unsigned)rows, os_cuda_row_threads(P), 0, cb->stream>>>(da, db, dy, Ca,
                                                                                  Cb, P);
  os_cuda_check_launch(cb, "split_channels");
}
