/* The preview decoder: exact recovery of a known sub-pixel convolution, the
 * cache round trip and key, and the fit's PSNR against the tiny golden VAE's
 * real decode on synthetic images.
 *
 * usage: test-preview MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "preview.h"
#include "vae.h"

static int failures;

#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                         \
      fprintf(stderr, __VA_ARGS__);                                                           \
      fprintf(stderr, "\n");                                                                  \
      failures++;                                                                             \
    }                                                                                         \
  } while (0)

static float gaussian(unsigned *s)
{
  double u = 0;
  for (int i = 0; i < 12; i++) {
    *s = *s * 1664525u + 1013904223u;
    u += (*s >> 8) / 16777216.0;
  }
  return (float)(u - 6.0);
}

static void test_recovers_known_decoder(int kernel)
{
  enum { C = 4, R = 4, N = 3, H = 6, W = 8 };
  os_preview_decoder known = {C, R, kernel, NULL, NULL};
  int outs = 3 * R * R, taps = C * kernel * kernel;
  known.weight = malloc(outs * taps * sizeof(float));
  known.bias = malloc(outs * sizeof(float));
  unsigned s = 5;
  for (int i = 0; i < outs * taps; i++)
    known.weight[i] = 0.3f * gaussian(&s);
  for (int i = 0; i < outs; i++)
    known.bias[i] = 0.1f * gaussian(&s);
  float *latents = malloc(N * C * H * W * sizeof(float));
  float *images = malloc(N * 3 * H * R * W * R * sizeof(float));
  for (int i = 0; i < N * C * H * W; i++)
    latents[i] = gaussian(&s);
  os_preview_apply_float(&known, latents, N, H, W, images);

  os_preview_decoder fit;
  onestep_error err = {0};
  CHECK(os_preview_fit(&fit, C, R, kernel, latents, images, N, H, W, &err) == ONESTEP_OK, "%s",
        err.message);
  double worst = 0, scale = 0;
  for (int i = 0; i < outs * taps; i++) {
    worst = fmax(worst, fabs(fit.weight[i] - known.weight[i]));
    scale = fmax(scale, fabs(known.weight[i]));
  }
  for (int i = 0; i < outs; i++)
    worst = fmax(worst, fabs(fit.bias[i] - known.bias[i]));
  printf("  kernel %d: recovered a known decoder with relative error %.2e\n", kernel,
         worst / scale);
  CHECK(worst / scale < 1e-5, "kernel %d: relative error %.3g", kernel, worst / scale);

  /* Too few positions is refused. */
  os_preview_decoder none;
  CHECK(os_preview_fit(&none, C, R, kernel, latents, images, 1, 1, 2, &err) ==
            ONESTEP_ERR_INVALID_ARGUMENT,
        "a fit from 2 positions must be refused");
  os_preview_free(&fit);
  free(known.weight);
  free(known.bias);
  free(latents);
  free(images);
}

