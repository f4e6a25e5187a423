/* test_ops_rounding.c: the CPU backend's reproduction of the GPU's operand
 * rounding (os_backend_cpu_set_operand_precision). Each product op in fp16
 * mode must give bit for bit what the exact backend gives on operands rounded
 * beforehand, and must differ from the exact result; the rounding itself is
 * checked value by value for fp16, bf16 and tf32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_test.h"

/* What a 1x1x1 product gives for x in that precision: x as the GPU rounds it. */
static float
rounded_by_backend(os_backend *be, onestep_precision precision, float x)
{
  float one = 1.0f, out = 0.0f;
  os_backend_cpu_set_operand_precision(be, precision);
  be->ops->gemm(be, false, false, 1, 1, 1, 1.0f, &x, 1, &one, 1, 0.0f, &out, 1);
  os_backend_cpu_set_operand_precision(be, ONESTEP_PRECISION_FP32);
  return out;
}

static void
check_value(os_backend *be, onestep_precision precision, float x, float want)
{
  float got = rounded_by_backend(be, precision, x);
  char what[120];
  snprintf(what, sizeof what, "%s rounds %.10g to %.10g (got %.10g)",
           onestep_precision_name(precision), x, want, got);
  ops_check(what, got == want || (isinf(got) && isinf(want) && signbit(got) == signbit(want)));
}

static void
test_values(os_backend *be)
{
  /* fp16: 10 mantissa bits, ties to even, overflow to infinity */
  check_value(be, ONESTEP_PRECISION_FP16, 1.0f / 3.0f, 0.333251953125f);
  check_value(be, ONESTEP_PRECISION_FP16, 1.0f + 0x1p-11f, 1.0f);
  check_value(be, ONESTEP_PRECISION_FP16, 1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-9f);
  check_value(be, ONESTEP_PRECISION_FP16, -70000.0f, -INFINITY);
  /* bf16: 7 mantissa bits, ties to even */
  check_value(be, ONESTEP_PRECISION_BF16, 1.0f + 0x1p-8f, 1.0f);
  check_value(be, ONESTEP_PRECISION_BF16, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-6f);
  check_value(be, ONESTEP_PRECISION_BF16, 1.0f / 3.0f, 0.333984375f);
  check_value(be, ONESTEP_PRECISION_BF16, 3.4028235e38f, INFINITY);
  /* tf32: 10 mantissa bits, ties away from zero */
  check_value(be, ONESTEP_PRECISION_TF32, 1.0f + 0x1p-11f, 1.0f + 0x1p-10f);
  check_value(be, ONESTEP_PRECISION_TF32, -(1.0f + 0x1p-11f), -(1.0f + 0x1p-10f));
  /* exact modes leave values alone */
  check_value(be, ONESTEP_PRECISION_FP32, 1.0f / 3.0f, 1.0f / 3.0f);
  check_value(be, ONESTEP_PRECISION_AUTO, 1.0f / 3.0f, 1.0f / 3.0f);
}

/* A copy of x rounded to fp16 by the compiler's own conversion. */
static float *
fp16_copy(const float *x, size_t n)
{
  float *y = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++)
    y[i] = (float)(_Float16)x[i];
  return y;
}

/* Runs one op three ways: fp16 mode on the operands, exact on operands rounded
 * beforehand (must be equal bit for bit), exact on the operands (must differ).
 * The first n_rounded operands are the products' operands; the rest (biases)
 * stay fp32 on the GPU as well and are passed unchanged. */
typedef void (*op_runner)(os_backend *be, float *out, float *const operands[]);

static void
check_op(os_backend *be, const char *name, op_runner run, float *operands[], const size_t *sizes,
         int n_rounded, int n_operands, size_t out_size)
{
  float *rounded[4], *in_fp16_mode = calloc(out_size, sizeof(float));
  float *on_rounded = calloc(out_size, sizeof(float)), *exact = calloc(out_size, sizeof(float));
  for (int i = 0; i < n_operands; i++)
    rounded[i] = i < n_rounded ? fp16_copy(operands[i], sizes[i]) : operands[i];
  os_backend_cpu_set_operand_precision(be, ONESTEP_PRECISION_FP16);
  run(be, in_fp16_mode, operands);
  os_backend_cpu_set_operand_precision(be, ONESTEP_PRECISION_FP32);
  run(be, on_rounded, rounded);
  run(be, exact, operands);
  char what[120];
  snprintf(what, sizeof what, "%s in fp16 mode = exact %s on fp16-rounded operands", name, name);
  ops_check_exact(what, in_fp16_mode, on_rounded, out_size);
  snprintf(what, sizeof what, "%s in fp16 mode differs from the exact %s", name, name);
  ops_check(what, memcmp(in_fp16_mode, exact, sizeof(float) * out_size) != 0);
  for (int i = 0; i < n_rounded; i++)
    free(rounded[i]);
  free(in_fp16_mode), free(on_rounded), free(exact);
}

