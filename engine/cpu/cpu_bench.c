/* cpu_bench.c: timing a square sgemm, and conv2d's two ways side by side. */
#include "cpu_bench.h"

/* Before cblas.h: OpenBLAS pulls in <complex.h>, whose macro I clashes
 * with backend.h's parameter names. */
#include "cpu_conv.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#define RUNS 4

static double
now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double
os_cpu_sgemm_gflops(int n, int n_threads)
{
  size_t count = (size_t)n * n;
  float *a = malloc(sizeof(float) * count), *b = malloc(sizeof(float) * count),
        *c = malloc(sizeof(float) * count);
  double best = 0.0;
  if (a && b && c) {
    for (size_t i = 0; i < count; i++) {
      a[i] = (float)(i % 7) * 0.25f - 0.75f;
      b[i] = (float)(i % 5) * 0.5f - 1.0f;
    }
    /* OpenBLAS's own threading: the machine's best rate, the yardstick. */
    openblas_set_num_threads(n_threads > 0 ? n_threads : omp_get_num_procs());
    /* The first run also warms OpenBLAS's threads and buffers; it counts
     * only if no later run is faster. */
    for (int run = 0; run < RUNS; run++) {
      double start = now_seconds();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                  c, n);
      double seconds = now_seconds() - start;
      double gflops = 2.0 * n * n * (double)n / seconds * 1e-9;
      if (gflops > best)
        best = gflops;
    }
  }
  os_cpu_blas_single_thread(); /* what the backend's ops expect */
  free(a);
  free(b);
  free(c);
  return best;
}

/* Channels, strides and paddings as SVD's models use them: the UNet on 14
 * frames of a 256x256 picture's latent, the VAE decoding two frames of it
 * (and one 512x512 level, which oneDNN takes in bands of rows), so that each
 * call takes a fraction of a second. */
const os_cpu_conv_case os_cpu_conv_cases[] = {
  { "unet 3x3 320 32x32 x14", 14, 320, 32, 32, 320, 3, 1, 1, 1, 1, 1, true },
  { "unet 3x3 640 16x16 x14", 14, 640, 16, 16, 640, 3, 1, 1, 1, 1, 1, true },
  { "unet 3x3 1280 8x8 x14", 14, 1280, 8, 8, 1280, 3, 1, 1, 1, 1, 1, true },
  { "unet 3x3 1280 4x4 x14", 14, 1280, 4, 4, 1280, 3, 1, 1, 1, 1, 1, false },
  { "unet 3x3 320->640 16x16 x14", 14, 320, 16, 16, 640, 3, 1, 1, 1, 1, 1, false },
  { "unet 3x3 640->320 32x32 x14", 14, 640, 32, 32, 320, 3, 1, 1, 1, 1, 1, false },
  { "unet 1x1 320->640 16x16 x14", 14, 320, 16, 16, 640, 1, 1, 0, 0, 0, 0, false },
  { "unet 1x1 1280->640 16x16 x14", 14, 1280, 16, 16, 640, 1, 1, 0, 0, 0, 0, false },
  { "unet down s2 320 32->16 x14", 14, 320, 32, 32, 320, 3, 2, 1, 1, 1, 1, false },
  { "unet conv_in 8->320 32x32 x14", 14, 8, 32, 32, 320, 3, 1, 1, 1, 1, 1, false },
  { "unet conv_out 320->4 32x32 x14", 14, 320, 32, 32, 4, 3, 1, 1, 1, 1, 1, false },
  { "vae 3x3 512 64x64 x2", 2, 512, 64, 64, 512, 3, 1, 1, 1, 1, 1, true },
  { "vae 3x3 256 128x128 x2", 2, 256, 128, 128, 256, 3, 1, 1, 1, 1, 1, true },
  { "vae 3x3 128 256x256", 1, 128, 256, 256, 128, 3, 1, 1, 1, 1, 1, true },
  { "vae 3x3 128 512x512 (row bands)", 1, 128, 512, 512, 128, 3, 1, 1, 1, 1, 1, true },
  { "vae 3x3 512->256 128x128", 1, 512, 128, 128, 256, 3, 1, 1, 1, 1, 1, false },
  { "vae 1x1 512->256 128x128", 1, 512, 128, 128, 256, 1, 1, 0, 0, 0, 0, false },
  { "vae conv_in 4->512 32x32 x2", 2, 4, 32, 32, 512, 3, 1, 1, 1, 1, 1, false },
  { "vae down s2 pad(0,0,1,1) 128 256x256", 1, 128, 256, 256, 128, 3, 2, 0, 0, 1, 1, false },
  { "vae conv_out 128->3 256x256", 1, 128, 256, 256, 3, 3, 1, 1, 1, 1, 1, false },
  { "clip patch 14x14/14 3->1280 224x224", 1, 3, 224, 224, 1280, 14, 14, 0, 0, 0, 0, false },
};
const int os_cpu_conv_n_cases = sizeof os_cpu_conv_cases / sizeof *os_cpu_conv_cases;