static void test_cache(void)
{
  char dir[256];
  snprintf(dir, sizeof dir, "%s/onestep-preview-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(dir), "mkdtemp");
  char cache[300];
  snprintf(cache, sizeof cache, "%s/cache/onestep", dir); /* created on save */

  enum { C = 4, R = 2, K = 3 };
  os_preview_decoder pd = {C, R, K, NULL, NULL};
  int nw = 3 * R * R * C * K * K;
  pd.weight = malloc(nw * sizeof(float));
  pd.bias = malloc(3 * R * R * sizeof(float));
  for (int i = 0; i < nw; i++)
    pd.weight[i] = (float)i / 7.0f;
  for (int i = 0; i < 3 * R * R; i++)
    pd.bias[i] = -(float)i;
  onestep_error err = {0};
  CHECK(os_preview_save(&pd, cache, 0x1234, &err) == ONESTEP_OK, "%s", err.message);
  os_preview_decoder back;
  CHECK(os_preview_load(&back, cache, 0x1234, C, R, K, &err) == ONESTEP_OK, "%s", err.message);
  CHECK(back.weight && memcmp(back.weight, pd.weight, nw * sizeof(float)) == 0 &&
            memcmp(back.bias, pd.bias, 3 * R * R * sizeof(float)) == 0,
        "cache round trip changed the weights");
  os_preview_free(&back);
  CHECK(os_preview_load(&back, cache, 0x1235, C, R, K, &err) == ONESTEP_ERR_IO,
        "another VAE's hash must miss the cache");
  CHECK(os_preview_load(&back, cache, 0x1234, C, R, 1, &err) == ONESTEP_ERR_IO,
        "another kernel size must miss the cache");

  /* A file with the right name but wrong contents. */
  char path[600];
  snprintf(path, sizeof path, "%s/preview-%016llx-r%d-k%d.safetensors", cache, 0x99ull, R, K);
  os_st_write_tensor junk = {.name = "weight", .ndim = 1, .shape = {3}, .data = pd.bias};
  os_safetensors_write(path, &junk, 1, NULL);
  CHECK(os_preview_load(&back, cache, 0x99, C, R, K, &err) == ONESTEP_ERR_FORMAT &&
            strstr(err.message, "not a preview decoder"),
        "a wrong cache file must be a format error, got '%s'", err.message);
  unlink(path);

  /* The cache key follows the decoder's bytes and ignores other tensors. */
  snprintf(path, sizeof path, "%s/vae.safetensors", dir);
  float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4.5f};
  os_st_write_tensor t[2] = {{.name = "decoder.conv_in.weight", .ndim = 1, .shape = {4}, .data = a},
                             {.name = "encoder.conv_in.weight", .ndim = 1, .shape = {4}, .data = a}};
  uint64_t h[3];
  for (int v = 0; v < 3; v++) {
    t[0].data = v == 1 ? b : a;
    t[1].data = v == 2 ? b : a;
    os_safetensors_write(path, t, 2, NULL);
    os_safetensors *st = os_safetensors_open(path, NULL);
    h[v] = os_preview_vae_hash(st, "decoder.");
    os_safetensors_close(st);
  }
  CHECK(h[0] != h[1], "a changed decoder weight must change the cache key");
  CHECK(h[0] == h[2], "an encoder weight must not change the cache key");
  unlink(path);

  char defaults[512];
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  os_preview_default_cache_dir(defaults, sizeof defaults, NULL);
  CHECK(strcmp(defaults, "/x/cache/onestep") == 0, "default cache dir %s", defaults);

  free(pd.weight);
  free(pd.bias);
  char sub[400];
  snprintf(sub, sizeof sub, "%s/cache/onestep", dir);
  rmdir(sub);
  snprintf(sub, sizeof sub, "%s/cache", dir);
  rmdir(sub);
  rmdir(dir);
}

/* Smooth synthetic pictures in [-1, 1]: gradients, stripes and a disc. */
static void synthetic_image(float *img, int H, int W, int k)
{
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        double u = (double)x / W, v = (double)y / H;
        double value = 0.6 * sin(6.28 * ((k + 1) * u + c * 0.3) + 3 * v * (k % 3)) +
                       0.3 * (2 * v - 1) * (c == k % 3 ? 1 : -0.5);
        double dx = u - 0.3 - 0.1 * k, dy = v - 0.5;
        if (dx * dx + dy * dy < 0.04 * (1 + k % 2))
          value = 0.8 - 0.4 * c;
        img[((size_t)c * H + y) * W + x] = (float)fmax(-1, fmin(1, value));
      }
}

static double psnr(const float *a, const float *b, size_t n)
{
  double se = 0;
  for (size_t i = 0; i < n; i++)
    se += (a[i] - b[i]) * (double)(a[i] - b[i]);
  return 10 * log10(4.0 / (se / n)); /* peak-to-peak 2 for [-1, 1] */
}

