// cuda_conv_temporal.cu: the (3,1,1) temporal convolution as three strided-
// batched GEMMs, one per tap, over the frames of each batch element:
//   y[b,f] = W1 x[b,f] + W0 x[b,f-1] + W2 x[b,f+1] + bias  (zero frames outside).
// The taps are regrouped once into [3, Cout, Cin] (a cached derived weight).
// In fp16/bf16 mode x is staged per range of pixels so scratch stays bounded.

#include "cuda_common.h"
#include "cuda_types.cuh"

// Staged pixels per chunk: kept small so the three GEMMs read it from L2.
#define STAGE_BUDGET ((size_t)32 << 20)

// dst[f][c][j] = x[f][c][p0 + j] for j < pc, converted to T; one block per
// (frame, channel) row.
template <typename T>
__global__ void
stage_pixels_kernel(T *dst, const float *x, size_t HW, unsigned p0, unsigned pc)
{
  const float *src = x + (size_t)blockIdx.x * HW + p0;
  T *out = dst + (size_t)blockIdx.x * pc;
  OS_CUDA_ROW_LOOP(j, pc) { out[j] = os_from_float<T>(src[j]); }
}

void
os_cuda_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                      const float *bias, int B, int F, int Cin, int Cout, int HW)
{
  os_cuda_backend *cb = os_cuda(be);
  if (B <= 0 || F <= 0 || Cout <= 0 || HW <= 0)
    return;
  size_t taps_n = (size_t)Cout * Cin;
  const float *taps =
      (const float *)os_cuda_derived_get(cb, W, taps_n * 3, OS_DERIVED_TEMPORAL_TAPS, Cout, Cin);
  os_cuda_operand w;
  if (!taps || !os_cuda_operand_prepare(cb, &w, taps, taps_n * 3, true))
    return;
  cudaDataType type = os_cuda_operand_type(cb);

  size_t frame_in = (size_t)Cin * HW, frame_out = (size_t)Cout * HW;
  size_t pc = HW;
  os_cuda_operand staged = { NULL, type, NULL };
  if (type != CUDA_R_32F) {
    size_t per_pixel = (size_t)F * Cin * 2;
    pc = STAGE_BUDGET / per_pixel < (size_t)HW ? STAGE_BUDGET / per_pixel : (size_t)HW;
    if (pc == 0)
      pc = 1;
    staged.scratch = os_cuda_scratch(cb, per_pixel * pc, "temporal convolution staging");
    staged.ptr = staged.scratch;
    if (!staged.scratch) {
      os_cuda_operand_release(cb, &w);
      return;
    }
  }

  for (int b = 0; b < B; b++) {
    const float *xb = x + (size_t)b * F * frame_in;
    float *yb = y + (size_t)b * F * frame_out;
    for (size_t p0 = 0; p0 < (size_t)HW; p0 += pc) {
      size_t cols = (size_t)HW - p0 < pc ? (size_t)HW - p0 : pc;
      os_cuda_operand in = { xb + p0, CUDA_R_32F, NULL };
      size_t ld = HW, stride = frame_in;
      if (type != CUDA_R_32F) {
        unsigned rows = (unsigned)F * Cin, threads = os_cuda_row_threads(cols);
        if (type == CUDA_R_16F)
          stage_pixels_kernel<<<rows, threads, 0, cb->stream>>>((__half *)staged.scratch, xb, HW,
                                                                p0, cols);
        else
          stage_pixels_kernel<<<rows, threads, 0, cb->stream>>>((__nv_bfloat16 *)staged.scratch,
                                                                xb, HW, p0, cols);
        os_cuda_check_launch(cb, "temporal staging");
        in = staged;
        ld = cols;
        stride = (size_t)Cin * cols;
      }
      float *out = yb + p0;
      os_cuda_operand w0 = os_cuda_operand_at(&w, 0), w1 = os_cuda_operand_at(&w, taps_n),
                      w2 = os_cuda_operand_at(&w, 2 * taps_n);
      os_cuda_operand next = os_cuda_operand_at(&in, stride);
      // centre tap over all frames, then the previous and next frames' taps
      os_cuda_gemm_typed(cb, false, false, Cout, (int)cols, Cin, 1.0f, &w1, Cin, 0, &in, (int)ld,
                         (int64_t)stride, 0.0f, out, HW, (int64_t)frame_out, F);
      if (F > 1) {
        os_cuda_gemm_typed(cb, false, false, Cout, (int)cols, Cin, 1.0f, &w0, Cin, 0, &in,
                           (int)ld, (int64_t)stride, 1.0f, out + frame_out, HW,
                           (int64_t)frame_out, F - 1);
        os_cuda_gemm_typed(cb, false, false, Cout, (int)cols, Cin, 1.0f, &w2, Cin, 0, &next,
                           (int)ld, (int64_t)stride, 1.0f, out, HW, (int64_t)frame_out, F - 1);
      }
    }
  }
  os_cuda_operand_release(cb, &staged);
  os_cuda_operand_release(cb, &w);
  os_cuda_bias_residual(cb, y, bias, NULL, B * F, Cout, HW);
}
