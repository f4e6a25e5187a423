/* test_ops_pointwise.c: activations, arithmetic, data movement and the
 * memory ops of the CPU backend. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_test.h"

/* Over OS_CPU_PARALLEL_MIN, so the threaded loops run too. */
#define LARGE 40007

static double
gelu_double(double v)
{
  return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
}

/* geglu's reference: h [T, 2C] -> a * gelu(g) [T, C], a and g the row's halves. */
static double *
geglu_want(const float *h, int T, int C)
{
  double *want = ops_zeros_double((size_t)T * C);
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++)
      want[t * C + c] = h[t * 2 * C + c] * gelu_double(h[t * 2 * C + C + c]);
  return want;
}

static void
test_activations(os_backend *be)
{
  float *x = ops_random(LARGE, 31, -9, 9), *y = ops_zeros(LARGE);
  double *want = ops_zeros_double(LARGE);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = x[i] / (1.0 + exp(-(double)x[i]));
  be->ops->silu(be, y, x, LARGE);
  ops_check_pointwise("silu", y, want, LARGE, 1e-6);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = gelu_double(x[i]);
  be->ops->gelu(be, y, x, LARGE);
  ops_check_pointwise("gelu (erf)", y, want, LARGE, 1e-6);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = x[i] / (1.0 + exp(-1.702 * x[i]));
  be->ops->quick_gelu(be, y, x, LARGE);
  ops_check_pointwise("quick_gelu", y, want, LARGE, 1e-6);
  /* In place: same results. */
  memcpy(y, x, sizeof(float) * LARGE);
  be->ops->quick_gelu(be, y, y, LARGE);
  ops_check_pointwise("quick_gelu in place", y, want, LARGE, 1e-6);
  free(x), free(y), free(want);

  /* Hand values: gelu(1) = 0.5 (1 + erf(1/sqrt 2)), silu(0) = 0. */
  float hand_x[3] = { 1.0f, 0.0f, -1.0f }, hand_y[3];
  double gelu_hand[3] = { 0.8413447460685429, 0.0, -0.15865525393145707 };
  be->ops->gelu(be, hand_y, hand_x, 3);
  ops_check_pointwise("gelu hand: 1, 0, -1", hand_y, gelu_hand, 3, 1e-7);

  const int T = 7, C = 13;
  float *h = ops_random((size_t)T * 2 * C, 32, -4, 4), *g = ops_zeros((size_t)T * C);
  double *gwant = geglu_want(h, T, C);
  be->ops->geglu(be, g, h, T, C);
  ops_check_pointwise("geglu 7x13", g, gwant, (size_t)T * C, 1e-6);
  free(h), free(g), free(gwant);

  /* In place on a threaded size: the output overwrites the input rows. */
  const int T2 = 700, C2 = 64;
  float *inplace = ops_random((size_t)T2 * 2 * C2, 40, -4, 4);
  double *iwant = geglu_want(inplace, T2, C2);
  be->ops->geglu(be, inplace, inplace, T2, C2);
  ops_check_pointwise("geglu 700x64 in place", inplace, iwant, (size_t)T2 * C2, 1e-6);
  free(inplace), free(iwant);
}

