/* cpu_conv.c: 2-D and temporal convolutions lowered to GEMM; conv2d goes to
 * oneDNN's direct kernels where those are faster (cpu_conv_onednn.c). */
#include "cpu_conv.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The im2col buffers of one core's share of this at most (bands of output
 * rows), so memory stays flat at any resolution and a band's columns stay
 * warm in cache for its GEMM. */
#define COLUMN_BUFFER_MAX_BYTES ((size_t)16 << 20)

/* y[n, c, :] = bias[c] for every image, or 0 without bias. */
static void
fill_channel_bias(float *y, const float *bias, int N, int C, size_t P, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) \
    if (n_threads > 1 && (size_t)N * C * P >= OS_CPU_PARALLEL_MIN)
  for (int nc = 0; nc < N * C; nc++) {
    float value = bias ? bias[nc % C] : 0.0f;
    float *plane = y + (size_t)nc * P;
    for (size_t p = 0; p < P; p++)
      plane[p] = value;
  }
}

typedef struct {
  int Cin, H, W, KH, KW, stride, pad_top, pad_left, Ho, Wo;
} conv_shape;

/* col[(c*KH + kh)*KW + kw][(oy - oy0)*Wo + ox] = x[c][oy*s - pt + kh][ox*s - pl + kw]
 * (zero outside the image) for output rows oy0 <= oy < oy1. */
static void
im2col_rows(const conv_shape *s, const float *x, float *col, int oy0, int oy1)
{
  int n_rows = s->Cin * s->KH * s->KW;
  size_t row_len = (size_t)(oy1 - oy0) * s->Wo;
  for (int r = 0; r < n_rows; r++) {
    int kw = r % s->KW, kh = (r / s->KW) % s->KH, c = r / (s->KW * s->KH);
    const float *plane = x + (size_t)c * s->H * s->W;
    float *out = col + (size_t)r * row_len;
    /* Output columns whose input column lies inside the image: [ox0, ox1). */
    int ox0 = 0, ox1 = s->Wo;
    while (ox0 < s->Wo && ox0 * s->stride - s->pad_left + kw < 0)
      ox0++;
    while (ox1 > ox0 && (ox1 - 1) * s->stride - s->pad_left + kw >= s->W)
      ox1--;
    for (int oy = oy0; oy < oy1; oy++, out += s->Wo) {
      int iy = oy * s->stride - s->pad_top + kh;
      if (iy < 0 || iy >= s->H) {
        memset(out, 0, sizeof(float) * s->Wo);
        continue;
      }
      const float *in = plane + (size_t)iy * s->W - s->pad_left + kw;
      for (int ox = 0; ox < ox0; ox++)
        out[ox] = 0.0f;
      if (s->stride == 1) {
        memcpy(out + ox0, in + ox0, sizeof(float) * (ox1 - ox0));
      } else {
        for (int ox = ox0; ox < ox1; ox++)
          out[ox] = in[ox * s->stride];
      }
      for (int ox = ox1; ox < s->Wo; ox++)
        out[ox] = 0.0f;
    }
  }
}

/* conv2d works in tasks of one band of output rows of one image. A task
 * writes its band's bias, lays out the band's input columns (im2col) in the
 * worker's own buffer and multiplies them with one single-threaded sgemm,
 * then adds the residual. The output rows of all images, in order, go in
 * units of about a unit's work (os_cpu_next_unit), each one parallel region
 * over its bands, with abort polls between units. */
typedef struct {
  conv_shape s;
  float *y;
  const float *x, *W, *bias, *residual;
  int Cout, K, band_rows;
  size_t in_plane, out_plane;
  bool pointwise; /* 1x1, stride 1, no padding: the image is its own columns */
} conv_job;

