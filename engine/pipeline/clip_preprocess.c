/* clip_preprocess.c: blur + bicubic align-corners resize + normalisation,
 * computed in float32 as PyTorch does for diffusers' _resize_with_antialiasing. */
#include <math.h>
#include <stdlib.h>

#include "clip_preprocess.h"
#include "error.h"

void os_image_to_signed_float(const onestep_image *image, float *out, int n_threads)
{
  size_t plane = (size_t)image->width * image->height;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < image->height; y++) {
    const uint8_t *row = image->rgb + (size_t)y * image->stride;
    for (int x = 0; x < image->width; x++)
      for (int c = 0; c < 3; c++) {
        float p = (float)row[3 * x + c] / 255.0f;
        out[c * plane + (size_t)y * image->width + x] = p * 2.0f - 1.0f;
      }
  }
}

/* Reflect an index into [0, n) without repeating the edge sample. */
static int reflect_index(int i, int n)
{
  if (n == 1)
    return 0;
  int period = 2 * (n - 1);
  i %= period;
  if (i < 0)
    i += period;
  return i < n ? i : period - i;
}

/* Normalised Gaussian taps of odd length k for the given sigma (float32 math). */
static void gaussian_taps(int k, float sigma, float *taps)
{
  float sum = 0.0f;
  float two_var = 2.0f * (sigma * sigma);
  for (int i = 0; i < k; i++) {
    float d = (float)(i - k / 2);
    taps[i] = expf(-(d * d) / two_var);
    sum += taps[i];
  }
  for (int i = 0; i < k; i++)
    taps[i] /= sum;
}

/* Blur each row of an [H, W] plane along x with reflect padding. Each output
 * is sum_j taps[j] * in[...] accumulated in j order from zero, whatever the
 * loop shape, so rows are independent and the result does not depend on
 * threads. */
static void blur_rows(const float *in, float *out, int H, int W, const float *taps, int k,
                      int n_threads)
{
  int front = (k - 1) / 2;
#pragma omp parallel num_threads(n_threads)
  {
    /* the row with its reflected borders, padded once instead of per tap */
    float *padded = malloc((size_t)(W + k - 1) * sizeof(float));
#pragma omp for schedule(static)
    for (int y = 0; y < H; y++) {
      if (!padded)
        continue; /* out of memory: leave the row (never with real sizes) */
      const float *row = in + (size_t)y * W;
      float *o = out + (size_t)y * W;
      for (int i = 0; i < W + k - 1; i++)
        padded[i] = row[reflect_index(i - front, W)];
      for (int x = 0; x < W; x++) {
        float acc = 0.0f;
        for (int j = 0; j < k; j++)
          acc += taps[j] * padded[x + j];
        o[x] = acc;
      }
    }
    free(padded);
  }
}

/* The same blur along y: output row y sums the k source rows around it, in
 * the same j order. */
static void blur_columns(const float *in, float *out, int H, int W, const float *taps, int k,
                         int n_threads)
{
  int front = (k - 1) / 2;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < H; y++) {
    float *o = out + (size_t)y * W;
    for (int x = 0; x < W; x++)
      o[x] = 0.0f;
    for (int j = 0; j < k; j++) {
      const float *row = in + (size_t)reflect_index(y - front + j, H) * W;
      for (int x = 0; x < W; x++)
        o[x] += taps[j] * row[x];
    }
  }
}

/* Kernel length for one axis: int(max(4 sigma, 3)), made odd. */
static int blur_kernel_size(double sigma)
{
  int k = (int)fmax(4.0 * sigma, 3.0);
  return k % 2 == 0 ? k + 1 : k;
}

static double blur_sigma(int in, int out) { return fmax(((double)in / out - 1.0) / 2.0, 0.001); }

/* PyTorch's cubic convolution weights with A = -0.75 for fraction t. */
static void cubic_weights(float t, float w[4])
{
  const float A = -0.75f;
  float x1 = t + 1.0f, x2 = 1.0f - t, x3 = 2.0f - t;
  w[0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
  w[1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
  w[2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
  w[3] = ((A * x3 - 5.0f * A) * x3 + 8.0f * A) * x3 - 4.0f * A;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Bicubic resize of one plane with align_corners=True and clamped borders. */
static void bicubic_align_corners(const float *in, int H, int W, float *out, int Ho, int Wo,
                                  int n_threads)
{
  float scale_y = Ho > 1 ? (float)(H - 1) / (float)(Ho - 1) : 0.0f;
  float scale_x = Wo > 1 ? (float)(W - 1) / (float)(Wo - 1) : 0.0f;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int oy = 0; oy < Ho; oy++) {
    float real_y = scale_y * (float)oy;
    int iy = (int)floorf(real_y);
    float wy[4];
    cubic_weights(real_y - (float)iy, wy);
    for (int ox = 0; ox < Wo; ox++) {
      float real_x = scale_x * (float)ox;
      int ix = (int)floorf(real_x);
      float wx[4];
      cubic_weights(real_x - (float)ix, wx);
      float acc = 0.0f;
      for (int i = 0; i < 4; i++) {
        const float *row = in + (size_t)clampi(iy - 1 + i, 0, H - 1) * W;
        float r = 0.0f;
        for (int j = 0; j < 4; j++)
          r += wx[j] * row[clampi(ix - 1 + j, 0, W - 1)];
        acc += wy[i] * r;
      }
      out[(size_t)oy * Wo + ox] = acc;
    }
  }
}

onestep_status os_clip_preprocess(const onestep_image *image, int size,
                                  const os_preprocess_config *pre, float *out, int n_threads,
                                  onestep_error *error)
{
  int H = image->height, W = image->width;
  size_t plane = (size_t)H * W;
  double sigma_y = blur_sigma(H, size), sigma_x = blur_sigma(W, size);
  int ky = blur_kernel_size(sigma_y), kx = blur_kernel_size(sigma_x);
  float *signed_px = malloc(3 * plane * sizeof(float));
  float *tmp = malloc(plane * sizeof(float));
  float *taps_x = malloc((size_t)kx * sizeof(float));
  float *taps_y = malloc((size_t)ky * sizeof(float));
  onestep_status status = ONESTEP_OK;
  if (!signed_px || !tmp || !taps_x || !taps_y) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                          "CLIP preprocessing: out of memory for a %dx%d image", W, H);
    goto out;
  }
  os_image_to_signed_float(image, signed_px, n_threads);
  gaussian_taps(kx, (float)sigma_x, taps_x);
  gaussian_taps(ky, (float)sigma_y, taps_y);
  for (int c = 0; c < 3; c++) {
    float *p = signed_px + c * plane;
    blur_rows(p, tmp, H, W, taps_x, kx, n_threads);
    blur_columns(tmp, p, H, W, taps_y, ky, n_threads);
    float *o = out + (size_t)c * size * size;
    bicubic_align_corners(p, H, W, o, size, size, n_threads);
    for (size_t i = 0; i < (size_t)size * size; i++)
      o[i] = ((o[i] + 1.0f) / 2.0f - pre->image_mean[c]) / pre->image_std[c];
  }
out:
  free(signed_px);
  free(tmp);
  free(taps_x);
  free(taps_y);
  return status;
}
