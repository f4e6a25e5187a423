// cuda_conv_temporal.cu: the (3,1,1) temporal convolution as one strided-
// batched GEMM over the frames of each batch element:
//   y[b,f] = W0 x[b,f-1] + W1 x[b,f] + W2 x[b,f+1] + bias  (zero frames outside)
//          = [W0 W1 W2] [x[b,f-1]; x[b,f]; x[b,f+1]].
// x (any stored type) is staged per range of pixels as F+2 frames with a zero
// frame at each end, in the GEMM operand type; consecutive staged frames are
// contiguous, so frames f-1, f, f+1 form one [3 Cin, pixels] matrix starting
// at staged frame f. The weight is regrouped once into [Cout, 3 Cin] (a
// cached derived weight, in the operand type). One GEMM with K = 3 Cin writes
// each output once, instead of three GEMMs with K = Cin accumulating into it.
//
// The backward (fp32 in every mode) stages the same way: the input gradient
// is the forward's GEMM with the taps transposed and reversed over staged dy
// frames; the weight gradient sums, per frame, dy times the staged x frames.

#include "cuda_common.h"
#include "cuda_types.cuh"

// Staged bytes per chunk: enough pixels for GEMMs that fill the GPU.
#define STAGE_BUDGET ((size_t)256 << 20)

// staged[g][c][j] = x[g-1][c][p0 + j] for j < pc, converted to T, and zero
// for the padding frames g = 0 and g = F+1; one block per (g, c) row.
template <typename T>
__global__ void
stage_frames_kernel(T *staged, os_cuda_view x, unsigned F, unsigned Cin, size_t HW, unsigned p0,
                    unsigned pc)
{
  unsigned g = blockIdx.x / Cin, c = blockIdx.x % Cin;
  T *out = staged + (size_t)blockIdx.x * pc;
  if (g == 0 || g == F + 1) {
    OS_CUDA_ROW_LOOP(j, pc) { out[j] = os_from_float<T>(0.0f); }
    return;
  }
  os_cuda_view src = os_view_at(x, ((size_t)(g - 1) * Cin + c) * HW + p0);
  OS_CUDA_ROW_LOOP(j, pc) { out[j] = os_from_float<T>(os_load(src, j)); }
}

static void
stage_frames(os_cuda_backend *cb, void *staged, cudaDataType type, const float *x_buffer, int F,
             int Cin, size_t HW, size_t p0, size_t pc)
{
  os_cuda_view x = os_cuda_view_of(cb, x_buffer);
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
  cudaDataType type = os_cuda_operand_type(cb);
  // the regrouped taps, already in the operand type
  os_cuda_operand w = { os_cuda_derived_get(cb, W, (size_t)Cout * Cin * 3,
                                            OS_DERIVED_TEMPORAL_TAPS, Cout, Cin),
                        type, NULL };
  if (!w.ptr)
    return;

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
  os_cuda_bias_residual(cb, y, bias, NULL, B * F, Cout, HW);
}

// ----------------------------------------------------------------------------
// backward

// W [Cout, Cin, 3] -> [Cin, 3 Cout], column j Cout + o holding W[o, i, 2 - j]:
// dx[f] = sum_k W_k^T dy[f + 1 - k], and the staged dy frames f, f+1, f+2
// are dy[f-1], dy[f], dy[f+1], which meet taps 2, 1 and 0.
__global__ void
reversed_taps_kernel(float *reversed, const float *W, int cout, int cin)
{
  size_t n = (size_t)cout * cin;
  OS_CUDA_GRID_STRIDE(e, n)
  {
    size_t o = e / cin, i = e % cin;
    for (int k = 0; k < 3; k++)
      reversed[i * 3 * cout + (size_t)(2 - k) * cout + o] = W[e * 3 + k];
  }
}

// dW[o, i, k] += taps_grad[o, k, i], the gradient of the regrouped taps.
__global__ void
add_taps_grad_kernel(float *dW, const float *taps_grad, int cout, int cin)
{
  size_t n = (size_t)cout * cin;
  OS_CUDA_GRID_STRIDE(e, n)
  {
    size_t o = e / cin, i = e % cin;
    for (int k = 0; k < 3; k++)
      dW[e * 3 + k] += taps_grad[(o * 3 + k) * cin + i];
  }
}

