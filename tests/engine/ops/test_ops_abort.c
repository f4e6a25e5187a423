/* test_ops_abort.c: the CPU ops that can run for seconds poll the abort
 * callback between units of their work, on a schedule set by the shapes
 * alone. With the unit lowered so that small shapes take several units,
 * each op:
 * - polls at least once per two units of its work, as many times on 1 and
 *   2 threads, and gives bit-identical results with and without a callback
 *   and on either thread count;
 * - told to stop at its first poll, polls no more and leaves part of its
 *   output unfinished (an output filled with NaN first differs from the
 *   complete one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "ops_test.h"

enum { N = 4, C = 32, H = 48, W = 80, COUT = 48, HW = H * W, T = 600, HEADS = 4, HD = 40 };

/* Small enough that every op below takes several units, large enough for
 * several of their items (bands, tiles, products, spans) in each. */
#define TEST_UNIT_WORK ((double)(1 << 23))
enum { BATCH = 1024 };

typedef struct {
  float *image, *weights3x3, *weights1x1, *weights_t, *bias, *gamma, *beta, *tokens, *qkv;
} inputs;

typedef struct {
  const char *name;
  void (*run)(os_backend *be, const inputs *in, float *out);
  double work; /* multiply-adds (or their equivalent), as the op counts them */
  size_t out_n;
} long_op;

static void
run_conv3x3(os_backend *be, const inputs *in, float *out)
{
  be->ops->conv2d(be, out, in->image, in->weights3x3, in->bias, NULL, N, C, H, W, COUT, 3, 3, 1,
                  1, 1, 1, 1);
}

static void
run_conv1x1(os_backend *be, const inputs *in, float *out)
{
  be->ops->conv2d(be, out, in->image, in->weights1x1, in->bias, in->image, N, C, H, W, C, 1, 1,
                  1, 0, 0, 0, 0);
}

static void
run_conv_temporal(os_backend *be, const inputs *in, float *out)
{
  be->ops->conv_temporal(be, out, in->image, in->weights_t, in->bias, 1, N, C, COUT, HW);
}

static void
run_group_norm(os_backend *be, const inputs *in, float *out)
{
  be->ops->group_norm(be, out, in->image, in->gamma, in->beta, N, C, HW, 8, 2, 1e-6f, true);
}

static void
run_layer_norm(os_backend *be, const inputs *in, float *out)
{
  be->ops->layer_norm(be, out, in->image, in->gamma, in->beta, N * HW, C, 1e-5f);
}

static void
run_linear(os_backend *be, const inputs *in, float *out)
{
  be->ops->linear(be, out, in->tokens, in->qkv, in->bias, NULL, T, HEADS * HD, 3 * HEADS * HD);
}

/* Products small enough to go one per worker (the same operands for all). */
static void
run_gemm_batched(os_backend *be, const inputs *in, float *out)
{
  be->ops->gemm_batched(be, false, true, 30, 30, HD, 1.0f, in->tokens, HD, 0, in->qkv, HD, 0,
                        0.0f, out, 30, 900, BATCH);
}

static void
run_attention(os_backend *be, const inputs *in, float *out)
{
  int C3 = 3 * HEADS * HD;
  be->ops->attention(be, out, in->qkv, in->qkv + HEADS * HD, in->qkv + 2 * HEADS * HD, 1, T, T,
                     HEADS, HD, C3, C3, C3, HEADS * HD, 0.158f);
}

static void
run_blend(os_backend *be, const inputs *in, float *out)
{
  size_t n = (size_t)N * C * HW;
  be->ops->blend(be, out, in->image, in->image + n / 2, 0.25f, n / 2);
}

static void
run_upsample(os_backend *be, const inputs *in, float *out)
{
  be->ops->upsample_nearest(be, out, in->image, N, C, H, W, 2 * H, 2 * W);
}

static void
run_copy(os_backend *be, const inputs *in, float *out)
{
  be->ops->copy(be, out, in->image, sizeof(float) * N * C * HW);
}

/* Counts the polls; says stop at poll number stop_at (never when 0). */
typedef struct {
  int polls, stop_at;
} poll_counter;

static bool
count_poll(void *user_data)
{
  poll_counter *c = user_data;
  return ++c->polls == c->stop_at;
}

/* Runs op on a NaN-filled output; returns the polls seen (-1: no callback). */
static int
run_polled(os_backend *be, const long_op *op, const inputs *in, float *out, bool polled,
           int stop_at)
{
  poll_counter counter = { .stop_at = stop_at };
  for (size_t i = 0; i < op->out_n; i++)
    out[i] = NAN;
  be->abort_cb = polled ? count_poll : NULL;
  be->abort_user_data = &counter;
  op->run(be, in, out);
  be->abort_cb = NULL;
  return polled ? counter.polls : -1;
}

/* Values of got that are not those of want (NaN never is). */
static size_t
count_different(const float *got, const float *want, size_t n)
{
  size_t different = 0;
  for (size_t i = 0; i < n; i++)
    different += !(got[i] == want[i]);
  return different;
}

