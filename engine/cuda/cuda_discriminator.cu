// cuda_discriminator.cu: the discriminator's layers (leaky_relu, pixel_shuffle,
// resize_bilinear, batch_norm_local, spectral_normalize, channel_projection),
// their backwards and spectral normalisation's power iteration. The forwards
// read and write through views (cuda_types.cuh) and compute in float32; the
// backwards are float32 only. Every backward writes each gradient element
// from one thread, reductions run over fixed blocks and add in double, so
// results are reproducible bit for bit; the scatter of resize_bilinear's
// backward is a gather over the source pixels for that reason.

#include <math.h>

#include "cuda_discriminator.h"
#include "cuda_launch.cuh"
#include "cuda_reduce.cuh"
#include "cuda_types.cuh"

// Single-block reductions over a vector (the spectral norm's sums).
#define VECTOR_THREADS 1024

// ----------------------------------------------------------------------------
// leaky ReLU

__global__ void
leaky_relu_kernel(os_cuda_view y, os_cuda_view x, float slope, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    float v = os_load(x, i);
    os_store(y, i, v >= 0.0f ? v : slope * v);
  }
}

__global__ void
leaky_relu_backward_kernel(float *dx, const float *dy, const float *x, float slope, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { dx[i] += x[i] >= 0.0f ? dy[i] : slope * dy[i]; }
}

void
os_cuda_leaky_relu(os_backend *be, float *y, const float *x, float slope, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(leaky_relu_kernel, n, VIEW(y), VIEW(x), slope, n);
}

void
os_cuda_leaky_relu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                            float slope, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(leaky_relu_backward_kernel, n, dx, dy, x, slope, n);
}

// ----------------------------------------------------------------------------
// pixel shuffle: y[nc, h*r + i, w*r + j] = x[(nc*r + i)*r + j, h, w] with nc = n*C + c

// One thread per output element, so the writes are coalesced.
__global__ void
pixel_shuffle_kernel(os_cuda_view y, os_cuda_view x, unsigned H, unsigned W, unsigned r,
                     size_t n)
{
  size_t Ho = (size_t)H * r, Wo = (size_t)W * r;
  OS_CUDA_GRID_STRIDE(o, n)
  {
    size_t ox = o % Wo, oy = o / Wo % Ho, nc = o / (Wo * Ho);
    size_t channel = (nc * r + oy % r) * r + ox % r;
    os_store(y, o, os_load(x, (channel * H + oy / r) * W + ox / r));
  }
}

// One thread per element of dx, which reads the one element of dy it became.
__global__ void
pixel_shuffle_backward_kernel(float *dx, const float *dy, unsigned H, unsigned W, unsigned r,
                              size_t n)
{
  size_t Ho = (size_t)H * r, Wo = (size_t)W * r;
  OS_CUDA_GRID_STRIDE(k, n)
  {
    size_t w = k % W, h = k / W % H, channel = k / ((size_t)W * H);
    size_t j = channel % r, i = channel / r % r, nc = channel / ((size_t)r * r);
    dx[k] += dy[(nc * Ho + h * r + i) * Wo + w * r + j];
  }
}

void
os_cuda_pixel_shuffle(os_backend *be, float *y, const float *x, int N, int C, int H, int W, int r)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(pixel_shuffle_kernel, (size_t)N * C * H * W * r * r, VIEW(y), VIEW(x), (unsigned)H,
         (unsigned)W, (unsigned)r, (size_t)N * C * H * W * r * r);
}

void
os_cuda_pixel_shuffle_backward(os_backend *be, float *dx, const float *dy, int N, int C, int H,
                               int W, int r)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(pixel_shuffle_backward_kernel, (size_t)N * C * H * W * r * r, dx, dy, (unsigned)H,
         (unsigned)W, (unsigned)r, (size_t)N * C * H * W * r * r);
}

// ----------------------------------------------------------------------------
// bilinear resize

// Output coordinate d's two source indices and weights along one axis.
struct bilinear_tap {
  int i0, i1;
  float l0, l1;
};