/* Output rows oy0 <= oy < oy1 of image n. */
static void
conv_band(const conv_job *job, int n, int oy0, int oy1, float *col)
{
  const conv_shape *s = &job->s;
  size_t first = (size_t)oy0 * s->Wo, cols = (size_t)(oy1 - oy0) * s->Wo;
  size_t plane = job->out_plane;
  float *yn = job->y + (size_t)n * job->Cout * plane;
  const float *xn = job->x + (size_t)n * s->Cin * job->in_plane;
  for (int o = 0; o < job->Cout; o++) {
    float value = job->bias ? job->bias[o] : 0.0f, *out = yn + o * plane + first;
    for (size_t p = 0; p < cols; p++)
      out[p] = value;
  }
  const float *B = xn + first;
  int ldb = (int)job->in_plane;
  if (!job->pointwise) {
    im2col_rows(s, xn, col, oy0, oy1);
    B = col;
    ldb = (int)cols;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, job->Cout, (int)cols, job->K, 1.0f,
              job->W, job->K, B, ldb, 1.0f, yn + first, (int)plane);
  if (job->residual) {
    const float *rn = job->residual + (size_t)n * job->Cout * plane;
    for (int o = 0; o < job->Cout; o++)
      for (size_t p = first; p < first + cols; p++)
        yn[o * plane + p] += rn[o * plane + p];
  }
}

/* Rows per band, from the shape and the machine's core count only (never
 * the thread count, so results do not depend on it): about four bands per
 * core over all images for balance, bands of at least ~512 output pixels so
 * that repacking W stays cheap, a column buffer of at most a share of
 * COLUMN_BUFFER_MAX_BYTES per core, and at most an eighth of a unit's work
 * (row_work a row's), so that a unit keeps the cores busy. */
static int
band_rows(int N, int Ho, int Wo, size_t column_row_bytes, double row_work)
{
  int cores = omp_get_num_procs();
  int bands_per_image = (4 * cores + N - 1) / N;
  int rows = (Ho + bands_per_image - 1) / bands_per_image;
  int min_rows = (512 + Wo - 1) / Wo;
  if (rows < min_rows)
    rows = min_rows;
  size_t cap = COLUMN_BUFFER_MAX_BYTES / cores / column_row_bytes;
  if ((size_t)rows > cap)
    rows = cap > 0 ? (int)cap : 1;
  double most = os_cpu_unit_work() / 8.0 / row_work;
  if (rows > most)
    rows = most >= 1.0 ? (int)most : 1;
  return rows < Ho ? rows : Ho;
}

void
os_cpu_conv2d_lowered(os_backend *be, float *y, const float *x, const float *W,
                      const float *bias, const float *residual, int N, int Cin, int H, int Wd,
                      int Cout, int KH, int KW, int stride, int pad_top, int pad_left,
                      int pad_bottom, int pad_right)
{
  conv_job job = {
    .s = {
      .Cin = Cin, .H = H, .W = Wd, .KH = KH, .KW = KW, .stride = stride,
      .pad_top = pad_top, .pad_left = pad_left,
      .Ho = (H + pad_top + pad_bottom - KH) / stride + 1,
      .Wo = (Wd + pad_left + pad_right - KW) / stride + 1,
    },
    .y = y, .x = x, .W = W, .bias = bias, .residual = residual, .Cout = Cout,
    .K = Cin * KH * KW, .in_plane = (size_t)H * Wd,
    .pointwise = KH == 1 && KW == 1 && stride == 1 && pad_top == 0 && pad_left == 0 &&
                 pad_bottom == 0 && pad_right == 0,
  };
  job.out_plane = (size_t)job.s.Ho * job.s.Wo;
  int Ho = job.s.Ho;
  size_t column_row_bytes = sizeof(float) * (size_t)job.K * job.s.Wo;
  double row_work = (double)Cout * job.K * job.s.Wo;
  job.band_rows = band_rows(N, Ho, job.s.Wo, column_row_bytes, row_work);
  int workers = os_cpu_threads(be);
  size_t buffer_floats = job.pointwise ? 0 : (size_t)job.K * job.s.Wo * job.band_rows;
  float *buffers = os_cpu_scratch(be, sizeof(float) * buffer_floats * workers);
  if (!buffers)
    return;
  os_cpu_blas_single_thread();
  os_cpu_progress progress = os_cpu_progress_start(be);
  /* A unit's rows [first, end) of the N * Ho rows: bands from the start of
   * its rows in each image it touches (all of an image inside it). */
  int64_t first, end = 0;
  while (os_cpu_next_unit(&progress, (int64_t)N * Ho, row_work, &first, &end)) {
    int n0 = (int)(first / Ho), n1 = (int)((end - 1) / Ho);
    int unit_rows = end - first < Ho ? (int)(end - first) : Ho;
    int bands = (unit_rows + job.band_rows - 1) / job.band_rows;
    int n_tasks = (n1 - n0 + 1) * bands;
#pragma omp parallel num_threads(workers < n_tasks ? workers : n_tasks)
    {
      float *col = buffers + buffer_floats * omp_get_thread_num();
#pragma omp for schedule(dynamic)
      for (int task = 0; task < n_tasks; task++) {
        int n = n0 + task / bands;
        int lo = n == n0 ? (int)(first % Ho) : 0, hi = n == n1 ? (int)((end - 1) % Ho) + 1 : Ho;
        int oy0 = lo + task % bands * job.band_rows;
        if (oy0 < hi)
          conv_band(&job, n, oy0, oy0 + job.band_rows < hi ? oy0 + job.band_rows : hi, col);
      }
    }
  }
  free(buffers);
}

