// cuda_conv.cu: conv2d as im2col + cuBLAS GEMM.
//
// y_n[Cout, P] = W[Cout, K] col_n[K, P] with K = Cin*KH*KW and P = Ho*Wo.
// The column matrix is built in bounded chunks (whole images when one fits,
// else ranges of output rows of one image), directly in the GEMM operand
// type, so memory stays bounded even for the decoder's 1024x576 layers. A 1x1,
// stride 1, unpadded convolution whose x already stores the operand type is a
// plain GEMM on x. x, y and the residual may store any type.

#include <string.h>

#include "cuda_common.h"
#include "cuda_cudnn.h"
#include "cuda_types.cuh"

// Column-matrix scratch per chunk. Large, so that each GEMM fills the GPU
// several times over (at 1024x576 and 128 channels a chunk is ~113 rows, 116k
// pixels: hundreds of tiles of Cout x pixels) and the decoder's layers take
// tens of launches instead of hundreds; writing and re-reading the columns
// costs less than GEMMs too small to occupy every SM.
#define COL_BUDGET ((size_t)256 << 20)
#define GRID_LIMIT 65535u // grid.y and grid.z

typedef struct {
  int Cin, H, W, KH, KW, stride, pad_top, pad_left, Wo;
} conv_shape;

// col[img][k][r * Wo + ox] for images [0, n_img) of x and output rows oy0 + r,
// r < rows; k = (ci * KH + ky) * KW + kx, zero outside the padded input.
// Grid: x over ox, y over k, z over (image, row), so each thread only adds
// its column offset to indices derived once per block.
template <typename T>
__global__ void
im2col_kernel(T *col, os_cuda_view x, conv_shape sh, unsigned oy0, unsigned rows)
{
  unsigned ox = blockIdx.x * blockDim.x + threadIdx.x;
  if (ox >= (unsigned)sh.Wo)
    return;
  unsigned k = blockIdx.y, K = gridDim.y;
  unsigned img = blockIdx.z / rows, r = blockIdx.z % rows;
  int kx = k % sh.KW, ky = (k / sh.KW) % sh.KH, ci = k / (sh.KW * sh.KH);
  int iy = (int)(oy0 + r) * sh.stride - sh.pad_top + ky;
  int ix = (int)ox * sh.stride - sh.pad_left + kx;
  float v = 0.0f;
  if (iy >= 0 && iy < sh.H && ix >= 0 && ix < sh.W)
    v = os_load(x, (((size_t)img * sh.Cin + ci) * sh.H + iy) * sh.W + ix);
  size_t pc = (size_t)rows * sh.Wo;
  col[((size_t)img * K + k) * pc + (size_t)r * sh.Wo + ox] = os_from_float<T>(v);
}

static void
im2col(os_cuda_backend *cb, void *col, cudaDataType type, const float *x_buffer,
       const conv_shape *sh, int n_img, int oy0, int rows)
{
  os_cuda_view x = os_cuda_view_of(cb, x_buffer);
  unsigned threads = os_cuda_row_threads((size_t)sh->Wo);
  dim3 grid((sh->Wo + threads - 1) / threads, (unsigned)(sh->Cin * sh->KH * sh->KW),
            (unsigned)(n_img * rows));
  if (type == CUDA_R_16F)
    im2col_kernel<<<grid, threads, 0, cb->stream>>>((__half *)col, x, *sh, oy0, rows);
  else if (type == CUDA_R_16BF)
    im2col_kernel<<<grid, threads, 0, cb->stream>>>((__nv_bfloat16 *)col, x, *sh, oy0, rows);
  else
    im2col_kernel<<<grid, threads, 0, cb->stream>>>((float *)col, x, *sh, oy0, rows);
  os_cuda_check_launch(cb, "im2col");
}