typedef void (*conv2d_way)(os_backend *be, const os_cpu_conv_case *c, float *y, const float *x,
                           const float *W, const float *bias, const float *residual);

static void
run_lowered(os_backend *be, const os_cpu_conv_case *c, float *y, const float *x, const float *W,
            const float *bias, const float *residual)
{
  os_cpu_conv2d_lowered(be, y, x, W, bias, residual, c->N, c->Cin, c->H, c->W, c->Cout, c->K,
                        c->K, c->stride, c->pad_top, c->pad_left, c->pad_bottom, c->pad_right);
}

static void
run_onednn(os_backend *be, const os_cpu_conv_case *c, float *y, const float *x, const float *W,
           const float *bias, const float *residual)
{
  os_cpu_conv2d_onednn(be, y, x, W, bias, residual, c->N, c->Cin, c->H, c->W, c->Cout, c->K,
                       c->K, c->stride, c->pad_top, c->pad_left, c->pad_bottom, c->pad_right);
}

static double
cpu_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Times one call into *best (the shortest wall and CPU times so far). */
static void
time_call(conv2d_way way, os_backend *be, const os_cpu_conv_case *c, float *y, const float *x,
          const float *W, const float *bias, const float *residual, os_cpu_conv_rate *best)
{
  double wall = now_seconds(), cpu = cpu_seconds();
  way(be, c, y, x, W, bias, residual);
  cpu = cpu_seconds() - cpu;
  wall = now_seconds() - wall;
  if (best->wall == 0.0 || wall < best->wall)
    best->wall = wall;
  if (best->cpu == 0.0 || cpu < best->cpu)
    best->cpu = cpu;
}

static os_cpu_conv_rate
rate_of(double gflop, os_cpu_conv_rate seconds)
{
  return (os_cpu_conv_rate){ gflop / seconds.wall, gflop / seconds.cpu };
}

static void
fill_pattern(float *v, size_t n, int period, float scale)
{
  for (size_t i = 0; i < n; i++)
    v[i] = (float)((int)(i % period) - period / 2) * scale;
}

bool
os_cpu_conv_bench(os_backend *be, const os_cpu_conv_case *c, int runs,
                  os_cpu_conv_timing *timing)
{
  int Ho = (c->H + c->pad_top + c->pad_bottom - c->K) / c->stride + 1;
  int Wo = (c->W + c->pad_left + c->pad_right - c->K) / c->stride + 1;
  size_t x_n = (size_t)c->N * c->Cin * c->H * c->W, w_n = (size_t)c->Cout * c->Cin * c->K * c->K;
  size_t y_n = (size_t)c->N * c->Cout * Ho * Wo;
  float *x = malloc(sizeof(float) * x_n), *W = malloc(sizeof(float) * w_n);
  float *bias = malloc(sizeof(float) * c->Cout), *y = malloc(sizeof(float) * y_n);
  float *residual = c->residual ? malloc(sizeof(float) * y_n) : NULL;
  bool ok = x && W && bias && y && (residual || !c->residual);
  if (ok) {
    fill_pattern(x, x_n, 13, 0.125f);
    fill_pattern(W, w_n, 11, 0.01f);
    fill_pattern(bias, c->Cout, 7, 0.5f);
    if (residual)
      fill_pattern(residual, y_n, 5, 0.25f);
    *timing = (os_cpu_conv_timing){
      .gflop = 2e-9 * c->Cout * (double)c->Cin * c->K * c->K * Ho * Wo * c->N,
      .onednn_chosen = os_cpu_conv2d_prefers_onednn(c->Cin, c->Cout, c->K, c->K, c->stride),
    };
    /* The first call of each builds oneDNN's kernels and warms buffers. */
    run_lowered(be, c, y, x, W, bias, residual);
    bool has_onednn = os_cpu_conv2d_onednn(be, y, x, W, bias, residual, c->N, c->Cin, c->H,
                                           c->W, c->Cout, c->K, c->K, c->stride, c->pad_top,
                                           c->pad_left, c->pad_bottom, c->pad_right);
    os_cpu_conv_rate lowered = { 0 }, onednn = { 0 };
    for (int run = 0; run < runs; run++) {
      time_call(run_lowered, be, c, y, x, W, bias, residual, &lowered);
      if (has_onednn)
        time_call(run_onednn, be, c, y, x, W, bias, residual, &onednn);
    }
    timing->lowered = rate_of(timing->gflop, lowered);
    if (has_onednn)
      timing->onednn = rate_of(timing->gflop, onednn);
  }
  free(x);
  free(W);
  free(bias);
  free(y);
  free(residual);
  return ok;
}