/* bench-conv on a 2-core Zen 3 (GFLOP per CPU-second, one thread): oneDNN's
 * direct kernel is 5-30% faster on SVD's 3x3 convolutions, stride 1 or 2
 * (nearly all of its convolution work), more on the deepest levels and on
 * few output channels; 1x1 ones are OpenBLAS products already and run as
 * fast lowered without the reorders' memory, and CLIP's 14x14 patch
 * embedding runs twice as fast lowered. */
bool
os_cpu_conv2d_prefers_onednn(int Cin, int Cout, int KH, int KW, int stride)
{
  (void)Cin, (void)Cout, (void)stride;
  return KH == 3 && KW == 3;
}

void
os_cpu_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
              const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH, int KW,
              int stride, int pad_top, int pad_left, int pad_bottom, int pad_right)
{
  float *owned_x, *owned_w;
  const float *x_used = os_cpu_rounded_operand(be, x, (size_t)N * Cin * H * Wd, &owned_x);
  const float *w_used = os_cpu_rounded_operand(be, W, (size_t)Cout * Cin * KH * KW, &owned_w);
  if (x_used && w_used &&
      !(os_cpu_conv2d_prefers_onednn(Cin, Cout, KH, KW, stride) &&
        os_cpu_conv2d_onednn(be, y, x_used, w_used, bias, residual, N, Cin, H, Wd, Cout, KH, KW,
                            stride, pad_top, pad_left, pad_bottom, pad_right)))
    os_cpu_conv2d_lowered(be, y, x_used, w_used, bias, residual, N, Cin, H, Wd, Cout, KH, KW,
                          stride, pad_top, pad_left, pad_bottom, pad_right);
  free(owned_x);
  free(owned_w);
}

/* W is [Cout, Cin, 3]: each tap as a contiguous [Cout, Cin] matrix, in
 * scratch for the caller to free (NULL when out of memory). */
static float *
pack_taps(os_backend *be, const float *W, int Cout, int Cin)
{
  float *taps = os_cpu_scratch(be, sizeof(float) * 3 * (size_t)Cout * Cin);
  if (!taps)
    return NULL;
  for (int o = 0; o < Cout; o++)
    for (int i = 0; i < Cin; i++)
      for (int k = 0; k < 3; k++)
        taps[((size_t)k * Cout + o) * Cin + i] = W[((size_t)o * Cin + i) * 3 + k];
  return taps;
}

void
os_cpu_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                     const float *bias, int B, int F, int Cin, int Cout, int HW)
{
  size_t in_frame = (size_t)Cin * HW, out_frame = (size_t)Cout * HW;
  fill_channel_bias(y, bias, B * F, Cout, HW, os_cpu_threads(be));
  float *taps = pack_taps(be, W, Cout, Cin);
  if (!taps)
    return;
  /* Tap k adds W_k x[f + k - 1] to every frame f that has that neighbour:
   * one batched product over those frames, all in the units of one op. */
  os_cpu_progress progress = os_cpu_progress_start(be);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < 3; k++) {
      int first = k == 0 ? 1 : 0, last = k == 2 ? F - 2 : F - 1;
      if (last < first)
        continue;
      size_t frame = (size_t)b * F + first;
      os_cpu_gemm_batched_in(&progress, false, false, Cout, HW, Cin, 1.0f,
                             taps + (size_t)k * Cout * Cin, Cin, 0,
                             x + (frame + k - 1) * in_frame, HW, (int64_t)in_frame, 1.0f,
                             y + frame * out_frame, HW, (int64_t)out_frame, last - first + 1);
    }
  free(taps);
}

/* The backward works in bands of output rows of one image, one after the
 * other, so that dW sums images and bands in a fixed order; each band's
 * products are spread over the workers by os_cpu_gemm. Bands hold at most
 * COLUMN_BUFFER_MAX_BYTES of columns, from the shape only. */
