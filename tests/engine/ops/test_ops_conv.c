/* test_ops_conv.c: conv2d and the temporal (3,1,1) convolution against
 * direct double loops, on odd shapes, asymmetric padding and stride 2. */
#include <stdio.h>
#include <stdlib.h>

#include "ops_test.h"

typedef struct {
  int N, Cin, H, W, Cout, KH, KW, stride, pt, pl, pb, pr;
  bool bias, residual;
} conv_case;

static void
test_conv2d(os_backend *be, conv_case c, const char *label)
{
  int Ho = (c.H + c.pt + c.pb - c.KH) / c.stride + 1;
  int Wo = (c.W + c.pl + c.pr - c.KW) / c.stride + 1;
  size_t out_n = (size_t)c.N * c.Cout * Ho * Wo;
  float *x = ops_random((size_t)c.N * c.Cin * c.H * c.W, 1, -1, 1);
  float *W = ops_random((size_t)c.Cout * c.Cin * c.KH * c.KW, 2, -1, 1);
  float *bias = c.bias ? ops_random(c.Cout, 3, -1, 1) : NULL;
  float *residual = c.residual ? ops_random(out_n, 4, -1, 1) : NULL;
  float *y = ops_random(out_n, 5, -1, 1);
  double *want = ops_zeros_double(out_n);
  for (int n = 0; n < c.N; n++)
    for (int o = 0; o < c.Cout; o++)
      for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
          double sum = bias ? bias[o] : 0.0;
          for (int i = 0; i < c.Cin; i++)
            for (int ky = 0; ky < c.KH; ky++)
              for (int kx = 0; kx < c.KW; kx++) {
                int iy = oy * c.stride - c.pt + ky, ix = ox * c.stride - c.pl + kx;
                if (iy >= 0 && iy < c.H && ix >= 0 && ix < c.W)
                  sum += (double)x[((n * c.Cin + i) * c.H + iy) * c.W + ix] *
                         W[((o * c.Cin + i) * c.KH + ky) * c.KW + kx];
              }
          size_t at = (((size_t)n * c.Cout + o) * Ho + oy) * Wo + ox;
          want[at] = sum + (residual ? residual[at] : 0.0);
        }
  be->ops->conv2d(be, y, x, W, bias, residual, c.N, c.Cin, c.H, c.W, c.Cout, c.KH, c.KW,
                  c.stride, c.pt, c.pl, c.pb, c.pr);
  char what[100];
  snprintf(what, sizeof what, "conv2d %s -> %dx%d", label, Ho, Wo);
  ops_check_scaled(what, y, want, out_n, 2e-6);
  free(x), free(W), free(bias), free(residual), free(y), free(want);
}

static void
test_conv_temporal(os_backend *be, int B, int F, bool with_bias)
{
  const int Cin = 5, Cout = 4, HW = 7;
  size_t out_n = (size_t)B * F * Cout * HW;
  float *x = ops_random((size_t)B * F * Cin * HW, 6, -1, 1);
  float *W = ops_random((size_t)Cout * Cin * 3, 7, -1, 1);
  float *bias = with_bias ? ops_random(Cout, 8, -1, 1) : NULL;
  float *y = ops_random(out_n, 9, -1, 1);
  double *want = ops_zeros_double(out_n);
  for (int b = 0; b < B; b++)
    for (int f = 0; f < F; f++)
      for (int o = 0; o < Cout; o++)
        for (int p = 0; p < HW; p++) {
          double sum = bias ? bias[o] : 0.0;
          for (int k = 0; k < 3; k++) {
            int src = f + k - 1;
            if (src < 0 || src >= F)
              continue;
            for (int i = 0; i < Cin; i++)
              sum += (double)W[(o * Cin + i) * 3 + k] * x[(((b * F + src) * Cin) + i) * HW + p];
          }
          want[(((size_t)b * F + f) * Cout + o) * HW + p] = sum;
        }
  be->ops->conv_temporal(be, y, x, W, bias, B, F, Cin, Cout, HW);
  char what[100];
  snprintf(what, sizeof what, "conv_temporal B=%d F=%d 5->4 HW=7 %s", B, F,
           with_bias ? "bias" : "no bias");
  ops_check_scaled(what, y, want, out_n, 2e-6);
  free(x), free(W), free(bias), free(y), free(want);
}

/* A 1-channel 3x3 input and a kernel picking single taps: exact values. */
static void
test_conv2d_hand(os_backend *be)
{
  float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  float W[9] = { 0, 0, 0, 0, 0, 1, 0, 0, 0 }; /* right neighbour */
  float bias[1] = { 0.5f }, y[9];
  be->ops->conv2d(be, y, x, W, bias, NULL, 1, 1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1);
  float want[9] = { 2.5f, 3.5f, 0.5f, 5.5f, 6.5f, 0.5f, 8.5f, 9.5f, 0.5f };
  ops_check_exact("conv2d hand: 3x3 shift-left kernel + bias", y, want, 9);
  /* 4x4 input 1..16, stride 2, padding only right/bottom: output (oy, ox)
   * reads input (2oy + 1, 2ox + 2), which is padding for ox = 1. */
  float x4[16], y2[4];
  for (int i = 0; i < 16; i++)
    x4[i] = (float)(i + 1);
  be->ops->conv2d(be, y2, x4, W, NULL, NULL, 1, 1, 4, 4, 1, 3, 3, 2, 0, 0, 1, 1);
  float want2[4] = { 7, 0, 15, 0 };
  ops_check_exact("conv2d hand: stride 2, pad right/bottom only", y2, want2, 4);
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  test_conv2d_hand(be);
  test_conv2d(be, (conv_case){ 2, 6, 5, 7, 4, 3, 3, 1, 1, 1, 1, 1, true, false },
              "3x3 s1 pad1 6->4 5x7 N=2 bias");
  test_conv2d(be, (conv_case){ 2, 6, 5, 7, 4, 3, 3, 2, 0, 0, 1, 1, true, true },
              "3x3 s2 pad(0,0,1,1) bias+residual");
  test_conv2d(be, (conv_case){ 3, 6, 5, 7, 5, 1, 1, 1, 0, 0, 0, 0, false, true },
              "1x1 pointwise N=3 residual");
  test_conv2d(be, (conv_case){ 1, 6, 5, 7, 4, 1, 1, 2, 0, 0, 0, 0, true, false },
              "1x1 s2");
  test_conv2d(be, (conv_case){ 2, 3, 6, 5, 4, 3, 2, 1, 2, 1, 0, 3, true, true },
              "3x2 pad(2,1,0,3)");
  test_conv2d(be, (conv_case){ 1, 3, 5, 7, 2, 7, 7, 2, 3, 3, 3, 3, true, false },
              "7x7 s2 pad3");
  /* Column buffer over the chunk cap: several chunks of output rows. */
  test_conv2d(be, (conv_case){ 1, 64, 80, 128, 4, 3, 3, 1, 1, 1, 1, 1, true, true },
              "3x3 64->4 80x128 chunked");
  test_conv_temporal(be, 2, 3, true);
  test_conv_temporal(be, 2, 1, true);
  test_conv_temporal(be, 1, 5, false);
  be->ops->destroy(be);
  return ops_test_finish("test-ops-conv");
}
