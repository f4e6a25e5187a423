/* test_ops_threads.c: every op that splits work over threads must give
 * bit-identical results on 1, 2 and 3 threads (memcmp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_test.h"

/* Inputs shared by all runs; large enough for OpenMP and OpenBLAS to split. */
enum { N = 4, C = 32, H = 24, W = 40, COUT = 48, HW = H * W, T = 600, HEADS = 4, HD = 40 };

typedef struct {
  float *image, *weights3x3, *weights1x1, *weights_t, *bias, *gamma, *beta, *tokens, *qkv;
} inputs;

typedef void (*op_run)(os_backend *be, const inputs *in, float *out);

static void
run_conv3x3(os_backend *be, const inputs *in, float *out)
{
  be->ops->conv2d(be, out, in->image, in->weights3x3, in->bias, NULL, N, C, H, W, COUT, 3, 3, 1,
                  1, 1, 1, 1);
}

/* Three images (tasks that do not divide evenly over the workers). */
static void
run_conv_stride2(os_backend *be, const inputs *in, float *out)
{
  be->ops->conv2d(be, out, in->image, in->weights3x3, in->bias, in->image, N - 1, C, H, W, C,
                  3, 3, 2, 0, 0, 1, 1);
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
run_group_norm_frames(os_backend *be, const inputs *in, float *out)
{
  be->ops->group_norm(be, out, in->image, in->gamma, in->beta, N, C, HW, 8, N, 1e-6f, true);
}

static void
run_group_norm_images(os_backend *be, const inputs *in, float *out)
{
  be->ops->group_norm(be, out, in->image, in->gamma, in->beta, N, C, HW, 8, 1, 1e-6f, false);
}

/* Statistics over two tiles of pixels (a third and the rest), then each
 * tile normalised and put back: copy_columns, group_norm_stats and _apply. */
static void
run_group_norm_tiles(os_backend *be, const inputs *in, float *out)
{
  int widths[2] = { HW / 3, HW - HW / 3 }, rows = N * C;
  float *tiles[2] = { out + (size_t)N * C * HW, out + (size_t)2 * N * C * HW };
  float *stats = out + (size_t)3 * N * C * HW;
  be->ops->fill(be, stats, 0.0f, 8 * OS_GROUP_NORM_STATS_FLOATS);
  for (int i = 0, p0 = 0; i < 2; p0 += widths[i++]) {
    be->ops->copy_columns(be, tiles[i], widths[i], in->image + p0, HW, rows, widths[i]);
    be->ops->group_norm_stats(be, stats, tiles[i], N, C, widths[i], 8, N);
  }
  for (int i = 0, p0 = 0; i < 2; p0 += widths[i++]) {
    be->ops->group_norm_apply(be, tiles[i], tiles[i], stats, in->gamma, in->beta, N, C,
                              widths[i], 8, N, 1e-6f, true);
    be->ops->copy_columns(be, out + p0, HW, tiles[i], widths[i], rows, widths[i]);
  }
}

static void
run_layer_norm(os_backend *be, const inputs *in, float *out)
{
  be->ops->layer_norm(be, out, in->tokens, in->gamma, in->beta, T, HEADS * HD, 1e-5f);
}

static void
run_linear(os_backend *be, const inputs *in, float *out)
{
  be->ops->linear(be, out, in->tokens, in->qkv, in->bias, NULL, T, HEADS * HD, COUT);
}

static void
run_gemm_batched(os_backend *be, const inputs *in, float *out)
{
  be->ops->gemm_batched(be, false, true, 30, 30, HD, 1.0f, in->tokens, HD, 30 * HD, in->qkv, HD,
                        30 * HD, 0.0f, out, 30, 900, 16);
}

static void
run_attention(os_backend *be, const inputs *in, float *out)
{
  int C3 = 3 * HEADS * HD;
  be->ops->attention(be, out, in->qkv, in->qkv + HEADS * HD, in->qkv + 2 * HEADS * HD, 1, T,
                     T, HEADS, HD, C3, C3, C3, HEADS * HD, 0.158f);
}

/* Few keys per sequence: the direct (non-sgemm) path. */
static void
run_attention_frames(os_backend *be, const inputs *in, float *out)
{
  int C3 = 3 * HEADS * HD;
  be->ops->attention(be, out, in->qkv, in->qkv + HEADS * HD, in->qkv + 2 * HEADS * HD, T / 12,
                     12, 12, HEADS, HD, C3, C3, C3, HEADS * HD, 0.158f);
}

static void
run_pointwise(os_backend *be, const inputs *in, float *out)
{
  size_t n = (size_t)N * C * HW;
  be->ops->gelu(be, out, in->image, n);
  be->ops->silu(be, out, out, n);
  be->ops->quick_gelu(be, out, out, n);
  be->ops->blend(be, out, out, in->image, 0.25f, n);
  be->ops->add_channel_vector(be, out, in->gamma, N, C / 4, 4 * HW);
  be->ops->geglu(be, out + n, out, (int)(n / 64), 32);
}

static void
run_layout(os_backend *be, const inputs *in, float *out)
{
  be->ops->permute_0213(be, out, in->image, N, C, H, W);
  be->ops->upsample_nearest(be, out + (size_t)N * C * HW, in->image, 1, C, H, W, 2 * H, 2 * W);
}

int
main(void)
{
  size_t image_n = (size_t)N * C * HW;
  inputs in = {
    .image = ops_random(image_n, 61, -2, 2),
    .weights3x3 = ops_random((size_t)COUT * C * 9, 62, -0.2f, 0.2f),
    .weights1x1 = ops_random((size_t)C * C, 63, -0.2f, 0.2f),
    .weights_t = ops_random((size_t)COUT * C * 3, 64, -0.2f, 0.2f),
    .bias = ops_random(3 * HEADS * HD, 65, -1, 1),
    .gamma = ops_random(3 * HEADS * HD, 66, 0.5f, 1.5f),
    .beta = ops_random(3 * HEADS * HD, 67, -1, 1),
    .tokens = ops_random((size_t)T * HEADS * HD, 68, -2, 2),
    .qkv = ops_random((size_t)T * 3 * HEADS * HD, 69, -1, 1),
  };
  static const struct {
    const char *name;
    op_run run;
  } ops[] = {
    { "conv2d 3x3", run_conv3x3 },
    { "conv2d 3x3 stride 2, 3 images", run_conv_stride2 },
    { "conv2d 1x1 + residual", run_conv1x1 },
    { "conv_temporal", run_conv_temporal },
    { "group_norm across frames + silu", run_group_norm_frames },
    { "group_norm per image", run_group_norm_images },
    { "group_norm in two tiles of pixels", run_group_norm_tiles },
    { "layer_norm", run_layer_norm },
    { "linear", run_linear },
    { "gemm_batched", run_gemm_batched },
    { "attention", run_attention },
    { "attention, 12 keys", run_attention_frames },
    { "elementwise chain", run_pointwise },
    { "permute + upsample", run_layout },
  };
  size_t out_n = 8 * image_n; /* room for every op's output */
  os_backend *backends[3] = { ops_test_backend(1), ops_test_backend(2), ops_test_backend(3) };
  float *outs[3];
  for (int b = 0; b < 3; b++)
    outs[b] = ops_zeros(out_n);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    for (int b = 0; b < 3; b++) {
      memset(outs[b], 0, sizeof(float) * out_n);
      ops[i].run(backends[b], &in, outs[b]);
    }
    char what[100];
    snprintf(what, sizeof what, "%s: 2 threads == 1 thread", ops[i].name);
    ops_check_exact(what, outs[1], outs[0], out_n);
    snprintf(what, sizeof what, "%s: 3 threads == 1 thread", ops[i].name);
    ops_check_exact(what, outs[2], outs[0], out_n);
  }
  for (int b = 0; b < 3; b++) {
    backends[b]->ops->destroy(backends[b]);
    free(outs[b]);
  }
  free(in.image), free(in.weights3x3), free(in.weights1x1), free(in.weights_t), free(in.bias);
  free(in.gamma), free(in.beta), free(in.tokens), free(in.qkv);
  return ops_test_finish("test-ops-threads");
}
