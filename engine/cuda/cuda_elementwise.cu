// cuda_elementwise.cu: fill, activations, sums and broadcasts, and their
// backwards (activation derivatives, axpy, dot, the sums that undo
// broadcasts). Memory-bound grid-stride loops; every forward may run in place
// (y == x). The forwards read and write every buffer in its stored type
// (views, cuda_types.cuh) and compute in float32; the backwards are float32
// only. Sums run in fixed blocks and add in double, so they are reproducible
// bit for bit.

#include <math.h>

#include "cuda_activation.cuh"
#include "cuda_common.h"
#include "cuda_launch.cuh"
#include "cuda_reduce.cuh"
#include "cuda_types.cuh"

// ----------------------------------------------------------------------------
// kernels

__global__ void
fill_kernel(os_cuda_view y, float value, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { os_store(y, i, value); }
}

// y = f(x) for an activation f.
template <float (*activation)(float)>
__global__ void
activation_kernel(os_cuda_view y, os_cuda_view x, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { os_store(y, i, activation(os_load(x, i))); }
}

// y[t, c] = x[t, c] * gelu(x[t, C + c]): the feed-forward gate of the UNet.
// One block per token row.
__global__ void
geglu_kernel(os_cuda_view y, os_cuda_view x, unsigned C)
{
  os_cuda_view row = os_view_at(x, (size_t)blockIdx.x * 2 * C);
  os_cuda_view out = os_view_at(y, (size_t)blockIdx.x * C);
  OS_CUDA_ROW_LOOP(c, C) { os_store(out, c, os_load(row, c) * gelu_of(os_load(row, C + c))); }
}

// y = alpha a + beta b (add: 1, 1; blend: alpha, 1 - alpha; scale: b unused, beta 0).
__global__ void
combine_kernel(os_cuda_view y, os_cuda_view a, os_cuda_view b, float alpha, float beta, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    float v = alpha * os_load(a, i);
    if (b.ptr)
      v += beta * os_load(b, i);
    os_store(y, i, v);
  }
}

// x[g, r, c] += v[g, c]; one block per row (g, r).
__global__ void
add_row_vector_kernel(os_cuda_view x, os_cuda_view v, unsigned R, unsigned C)
{
  os_cuda_view row = os_view_at(x, (size_t)blockIdx.x * C);
  os_cuda_view vg = os_view_at(v, (size_t)(blockIdx.x / R) * C);
  OS_CUDA_ROW_LOOP(c, C) { os_store(row, c, os_load(row, c) + os_load(vg, c)); }
}

// x[n, c, p] += v[n, c]; one block per (n, c).
__global__ void
add_channel_vector_kernel(os_cuda_view x, os_cuda_view v, unsigned P)
{
  os_cuda_view row = os_view_at(x, (size_t)blockIdx.x * P);
  float add = os_load(v, blockIdx.x);
  OS_CUDA_ROW_LOOP(p, P) { os_store(row, p, os_load(row, p) + add); }
}

// y[n, c, p] += bias[c] + residual[n, c, p]; one block per (n, c).
__global__ void
bias_residual_kernel(os_cuda_view y, os_cuda_view bias, os_cuda_view residual, unsigned C,
                     unsigned P)
{
  size_t base = (size_t)blockIdx.x * P;
  float add = bias.ptr ? os_load(bias, blockIdx.x % C) : 0.0f;
  OS_CUDA_ROW_LOOP(p, P)
  {
    float v = os_load(y, base + p) + add;
    if (residual.ptr)
      v += os_load(residual, base + p);
    os_store(y, base + p, v);
  }
}

// ----------------------------------------------------------------------------
// ops


void
os_cuda_fill(os_backend *be, float *dst, float value, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_derived_invalidate(cb, dst, n * sizeof(float));
  LAUNCH(fill_kernel, n, VIEW(dst), value, n);
}

void
os_cuda_silu(os_backend *be, float *y, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(activation_kernel<silu_of>, n, VIEW(y), VIEW(x), n);
}

void
os_cuda_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(activation_kernel<gelu_of>, n, VIEW(y), VIEW(x), n);
}

void
os_cuda_quick_gelu(os_backend *be, float *y, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(activation_kernel<quick_gelu_of>, n, VIEW(y), VIEW(x), n);
}

void
os_cuda_geglu(os_backend *be, float *y, const float *x, int T, int C)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_view to = VIEW(y);
  size_t bytes = (size_t)T * C * os_cuda_dtype_size(to.type);
  // Rows of y overlap later rows of x, so in place goes through scratch.
  void *staged = y == x ? os_cuda_scratch(cb, bytes, "geglu") : NULL;
  if (y == x && !staged)
    return;
  os_cuda_view out = staged ? os_cuda_view{ staged, to.type } : to;
  LAUNCH_ROWS(geglu_kernel, T, C, out, VIEW(x), (unsigned)C);
  if (staged) {
    cudaMemcpyAsync(to.ptr, staged, bytes, cudaMemcpyDeviceToDevice, cb->stream);
    os_cuda_check_launch(cb, "geglu copy");
    os_cuda_free(be, staged);
  }
}

