/* test_ops_conv_steps.c: oneDNN's convolutions taken in steps (groups of
 * images; bands of output rows of one image, with stride 2 and asymmetric
 * padding) give bit for bit what one call gives, and agree with the CPU's own
 * lowering. Skipped (77) in a build without oneDNN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_conv.h"
#include "ops_test.h"

typedef struct {
  const char *what;
  int N, Cin, H, W, Cout, stride, pad_top, pad_left, pad_bottom, pad_right;
  size_t step_bytes; /* small enough to split this shape */
} steps_case;

static const steps_case cases[] = {
  { "6 images, steps of 2 images", 6, 8, 12, 10, 16, 1, 1, 1, 1, 1, 2 * 4 * (8 + 16) * 120 },
  { "one image in bands of rows", 1, 8, 40, 36, 8, 1, 1, 1, 1, 1, 8 << 10 },
  { "stride 2, padding (0,0,1,1), bands", 1, 8, 40, 36, 16, 2, 0, 0, 1, 1, 6 << 10 },
};

/* false when oneDNN took no part (a build without it) */
static bool
check_case(os_backend *be, const steps_case *c, int index)
{
  int Ho = (c->H + c->pad_top + c->pad_bottom - 3) / c->stride + 1;
  int Wo = (c->W + c->pad_left + c->pad_right - 3) / c->stride + 1;
  size_t nx = (size_t)c->N * c->Cin * c->H * c->W, ny = (size_t)c->N * c->Cout * Ho * Wo;
  float *x = ops_random(nx, 100 + index, -1, 1);
  float *W = ops_random((size_t)c->Cout * c->Cin * 9, 110 + index, -1, 1);
  float *bias = ops_random(c->Cout, 120 + index, -1, 1);
  float *residual = ops_random(ny, 130 + index, -1, 1);
  float *whole = ops_zeros(ny), *stepped = ops_zeros(ny), *lowered = ops_zeros(ny);
  bool ran = os_cpu_conv2d_onednn(be, whole, x, W, bias, residual, c->N, c->Cin, c->H, c->W,
                                  c->Cout, 3, 3, c->stride, c->pad_top, c->pad_left,
                                  c->pad_bottom, c->pad_right);
  if (ran) {
    os_cpu_conv2d_onednn_set_step_bytes(c->step_bytes);
    bool stepped_ran = os_cpu_conv2d_onednn(be, stepped, x, W, bias, residual, c->N, c->Cin,
                                            c->H, c->W, c->Cout, 3, 3, c->stride, c->pad_top,
                                            c->pad_left, c->pad_bottom, c->pad_right);
    os_cpu_conv2d_onednn_set_step_bytes(0);
    os_cpu_conv2d_lowered(be, lowered, x, W, bias, residual, c->N, c->Cin, c->H, c->W, c->Cout,
                          3, 3, c->stride, c->pad_top, c->pad_left, c->pad_bottom, c->pad_right);
    char what[120];
    snprintf(what, sizeof what, "%s: oneDNN ran in steps", c->what);
    ops_check(what, stepped_ran);
    snprintf(what, sizeof what, "%s: steps = one call", c->what);
    ops_check_exact(what, stepped, whole, ny);
    double *want = ops_to_double(lowered, ny);
    snprintf(what, sizeof what, "%s: oneDNN = the lowering", c->what);
    ops_check_scaled(what, whole, want, ny, 1e-5);
    free(want);
  }
  free(x), free(W), free(bias), free(residual), free(whole), free(stepped), free(lowered);
  return ran;
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  int ran = 0, n_cases = (int)(sizeof cases / sizeof cases[0]);
  for (int i = 0; i < n_cases; i++)
    ran += check_case(be, &cases[i], i);
  be->ops->destroy(be);
  if (ran == 0) {
    printf("SKIP: oneDNN is not part of this build\n");
    return 77;
  }
  ops_check("oneDNN ran every case", ran == n_cases);
  return ops_test_finish("test-ops-conv-steps");
}
