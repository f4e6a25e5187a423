/* cpu_layout.c: permutes, nearest and bilinear resize, pixel shuffle and
 * channel concatenation. */
#include "cpu_internal.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>

/* Elements of at least this many floats are copied row by row; smaller ones
 * (down to the plain transpose, inner = 1) go through square tiles so that
 * reads and writes both stay within a few cache lines. */
#define ROW_COPY_MIN 16
#define TILE 32

void
os_cpu_permute_0213(os_backend *be, float *y, const float *x, int A, int Bd, int Cd, int inner)
{
  int n_threads = os_cpu_threads(be);
  size_t total = (size_t)A * Bd * Cd * inner;
  if (inner >= ROW_COPY_MIN) {
    size_t row_bytes = sizeof(float) * inner;
#pragma omp parallel for num_threads(n_threads) if (total >= OS_CPU_PARALLEL_MIN)
    for (int ab = 0; ab < A * Bd; ab++) {
      int a = ab / Bd, b = ab % Bd;
      for (int c = 0; c < Cd; c++)
        memcpy(y + (((size_t)a * Cd + c) * Bd + b) * inner, x + ((size_t)ab * Cd + c) * inner,
               row_bytes);
    }
    return;
  }
  /* Each task writes one band of TILE output rows (c) of one a. */
  int c_tiles = (Cd + TILE - 1) / TILE;
#pragma omp parallel for num_threads(n_threads) if (total >= OS_CPU_PARALLEL_MIN)
  for (int task = 0; task < A * c_tiles; task++) {
    int a = task / c_tiles, c0 = task % c_tiles * TILE;
    int c1 = c0 + TILE < Cd ? c0 + TILE : Cd;
    const float *xa = x + (size_t)a * Bd * Cd * inner;
    float *ya = y + (size_t)a * Cd * Bd * inner;
    for (int b0 = 0; b0 < Bd; b0 += TILE) {
      int b1 = b0 + TILE < Bd ? b0 + TILE : Bd;
      for (int c = c0; c < c1; c++) {
        float *dst = ya + ((size_t)c * Bd + b0) * inner;
        for (int b = b0; b < b1; b++, dst += inner) {
          const float *src = xa + ((size_t)b * Cd + c) * inner;
          for (int i = 0; i < inner; i++)
            dst[i] = src[i];
        }
      }
    }
  }
}

/* PyTorch's nearest index for an explicit output size: the scale is the
 * float in/out and the product is floored in float. */
static int
nearest_source(int dst, int in, int out)
{
  float scale = (float)in / (float)out;
  int src = (int)floorf((float)dst * scale);
  return src < in - 1 ? src : in - 1;
}

void
os_cpu_upsample_nearest(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                        int Ho, int Wo)
{
  int n_threads = os_cpu_threads(be);
  int *src_x = os_cpu_scratch(be, sizeof(int) * Wo);
  if (!src_x)
    return;
  for (int ox = 0; ox < Wo; ox++)
    src_x[ox] = nearest_source(ox, W, Wo);
  /* Planes in units of work, with abort polls between them. */
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int64_t first, end = 0; os_cpu_next_unit(&progress, (int64_t)N * C,
                                                2.0 * Ho * Wo * OS_CPU_VALUE_WORK, &first, &end);)
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * Ho * Wo >= OS_CPU_PARALLEL_MIN)
    for (int64_t nc = first; nc < end; nc++) {
      const float *in = x + (size_t)nc * H * W;
      float *out = y + (size_t)nc * Ho * Wo;
      for (int oy = 0; oy < Ho; oy++) {
        const float *in_row = in + (size_t)nearest_source(oy, H, Ho) * W;
        float *out_row = out + (size_t)oy * Wo;
        for (int ox = 0; ox < Wo; ox++)
          out_row[ox] = in_row[src_x[ox]];
      }
    }
  free(src_x);
}