static void
check_op(os_backend *one, os_backend *two, const long_op *op, const inputs *in)
{
  float *plain = ops_zeros(op->out_n), *polled1 = ops_zeros(op->out_n);
  float *polled2 = ops_zeros(op->out_n), *stopped = ops_zeros(op->out_n);
  char what[160];

  run_polled(one, op, in, plain, false, 0);
  int polls1 = run_polled(one, op, in, polled1, true, 0);
  int polls2 = run_polled(two, op, in, polled2, true, 0);
  int polls_stopped = run_polled(two, op, in, stopped, true, 1);
  int units = (int)(op->work / TEST_UNIT_WORK);
  printf("%s: %.3g units of work, %d polls\n", op->name, op->work / TEST_UNIT_WORK, polls1);

  snprintf(what, sizeof what, "%s: a poll at least every two units", op->name);
  ops_check(what, 2 * (polls1 + 1) >= units);
  snprintf(what, sizeof what, "%s: as many polls on 1 and 2 threads", op->name);
  ops_check(what, polls1 == polls2);
  snprintf(what, sizeof what, "%s: polled == not polled", op->name);
  ops_check_exact(what, polled1, plain, op->out_n);
  snprintf(what, sizeof what, "%s: 2 threads == 1 thread, polled", op->name);
  ops_check_exact(what, polled2, polled1, op->out_n);
  snprintf(what, sizeof what, "%s: complete without an abort", op->name);
  ops_check(what, count_different(polled1, polled1, op->out_n) == 0);
  snprintf(what, sizeof what, "%s: stopped at the first poll, no poll after", op->name);
  ops_check(what, polls_stopped == 1);
  snprintf(what, sizeof what, "%s: stopped before the end (output unfinished)", op->name);
  ops_check(what, count_different(stopped, plain, op->out_n) > 0);
  free(plain), free(polled1), free(polled2), free(stopped);
}

int
main(void)
{
  size_t image_n = (size_t)N * C * HW;
  inputs in = {
    .image = ops_random(image_n, 71, -2, 2),
    .weights3x3 = ops_random((size_t)COUT * C * 9, 72, -0.2f, 0.2f),
    .weights1x1 = ops_random((size_t)C * C, 73, -0.2f, 0.2f),
    .weights_t = ops_random((size_t)COUT * C * 3, 74, -0.2f, 0.2f),
    .bias = ops_random(3 * HEADS * HD, 75, -1, 1),
    .gamma = ops_random(3 * HEADS * HD, 76, 0.5f, 1.5f),
    .beta = ops_random(3 * HEADS * HD, 77, -1, 1),
    .tokens = ops_random((size_t)T * HEADS * HD, 78, -2, 2),
    .qkv = ops_random((size_t)T * 3 * HEADS * HD, 79, -1, 1),
  };
  int D = HEADS * HD;
  const long_op ops[] = {
    { "conv2d 3x3", run_conv3x3, (double)N * HW * COUT * C * 9, (size_t)N * COUT * HW },
    { "conv2d 1x1 + residual", run_conv1x1, (double)N * HW * C * C, image_n },
    /* the taps' products, one per frame with that neighbour */
    { "conv_temporal", run_conv_temporal, (3.0 * N - 2) * COUT * C * HW, (size_t)N * COUT * HW },
    /* sums, deviations (16 per value) and normalisation (32) */
    { "group_norm across 2 frames + silu", run_group_norm, 64.0 * image_n, image_n },
    /* two reads and a write of every value */
    { "layer_norm", run_layer_norm, 3.0 * 16 * image_n, image_n },
    { "linear", run_linear, (double)T * D * 3 * D, (size_t)T * 3 * D },
    { "gemm_batched, small products", run_gemm_batched, (double)BATCH * 30 * 30 * HD,
      (size_t)BATCH * 900 },
    /* values read and written (16 each) */
    { "blend", run_blend, 3.0 * 16 * image_n / 2, image_n / 2 },
    { "upsample_nearest 2x", run_upsample, 2.0 * 16 * 4 * image_n, 4 * image_n },
    { "copy", run_copy, 2.0 * 16 * image_n, image_n },
    /* two products per score, an exponential as 16 */
    { "attention", run_attention, (double)HEADS * T * T * (2.0 * HD + 16), (size_t)T * D },
  };
  os_backend *one = ops_test_backend(1), *two = ops_test_backend(2);
  os_cpu_set_unit_work(TEST_UNIT_WORK);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    check_op(one, two, &ops[i], &in);
  os_cpu_set_unit_work(0);
  one->ops->destroy(one);
  two->ops->destroy(two);
  free(in.image), free(in.weights3x3), free(in.weights1x1), free(in.weights_t), free(in.bias);
  free(in.gamma), free(in.beta), free(in.tokens), free(in.qkv);
  return ops_test_finish("test-ops-abort");
}