// PyTorch's source index for an explicit size (align_corners false), computed
// as the CPU backend does: in double, with the multiply and add rounded
// separately (no FMA contraction), so both backends pick the same taps.
__device__ __forceinline__ bilinear_tap
bilinear_tap_of(int d, int in, int out)
{
  double src = fmax(__dadd_rn(__dmul_rn(d + 0.5, (double)in / out), -0.5), 0.0);
  int i0 = (int)src;
  double l1 = src - i0;
  return bilinear_tap{ i0, i0 < in - 1 ? i0 + 1 : i0, (float)(1.0 - l1), (float)l1 };
}

// The weight with which a tap reads source index i (both weights when the
// upper neighbour is clamped onto it; 0 when it does not read i).
__device__ __forceinline__ float
tap_weight(bilinear_tap t, int i)
{
  return (t.i0 == i ? t.l0 : 0.0f) + (t.i1 == i ? t.l1 : 0.0f);
}

// The output coordinates [*first, *last] whose taps may read source index i:
// those whose source position lies in [i - 1, i + 1), one wider each side for
// rounding (tap_weight rejects the extras).
__device__ __forceinline__ void
outputs_reading(int i, int in, int out, int *first, int *last)
{
  double ratio = (double)out / in;
  *first = max((int)floor((i - 0.5) * ratio - 0.5) - 1, 0);
  *last = min((int)ceil((i + 1.5) * ratio - 0.5) + 1, out - 1);
}

__global__ void
resize_bilinear_kernel(os_cuda_view y, os_cuda_view x, int H, int W, int Ho, int Wo, size_t n)
{
  OS_CUDA_GRID_STRIDE(o, n)
  {
    int ox = (int)(o % Wo), oy = (int)(o / Wo % Ho);
    size_t plane = o / ((size_t)Wo * Ho) * H * W;
    bilinear_tap ty = bilinear_tap_of(oy, H, Ho), tx = bilinear_tap_of(ox, W, Wo);
    size_t r0 = plane + (size_t)ty.i0 * W, r1 = plane + (size_t)ty.i1 * W;
    float top = tx.l0 * os_load(x, r0 + tx.i0) + tx.l1 * os_load(x, r0 + tx.i1);
    float bottom = tx.l0 * os_load(x, r1 + tx.i0) + tx.l1 * os_load(x, r1 + tx.i1);
    os_store(y, o, ty.l0 * top + ty.l1 * bottom);
  }
}

// One thread per source pixel: dx[k] += the gradients of the output pixels
// that read it, times their weights, added in raster order.
__global__ void
resize_bilinear_backward_kernel(float *dx, const float *dy, int H, int W, int Ho, int Wo,
                                size_t n)
{
  OS_CUDA_GRID_STRIDE(k, n)
  {
    int ix = (int)(k % W), iy = (int)(k / W % H);
    const float *plane = dy + k / ((size_t)W * H) * Ho * Wo;
    int oy_first, oy_last, ox_first, ox_last;
    outputs_reading(iy, H, Ho, &oy_first, &oy_last);
    outputs_reading(ix, W, Wo, &ox_first, &ox_last);
    float sum = 0.0f;
    for (int oy = oy_first; oy <= oy_last; oy++) {
      float wy = tap_weight(bilinear_tap_of(oy, H, Ho), iy);
      if (wy == 0.0f)
        continue; // a row that does not read iy: its gradients never reach dx[k]
      const float *g = plane + (size_t)oy * Wo;
      float row = 0.0f;
      for (int ox = ox_first; ox <= ox_last; ox++) {
        float wx = tap_weight(bilinear_tap_of(ox, W, Wo), ix);
        if (wx != 0.0f)
          row += wx * g[ox];
      }
      sum += wy * row;
    }
    dx[k] += sum;
  }
}

void
os_cuda_resize_bilinear(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                        int Ho, int Wo)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(resize_bilinear_kernel, (size_t)N * C * Ho * Wo, VIEW(y), VIEW(x), H, W, Ho, Wo,
         (size_t)N * C * Ho * Wo);
}

void
os_cuda_resize_bilinear_backward(os_backend *be, float *dx, const float *dy, int N, int C, int H,
                                 int W, int Ho, int Wo)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(resize_bilinear_backward_kernel, (size_t)N * C * H * W, dx, dy, H, W, Ho, Wo,
         (size_t)N * C * H * W);
}