void
os_cuda_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
               const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH, int KW,
               int stride, int pad_top, int pad_left, int pad_bottom, int pad_right)
{
  os_cuda_backend *cb = os_cuda(be);
  int Ho = (H + pad_top + pad_bottom - KH) / stride + 1;
  int Wo = (Wd + pad_left + pad_right - KW) / stride + 1;
  if (N <= 0 || Cout <= 0 || Ho <= 0 || Wo <= 0)
    return;
  conv_shape sh = { Cin, H, Wd, KH, KW, stride, pad_top, pad_left, Wo };
  size_t K = (size_t)Cin * KH * KW, P = (size_t)Ho * Wo;
  if (K > GRID_LIMIT) { // im2col's grid.y
    os_cuda_latch(cb, ONESTEP_ERR_INVALID_ARGUMENT,
                  "conv2d: %d input channels x %dx%d kernel exceed 65535", Cin, KH, KW);
    return;
  }

  os_cuda_operand w;
  if (!os_cuda_operand_prepare(cb, &w, W, (size_t)Cout * K, true))
    return;
  cudaDataType type = os_cuda_operand_type(cb);
  bool pointwise = KH == 1 && KW == 1 && stride == 1 && !pad_top && !pad_left && !pad_bottom &&
                   !pad_right;

  os_cuda_view x_stored = os_cuda_view_of(cb, x);
  if (pointwise && os_cuda_dtype_cuda(x_stored.type) == type) {
    os_cuda_operand xo = { x_stored.ptr, type, NULL };
    os_cuda_gemm_typed(cb, false, false, Cout, (int)P, (int)K, 1.0f, &w, (int)K, 0, &xo, (int)P,
                       (int64_t)K * P, 0.0f, y, (int)P, (int64_t)Cout * P, N);
  } else {
    // Chunks of whole output rows; whole images (several at once) when they fit.
    size_t row_bytes = K * Wo * os_cuda_type_size(type);
    size_t max_rows = Ho < (int)GRID_LIMIT ? (size_t)Ho : GRID_LIMIT;
    size_t rows = COL_BUDGET / row_bytes;
    rows = rows < 1 ? 1 : rows > max_rows ? max_rows : rows;
    size_t imgs = 1;
    if (rows == (size_t)Ho) {
      imgs = COL_BUDGET / (row_bytes * Ho);
      if (imgs > GRID_LIMIT / Ho) // im2col's grid.z
        imgs = GRID_LIMIT / Ho;
      if (imgs > (size_t)N)
        imgs = N;
      if (imgs < 1)
        imgs = 1;
    }
    os_cuda_operand col = { NULL, type, NULL };
    col.scratch = os_cuda_scratch(cb, imgs * rows * row_bytes, "conv2d columns");
    col.ptr = col.scratch;
    for (int n0 = 0; col.scratch && n0 < N; n0 += (int)imgs) {
      int n_img = N - n0 < (int)imgs ? N - n0 : (int)imgs;
      for (int oy0 = 0; oy0 < Ho; oy0 += (int)rows) {
        int rc = Ho - oy0 < (int)rows ? Ho - oy0 : (int)rows;
        size_t cols = (size_t)rc * Wo;
        im2col(cb, col.scratch, type, x + (size_t)n0 * Cin * H * Wd, &sh, n_img, oy0, rc);
        os_cuda_gemm_typed(cb, false, false, Cout, (int)cols, (int)K, 1.0f, &w, (int)K, 0, &col,
                           (int)cols, (int64_t)(K * cols), 0.0f,
                           y + (size_t)n0 * Cout * P + (size_t)oy0 * Wo, (int)P,
                           (int64_t)Cout * P, n_img);
      }
    }
    os_cuda_operand_release(cb, &col);
  }
  os_cuda_operand_release(cb, &w);
  os_cuda_bias_residual(cb, y, bias, residual, N, Cout, (int)P);
}

// ----------------------------------------------------------------------------
// backward: cuDNN's deterministic fp32 algorithms, bias by channel sums

