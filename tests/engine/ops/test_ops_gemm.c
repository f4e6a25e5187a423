/* test_ops_gemm.c: gemm, gemm_batched and linear against double loops. */
#include <stdio.h>
#include <stdlib.h>

#include "ops_test.h"

/* C = alpha op(A) op(B) + beta C in double, with the backend's layout rules. */
static void
reference_gemm(bool ta, bool tb, int M, int N, int K, double alpha, const float *A, int lda,
               const float *B, int ldb, double beta, const float *C0, double *C, int ldc)
{
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double sum = 0.0;
      for (int k = 0; k < K; k++)
        sum += (double)(ta ? A[k * lda + m] : A[m * lda + k]) *
               (tb ? B[n * ldb + k] : B[k * ldb + n]);
      C[m * ldc + n] = alpha * sum + beta * C0[m * ldc + n];
    }
}

static void
test_gemm(os_backend *be)
{
  const int M = 7, N = 9, K = 13, pad = 3;
  for (int variant = 0; variant < 4; variant++) {
    bool ta = variant & 1, tb = variant & 2;
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float *A = ops_random((size_t)(ta ? K : M) * lda, 10 + variant, -1, 1);
    float *B = ops_random((size_t)(tb ? N : K) * ldb, 20 + variant, -1, 1);
    float *C = ops_random((size_t)M * ldc, 30 + variant, -1, 1);
    double *want = ops_zeros_double((size_t)M * ldc);
    reference_gemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, C, want, ldc);
    for (int m = 0; m < M; m++) /* the padding columns keep their values */
      for (int n = N; n < ldc; n++)
        want[m * ldc + n] = C[m * ldc + n];
    be->ops->gemm(be, ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, C, ldc);
    char what[80];
    snprintf(what, sizeof what, "gemm trans_a=%d trans_b=%d 7x9x13 padded", ta, tb);
    ops_check_scaled(what, C, want, (size_t)M * ldc, 2e-6);
    free(A), free(B), free(C), free(want);
  }
}

static void
test_gemm_batched(os_backend *be, int M, int N, int K, int batch, bool tb)
{
  int64_t sa = (int64_t)M * K + 5, sb = (int64_t)K * N + 3, sc = (int64_t)M * N + 1;
  float *A = ops_random((size_t)sa * batch, 40, -1, 1);
  float *B = ops_random((size_t)sb * batch, 41, -1, 1);
  float *C = ops_random((size_t)sc * batch, 42, -1, 1);
  double *want = ops_zeros_double((size_t)sc * batch);
  for (int i = 0; i < batch; i++) {
    reference_gemm(false, tb, M, N, K, 1.0, A + i * sa, K, B + i * sb, tb ? K : N, 1.0,
                   C + i * sc, want + i * sc, N);
    want[i * sc + sc - 1] = C[i * sc + sc - 1]; /* the gap between outputs */
  }
  be->ops->gemm_batched(be, false, tb, M, N, K, 1.0f, A, K, sa, B, tb ? K : N, sb, 1.0f, C, N,
                        sc, batch);
  char what[80];
  snprintf(what, sizeof what, "gemm_batched %dx%dx%d x%d trans_b=%d", M, N, K, batch, tb);
  ops_check_scaled(what, C, want, (size_t)sc * batch, 2e-6);
  free(A), free(B), free(C), free(want);
}

enum { NO_RESIDUAL, RESIDUAL_SEPARATE, RESIDUAL_IN_Y };

static void
test_linear(os_backend *be, bool with_bias, int residual_kind)
{
  const int T = 11, in = 19, out = 6;
  float *x = ops_random((size_t)T * in, 50, -1, 1);
  float *W = ops_random((size_t)out * in, 51, -1, 1);
  float *bias = with_bias ? ops_random(out, 52, -1, 1) : NULL;
  float *residual = ops_random((size_t)T * out, 53, -1, 1);
  float *y = residual_kind == RESIDUAL_IN_Y ? residual : ops_random((size_t)T * out, 54, -1, 1);
  double *want = ops_zeros_double((size_t)T * out);
  for (int t = 0; t < T; t++)
    for (int o = 0; o < out; o++) {
      double sum = bias ? bias[o] : 0.0;
      for (int i = 0; i < in; i++)
        sum += (double)x[t * in + i] * W[o * in + i];
      want[t * out + o] = sum + (residual_kind != NO_RESIDUAL ? residual[t * out + o] : 0.0);
    }
  be->ops->linear(be, y, x, W, bias, residual_kind == NO_RESIDUAL ? NULL : residual, T, in,
                  out);
  static const char *kinds[] = { "no residual", "residual", "residual == y" };
  char what[80];
  snprintf(what, sizeof what, "linear 11x19->6 %s, %s", with_bias ? "bias" : "no bias",
           kinds[residual_kind]);
  ops_check_scaled(what, y, want, (size_t)T * out, 2e-6);
  if (y != residual)
    free(y);
  free(x), free(W), free(bias), free(residual), free(want);
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  test_gemm(be);
  test_gemm_batched(be, 5, 6, 7, 9, false);
  test_gemm_batched(be, 5, 6, 7, 9, true);
  test_gemm_batched(be, 64, 256, 260, 3, true); /* large: threaded per product */
  for (int kind = NO_RESIDUAL; kind <= RESIDUAL_IN_Y; kind++) {
    test_linear(be, true, kind);
    test_linear(be, false, kind);
  }
  be->ops->destroy(be);
  return ops_test_finish("test-ops-gemm");
}
