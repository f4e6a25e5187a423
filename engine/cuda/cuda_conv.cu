// cuda_conv.cu: conv2d as im2col + cuBLAS GEMM.
//
// y_n[Cout, P] = W[Cout, K] col_n[K, P] with K = Cin*KH*KW and P = Ho*Wo.
// The column matrix is built in bounded chunks (whole images when one fits,
// else ranges of output pixels of one image), directly in the GEMM operand
// type, so memory stays small even for the decoder's 1024x576 layers. A 1x1,
// stride 1, unpadded convolution in fp32 is a plain GEMM on x.

#include "cuda_common.h"
#include "cuda_types.cuh"

// Column-matrix scratch per chunk. Large, so that each GEMM fills the GPU
// several times over (at 1024x576 and 128 channels a chunk is ~116k pixels:
// hundreds of tiles of Cout x pixels) and the decoder's layers take tens of
// launches instead of hundreds; writing and re-reading the columns costs less
// than GEMMs too small to occupy every SM.
#define COL_BUDGET ((size_t)256 << 20)
#define MIN_CHUNK_PIXELS 2048

typedef struct {
  int Cin, H, W, KH, KW, stride, pad_top, pad_left, Wo;
  size_t P;
} conv_shape;

// col[img][k][j] for images [0, n_img) of x and output pixels p0 + j, j < pc;
// k = (ci * KH + ky) * KW + kx, zero outside the padded input. Grid: x over
// j, y over k, z over images, so the per-element work is one 32-bit divide.
template <typename T>
__global__ void
im2col_kernel(T *col, const float *x, conv_shape sh, unsigned p0, unsigned pc)
{
  unsigned j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= pc)
    return;
  unsigned k = blockIdx.y, img = blockIdx.z;
  unsigned K = gridDim.y;
  int kx = k % sh.KW, ky = (k / sh.KW) % sh.KH, ci = k / (sh.KW * sh.KH);
  unsigned p = p0 + j;
  int oy = p / sh.Wo, ox = p % sh.Wo;
  int iy = oy * sh.stride - sh.pad_top + ky;
  int ix = ox * sh.stride - sh.pad_left + kx;
  float v = 0.0f;
  if (iy >= 0 && iy < sh.H && ix >= 0 && ix < sh.W)
    v = x[(((size_t)img * sh.Cin + ci) * sh.H + iy) * sh.W + ix];
  col[((size_t)img * K + k) * pc + j] = os_from_float<T>(v);
}

static void
im2col(os_cuda_backend *cb, void *col, cudaDataType type, const float *x, const conv_shape *sh,
       int n_img, size_t p0, size_t pc)
{
  dim3 grid((unsigned)((pc + 255) / 256), (unsigned)(sh->Cin * sh->KH * sh->KW), n_img);
  if (type == CUDA_R_16F)
    im2col_kernel<<<grid, 256, 0, cb->stream>>>((__half *)col, x, *sh, p0, pc);
  else if (type == CUDA_R_16BF)
    im2col_kernel<<<grid, 256, 0, cb->stream>>>((__nv_bfloat16 *)col, x, *sh, p0, pc);
  else
    im2col_kernel<<<grid, 256, 0, cb->stream>>>((float *)col, x, *sh, p0, pc);
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
  conv_shape sh = { Cin, H, Wd, KH, KW, stride, pad_top, pad_left, Wo, (size_t)Ho * Wo };
  size_t K = (size_t)Cin * KH * KW, P = sh.P;
  if (K > 65535) { // im2col's grid.y
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
    size_t elem = os_cuda_type_size(type);
    size_t per_image = K * P * elem;
    int imgs = per_image <= COL_BUDGET ? (int)(COL_BUDGET / per_image) : 1;
    if (imgs > N)
      imgs = N;
    if (imgs > 65535) // im2col's grid.z
      imgs = 65535;
    size_t pc = per_image <= COL_BUDGET ? P : COL_BUDGET / (K * elem);
    if (pc < MIN_CHUNK_PIXELS)
      pc = P < MIN_CHUNK_PIXELS ? P : MIN_CHUNK_PIXELS;
    os_cuda_operand col = { NULL, type, NULL };
    col.scratch = os_cuda_scratch(cb, (size_t)imgs * K * pc * elem, "conv2d columns");
    col.ptr = col.scratch;
    for (int n0 = 0; col.scratch && n0 < N; n0 += imgs) {
      int n_img = N - n0 < imgs ? N - n0 : imgs;
      for (size_t p0 = 0; p0 < P; p0 += pc) {
        size_t cols = P - p0 < pc ? P - p0 : pc;
        im2col(cb, col.scratch, type, x + (size_t)n0 * Cin * H * Wd, &sh, n_img, p0, cols);
        os_cuda_gemm_typed(cb, false, false, Cout, (int)cols, (int)K, 1.0f, &w, (int)K, 0, &col,
                           (int)cols, (int64_t)(K * cols), 0.0f, y + (size_t)n0 * Cout * P + p0,
                           (int)P, (int64_t)Cout * P, n_img);
      }
    }
    os_cuda_operand_release(cb, &col);
  }
  os_cuda_operand_release(cb, &w);
  os_cuda_bias_residual(cb, y, bias, residual, N, Cout, (int)P);
}