static void
test_arithmetic(os_backend *be)
{
  float *a = ops_random(LARGE, 33, -5, 5), *b = ops_random(LARGE, 34, -5, 5);
  float *y = ops_zeros(LARGE), *want = ops_zeros(LARGE);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = a[i] + b[i];
  be->ops->add(be, y, a, b, LARGE);
  ops_check_exact("add", y, want, LARGE);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = 0.3f * a[i] + (1.0f - 0.3f) * b[i];
  be->ops->blend(be, y, a, b, 0.3f, LARGE);
  ops_check_exact("blend", y, want, LARGE);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = -1.75f * a[i];
  memcpy(y, a, sizeof(float) * LARGE);
  be->ops->scale(be, y, y, -1.75f, LARGE);
  ops_check_exact("scale in place", y, want, LARGE);
  for (size_t i = 0; i < LARGE; i++)
    want[i] = 2.5f;
  be->ops->fill(be, y, 2.5f, LARGE);
  ops_check_exact("fill", y, want, LARGE);

  const int G = 3, R = 5, Cc = 7;
  float *v = ops_random((size_t)G * Cc, 35, -1, 1);
  size_t n = (size_t)G * R * Cc;
  memcpy(y, a, sizeof(float) * n);
  for (int g = 0; g < G; g++)
    for (int r = 0; r < R; r++)
      for (int c = 0; c < Cc; c++)
        want[(g * R + r) * Cc + c] = a[(g * R + r) * Cc + c] + v[g * Cc + c];
  be->ops->add_row_vector(be, y, v, G, R, Cc);
  ops_check_exact("add_row_vector [3,5,7] += v[3,7]", y, want, n);
  /* add_channel_vector: x [N=3, C=7, P=5] += v[N, C]. */
  memcpy(y, a, sizeof(float) * n);
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 7; c++)
      for (int p = 0; p < 5; p++)
        want[(i * 7 + c) * 5 + p] = a[(i * 7 + c) * 5 + p] + v[i * 7 + c];
  be->ops->add_channel_vector(be, y, v, 3, 7, 5);
  ops_check_exact("add_channel_vector [3,7,5] += v[3,7]", y, want, n);
  free(a), free(b), free(y), free(want), free(v);
}

/* Against the definition y[a][c][b][i] = x[a][b][c][i], for the tiled path
 * (small inner sizes, the transpose with inner = 1, tiles cut mid-way) and
 * the row-copy path. */
static void
test_permute(os_backend *be, int A, int Bd, int Cd, int I)
{
  size_t n = (size_t)A * Bd * Cd * I;
  float *x = ops_random(n, 36, -1, 1), *y = ops_zeros(n), *want = ops_zeros(n);
  for (int a = 0; a < A; a++)
    for (int b = 0; b < Bd; b++)
      for (int c = 0; c < Cd; c++)
        for (int i = 0; i < I; i++)
          want[(((size_t)a * Cd + c) * Bd + b) * I + i] = x[(((size_t)a * Bd + b) * Cd + c) * I + i];
  be->ops->permute_0213(be, y, x, A, Bd, Cd, I);
  char what[80];
  snprintf(what, sizeof what, "permute_0213 [%d,%d,%d,%d]", A, Bd, Cd, I);
  ops_check_exact(what, y, want, n);
  free(x), free(y), free(want);
}

static void
test_layout(os_backend *be)
{
  test_permute(be, 2, 3, 5, 4);
  test_permute(be, 3, 70, 45, 1);  /* transpose, partial tiles */
  test_permute(be, 2, 33, 100, 3);
  test_permute(be, 2, 7, 9, 20);   /* row copies */
  /* concat: a [2,3,P], b [2,1,P]. */
  const int N = 2, Ca = 3, Cb = 1, P = 6;
  float *ca = ops_random((size_t)N * Ca * P, 37, -1, 1), *cb = ops_random((size_t)N * Cb * P, 38, -1, 1);
  float *cy = ops_zeros((size_t)N * (Ca + Cb) * P), *cw = ops_zeros((size_t)N * (Ca + Cb) * P);
  for (int i = 0; i < N; i++) {
    memcpy(cw + (size_t)i * (Ca + Cb) * P, ca + (size_t)i * Ca * P, sizeof(float) * Ca * P);
    memcpy(cw + ((size_t)i * (Ca + Cb) + Ca) * P, cb + (size_t)i * Cb * P, sizeof(float) * Cb * P);
  }
  be->ops->concat_channels(be, cy, ca, Ca, cb, Cb, N, P);
  ops_check_exact("concat_channels 3+1", cy, cw, (size_t)N * (Ca + Cb) * P);
  free(ca), free(cb), free(cy), free(cw);
}

/* PyTorch's nearest indices, worked out by hand: 3 -> 7 picks
 * floor(d * 0.42857143) = 0 0 0 1 1 2 2; 2 -> 4 picks 0 0 1 1; 5 -> 3 picks
 * floor(d * 1.6666666) = 0 1 3. */