// Copies between x [planes, H, W] and the interior of its padded copy
// [planes, H + pt + pb, W + pl + pr] (whose border the caller zeroed):
// padded = x, or x += padded. Row (plane, y) of x.
__global__ void
padded_interior_kernel(float *padded, float *x, const float *x_in, unsigned H, unsigned W,
                       unsigned pad_top, unsigned pad_left, unsigned Hp, unsigned Wp,
                       bool into_padded)
{
  unsigned y = blockIdx.x % H, plane = blockIdx.x / H;
  size_t row = (size_t)blockIdx.x * W;
  size_t padded_row = ((size_t)plane * Hp + y + pad_top) * Wp + pad_left;
  OS_CUDA_ROW_LOOP(i, W)
  {
    if (into_padded)
      padded[padded_row + i] = x_in[row + i];
    else
      x[row + i] += padded[padded_row + i];
  }
}

static void
padded_interior(os_cuda_backend *cb, float *padded, float *x, const float *x_in,
                const os_conv2d_shape *s, int planes, bool into_padded)
{
  unsigned Hp = s->H + s->pad_top + s->pad_bottom, Wp = s->W + s->pad_left + s->pad_right;
  padded_interior_kernel<<<(unsigned)planes * s->H, os_cuda_row_threads(s->W), 0, cb->stream>>>(
      padded, x, x_in, s->H, s->W, s->pad_top, s->pad_left, Hp, Wp, into_padded);
  os_cuda_check_launch(cb, "conv2d_backward padding");
}

typedef struct {
  os_cudnn_tensor x, dy;
  os_cudnn_filter w;
  os_cudnn_convolution conv;
} conv_descriptors;

// cuDNN's legacy API pads symmetrically; other padding runs on an explicitly
// padded x (pad 0), `padded` true.
static bool
describe(os_cuda_backend *cb, os_cuda_cudnn *dnn, conv_descriptors *d,
         const os_conv2d_shape *s, bool padded)
{
  int Hp = padded ? s->H + s->pad_top + s->pad_bottom : s->H;
  int Wp = padded ? s->W + s->pad_left + s->pad_right : s->W;
  int pad_h = padded ? 0 : s->pad_top, pad_w = padded ? 0 : s->pad_left;
  return os_cuda_cudnn_check(cb, dnn, dnn->cudnnCreateTensorDescriptor(&d->x), "descriptor") &&
         os_cuda_cudnn_check(cb, dnn, dnn->cudnnCreateTensorDescriptor(&d->dy), "descriptor") &&
         os_cuda_cudnn_check(cb, dnn, dnn->cudnnCreateFilterDescriptor(&d->w), "descriptor") &&
         os_cuda_cudnn_check(cb, dnn, dnn->cudnnCreateConvolutionDescriptor(&d->conv),
                             "descriptor") &&
         os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnSetTensor4dDescriptor(d->x, OS_CUDNN_TENSOR_NCHW,
                                                             OS_CUDNN_DATA_FLOAT, s->N, s->Cin,
                                                             Hp, Wp),
                             "conv2d_backward x shape") &&
         os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnSetTensor4dDescriptor(d->dy, OS_CUDNN_TENSOR_NCHW,
                                                             OS_CUDNN_DATA_FLOAT, s->N, s->Cout,
                                                             os_conv2d_out_h(s),
                                                             os_conv2d_out_w(s)),
                             "conv2d_backward dy shape") &&
         os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnSetFilter4dDescriptor(d->w, OS_CUDNN_DATA_FLOAT,
                                                             OS_CUDNN_TENSOR_NCHW, s->Cout,
                                                             s->Cin, s->KH, s->KW),
                             "conv2d_backward weight shape") &&
         os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnSetConvolution2dDescriptor(
                                 d->conv, pad_h, pad_w, s->stride, s->stride, 1, 1,
                                 OS_CUDNN_CROSS_CORRELATION, OS_CUDNN_DATA_FLOAT),
                             "conv2d_backward convolution") &&
         os_cuda_cudnn_check(cb, dnn, dnn->cudnnSetConvolutionMathType(d->conv, OS_CUDNN_FMA_MATH),
                             "conv2d_backward math type");
}