static int
backward_band_rows(int Ho, size_t column_row_bytes)
{
  size_t rows = COLUMN_BUFFER_MAX_BYTES / column_row_bytes;
  if (rows < 1)
    rows = 1;
  return rows < (size_t)Ho ? (int)rows : Ho;
}

/* im2col of output rows oy0..oy1, one task per input channel. */
static void
im2col_rows_parallel(const conv_shape *s, const float *x, float *col, int oy0, int oy1,
                     int n_threads)
{
  conv_shape one = *s;
  one.Cin = 1;
  size_t plane = (size_t)s->H * s->W, channel_cols = (size_t)s->KH * s->KW * (oy1 - oy0) * s->Wo;
#pragma omp parallel for num_threads(n_threads) if (channel_cols * s->Cin >= OS_CPU_PARALLEL_MIN)
  for (int c = 0; c < s->Cin; c++)
    im2col_rows(&one, x + c * plane, col + c * channel_cols, oy0, oy1);
}

/* The adjoint of im2col_rows: x[c][iy][ix] += col[...] for every column entry
 * that im2col read from inside the image; one task per input channel, each
 * pixel's terms added in a fixed order. */
static void
col2im_rows_parallel(const conv_shape *s, float *x, const float *col, int oy0, int oy1,
                     int n_threads)
{
  size_t plane = (size_t)s->H * s->W, row_len = (size_t)(oy1 - oy0) * s->Wo;
#pragma omp parallel for num_threads(n_threads) \
    if (row_len * s->KH * s->KW * s->Cin >= OS_CPU_PARALLEL_MIN)
  for (int c = 0; c < s->Cin; c++) {
    float *xc = x + c * plane;
    for (int kh = 0; kh < s->KH; kh++)
      for (int kw = 0; kw < s->KW; kw++) {
        const float *in = col + (((size_t)c * s->KH + kh) * s->KW + kw) * row_len;
        int ox0 = 0, ox1 = s->Wo;
        while (ox0 < s->Wo && ox0 * s->stride - s->pad_left + kw < 0)
          ox0++;
        while (ox1 > ox0 && (ox1 - 1) * s->stride - s->pad_left + kw >= s->W)
          ox1--;
        for (int oy = oy0; oy < oy1; oy++, in += s->Wo) {
          int iy = oy * s->stride - s->pad_top + kh;
          if (iy < 0 || iy >= s->H)
            continue;
          float *out = xc + (size_t)iy * s->W - s->pad_left + kw;
          for (int ox = ox0; ox < ox1; ox++)
            out[ox * s->stride] += in[ox];
        }
      }
  }
}