void
os_cpu_concat_channels(os_backend *be, float *y, const float *a, int Ca, const float *b, int Cb,
                       int N, int P)
{
  int n_threads = os_cpu_threads(be);
  size_t a_len = (size_t)Ca * P, b_len = (size_t)Cb * P;
#pragma omp parallel for num_threads(n_threads) if ((a_len + b_len) * N >= OS_CPU_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    float *out = y + n * (a_len + b_len);
    memcpy(out, a + n * a_len, sizeof(float) * a_len);
    memcpy(out + a_len, b + n * b_len, sizeof(float) * b_len);
  }
}

void
os_cpu_copy_columns(os_backend *be, float *y, int ldy, const float *x, int ldx, int rows,
                    int cols)
{
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if ((size_t)rows * cols >= OS_CPU_PARALLEL_MIN)
  for (int r = 0; r < rows; r++)
    memcpy(y + (size_t)r * ldy, x + (size_t)r * ldx, sizeof(float) * cols);
}

void
os_cpu_upsample_nearest_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                 int H, int W, int Ho, int Wo)
{
  int n_threads = os_cpu_threads(be);
  int *src_x = os_cpu_scratch(be, sizeof(int) * Wo);
  if (!src_x)
    return;
  for (int ox = 0; ox < Wo; ox++)
    src_x[ox] = nearest_source(ox, W, Wo);
  /* One plane per task, its output pixels added in raster order. */
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * Ho * Wo >= OS_CPU_PARALLEL_MIN)
  for (int nc = 0; nc < N * C; nc++) {
    float *in = dx + (size_t)nc * H * W;
    const float *out = dy + (size_t)nc * Ho * Wo;
    for (int oy = 0; oy < Ho; oy++) {
      float *in_row = in + (size_t)nearest_source(oy, H, Ho) * W;
      const float *out_row = out + (size_t)oy * Wo;
      for (int ox = 0; ox < Wo; ox++)
        in_row[src_x[ox]] += out_row[ox];
    }
  }
  free(src_x);
}

/* dst += src over n values. */
static void
accumulate(float *restrict dst, const float *restrict src, size_t n)
{
  for (size_t i = 0; i < n; i++)
    dst[i] += src[i];
}

void
os_cpu_split_channels(os_backend *be, float *da, float *db, const float *dy, int Ca, int Cb,
                      int N, int P)
{
  int n_threads = os_cpu_threads(be);
  size_t a_len = (size_t)Ca * P, b_len = (size_t)Cb * P;
#pragma omp parallel for num_threads(n_threads) if ((a_len + b_len) * N >= OS_CPU_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const float *in = dy + n * (a_len + b_len);
    if (da)
      accumulate(da + n * a_len, in, a_len);
    if (db)
      accumulate(db + n * b_len, in + a_len, b_len);
  }
}

/* --- pixel shuffle --- */

void
os_cpu_pixel_shuffle(os_backend *be, float *y, const float *x, int N, int C, int H, int W, int r)
{
  int n_threads = os_cpu_threads(be);
  size_t Wo = (size_t)W * r;
  /* One output row per task: y[n, c, h*r + i, :] gathers x[n, (c*r + i)*r + j, h, :]. */
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * H * W * r * r >= OS_CPU_PARALLEL_MIN)
  for (int row = 0; row < N * C * H * r; row++) {
    int i = row % r, h = row / r % H, nc = row / (r * H);
    float *out = y + (size_t)row * Wo;
    const float *in = x + (((size_t)nc * r + i) * r * H + h) * W;
    for (int j = 0; j < r; j++, in += (size_t)H * W)
      for (int w = 0; w < W; w++)
        out[(size_t)w * r + j] = in[w];
  }
}