static void
release_descriptors(os_cuda_cudnn *dnn, conv_descriptors *d)
{
  if (d->x)
    dnn->cudnnDestroyTensorDescriptor(d->x);
  if (d->dy)
    dnn->cudnnDestroyTensorDescriptor(d->dy);
  if (d->w)
    dnn->cudnnDestroyFilterDescriptor(d->w);
  if (d->conv)
    dnn->cudnnDestroyConvolutionDescriptor(d->conv);
}

void
os_cuda_conv2d_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                        const float *x, const float *W, const os_conv2d_shape *s)
{
  os_cuda_backend *cb = os_cuda(be);
  int Ho = os_conv2d_out_h(s), Wo = os_conv2d_out_w(s);
  if (s->N <= 0 || s->Cout <= 0 || Ho <= 0 || Wo <= 0)
    return;
  if (db)
    os_cuda_channel_sums(cb, db, dy, s->N, s->Cout, Ho * Wo);
  if (!dx && !dW)
    return;
  os_cuda_cudnn *dnn = os_cuda_cudnn_get(cb, "conv2d_backward");
  if (!dnn)
    return;

  bool padded = s->pad_top != s->pad_bottom || s->pad_left != s->pad_right;
  size_t padded_bytes = (size_t)s->N * s->Cin * (s->H + s->pad_top + s->pad_bottom) *
                        (s->W + s->pad_left + s->pad_right) * sizeof(float);
  int planes = s->N * s->Cin;
  const float one = 1.0f, zero = 0.0f;
  conv_descriptors d;
  memset(&d, 0, sizeof d);
  size_t data_bytes = 0, filter_bytes = 0;
  void *workspace = NULL;
  float *staged = NULL; // the padded x (for dW), then the padded dx
  bool ok = describe(cb, dnn, &d, s, padded);
  if (ok && dx)
    ok = os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnGetConvolutionBackwardDataWorkspaceSize(
                                 dnn->handle, d.w, d.dy, d.conv, d.x, OS_CUDNN_BWD_DATA_ALGO_1,
                                 &data_bytes),
                             "conv2d_backward workspace");
  if (ok && dW)
    ok = os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnGetConvolutionBackwardFilterWorkspaceSize(
                                 dnn->handle, d.x, d.dy, d.conv, d.w, OS_CUDNN_BWD_FILTER_ALGO_1,
                                 &filter_bytes),
                             "conv2d_backward workspace");
  size_t workspace_bytes = data_bytes > filter_bytes ? data_bytes : filter_bytes;
  if (ok && workspace_bytes)
    ok = (workspace = os_cuda_scratch(cb, workspace_bytes, "conv2d_backward workspace")) != NULL;
  if (ok && padded)
    ok = (staged = (float *)os_cuda_scratch(cb, padded_bytes, "conv2d_backward padding")) != NULL;

  if (ok && dW) {
    const float *x_used = x;
    if (padded) {
      cudaMemsetAsync(staged, 0, padded_bytes, cb->stream);
      padded_interior(cb, staged, NULL, x, s, planes, true);
      x_used = staged;
    }
    ok = os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnConvolutionBackwardFilter(
                                 dnn->handle, &one, d.x, x_used, d.dy, dy, d.conv,
                                 OS_CUDNN_BWD_FILTER_ALGO_1, workspace, workspace_bytes, &one,
                                 d.w, dW),
                             "conv2d_backward filter");
    os_cuda_check_launch(cb, "conv2d_backward filter");
  }
  if (ok && dx) {
    // padded: the whole padded gradient, whose interior is then added to dx
    ok = os_cuda_cudnn_check(cb, dnn,
                             dnn->cudnnConvolutionBackwardData(
                                 dnn->handle, &one, d.w, W, d.dy, dy, d.conv,
                                 OS_CUDNN_BWD_DATA_ALGO_1, workspace, workspace_bytes,
                                 padded ? &zero : &one, d.x, padded ? staged : dx),
                             "conv2d_backward data");
    os_cuda_check_launch(cb, "conv2d_backward data");
    if (ok && padded)
      padded_interior(cb, staged, dx, NULL, s, planes, false);
  }
  os_cuda_free(be, staged);
  os_cuda_free(be, workspace);
  release_descriptors(dnn, &d);
}