void
os_cuda_conv_temporal_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                               const float *x, const float *W, int B, int F, int Cin, int Cout,
                               int HW)
{
  os_cuda_backend *cb = os_cuda(be);
  if (B <= 0 || F <= 0 || Cin <= 0 || Cout <= 0 || HW <= 0)
    return;
  if (db)
    os_cuda_channel_sums(cb, db, dy, B * F, Cout, HW);
  if (!dx && !dW)
    return;
  size_t taps_n = (size_t)Cout * Cin * 3, taps_bytes = taps_n * sizeof(float);
  size_t frame_in = (size_t)Cin * HW, frame_out = (size_t)Cout * HW;
  int widest = Cin > Cout ? Cin : Cout;
  size_t per_pixel = (size_t)(F + 2) * widest * sizeof(float);
  size_t pc = STAGE_BUDGET / per_pixel < (size_t)HW ? STAGE_BUDGET / per_pixel : (size_t)HW;
  if (pc == 0)
    pc = 1;
  float *staged = (float *)os_cuda_scratch(cb, per_pixel * pc, "temporal backward staging");
  float *reversed = dx ? (float *)os_cuda_scratch(cb, taps_bytes, "temporal reversed taps") : NULL;
  float *taps_grad = dW ? (float *)os_cuda_scratch(cb, taps_bytes, "temporal taps gradient") : NULL;
  bool ok = staged && (!dx || reversed) && (!dW || taps_grad);
  if (ok && dx) {
    reversed_taps_kernel<<<os_cuda_blocks((size_t)Cout * Cin), OS_CUDA_THREADS, 0, cb->stream>>>(
        reversed, W, Cout, Cin);
    os_cuda_check_launch(cb, "temporal reversed taps");
  }
  if (ok && dW)
    cudaMemsetAsync(taps_grad, 0, taps_bytes, cb->stream);

  for (int b = 0; ok && b < B; b++) {
    const float *xb = x + (size_t)b * F * frame_in, *dyb = dy + (size_t)b * F * frame_out;
    for (size_t p0 = 0; p0 < (size_t)HW; p0 += pc) {
      size_t cols = (size_t)HW - p0 < pc ? (size_t)HW - p0 : pc;
      if (dW) {
        // taps_grad[Cout, 3 Cin] += dy[f] x-frames(f-1, f, f+1)^T, frame by frame
        stage_frames(cb, staged, CUDA_R_32F, xb, F, Cin, HW, p0, cols);
        for (int f = 0; f < F; f++)
          os_cuda_gemm_fp32(cb, false, true, Cout, 3 * Cin, (int)cols, 1.0f,
                            dyb + f * frame_out + p0, HW, 0, staged + (size_t)f * Cin * cols,
                            (int)cols, 0, 1.0f, taps_grad, 3 * Cin, 0, 1);
      }
      if (dx) {
        // dx[f] += reversed [Cin, 3 Cout] times staged dy frames f..f+2, one GEMM
        stage_frames(cb, staged, CUDA_R_32F, dyb, F, Cout, HW, p0, cols);
        os_cuda_gemm_fp32(cb, false, false, Cin, (int)cols, 3 * Cout, 1.0f, reversed, 3 * Cout, 0,
                          staged, (int)cols, (int64_t)(Cout * cols), 1.0f,
                          dx + (size_t)b * F * frame_in + p0, HW, (int64_t)frame_in, F);
      }
    }
  }
  if (ok && dW) {
    add_taps_grad_kernel<<<os_cuda_blocks((size_t)Cout * Cin), OS_CUDA_THREADS, 0, cb->stream>>>(
        dW, taps_grad, Cout, Cin);
    os_cuda_check_launch(cb, "temporal taps gradient");
  }
  os_cuda_free(be, staged);
  os_cuda_free(be, reversed);
  os_cuda_free(be, taps_grad);
}
