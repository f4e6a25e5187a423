/* cpu_conv_onednn_none.c: built without oneDNN (libdnnl-dev not found), so
 * conv2d always uses its own lowering. */
#include "cpu_conv.h"

bool
os_cpu_conv2d_onednn(os_backend *be, float *y, const float *x, const float *W,
                     const float *bias, const float *residual, int N, int Cin, int H, int Wd,
                     int Cout, int KH, int KW, int stride, int pad_top, int pad_left,
                     int pad_bottom, int pad_right)
{
  (void)be, (void)y, (void)x, (void)W, (void)bias, (void)residual, (void)N, (void)Cin, (void)H;
  (void)Wd, (void)Cout, (void)KH, (void)KW, (void)stride, (void)pad_top, (void)pad_left;
  (void)pad_bottom, (void)pad_right;
  return false;
}

void
os_cpu_conv2d_onednn_set_step_bytes(size_t bytes)
{
  (void)bytes;
}
