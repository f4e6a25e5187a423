/* test_ops_norm.c: GroupNorm (per frame, across frames, fused SiLU, in
 * place; whole or in tiles of pixels through group_norm_stats and
 * group_norm_apply) and LayerNorm against double references and
 * hand-computed values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_test.h"

static double
silu_double(double v)
{
  return v / (1.0 + exp(-v));
}

static void
reference_group_norm(double *y, const float *x, const float *gamma, const float *beta, int N,
                     int C, int HW, int G, int frames, double eps, bool silu)
{
  int per_group = C / G;
  for (int b = 0; b < N / frames; b++)
    for (int g = 0; g < G; g++) {
      double sum = 0.0, sq = 0.0;
      size_t count = (size_t)frames * per_group * HW;
      for (int f = 0; f < frames; f++)
        for (int c = g * per_group; c < (g + 1) * per_group; c++)
          for (int p = 0; p < HW; p++)
            sum += x[(((size_t)b * frames + f) * C + c) * HW + p];
      double mean = sum / count;
      for (int f = 0; f < frames; f++)
        for (int c = g * per_group; c < (g + 1) * per_group; c++)
          for (int p = 0; p < HW; p++) {
            double d = x[(((size_t)b * frames + f) * C + c) * HW + p] - mean;
            sq += d * d;
          }
      double rstd = 1.0 / sqrt(sq / count + eps);
      for (int f = 0; f < frames; f++)
        for (int c = g * per_group; c < (g + 1) * per_group; c++)
          for (int p = 0; p < HW; p++) {
            size_t at = (((size_t)b * frames + f) * C + c) * HW + p;
            double v = (x[at] - mean) * rstd * gamma[c] + beta[c];
            y[at] = silu ? silu_double(v) : v;
          }
    }
}

static void
test_group_norm(os_backend *be, int frames, bool silu, bool in_place)
{
  const int B = 2, F = 3, C = 6, HW = 35, G = 3, N = B * F;
  size_t n = (size_t)N * C * HW;
  /* An offset mean makes a naive one-pass variance visibly wrong. */
  float *x = ops_random(n, 11, 2.0f, 5.0f);
  float *gamma = ops_random(C, 12, 0.5f, 1.5f), *beta = ops_random(C, 13, -1, 1);
  double *want = ops_zeros_double(n);
  reference_group_norm(want, x, gamma, beta, N, C, HW, G, frames, 1e-5, silu);
  float *y = in_place ? x : ops_zeros(n);
  be->ops->group_norm(be, y, x, gamma, beta, N, C, HW, G, frames, 1e-5f, silu);
  char what[100];
  snprintf(what, sizeof what, "group_norm N=6 C=6 HW=35 G=3 frames_per_stat=%d%s%s", frames,
           silu ? " +silu" : "", in_place ? " in place" : "");
  ops_check_pointwise(what, y, want, n, 2e-6);
  if (!in_place)
    free(y);
  free(x), free(gamma), free(beta), free(want);
}

/* x [N, C, HW] in tiles of pixels of the given widths (summing to HW):
 * statistics gathered tile by tile into stats, then each tile normalised and
 * put back in place into y. */
static void
group_norm_tiled(os_backend *be, float *y, float *stats, const float *x, const float *gamma,
                 const float *beta, int N, int C, int HW, int G, int frames, bool silu,
                 const int *widths, int n_tiles)
{
  float *tile = ops_zeros((size_t)N * C * HW);
  memset(stats, 0, sizeof(float) * N / frames * G * OS_GROUP_NORM_STATS_FLOATS);
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0, p0 = 0; i < n_tiles; p0 += widths[i++]) {
      int w = widths[i];
      be->ops->copy_columns(be, tile, w, x + p0, HW, N * C, w);
      if (pass == 0) {
        be->ops->group_norm_stats(be, stats, tile, N, C, w, G, frames);
        continue;
      }
      be->ops->group_norm_apply(be, tile, tile, stats, gamma, beta, N, C, w, G, frames, 1e-5f,
                                silu);
      be->ops->copy_columns(be, y + p0, HW, tile, w, N * C, w);
    }
  free(tile);
}

