/* cpu_conv.c: 2-D and temporal convolutions lowered to GEMM. */
#include "cpu_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The im2col buffer is capped (chunks of output rows) so memory stays flat
 * at any resolution; a few MB also keeps it warm in cache for the GEMM. */
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
im2col_rows(const conv_shape *s, const float *x, float *col, int oy0, int oy1, int n_threads)
{
  int n_rows = s->Cin * s->KH * s->KW;
  size_t row_len = (size_t)(oy1 - oy0) * s->Wo;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
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

/* One image's convolution through column chunks. */
typedef struct {
  conv_shape s;
  const float *W, *bias, *residual;
  int Cout, K, rows_per_chunk;
  size_t in_plane, out_plane;
} conv_job;

/* Image n: bias, im2col and GEMM chunk by chunk, residual. Split mode
 * spreads every step over the backend's workers; otherwise the calling
 * worker does it all (one of several workers each taking whole images). The
 * mode, not the thread count, decides how each GEMM is blocked. */
static void
conv_image(os_backend *be, const conv_job *job, float *y, const float *x, int n, float *col,
           bool split)
{
  const conv_shape *s = &job->s;
  int n_threads = split ? os_cpu_threads(be) : 1;
  const float *xn = x + n * s->Cin * job->in_plane;
  float *yn = y + n * job->Cout * job->out_plane;
  fill_channel_bias(yn, job->bias, 1, job->Cout, job->out_plane, n_threads);
  for (int oy0 = 0; oy0 < s->Ho; oy0 += job->rows_per_chunk) {
    int oy1 = oy0 + job->rows_per_chunk < s->Ho ? oy0 + job->rows_per_chunk : s->Ho;
    int cols = (oy1 - oy0) * s->Wo;
    float *y_rows = yn + (size_t)oy0 * s->Wo;
    im2col_rows(s, xn, col, oy0, oy1, n_threads);
    if (split)
      os_cpu_gemm(be, false, false, job->Cout, cols, job->K, 1.0f, job->W, job->K, col, cols,
                  1.0f, y_rows, (int)job->out_plane);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, job->Cout, cols, job->K, 1.0f,
                  job->W, job->K, col, cols, 1.0f, y_rows, (int)job->out_plane);
  }
  if (job->residual) {
    const float *rn = job->residual + n * job->Cout * job->out_plane;
    size_t len = job->Cout * job->out_plane;
#pragma omp parallel for num_threads(n_threads) if (n_threads > 1)
    for (size_t i = 0; i < len; i++)
      yn[i] += rn[i];
  }
}

/* Whole images per worker when there are enough to share out evenly on this
 * machine (a rule on the shape and the core count, never the thread count). */
static bool
images_per_worker(int N)
{
  int cores = omp_get_num_procs();
  return cores > 1 && (N % cores == 0 || N >= 4 * cores);
}

void
os_cpu_conv2d(os_backend *be, float *y, const float *x, const float *W, const float *bias,
              const float *residual, int N, int Cin, int H, int Wd, int Cout, int KH, int KW,
              int stride, int pad_top, int pad_left, int pad_bottom, int pad_right)
{
  conv_job job = {
    .s = {
      .Cin = Cin, .H = H, .W = Wd, .KH = KH, .KW = KW, .stride = stride,
      .pad_top = pad_top, .pad_left = pad_left,
      .Ho = (H + pad_top + pad_bottom - KH) / stride + 1,
      .Wo = (Wd + pad_left + pad_right - KW) / stride + 1,
    },
    .W = W, .bias = bias, .residual = residual, .Cout = Cout, .K = Cin * KH * KW,
    .in_plane = (size_t)H * Wd,
  };
  job.out_plane = (size_t)job.s.Ho * job.s.Wo;
  int n_threads = os_cpu_threads(be);

  bool pointwise = KH == 1 && KW == 1 && stride == 1 && pad_top == 0 && pad_left == 0 &&
                   pad_bottom == 0 && pad_right == 0;
  if (pointwise) {
    /* Y_n = W X_n: the image itself is the [Cin, H*W] column matrix. */
    fill_channel_bias(y, bias, N, Cout, job.out_plane, n_threads);
    os_cpu_gemm_batched(be, false, false, Cout, (int)job.out_plane, Cin, 1.0f, W, Cin, 0, x,
                        (int)job.out_plane, (int64_t)(Cin * job.in_plane), 1.0f, y,
                        (int)job.out_plane, (int64_t)(Cout * job.out_plane), N);
    if (residual)
      os_cpu_add(be, y, y, residual, (size_t)N * Cout * job.out_plane);
    return;
  }

  size_t row_bytes = sizeof(float) * (size_t)job.K * job.s.Wo;
  job.rows_per_chunk = (int)(COLUMN_BUFFER_MAX_BYTES / row_bytes);
  if (job.rows_per_chunk < 1)
    job.rows_per_chunk = 1;
  if (job.rows_per_chunk > job.s.Ho)
    job.rows_per_chunk = job.s.Ho;
  size_t chunk_floats = (size_t)job.K * job.s.Wo * job.rows_per_chunk;
  os_cpu_blas_single_thread();
  if (images_per_worker(N)) {
    int workers = n_threads < N ? n_threads : N;
    float *cols = os_cpu_scratch(be, sizeof(float) * chunk_floats * workers);
    if (!cols)
      return;
#pragma omp parallel num_threads(workers)
    {
      float *col = cols + chunk_floats * omp_get_thread_num();
#pragma omp for schedule(dynamic)
      for (int n = 0; n < N; n++)
        conv_image(be, &job, y, x, n, col, false);
    }
    free(cols);
  } else {
    float *col = os_cpu_scratch(be, sizeof(float) * chunk_floats);
    if (!col)
      return;
    for (int n = 0; n < N; n++)
      conv_image(be, &job, y, x, n, col, true);
    free(col);
  }
}

void
os_cpu_conv_temporal(os_backend *be, float *y, const float *x, const float *W,
                     const float *bias, int B, int F, int Cin, int Cout, int HW)
{
  size_t in_frame = (size_t)Cin * HW, out_frame = (size_t)Cout * HW;
  fill_channel_bias(y, bias, B * F, Cout, HW, os_cpu_threads(be));
  /* W is [Cout, Cin, 3]: pack each tap as a contiguous [Cout, Cin] matrix. */
  float *taps = os_cpu_scratch(be, sizeof(float) * 3 * (size_t)Cout * Cin);
  if (!taps)
    return;
  for (int o = 0; o < Cout; o++)
    for (int i = 0; i < Cin; i++)
      for (int k = 0; k < 3; k++)
        taps[((size_t)k * Cout + o) * Cin + i] = W[((size_t)o * Cin + i) * 3 + k];
  /* Tap k adds W_k x[f + k - 1] to every frame f that has that neighbour:
   * one batched product over those frames. */
  for (int b = 0; b < B; b++)
    for (int k = 0; k < 3; k++) {
      int first = k == 0 ? 1 : 0, last = k == 2 ? F - 2 : F - 1;
      if (last < first)
        continue;
      size_t frame = (size_t)b * F + first;
      os_cpu_gemm_batched(be, false, false, Cout, HW, Cin, 1.0f, taps + (size_t)k * Cout * Cin,
                          Cin, 0, x + (frame + k - 1) * in_frame, HW, (int64_t)in_frame, 1.0f,
                          y + frame * out_frame, HW, (int64_t)out_frame, last - first + 1);
    }
  free(taps);
}