static void
test_upsample(os_backend *be)
{
  float x[2 * 2 * 3]; /* N=2 images, C=1, H=2, W=3 */
  for (int i = 0; i < 12; i++)
    x[i] = (float)(i + 1);
  float y[2 * 4 * 7], want[2 * 4 * 7];
  static const int rows[4] = { 0, 0, 1, 1 }, cols[7] = { 0, 0, 0, 1, 1, 2, 2 };
  for (int n = 0; n < 2; n++)
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 7; c++)
        want[(n * 4 + r) * 7 + c] = x[(n * 2 + rows[r]) * 3 + cols[c]];
  be->ops->upsample_nearest(be, y, x, 2, 1, 2, 3, 4, 7);
  ops_check_exact("upsample_nearest 2x3 -> 4x7 (hand indices)", y, want, 56);

  float row[5] = { 10, 11, 12, 13, 14 }, down[3], down_want[3] = { 10, 11, 13 };
  be->ops->upsample_nearest(be, down, row, 1, 1, 1, 5, 1, 3);
  ops_check_exact("upsample_nearest 1x5 -> 1x3 (hand indices)", down, down_want, 3);

  /* 2x on a larger tensor: every output pixel is its (y/2, x/2) source. */
  const int N = 2, C = 3, H = 5, W = 7;
  float *big = ops_random((size_t)N * C * H * W, 39, -1, 1);
  float *up = ops_zeros((size_t)N * C * 4 * H * W), *up_want = ops_zeros((size_t)N * C * 4 * H * W);
  for (int nc = 0; nc < N * C; nc++)
    for (int r = 0; r < 2 * H; r++)
      for (int c = 0; c < 2 * W; c++)
        up_want[((size_t)nc * 2 * H + r) * 2 * W + c] = big[((size_t)nc * H + r / 2) * W + c / 2];
  be->ops->upsample_nearest(be, up, big, N, C, H, W, 2 * H, 2 * W);
  ops_check_exact("upsample_nearest 2x, 5x7 -> 10x14", up, up_want, (size_t)N * C * 4 * H * W);
  free(big), free(up), free(up_want);
}

static void
test_memory(os_backend *be)
{
  size_t before = be->bytes_in_use;
  float *a = be->ops->alloc(be, 1000), *b = be->ops->alloc(be, 24);
  ops_check("alloc: 64-byte aligned blocks",
            a && b && (uintptr_t)a % 64 == 0 && (uintptr_t)b % 64 == 0);
  ops_check("alloc: bytes_in_use counts both", be->bytes_in_use == before + 1024);
  be->ops->free(be, a);
  ops_check("free: bytes_in_use drops, peak stays",
            be->bytes_in_use == before + 24 && be->peak_bytes >= before + 1024);
  float src[6] = { 1, 2, 3, 4, 5, 6 }, back[6] = { 0 };
  be->ops->upload(be, b, src, sizeof src);
  be->ops->copy(be, b, b, 0);
  be->ops->download(be, back, b, sizeof back);
  ops_check_exact("upload/download round trip", back, src, 6);
  be->ops->free(be, b);
  be->ops->free(be, NULL);
  ops_check("alloc: impossible size returns NULL", be->ops->alloc(be, SIZE_MAX - 8) == NULL);
  ops_check("alloc: failure leaves bytes_in_use", be->bytes_in_use == before);
  onestep_error error = { 0 };
  ops_check("sync returns OK", be->ops->sync(be, &error) == ONESTEP_OK);
  ops_check("backend is host, named cpu", be->ops->is_host && strcmp(be->ops->name, "cpu") == 0);
  ops_check("negative thread count is refused",
            os_backend_cpu_new(-1, &error) == NULL && error.code == ONESTEP_ERR_INVALID_ARGUMENT);
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  test_memory(be);
  test_activations(be);
  test_arithmetic(be);
  test_layout(be);
  test_upsample(be);
  be->ops->destroy(be);
  return ops_test_finish("test-ops-pointwise");
}