void
os_cpu_pixel_shuffle_backward(os_backend *be, float *dx, const float *dy, int N, int C, int H,
                              int W, int r)
{
  int n_threads = os_cpu_threads(be);
  size_t Wo = (size_t)W * r;
  /* The same walk; each element of dx is written by exactly one task. */
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * H * W * r * r >= OS_CPU_PARALLEL_MIN)
  for (int row = 0; row < N * C * H * r; row++) {
    int i = row % r, h = row / r % H, nc = row / (r * H);
    const float *out = dy + (size_t)row * Wo;
    float *in = dx + (((size_t)nc * r + i) * r * H + h) * W;
    for (int j = 0; j < r; j++, in += (size_t)H * W)
      for (int w = 0; w < W; w++)
        in[w] += out[(size_t)w * r + j];
  }
}

/* --- bilinear resize --- */

/* One output coordinate's two source indices and weights. */
typedef struct {
  int i0, i1;
  float l0, l1;
} bilinear_tap;

/* PyTorch's linear source index for an explicit size (align_corners false):
 * negative positions clamp to 0 and the upper neighbour to the last index. */
static bilinear_tap *
bilinear_taps(os_backend *be, int in, int out)
{
  bilinear_tap *taps = os_cpu_scratch(be, sizeof *taps * out);
  if (!taps)
    return NULL;
  double scale = (double)in / out;
  for (int d = 0; d < out; d++) {
    double src = fmax((d + 0.5) * scale - 0.5, 0.0);
    int i0 = (int)src;
    double l1 = src - i0;
    taps[d] = (bilinear_tap){ i0, i0 < in - 1 ? i0 + 1 : i0, (float)(1.0 - l1), (float)l1 };
  }
  return taps;
}

void
os_cpu_resize_bilinear(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                       int Ho, int Wo)
{
  bilinear_tap *ty = bilinear_taps(be, H, Ho), *tx = bilinear_taps(be, W, Wo);
  int n_threads = os_cpu_threads(be);
  if (ty && tx) {
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * Ho * Wo >= OS_CPU_PARALLEL_MIN)
    for (int row = 0; row < N * C * Ho; row++) {
      int oy = row % Ho, nc = row / Ho;
      const float *r0 = x + ((size_t)nc * H + ty[oy].i0) * W;
      const float *r1 = x + ((size_t)nc * H + ty[oy].i1) * W;
      float *out = y + (size_t)row * Wo;
      for (int ox = 0; ox < Wo; ox++) {
        bilinear_tap t = tx[ox];
        out[ox] = ty[oy].l0 * (t.l0 * r0[t.i0] + t.l1 * r0[t.i1]) +
                  ty[oy].l1 * (t.l0 * r1[t.i0] + t.l1 * r1[t.i1]);
      }
    }
  }
  free(ty);
  free(tx);
}

void
os_cpu_resize_bilinear_backward(os_backend *be, float *dx, const float *dy, int N, int C, int H,
                                int W, int Ho, int Wo)
{
  bilinear_tap *ty = bilinear_taps(be, H, Ho), *tx = bilinear_taps(be, W, Wo);
  int n_threads = os_cpu_threads(be);
  if (ty && tx) {
    /* One plane per task, its output pixels scattered in raster order. */
#pragma omp parallel for num_threads(n_threads) \
    if ((size_t)N * C * Ho * Wo >= OS_CPU_PARALLEL_MIN)
    for (int nc = 0; nc < N * C; nc++) {
      float *plane = dx + (size_t)nc * H * W;
      for (int oy = 0; oy < Ho; oy++) {
        float *r0 = plane + (size_t)ty[oy].i0 * W, *r1 = plane + (size_t)ty[oy].i1 * W;
        const float *g = dy + ((size_t)nc * Ho + oy) * Wo;
        for (int ox = 0; ox < Wo; ox++) {
          bilinear_tap t = tx[ox];
          float g0 = ty[oy].l0 * g[ox], g1 = ty[oy].l1 * g[ox];
          r0[t.i0] += t.l0 * g0;
          r0[t.i1] += t.l1 * g0;
          r1[t.i0] += t.l0 * g1;
          r1[t.i1] += t.l1 * g1;
        }
      }
    }
  }
  free(ty);
  free(tx);
}