enum { M = 6, N = 10, K = 33, BATCH = 3 };

static void
run_gemm(os_backend *be, float *out, float *const in[])
{
  be->ops->gemm(be, true, false, M, N, K, 1.0f, in[0], M, in[1], N, 0.0f, out, N);
}

static void
run_gemm_batched(os_backend *be, float *out, float *const in[])
{
  be->ops->gemm_batched(be, false, true, M, N, K, 1.0f, in[0], K, (int64_t)M * K, in[1], K,
                        (int64_t)N * K, 0.0f, out, N, (int64_t)M * N, BATCH);
}

static void
run_linear(os_backend *be, float *out, float *const in[])
{
  be->ops->linear(be, out, in[0], in[1], in[2], NULL, M, K, N);
}

enum { CONV_N = 2, CIN = 5, H = 7, W = 6, COUT = 4 };

static void
run_conv2d(os_backend *be, float *out, float *const in[])
{
  be->ops->conv2d(be, out, in[0], in[1], in[2], NULL, CONV_N, CIN, H, W, COUT, 3, 3, 1, 1, 1, 1,
                  1);
}

static void
run_conv_temporal(os_backend *be, float *out, float *const in[])
{
  be->ops->conv_temporal(be, out, in[0], in[1], in[2], 1, 4, CIN, COUT, H * W);
}

enum { SEQ = 2, SQ = 5, SK = 9, HEADS = 2, HEAD_DIM = 8, ROW = HEADS * HEAD_DIM };

static void
run_attention(os_backend *be, float *out, float *const in[])
{
  be->ops->attention(be, out, in[0], in[1], in[2], SEQ, SQ, SK, HEADS, HEAD_DIM, ROW, ROW, ROW,
                     ROW, 0.35f);
}

static void
test_ops(os_backend *be)
{
  {
    size_t sizes[] = { (size_t)K * M, (size_t)K * N };
    float *in[] = { ops_random(sizes[0], 1, -1, 1), ops_random(sizes[1], 2, -1, 1) };
    check_op(be, "gemm", run_gemm, in, sizes, 2, 2, (size_t)M * N);
    free(in[0]), free(in[1]);
  }
  {
    size_t sizes[] = { (size_t)BATCH * M * K, (size_t)BATCH * N * K };
    float *in[] = { ops_random(sizes[0], 3, -1, 1), ops_random(sizes[1], 4, -1, 1) };
    check_op(be, "gemm_batched", run_gemm_batched, in, sizes, 2, 2, (size_t)BATCH * M * N);
    free(in[0]), free(in[1]);
  }
  {
    /* the bias is added in fp32 on the GPU too: it must not be rounded */
    float *bias = ops_random(N, 7, -1, 1);
    size_t sizes[] = { (size_t)M * K, (size_t)N * K };
    float *in[] = { ops_random(sizes[0], 5, -1, 1), ops_random(sizes[1], 6, -1, 1), bias };
    check_op(be, "linear", run_linear, in, sizes, 2, 3, (size_t)M * N);
    free(in[0]), free(in[1]), free(bias);
  }
  {
    float *bias = ops_random(COUT, 10, -1, 1);
    size_t sizes[] = { (size_t)CONV_N * CIN * H * W, (size_t)COUT * CIN * 9 };
    float *in[] = { ops_random(sizes[0], 8, -1, 1), ops_random(sizes[1], 9, -1, 1), bias };
    check_op(be, "conv2d", run_conv2d, in, sizes, 2, 3, (size_t)CONV_N * COUT * H * W);
    free(in[0]), free(in[1]), free(bias);
  }
  {
    float *bias = ops_random(COUT, 13, -1, 1);
    size_t sizes[] = { (size_t)4 * CIN * H * W, (size_t)COUT * CIN * 3 };
    float *in[] = { ops_random(sizes[0], 11, -1, 1), ops_random(sizes[1], 12, -1, 1), bias };
    check_op(be, "conv_temporal", run_conv_temporal, in, sizes, 2, 3, (size_t)4 * COUT * H * W);
    free(in[0]), free(in[1]), free(bias);
  }
  {
    size_t sizes[] = { (size_t)SEQ * SQ * ROW, (size_t)SEQ * SK * ROW, (size_t)SEQ * SK * ROW };
    float *in[] = { ops_random(sizes[0], 14, -2, 2), ops_random(sizes[1], 15, -2, 2),
                    ops_random(sizes[2], 16, -1, 1) };
    check_op(be, "attention", run_attention, in, sizes, 3, 3, (size_t)SEQ * SQ * ROW);
    free(in[0]), free(in[1]), free(in[2]);
  }
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  test_values(be);
  test_ops(be);
  be->ops->destroy(be);
  return ops_test_finish("test-ops-rounding");
}