/* Tiles of 7, 13 and 15 pixels against the double reference and the whole
 * op; one tile of everything must be the whole op bit for bit. */
static void
test_group_norm_tiles(os_backend *be, int frames, bool silu)
{
  const int N = 6, C = 6, HW = 35, G = 3;
  size_t n = (size_t)N * C * HW;
  float *x = ops_random(n, 17, 2.0f, 5.0f);
  float *gamma = ops_random(C, 18, 0.5f, 1.5f), *beta = ops_random(C, 19, -1, 1);
  float *whole = ops_zeros(n), *y = ops_zeros(n);
  float *stats = ops_zeros((size_t)N * G * OS_GROUP_NORM_STATS_FLOATS);
  double *want = ops_zeros_double(n);
  reference_group_norm(want, x, gamma, beta, N, C, HW, G, frames, 1e-5, silu);
  be->ops->group_norm(be, whole, x, gamma, beta, N, C, HW, G, frames, 1e-5f, silu);
  double *whole_double = ops_to_double(whole, n);
  char what[120];
  const int widths[3] = { 7, 13, 15 };
  group_norm_tiled(be, y, stats, x, gamma, beta, N, C, HW, G, frames, silu, widths, 3);
  snprintf(what, sizeof what, "group_norm_stats/apply, tiles of 7, 13, 15 pixels, frames_per_stat=%d%s",
           frames, silu ? " +silu" : "");
  ops_check_pointwise(what, y, want, n, 2e-6);
  snprintf(what, sizeof what, "  the same against group_norm");
  ops_check_pointwise(what, y, whole_double, n, 1e-6);
  group_norm_tiled(be, y, stats, x, gamma, beta, N, C, HW, G, frames, silu, &HW, 1);
  snprintf(what, sizeof what, "  one tile of 35 pixels == group_norm");
  ops_check_exact(what, y, whole, n);
  free(x), free(gamma), free(beta), free(whole), free(y), free(stats), free(want);
  free(whole_double);
}

/* The running moments stay exact to double rounding over many tiles of
 * values far from zero (mean 1000, spread 1): no cancellation. */
static void
test_group_norm_stats_offset(os_backend *be)
{
  const int N = 4, C = 2, HW = 1000, G = 1, TILES = 40, W = HW / TILES;
  size_t n = (size_t)N * C * HW;
  float *x = ops_random(n, 20, 1000.0f, 1001.0f), *tile = ops_zeros((size_t)N * C * W);
  float stats[OS_GROUP_NORM_STATS_FLOATS] = { 0 };
  for (int p0 = 0; p0 < HW; p0 += W) {
    be->ops->copy_columns(be, tile, W, x + p0, HW, N * C, W);
    be->ops->group_norm_stats(be, stats, tile, N, C, W, G, N);
  }
  double moments[3], sum = 0.0, deviations = 0.0;
  memcpy(moments, stats, sizeof moments);
  for (size_t i = 0; i < n; i++)
    sum += x[i];
  double mean = sum / n;
  for (size_t i = 0; i < n; i++)
    deviations += (x[i] - mean) * (x[i] - mean);
  ops_check("group_norm_stats, 40 tiles: count", moments[0] == (double)n);
  ops_check("group_norm_stats, 40 tiles of mean 1000: mean to 1e-14",
            fabs(moments[1] - mean) <= 1e-14 * mean);
  ops_check("group_norm_stats, 40 tiles of mean 1000: squared deviations to 1e-10",
            fabs(moments[2] - deviations) <= 1e-10 * deviations);
  free(x), free(tile);
}

