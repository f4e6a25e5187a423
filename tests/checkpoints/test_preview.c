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
#include "test_util.h"
#include "vae.h"

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
  snprintf(path, sizeof path, "%s/preview-%016llx-r%d-k%d.safetensors", cache, 0x1234ull, R, K);
  unlink(path);
  char sub[400];
  snprintf(sub, sizeof sub, "%s/cache/onestep", dir);
  rmdir(sub);
  snprintf(sub, sizeof sub, "%s/cache", dir);
  rmdir(sub);
  rmdir(dir);
}

static double psnr(const float *a, const float *b, size_t n)
{
  double se = 0;
  for (size_t i = 0; i < n; i++)
    se += (a[i] - b[i]) * (double)(a[i] - b[i]);
  return 10 * log10(4.0 / (se / n)); /* peak-to-peak 2 for [-1, 1] */
}

/* Fit (through the cache) for the tiny golden VAE, then measure the preview
 * against the real decode on synthetic images the fit never saw. */
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

  char cache[256];
  snprintf(cache, sizeof cache, "%s/onestep-preview-cache-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(cache), "mkdtemp");
  uint64_t key = os_checkpoint_decoder_hash(&src);
  os_preview_decoder pd, cached;
  CHECK(os_preview_for_vae(&pd, vae, &src.config.vae, be, key, cache, &err) == ONESTEP_OK, "%s",
        err.message);
  char path[512];
  snprintf(path, sizeof path, "%s/preview-%016llx-r%d-k%d.safetensors", cache,
           (unsigned long long)key, pd.scale, pd.kernel);
  CHECK(access(path, R_OK) == 0, "the fit was not cached at %s", path);
  CHECK(os_preview_for_vae(&cached, vae, &src.config.vae, be, key, cache, &err) == ONESTEP_OK &&
            memcmp(cached.weight, pd.weight,
                   (size_t)3 * pd.scale * pd.scale * pd.channels * pd.kernel * pd.kernel *
                       sizeof(float)) == 0,
        "the cached fit differs from the fitted one");
  os_preview_free(&cached);
  unlink(path);
  rmdir(cache);

  int f = os_vae_downscale(vae), C = src.config.vae.latent_channels;
  enum { HELD_OUT = 4, H = 64, W = 96 };
  int h = H / f, w = W / f;
  size_t lat = (size_t)C * h * w, pix = (size_t)3 * H * W, small = pix / ((f / pd.scale) * (f / pd.scale));
  float *image = malloc(pix * sizeof(float)), *latents = malloc(lat * sizeof(float));
  float *decoded = malloc(pix * sizeof(float));
  float *truth = malloc(HELD_OUT * small * sizeof(float)), *preview = malloc(HELD_OUT * small * sizeof(float));
  float *flat = malloc(HELD_OUT * small * sizeof(float));
  for (int i = 0; i < HELD_OUT; i++) {
    os_preview_synthetic_image(image, H, W, 100 + i);
    CHECK(os_vae_encode(vae, be, image, H, W, latents, NULL, &err) == ONESTEP_OK &&
              os_vae_decode(vae, be, latents, 1, h, w, decoded, &err) == ONESTEP_OK,
          "%s", err.message);
    os_preview_downsample(decoded, 1, H, W, f / pd.scale, truth + i * small);
    for (size_t j = 0; j < lat; j++)
      latents[j] *= src.config.vae.scaling_factor;
    os_preview_apply_float(&pd, latents, 1, h, w, preview + i * small);
  }
  /* Baseline: each held-out frame's own mean colour. */
  size_t plane = small / 3;
  for (int i = 0; i < HELD_OUT * 3; i++) {
    double mean = 0;
    for (size_t q = 0; q < plane; q++)
      mean += truth[i * plane + q];
    for (size_t q = 0; q < plane; q++)
      flat[i * plane + q] = (float)(mean / plane);
  }
  double p = psnr(preview, truth, HELD_OUT * small), p0 = psnr(flat, truth, HELD_OUT * small);
  printf("  tiny VAE (r %d, kernel %d): preview PSNR %.2f dB against the real decode on %d "
         "held-out images; each frame's flat mean colour: %.2f dB\n",
         pd.scale, pd.kernel, p, HELD_OUT, p0);
  /* The tiny VAE has random weights: its output is nearly flat and only
   * weakly linear in the latents, so the preview can only beat a flat colour
   * by a little here; it still has to beat it on images it never saw. */
  CHECK(p > p0, "the preview (%.2f dB) is no better than a flat colour (%.2f dB)", p, p0);
  free(image);
  free(latents);
  free(decoded);
  free(truth);
  free(preview);
  free(flat);
  os_preview_free(&pd);
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
  return test_summary("preview");
}