void
os_cpu_conv2d_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                       const float *x, const float *W, const os_conv2d_shape *shape)
{
  conv_shape s = {
    .Cin = shape->Cin, .H = shape->H, .W = shape->W, .KH = shape->KH, .KW = shape->KW,
    .stride = shape->stride, .pad_top = shape->pad_top, .pad_left = shape->pad_left,
    .Ho = os_conv2d_out_h(shape), .Wo = os_conv2d_out_w(shape),
  };
  int N = shape->N, Cout = shape->Cout, K = s.Cin * s.KH * s.KW;
  size_t in_plane = (size_t)s.H * s.W, out_plane = (size_t)s.Ho * s.Wo;
  if (N <= 0 || Cout <= 0 || s.Ho <= 0 || s.Wo <= 0)
    return;
  if (db)
    os_cpu_sum_channels(be, db, dy, N, Cout, out_plane);
  if (!dx && !dW)
    return;
  bool pointwise = s.KH == 1 && s.KW == 1 && s.stride == 1 && s.pad_top == 0 &&
                   s.pad_left == 0 && shape->pad_bottom == 0 && shape->pad_right == 0;
  int P = (int)out_plane;
  if (pointwise) { /* the image is its own columns */
    for (int n = 0; n < N; n++) {
      const float *dyn = dy + (size_t)n * Cout * out_plane;
      const float *xn = x + (size_t)n * s.Cin * in_plane;
      if (dW)
        os_cpu_gemm(be, false, true, Cout, K, P, 1.0f, dyn, P, xn, P, 1.0f, dW, K);
      if (dx)
        os_cpu_gemm(be, true, false, K, P, Cout, 1.0f, W, K, dyn, P, 1.0f,
                    dx + (size_t)n * s.Cin * in_plane, P);
    }
    return;
  }
  int rows = backward_band_rows(s.Ho, sizeof(float) * (size_t)K * s.Wo);
  size_t buffer_floats = (size_t)K * s.Wo * rows;
  float *col = dW ? os_cpu_scratch(be, sizeof(float) * buffer_floats) : NULL;
  float *dcol = dx ? os_cpu_scratch(be, sizeof(float) * buffer_floats) : NULL;
  int n_threads = os_cpu_threads(be);
  if ((!dW || col) && (!dx || dcol))
    for (int n = 0; n < N; n++)
      for (int oy0 = 0; oy0 < s.Ho; oy0 += rows) {
        int oy1 = oy0 + rows < s.Ho ? oy0 + rows : s.Ho, cols = (oy1 - oy0) * s.Wo;
        const float *dy_band = dy + (size_t)n * Cout * out_plane + (size_t)oy0 * s.Wo;
        if (dW) { /* dW[Cout, K] += dy_band [Cout, cols] col^T */
          im2col_rows_parallel(&s, x + (size_t)n * s.Cin * in_plane, col, oy0, oy1, n_threads);
          os_cpu_gemm(be, false, true, Cout, K, cols, 1.0f, dy_band, P, col, cols, 1.0f, dW, K);
        }
        if (dx) { /* dcol [K, cols] = W^T dy_band, scattered back onto dx */
          os_cpu_gemm(be, true, false, K, cols, Cout, 1.0f, W, K, dy_band, P, 0.0f, dcol, cols);
          col2im_rows_parallel(&s, dx + (size_t)n * s.Cin * in_plane, dcol, oy0, oy1,
                               n_threads);
        }
      }
  free(col);
  free(dcol);
}

void
os_cpu_conv_temporal_backward(os_backend *be, float *dx, float *dW, float *db, const float *dy,
                              const float *x, const float *W, int B, int F, int Cin, int Cout,
                              int HW)
{
  size_t in_frame = (size_t)Cin * HW, out_frame = (size_t)Cout * HW;
  if (db)
    os_cpu_sum_channels(be, db, dy, B * F, Cout, HW);
  if (dx) {
    /* dx[f + k - 1] += W_k^T dy[f]: per tap, the frames of an element in one batch. */
    float *taps = pack_taps(be, W, Cout, Cin);
    if (!taps)
      return;
    for (int k = 0; k < 3; k++) {
      int first = k == 0 ? 1 : 0, last = k == 2 ? F - 2 : F - 1;
      for (int b = 0; b < B && first <= last; b++) {
        size_t frame = (size_t)b * F + first;
        os_cpu_gemm_batched(be, true, false, Cin, HW, Cout, 1.0f,
                            taps + (size_t)k * Cout * Cin, Cin, 0, dy + frame * out_frame, HW,
                            (int64_t)out_frame, 1.0f, dx + (frame + k - 1) * in_frame, HW,
                            (int64_t)in_frame, last - first + 1);
      }
    }
    free(taps);
  }
  if (!dW)
    return;
  /* dW_k [Cout, Cin] += sum over frames of dy[f] x[f + k - 1]^T, frame by
   * frame in a fixed order, into packed taps that are then scattered. */
  float *dtaps = os_cpu_scratch(be, sizeof(float) * 3 * (size_t)Cout * Cin);
  if (!dtaps)
    return;
  memset(dtaps, 0, sizeof(float) * 3 * (size_t)Cout * Cin);
  for (int k = 0; k < 3; k++)
    for (int b = 0; b < B; b++)
      for (int f = k == 0 ? 1 : 0; f <= (k == 2 ? F - 2 : F - 1); f++) {
        size_t frame = (size_t)b * F + f;
        os_cpu_gemm(be, false, true, Cout, Cin, HW, 1.0f, dy + frame * out_frame, HW,
                    x + (frame + k - 1) * in_frame, HW, 1.0f, dtaps + (size_t)k * Cout * Cin,
                    Cin);
      }
  for (int o = 0; o < Cout; o++)
    for (int i = 0; i < Cin; i++)
      for (int k = 0; k < 3; k++)
        dW[((size_t)o * Cin + i) * 3 + k] += dtaps[((size_t)k * Cout + o) * Cin + i];
  free(dtaps);
}