static void
test_group_norm_hand(os_backend *be)
{
  /* Two channels of 4 values, eps 0. */
  float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8];
  float ones[2] = { 1, 1 }, zeros[2] = { 0, 0 };
  /* G=1: mean 4.5, biased variance 5.25. */
  double want_g1[8] = { -1.5275252316519468, -1.0910894511799618, -0.6546536707079771,
                        -0.2182178902359924, 0.2182178902359924,  0.6546536707079771,
                        1.0910894511799618,  1.5275252316519468 };
  be->ops->group_norm(be, y, x, ones, zeros, 1, 2, 4, 1, 1, 0.0f, false);
  ops_check_pointwise("group_norm hand: 2x4, one group", y, want_g1, 8, 1e-6);
  /* G=2 with gamma (2, -1), beta (0.5, 0): each channel mean +-2.5, variance 1.25. */
  float gamma[2] = { 2, -1 }, beta[2] = { 0.5f, 0 };
  double want_g2[8] = { -2.1832815729997477, -0.3944271909999158, 1.3944271909999158,
                        3.1832815729997477,  1.3416407864998738,  0.4472135954999579,
                        -0.4472135954999579, -1.3416407864998738 };
  be->ops->group_norm(be, y, x, gamma, beta, 1, 2, 4, 2, 1, 0.0f, false);
  ops_check_pointwise("group_norm hand: 2x4, two groups, affine", y, want_g2, 8, 1e-6);
  /* Two frames of one channel of 2 values: across frames vs per frame. */
  float frames_x[4] = { 1, 2, 3, 4 };
  double across[4] = { -1.3416407864998738, -0.4472135954999579, 0.4472135954999579,
                       1.3416407864998738 };
  double per_frame[4] = { -1, 1, -1, 1 };
  be->ops->group_norm(be, y, frames_x, ones, zeros, 2, 1, 2, 1, 2, 0.0f, false);
  ops_check_pointwise("group_norm hand: stats across 2 frames", y, across, 4, 1e-6);
  be->ops->group_norm(be, y, frames_x, ones, zeros, 2, 1, 2, 1, 1, 0.0f, false);
  ops_check_pointwise("group_norm hand: stats per frame", y, per_frame, 4, 1e-6);
}

static void
test_layer_norm(os_backend *be, bool in_place)
{
  const int T = 5, C = 37;
  size_t n = (size_t)T * C;
  float *x = ops_random(n, 14, -3.0f, 7.0f);
  float *gamma = ops_random(C, 15, 0.5f, 1.5f), *beta = ops_random(C, 16, -1, 1);
  double *want = ops_zeros_double(n);
  for (int t = 0; t < T; t++) {
    double sum = 0.0, sq = 0.0;
    for (int c = 0; c < C; c++)
      sum += x[t * C + c];
    double mean = sum / C;
    for (int c = 0; c < C; c++)
      sq += (x[t * C + c] - mean) * (x[t * C + c] - mean);
    double rstd = 1.0 / sqrt(sq / C + 1e-5);
    for (int c = 0; c < C; c++)
      want[t * C + c] = (x[t * C + c] - mean) * rstd * gamma[c] + beta[c];
  }
  float *y = in_place ? x : ops_zeros(n);
  be->ops->layer_norm(be, y, x, gamma, beta, T, C, 1e-5f);
  ops_check_pointwise(in_place ? "layer_norm 5x37 in place" : "layer_norm 5x37", y, want, n,
                      2e-6);
  if (!in_place)
    free(y);
  free(x), free(gamma), free(beta), free(want);

  float row[4] = { 1, 2, 3, 4 }, ones[4] = { 1, 1, 1, 1 }, zeros[4] = { 0 }, out[4];
  double hand[4] = { -1.3416407864998738, -0.4472135954999579, 0.4472135954999579,
                     1.3416407864998738 };
  be->ops->layer_norm(be, out, row, ones, zeros, 1, 4, 0.0f);
  ops_check_pointwise("layer_norm hand: [1 2 3 4]", out, hand, 4, 1e-6);
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  test_group_norm_hand(be);
  test_group_norm(be, 1, false, false);
  test_group_norm(be, 3, false, false);
  test_group_norm(be, 1, true, false);
  test_group_norm(be, 3, true, true);
  test_group_norm_tiles(be, 1, false);
  test_group_norm_tiles(be, 3, true);
  test_group_norm_stats_offset(be);
  test_layer_norm(be, false);
  test_layer_norm(be, true);
  be->ops->destroy(be);
  return ops_test_finish("test-ops-norm");
}