/* Fit on 6 synthetic images, evaluate on 4 others, against the real decode. */
static void test_tiny_vae_psnr(const char *model_dir)
{
  onestep_error err = {0};
  os_backend *be = os_backend_cpu_new(1, &err);
  os_model_source src;
  if (os_checkpoint_open(model_dir, NULL, be, &src, &err) != ONESTEP_OK) {
    CHECK(false, "%s", err.message);
    return;
  }
  os_vae *vae = os_vae_bind(&src.config.vae, src.vae);
  CHECK(vae && os_weights_finish(src.vae, &err) == ONESTEP_OK, "vae: %s", err.message);
  if (!vae)
    return;
  int f = os_vae_downscale(vae), C = src.config.vae.latent_channels;
  float sf = src.config.vae.scaling_factor;
  enum { N = 10, TRAIN = 6, H = 64, W = 96 };
  int h = H / f, w = W / f;
  size_t lat = (size_t)C * h * w, pix = (size_t)3 * H * W;
  float *image = malloc(pix * sizeof(float));
  float *latents = malloc(N * lat * sizeof(float));
  float *decoded = malloc(N * pix * sizeof(float));
  float *unscaled = malloc(lat * sizeof(float));
  for (int i = 0; i < N; i++) {
    synthetic_image(image, H, W, i);
    CHECK(os_vae_encode(vae, be, image, H, W, unscaled, NULL, &err) == ONESTEP_OK, "%s",
          err.message);
    CHECK(os_vae_decode(vae, be, unscaled, 1, h, w, decoded + i * pix, &err) == ONESTEP_OK, "%s",
          err.message);
    for (size_t j = 0; j < lat; j++)
      latents[i * lat + j] = unscaled[j] * sf; /* the sampler's latent space */
  }
  /* The tiny VAE upsamples by 2, so its preview runs at full size (r = f);
   * SVD's runs at r = 4 on frames box-downsampled by 2. */
  for (int kernel = 1; kernel <= 3; kernel += 2) {
    os_preview_decoder pd;
    CHECK(os_preview_fit(&pd, C, f, kernel, latents, decoded, TRAIN, h, w, &err) == ONESTEP_OK,
          "%s", err.message);
    float *preview = malloc((N - TRAIN) * pix * sizeof(float));
    os_preview_apply_float(&pd, latents + TRAIN * lat, N - TRAIN, h, w, preview);
    double p = psnr(preview, decoded + TRAIN * pix, (N - TRAIN) * pix);
    /* Baseline: the held-out frames' mean colour. */
    float *flat = malloc((N - TRAIN) * pix * sizeof(float));
    for (int c = 0; c < 3; c++) {
      double mean = 0;
      for (int i = TRAIN; i < N; i++)
        for (int q = 0; q < H * W; q++)
          mean += decoded[i * pix + c * H * W + q];
      mean /= (N - TRAIN) * H * W;
      for (int i = 0; i < N - TRAIN; i++)
        for (int q = 0; q < H * W; q++)
          flat[i * pix + c * H * W + q] = (float)mean;
    }
    double p0 = psnr(flat, decoded + TRAIN * pix, (N - TRAIN) * pix);
    printf("  tiny VAE, kernel %d: preview PSNR %.2f dB on held-out images (mean colour: %.2f dB)\n",
           kernel, p, p0);
    /* The tiny VAE has random weights: its output is nearly flat and only
     * weakly linear in the latents, so the fit can only beat the flat colour
     * slightly here; on a held-out set it must still beat it. */
    CHECK(p > p0, "kernel %d: the preview (%.2f dB) is no better than a flat colour (%.2f dB)",
          kernel, p, p0);
    free(preview);
    free(flat);
    os_preview_free(&pd);
  }
  free(image);
  free(latents);
  free(decoded);
  free(unscaled);
  os_vae_free(vae);
  os_checkpoint_close(&src);
  be->ops->destroy(be);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  test_recovers_known_decoder(1);
  test_recovers_known_decoder(3);
  test_cache();
  test_tiny_vae_psnr(argv[1]);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("preview: all checks passed\n");
  return failures ? 1 : 0;
}