// ----------------------------------------------------------------------------
// BatchNormLocal: one block per unit, channel c of one virtual batch of
// `group` samples (unit = batch * C + c)

// The unit's mean and 1 / sqrt(var + eps): two passes in double, as the CPU.
// Every thread of the block gets them.
__device__ void
virtual_batch_stats(os_cuda_view x, unsigned C, unsigned P, unsigned group, float eps,
                    double *mean, double *rstd)
{
  unsigned c = blockIdx.x % C, n0 = blockIdx.x / C * group;
  double count = (double)group * P, total = 0.0, squares = 0.0;
  for (unsigned k = 0; k < group; k++) {
    os_cuda_view plane = os_view_at(x, ((size_t)(n0 + k) * C + c) * P);
    OS_CUDA_ROW_LOOP(p, P) { total += os_load(plane, p); }
  }
  *mean = os_block_sum(total) / count;
  for (unsigned k = 0; k < group; k++) {
    os_cuda_view plane = os_view_at(x, ((size_t)(n0 + k) * C + c) * P);
    OS_CUDA_ROW_LOOP(p, P)
    {
      double deviation = os_load(plane, p) - *mean;
      squares += deviation * deviation;
    }
  }
  *rstd = 1.0 / sqrt(os_block_sum(squares) / count + eps);
}

__global__ void
batch_norm_local_kernel(os_cuda_view y, os_cuda_view x, os_cuda_view gamma, os_cuda_view beta,
                        unsigned C, unsigned P, unsigned group, float eps)
{
  unsigned c = blockIdx.x % C, n0 = blockIdx.x / C * group;
  double mean, rstd;
  virtual_batch_stats(x, C, P, group, eps, &mean, &rstd);
  float scale = (float)(os_load(gamma, c) * rstd), shift = os_load(beta, c);
  for (unsigned k = 0; k < group; k++) {
    size_t at = ((size_t)(n0 + k) * C + c) * P;
    os_cuda_view in = os_view_at(x, at), out = os_view_at(y, at);
    OS_CUDA_ROW_LOOP(p, P) { os_store(out, p, (os_load(in, p) - (float)mean) * scale + shift); }
  }
}

// dx += the normalisation's input gradient (dx may be NULL); sums[2 * unit]
// and sums[2 * unit + 1] = the unit's sum of dy and of dy * xhat, which
// batch_norm_local_params_kernel adds into dbeta and dgamma.
__global__ void
batch_norm_local_backward_kernel(float *dx, double *sums, const float *dy, os_cuda_view x,
                                 const float *gamma, unsigned C, unsigned P, unsigned group,
                                 float eps)
{
  unsigned c = blockIdx.x % C, n0 = blockIdx.x / C * group;
  const float *xs = (const float *)x.ptr; // backward buffers are float32
  double mean, rstd, sum_dy = 0.0, sum_dy_xhat = 0.0;
  virtual_batch_stats(x, C, P, group, eps, &mean, &rstd);
  for (unsigned k = 0; k < group; k++) {
    size_t at = ((size_t)(n0 + k) * C + c) * P;
    OS_CUDA_ROW_LOOP(p, P)
    {
      sum_dy += dy[at + p];
      sum_dy_xhat += dy[at + p] * ((xs[at + p] - mean) * rstd);
    }
  }
  sum_dy = os_block_sum(sum_dy);
  sum_dy_xhat = os_block_sum(sum_dy_xhat);
  if (threadIdx.x == 0) {
    sums[2 * blockIdx.x] = sum_dy;
    sums[2 * blockIdx.x + 1] = sum_dy_xhat;
  }
  if (!dx)
    return;
  double count = (double)group * P;
  double mean_dy = sum_dy / count, mean_dy_xhat = sum_dy_xhat / count, scale = gamma[c] * rstd;
  for (unsigned k = 0; k < group; k++) {
    size_t at = ((size_t)(n0 + k) * C + c) * P;
    OS_CUDA_ROW_LOOP(p, P)
    {
      double xhat = (xs[at + p] - mean) * rstd;
      dx[at + p] += (float)(scale * (dy[at + p] - mean_dy - xhat * mean_dy_xhat));
    }
  }
}

