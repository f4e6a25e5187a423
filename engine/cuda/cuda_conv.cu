// cuda_conv.cu: conv2d as im2col + cuBLAS GEMM.
//
// y_n[Cout, P] = W[Cout, K] col_n[K, P] with K = Cin*KH*KW and P = Ho*Wo.
// The column matrix is built in bounded chunks (whole images when one fits,
// else ranges of output rows of one image), directly in the GEMM operand
// type, so memory stays bounded even for the decoder's 1024x576 layers. A 1x1,
// stride 1, unpadded convolution in fp32 is a plain GEMM on x.

#include "cuda_common.h"
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
im2col_kernel(T *col, const float *x, conv_shape sh, unsigned oy0, unsigned rows)
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
    v = x[(((size_t)img * sh.Cin + ci) * sh.H + iy) * sh.W + ix];
  size_t pc = (size_t)rows * sh.Wo;
  col[((size_t)img * K + k) * pc + (size_t)r * sh.Wo + ox] = os_from_float<T>(v);
}

static void
im2col(os_cuda_backend *cb, void *col, cudaDataType type, const float *x, const conv_shape *sh,
       int n_img, int oy0, int rows)
{
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

  if (pointwise && type == CUDA_R_32F) {
    os_cuda_operand xo = { x, CUDA_R_32F, NULL };
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
