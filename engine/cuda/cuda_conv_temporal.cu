// cuda_conv_temporal.cu: the (3,1,1) temporal convolution as one strided-
// batched GEMM over the frames of each batch element:
//   y[b,f] = W0 x[b,f-1] + W1 x[b,f] + W2 x[b,f+1] + bias  (zero frames outside)
//          = [W0 W1 W2] [x[b,f-1]; x[b,f]; x[b,f+1]].
// x is staged per range of pixels as F+2 frames with a zero frame at each
// end, in the GEMM operand type; consecutive staged frames are contiguous, so
// frames f-1, f, f+1 form one [3 Cin, pixels] matrix starting at staged frame
// f. The weight is regrouped once into [Cout, 3 Cin] (a cached derived
// weight). One GEMM with K = 3 Cin writes each output once, instead of three
// GEMMs with K = Cin accumulating into it.

#include "cuda_common.h"
#include "cuda_types.cuh"

// Staged bytes per chunk: enough pixels for GEMMs that fill the GPU.
#define STAGE_BUDGET ((size_t)256 << 20)

// staged[g][c][j] = x[g-1][c][p0 + j] for j < pc, converted to T, and zero
// for the padding frames g = 0 and g = F+1; one block per (g, c) row.
template <typename T>
__global__ void
stage_frames_kernel(T *staged, const float *x, unsigned F, unsigned Cin, size_t HW, unsigned p0,
                    unsigned pc)
{
  unsigned g = blockIdx.x / Cin, c = blockIdx.x % Cin;
  T *out = staged + (size_t)blockIdx.x * pc;
  if (g == 0 || g == F + 1) {
    OS_CUDA_ROW_LOOP(j, pc) { out[j] = os_from_float<T>(0.0f); }
    return;
  }
  const float *src = x + ((size_t)(g - 1) * Cin + c) * HW + p0;
  OS_CUDA_ROW_LOOP(j, pc) { out[j] = os_from_float<T>(src[j]); }
}

static void
stage_frames(os_cuda_backend *cb, void *staged, cudaDataType type, const float *x, int F, int Cin,
             size_t HW, size_t p0, size_t pc)
{
  unsigned rows = (unsigned)(F + 2) * Cin, threads = os_cuda_row_threads(pc);
  if (type == CUDA_R_16F)
    stage_frames_kernel<<<rows, threads, 0, cb->stream>>>((__half *)staged, x, F, Cin, HW, p0,
                                                          pc);
  else if (type == CUDA_R_16BF)
    stage_frames_kernel<<<rows, threads, 0, cb->stream>>>((__nv_bfloat16 *)staged, x, F, Cin, HW,
                                                          p0, pc);
  else
    stage_frames_kernel<<<rows, threads, 0, cb->stream>>>((float *)staged, x, F, Cin, HW, p0, pc);
  os_cuda_check_launch(cb, "temporal staging");
}

void
os_cuda_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                      const float *bias, int B, int F, int Cin, int Cout, int HW)
{
  os_cuda_backend *cb = os_cuda(be);
  if (B <= 0 || F <= 0 || Cout <= 0 || HW <= 0)
    return;
  size_t taps_n = (size_t)Cout * Cin * 3;
  const float *taps =
      (const float *)os_cuda_derived_get(cb, W, taps_n, OS_DERIVED_TEMPORAL_TAPS, Cout, Cin);
  os_cuda_operand w;
  if (!taps || !os_cuda_operand_prepare(cb, &w, taps, taps_n, true))
    return;
  cudaDataType type = os_cuda_operand_type(cb);

  size_t frame_in = (size_t)Cin * HW, frame_out = (size_t)Cout * HW;
  size_t per_pixel = (size_t)(F + 2) * Cin * os_cuda_type_size(type);
  size_t pc = STAGE_BUDGET / per_pixel < (size_t)HW ? STAGE_BUDGET / per_pixel : (size_t)HW;
  if (pc == 0)
    pc = 1;
  os_cuda_operand staged = { NULL, type, NULL };
  staged.scratch = os_cuda_scratch(cb, per_pixel * pc, "temporal convolution staging");
  staged.ptr = staged.scratch;

  for (int b = 0; staged.scratch && b < B; b++) {
    const float *xb = x + (size_t)b * F * frame_in;
    float *yb = y + (size_t)b * F * frame_out;
    for (size_t p0 = 0; p0 < (size_t)HW; p0 += pc) {
      size_t cols = (size_t)HW - p0 < pc ? (size_t)HW - p0 : pc;
      stage_frames(cb, staged.scratch, type, xb, F, Cin, HW, p0, cols);
      // frame f reads staged frames f .. f+2 (x[f-1], x[f], x[f+1])
      os_cuda_gemm_typed(cb, false, false, Cout, (int)cols, 3 * Cin, 1.0f, &w, 3 * Cin, 0,
                         &staged, (int)cols, (int64_t)(Cin * cols), 0.0f, yb + p0, HW,
                         (int64_t)frame_out, F);
    }
  }
  os_cuda_operand_release(cb, &staged);
  os_cuda_operand_release(cb, &w);
  os_cuda_bias_residual(cb, y, bias, NULL, B * F, Cout, HW);
}