// dgamma[c] and dbeta[c] (either may be NULL) += the sums of channel c's
// units, in unit order.
__global__ void
batch_norm_local_params_kernel(float *dgamma, float *dbeta, const double *sums, unsigned C,
                               unsigned units, size_t n)
{
  OS_CUDA_GRID_STRIDE(c, n)
  {
    double d_beta = 0.0, d_gamma = 0.0;
    for (size_t unit = c; unit < units; unit += C) {
      d_beta += sums[2 * unit];
      d_gamma += sums[2 * unit + 1];
    }
    if (dbeta)
      dbeta[c] += (float)d_beta;
    if (dgamma)
      dgamma[c] += (float)d_gamma;
  }
}

void
os_cuda_batch_norm_local(os_backend *be, float *y, const float *x, const float *gamma,
                         const float *beta, int N, int C, int P, int group, float eps)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH_ROWS(batch_norm_local_kernel, (size_t)N / group * C, P, VIEW(y), VIEW(x), VIEW(gamma),
              VIEW(beta), (unsigned)C, (unsigned)P, (unsigned)group, eps);
}

void
os_cuda_batch_norm_local_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                  const float *dy, const float *x, const float *gamma, int N,
                                  int C, int P, int group, float eps)
{
  os_cuda_backend *cb = os_cuda(be);
  size_t units = (size_t)N / group * C;
  if (units == 0 || P <= 0)
    return;
  double *sums = (double *)os_cuda_scratch(cb, 2 * units * sizeof(double),
                                           "batch_norm_local_backward unit sums");
  if (!sums)
    return;
  LAUNCH_ROWS(batch_norm_local_backward_kernel, units, P, dx, sums, dy, VIEW(x), gamma,
              (unsigned)C, (unsigned)P, (unsigned)group, eps);
  if (dgamma || dbeta)
    LAUNCH(batch_norm_local_params_kernel, (size_t)C, dgamma, dbeta, sums, (unsigned)C,
           (unsigned)units, (size_t)C);
  os_cuda_free(be, sums);
}

// ----------------------------------------------------------------------------
// spectral normalisation: W viewed as [rows, cols]; sums in double, as the CPU

// Element i of a view or of a double vector, as double: row_dots_kernel
// multiplies W by float32 vectors and by the power iteration's double one.
__device__ __forceinline__ double
load_double(os_cuda_view v, size_t i)
{
  return os_load(v, i);
}

__device__ __forceinline__ double
load_double(const double *v, size_t i)
{
  return v[i];
}

// out[i] = sum_j a[i, j] b[i * b_row_stride + j], one block per row i: a
// matrix times a vector (stride 0), or the row sums of an elementwise product
// (stride cols).
template <typename Vector>
__global__ void
row_dots_kernel(double *out, os_cuda_view a, Vector b, unsigned cols, size_t b_row_stride)
{
  size_t row = (size_t)blockIdx.x * cols, b_row = blockIdx.x * b_row_stride;
  double sum = 0.0;
  OS_CUDA_ROW_LOOP(j, cols) { sum += load_double(a, row + j) * load_double(b, b_row + j); }
  sum = os_block_sum(sum);
  if (threadIdx.x == 0)
    out[blockIdx.x] = sum;
}

// out[j] = sum_i W[i, j] u[i]: one thread per column, the rows in order.
__global__ void
column_dots_kernel(double *out, os_cuda_view W, os_cuda_view u, unsigned rows, size_t cols)
{
  OS_CUDA_GRID_STRIDE(j, cols)
  {
    double sum = 0.0;
    for (unsigned i = 0; i < rows; i++)
      sum += load_double(W, i * cols + j) * load_double(u, i);
    out[j] = sum;
  }
}