void
os_cuda_add(os_backend *be, float *y, const float *a, const float *b, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(combine_kernel, n, VIEW(y), VIEW(a), VIEW(b), 1.0f, 1.0f, n);
}

void
os_cuda_blend(os_backend *be, float *y, const float *a, const float *b, float alpha, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(combine_kernel, n, VIEW(y), VIEW(a), VIEW(b), alpha, 1.0f - alpha, n);
}

void
os_cuda_scale(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(combine_kernel, n, VIEW(y), VIEW(x), VIEW(NULL), alpha, 0.0f, n);
}

void
os_cuda_add_row_vector(os_backend *be, float *x, const float *v, int G, int R, int C)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(add_row_vector_kernel, (size_t)G * R, C, VIEW(x), VIEW(v), (unsigned)R,
              (unsigned)C);
}

void
os_cuda_add_channel_vector(os_backend *be, float *x, const float *v, int N, int C, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(add_channel_vector_kernel, (size_t)N * C, P, VIEW(x), VIEW(v), (unsigned)P);
}

void
os_cuda_bias_residual(os_cuda_backend *cb, float *y, const float *bias, const float *residual,
                      int N, int C, int P)
{
  if (!bias && !residual)
    return;
  LAUNCH_ROWS(bias_residual_kernel, (size_t)N * C, P, VIEW(y), VIEW(bias), VIEW(residual),
              (unsigned)C, (unsigned)P);
}

#undef VIEW

// ----------------------------------------------------------------------------
// backward kernels

// dx += dy * f'(x) for an activation's derivative f'.
template <float (*derivative)(float)>
__global__ void
activation_backward_kernel(float *dx, const float *dy, const float *x, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { dx[i] += dy[i] * derivative(x[i]); }
}

// geglu's backward, one block per token row: with x = [a, g],
// da += dy gelu(g), dg += dy a gelu'(g).
__global__ void
geglu_backward_kernel(float *dx, const float *dy, const float *x, unsigned C)
{
  const float *row = x + (size_t)blockIdx.x * 2 * C;
  const float *grad = dy + (size_t)blockIdx.x * C;
  float *out = dx + (size_t)blockIdx.x * 2 * C;
  OS_CUDA_ROW_LOOP(c, C)
  {
    float a = row[c], g = row[C + c];
    out[c] += grad[c] * gelu_of(g);
    out[C + c] += grad[c] * a * gelu_grad_of(g);
  }
}

__global__ void
axpy_kernel(float *y, const float *x, float alpha, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { y[i] += alpha * x[i]; }
}

// partial[block] = sum of a[i] b[i] over the block's grid-stride share.
__global__ void
dot_kernel(double *partial, const float *a, const float *b, size_t n)
{
  double sum = 0.0;
  OS_CUDA_GRID_STRIDE(i, n) { sum += (double)a[i] * b[i]; }
  sum = os_block_sum(sum);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = sum;
}

#define COLUMN_TILE 32 // columns per block of the column sums
#define COLUMN_LANES 8 // threads per column, each over every 8th row
#define COLUMN_CHUNK 256 // rows per partial sum (at least)

// partial[(g * chunks + chunk) * C + c] = sum of dx[g, r, c] over the rows r
// of the chunk. Grid: (column tiles, chunks, G); each column's 8 lanes are
// added in a fixed order.
__global__ void
column_partials_kernel(double *partial, const float *dx, unsigned R, unsigned C,
                       unsigned chunk_rows)
{
  __shared__ double lanes[COLUMN_LANES][COLUMN_TILE];
  unsigned c = blockIdx.x * COLUMN_TILE + threadIdx.x, chunk = blockIdx.y, g = blockIdx.z;
  size_t r_begin = (size_t)chunk * chunk_rows;
  size_t r_end = r_begin + chunk_rows < R ? r_begin + chunk_rows : R;
  double sum = 0.0;
  if (c < C)
    for (size_t r = r_begin + threadIdx.y; r < r_end; r += COLUMN_LANES)
      sum += dx[((size_t)g * R + r) * C + c];
  lanes[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double total = 0.0;
    for (int lane = 0; lane < COLUMN_LANES; lane++)
      total += lanes[lane][threadIdx.x];
    partial[((size_t)g * gridDim.y + chunk) * C + c] = total;
  }
}

// dv[g, c] += the chunks' partial sums of column c, in chunk order.
__global__ void
add_column_partials_kernel(float *dv, const double *partial, unsigned C, unsigned chunks,
                           size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    size_t g = i / C, c = i % C;
    double total = 0.0;
    for (unsigned k = 0; k < chunks; k++)
      total += partial[(g * chunks + k) * C + c];
    dv[i] += (float)total;
  }
}

// out[q, c] += sum of dx[n, c, p] over the images n of group q (per_sum
// consecutive images) and every p; one block per (q, c).
__global__ void
plane_sums_kernel(float *out, const float *dx, unsigned C, unsigned P, unsigned per_sum)
{
  unsigned q = blockIdx.x / C, c = blockIdx.x % C;
  double sum = 0.0;
  for (unsigned i = 0; i < per_sum; i++) {
    const float *plane = dx + ((size_t)(q * per_sum + i) * C + c) * P;
    OS_CUDA_ROW_LOOP(p, P) { sum += plane[p]; }
  }
  sum = os_block_sum(sum);
  if (threadIdx.x == 0)
    out[blockIdx.x] += (float)sum;
}