// One block: scalars[0] = sigma = sum_i u[i] wv[i] and, when row_products is
// not NULL, scalars[1] = (sum_i row_products[i]) / sigma^2.
__global__ void __launch_bounds__(VECTOR_THREADS)
spectral_scalars_kernel(double *scalars, const double *wv, os_cuda_view u,
                        const double *row_products, unsigned rows)
{
  double sigma = 0.0, along = 0.0;
  OS_CUDA_ROW_LOOP(i, rows)
  {
    sigma += load_double(u, i) * wv[i];
    if (row_products)
      along += row_products[i];
  }
  sigma = os_block_sum(sigma);
  along = os_block_sum(along);
  if (threadIdx.x == 0) {
    scalars[0] = sigma;
    scalars[1] = along / (sigma * sigma);
  }
}

// One block: a /= max(|a|, eps) in double, and out = a rounded to float32.
__global__ void __launch_bounds__(VECTOR_THREADS)
normalize_vector_kernel(double *a, float *out, unsigned n, float eps)
{
  double squares = 0.0;
  OS_CUDA_ROW_LOOP(i, n) { squares += a[i] * a[i]; }
  double norm = fmax(sqrt(os_block_sum(squares)), (double)eps);
  OS_CUDA_ROW_LOOP(i, n)
  {
    a[i] /= norm;
    out[i] = (float)a[i];
  }
}

__global__ void
spectral_divide_kernel(os_cuda_view y, os_cuda_view W, const double *scalars, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { os_store(y, i, (float)(load_double(W, i) / scalars[0])); }
}

__global__ void
spectral_normalize_backward_kernel(float *dW, const float *dy, os_cuda_view u, os_cuda_view v,
                                   const double *scalars, size_t cols, size_t n)
{
  double sigma = scalars[0], along = scalars[1];
  OS_CUDA_GRID_STRIDE(k, n)
  {
    double u_along = along * load_double(u, k / cols);
    dW[k] += (float)(dy[k] / sigma - u_along * load_double(v, k % cols));
  }
}

// Scratch holding sigma = u^T W v at [0] and, given dy, <dy, W> / sigma^2 at
// [1] (free with os_cuda_free); NULL with the error latched.
static double *
spectral_scalars(os_cuda_backend *cb, const float *dy, const float *W, const float *u,
                 const float *v, int rows, int cols)
{
  double *scratch = (double *)os_cuda_scratch(cb, (2 + 2 * (size_t)rows) * sizeof(double),
                                              "spectral norm sums");
  if (!scratch)
    return NULL;
  double *wv = scratch + 2, *row_products = dy ? wv + rows : NULL;
  unsigned threads = os_cuda_row_threads(cols);
  row_dots_kernel<<<rows, threads, 0, cb->stream>>>(wv, VIEW(W), VIEW(v), cols, 0);
  os_cuda_check_launch(cb, "row_dots_kernel");
  if (dy) {
    row_dots_kernel<<<rows, threads, 0, cb->stream>>>(row_products, VIEW(W), VIEW(dy), cols,
                                                      cols);
    os_cuda_check_launch(cb, "row_dots_kernel");
  }
  spectral_scalars_kernel<<<1, VECTOR_THREADS, 0, cb->stream>>>(scratch, wv, VIEW(u),
                                                                row_products, rows);
  os_cuda_check_launch(cb, "spectral_scalars_kernel");
  return scratch;
}

void
os_cuda_spectral_normalize(os_backend *be, float *y, const float *W, const float *u,
                           const float *v, int rows, int cols)
{
  os_cuda_backend *cb = os_cuda(be);
  if (rows <= 0 || cols <= 0)
    return;
  double *scalars = spectral_scalars(cb, NULL, W, u, v, rows, cols);
  if (!scalars)
    return;
  LAUNCH(spectral_divide_kernel, (size_t)rows * cols, VIEW(y), VIEW(W), scalars,
         (size_t)rows * cols);
  os_cuda_free(be, scalars);
}

void
os_cuda_spectral_normalize_backward(os_backend *be, float *dW, const float *dy, const float *W,
                                    const float *u, const float *v, int rows, int cols)
{
  os_cuda_backend *cb = os_cuda(be);
  if (rows <= 0 || cols <= 0)
    return;
  double *scalars = spectral_scalars(cb, dy, W, u, v, rows, cols);
  if (!scalars)
    return;
  LAUNCH(spectral_normalize_backward_kernel, (size_t)rows * cols, dW, dy, VIEW(u), VIEW(v),
         scalars, (size_t)cols, (size_t)rows * cols);
  os_cuda_free(be, scalars);
}

void
os_cuda_spectral_norm_power_iteration(os_backend *be, float *u, float *v, const float *W,
                                      int rows, int cols, float eps)
{
  os_cuda_backend *cb = os_cuda(be);
  if (rows <= 0 || cols <= 0)
    return;
  double *u_d = (double *)os_cuda_scratch(cb, ((size_t)rows + cols) * sizeof(double),
                                          "spectral norm power iteration");
  if (!u_d)
    return;
  double *v_d = u_d + rows;
  // v = normalize(W^T u), then u = normalize(W v) from v in double
  LAUNCH(column_dots_kernel, (size_t)cols, v_d, VIEW(W), VIEW(u), (unsigned)rows, (size_t)cols);
  normalize_vector_kernel<<<1, VECTOR_THREADS, 0, cb->stream>>>(v_d, v, cols, eps);
  os_cuda_check_launch(cb, "normalize_vector_kernel");
  row_dots_kernel<<<rows, os_cuda_row_threads(cols), 0, cb->stream>>>(u_d, VIEW(W),
                                                                      (const double *)v_d, cols, 0);
  os_cuda_check_launch(cb, "row_dots_kernel");
  normalize_vector_kernel<<<1, VECTOR_THREADS, 0, cb->stream>>>(u_d, u, rows, eps);
  os_cuda_check_launch(cb, "normalize_vector_kernel");
  os_cuda_free(be, u_d);
}

// ----------------------------------------------------------------------------
// channel projection: y[n, p] = sum_c x[n, c, p] e[n, c]

// One thread per (n, p), the channels in order (coalesced along p).
__global__ void
channel_projection_kernel(os_cuda_view y, os_cuda_view x, os_cuda_view e, unsigned C, unsigned P,
                          size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    size_t sample = i / P, p = i % P;
    double total = 0.0;
    for (unsigned c = 0; c < C; c++)
      total += (double)os_load(x, (sample * C + c) * P + p) * os_load(e, sample * C + c);
    os_store(y, i, (float)total);
  }
}

// dx[n, c, p] += dy[n, p] e[n, c]
__global__ void
channel_projection_input_grad_kernel(float *dx, const float *dy, const float *e, unsigned C,
                                     unsigned P, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    size_t nc = i / P;
    dx[i] += dy[nc / C * P + i % P] * e[nc];
  }
}

// de[n, c] += sum_p dy[n, p] x[n, c, p]: one block per (n, c).
__global__ void
channel_projection_vector_grad_kernel(float *de, const float *dy, const float *x, unsigned C,
                                      unsigned P)
{
  const float *g = dy + (size_t)(blockIdx.x / C) * P, *row = x + (size_t)blockIdx.x * P;
  double sum = 0.0;
  OS_CUDA_ROW_LOOP(p, P) { sum += (double)g[p] * row[p]; }
  sum = os_block_sum(sum);
  if (threadIdx.x == 0)
    de[blockIdx.x] += (float)sum;
}

void
os_cuda_channel_projection(os_backend *be, float *y, const float *x, const float *e, int N, int C,
                           int P)
{
  os_cuda_backend *cb = os_cuda(be);
  LAUNCH(channel_projection_kernel, (size_t)N * P, VIEW(y), VIEW(x), VIEW(e), (unsigned)C,
         (unsigned)P, (size_t)N * P);
}

void
os_cuda_channel_projection_backward(os_backend *be, float *dx, float *de, const float *dy,
                                    const float *x, const float *e, int N, int C, int P)
{
  os_cuda_backend *cb = os_cuda(be);
  if (dx)
    LAUNCH(channel_projection_input_grad_kernel, (size_t)N * C * P, dx, dy, e, (unsigned)C,
           (unsigned)P, (size_t)N * C * P);
  if (de)
    LAUNCH_ROWS(channel_projection_vector_grad_kernel, (size_t)N * C, P, de, dy, x, (unsigned)C,
                (unsigned)P);
}