// ----------------------------------------------------------------------------
// backward ops

void
os_cuda_silu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(activation_backward_kernel<silu_grad_of>, n, dx, dy, x, n);
}

void
os_cuda_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(activation_backward_kernel<gelu_grad_of>, n, dx, dy, x, n);
}

void
os_cuda_quick_gelu_backward(os_backend *be, float *dx, const float *dy, const float *x, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(activation_backward_kernel<quick_gelu_grad_of>, n, dx, dy, x, n);
}

void
os_cuda_geglu_backward(os_backend *be, float *dx, const float *dy, const float *x, int T, int C)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(geglu_backward_kernel, T, C, dx, dy, x, (unsigned)C);
}

void
os_cuda_axpy(os_backend *be, float *y, const float *x, float alpha, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  // y may be a weight (an SGD step): its cached 16-bit copies are stale now
  os_cuda_derived_invalidate(cb, y, n * sizeof(float));
  LAUNCH(axpy_kernel, n, y, x, alpha, n);
}

unsigned
os_cuda_reduce_blocks(size_t n)
{
  size_t blocks = (n + OS_CUDA_THREADS - 1) / OS_CUDA_THREADS;
  return blocks < 1 ? 1u : blocks > OS_CUDA_REDUCE_BLOCKS ? OS_CUDA_REDUCE_BLOCKS : (unsigned)blocks;
}

double
os_cuda_sum_partials(os_cuda_backend *cb, const double *partial, unsigned blocks)
{
  double host[OS_CUDA_REDUCE_BLOCKS];
  cudaError_t err = cudaMemcpyAsync(host, partial, blocks * sizeof(double),
                                    cudaMemcpyDeviceToHost, cb->stream);
  if (err == cudaSuccess)
    err = cudaStreamSynchronize(cb->stream);
  if (err != cudaSuccess) {
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "CUDA reading a sum failed: %s", cudaGetErrorString(err));
    return NAN;
  }
  double total = 0.0;
  for (unsigned i = 0; i < blocks; i++)
    total += host[i];
  return total;
}

double
os_cuda_dot(os_backend *be, const float *a, const float *b, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  unsigned blocks = os_cuda_reduce_blocks(n);
  double *partial = (double *)os_cuda_scratch(cb, blocks * sizeof(double), "dot partial sums");
  if (!partial)
    return NAN;
  dot_kernel<<<blocks, OS_CUDA_THREADS, 0, cb->stream>>>(partial, a, b, n);
  os_cuda_check_launch(cb, "dot_kernel");
  double total = os_cuda_sum_partials(cb, partial, blocks);
  os_cuda_free(be, partial);
  return total;
}

void
os_cuda_sum_rows(os_backend *be, float *dv, const float *dx, int G, int R, int C)
{
  os_cuda_backend *cb = os_cuda(be);
  if (G <= 0 || R <= 0 || C <= 0)
    return;
  size_t chunk_rows = COLUMN_CHUNK, chunks = ((size_t)R + chunk_rows - 1) / chunk_rows;
  if (chunks > 65535) { // grid.y
    chunk_rows = ((size_t)R + 65534) / 65535;
    chunks = ((size_t)R + chunk_rows - 1) / chunk_rows;
  }
  if (G > 65535) { // grid.z
    os_cuda_latch(cb, ONESTEP_ERR_INVALID_ARGUMENT, "sum_rows over %d groups (at most 65535)", G);
    return;
  }
  double *partial = (double *)os_cuda_scratch(cb, (size_t)G * chunks * C * sizeof(double),
                                              "sum_rows partial sums");
  if (!partial)
    return;
  dim3 grid((C + COLUMN_TILE - 1) / COLUMN_TILE, (unsigned)chunks, (unsigned)G);
  column_partials_kernel<<<grid, dim3(COLUMN_TILE, COLUMN_LANES), 0, cb->stream>>>(
      partial, dx, (unsigned)R, (unsigned)C, (unsigned)chunk_rows);
  os_cuda_check_launch(cb, "column_partials_kernel");
  LAUNCH(add_column_partials_kernel, (size_t)G * C, dv, partial, (unsigned)C, (unsigned)chunks,
         (size_t)G * C);
  os_cuda_free(be, partial);
}

void
os_cuda_sum_channel_planes(os_backend *be, float *dv, const float *dx, int N, int C, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(plane_sums_kernel, (size_t)N * C, P, dv, dx, (unsigned)C, (unsigned)P, 1u);
}

void
os_cuda_channel_sums(os_cuda_backend *cb, float *db, const float *dy, int N, int C, int P)
{
  if (N <= 0)
    return;
  LAUNCH_ROWS(plane_sums_kernel, C, P, db, dy, (unsigned)C, (unsigned)P, (unsigned)N);
}
