/* preview.c: fitting, applying and caching the sub-pixel preview decoder. */
#include "preview.h"

#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

static int out_channels(int scale) { return 3 * scale * scale; }

static size_t weight_count(const os_preview_decoder *pd)
{
  return (size_t)out_channels(pd->scale) * pd->channels * pd->kernel * pd->kernel;
}

static onestep_status check_shape(int channels, int scale, int kernel, onestep_error *error)
{
  if (channels < 1 || scale < 1 || kernel < 1 || kernel % 2 == 0)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "preview decoder: %d channels, scale %d, kernel %d (kernel must be odd)",
                        channels, scale, kernel);
  return ONESTEP_OK;
}

static onestep_status allocate(os_preview_decoder *pd, int channels, int scale, int kernel,
                               onestep_error *error)
{
  pd->channels = channels;
  pd->scale = scale;
  pd->kernel = kernel;
  pd->weight = malloc(weight_count(pd) * sizeof *pd->weight);
  pd->bias = malloc(out_channels(scale) * sizeof *pd->bias);
  if (!pd->weight || !pd->bias) {
    os_preview_free(pd);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "preview decoder: out of memory");
  }
  return ONESTEP_OK;
}

void os_preview_free(os_preview_decoder *pd)
{
  free(pd->weight);
  free(pd->bias);
  pd->weight = pd->bias = NULL;
}

/* The k x k neighbourhood of latent position (y, x), zero outside. */
static void gather(const float *latent, int C, int h, int w, int k, int y, int x, double *row)
{
  int pad = k / 2, j = 0;
  for (int c = 0; c < C; c++)
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        int yy = y + ky - pad, xx = x + kx - pad;
        bool inside = yy >= 0 && yy < h && xx >= 0 && xx < w;
        row[j++] = inside ? latent[((size_t)c * h + yy) * w + xx] : 0.0;
      }
}

onestep_status os_preview_fit(os_preview_decoder *pd, int channels, int scale, int kernel,
                              const float *latents, const float *images, int n, int h, int w,
                              onestep_error *error)
{
  memset(pd, 0, sizeof *pd);
  onestep_status status = check_shape(channels, scale, kernel, error);
  if (status != ONESTEP_OK)
    return status;
  int params = channels * kernel * kernel + 1, outs = out_channels(scale);
  size_t rows = (size_t)n * h * w;
  if (rows < (size_t)params)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "preview decoder: %zu latent positions cannot fit %d parameters", rows,
                        params);
  double *X = malloc(rows * params * sizeof *X);
  double *Y = malloc(rows * outs * sizeof *Y);
  if (!X || !Y) {
    free(X);
    free(Y);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "preview fit: out of memory (%zu rows)",
                        rows);
  }
  int H = h * scale, W = w * scale;
  size_t row = 0;
  for (int i = 0; i < n; i++) {
    const float *latent = latents + (size_t)i * channels * h * w;
    const float *image = images + (size_t)i * 3 * H * W;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++, row++) {
        gather(latent, channels, h, w, kernel, y, x, X + row * params);
        X[row * params + params - 1] = 1.0; /* the bias */
        for (int o = 0; o < outs; o++) {
          int colour = o / (scale * scale), dy = o / scale % scale, dx = o % scale;
          Y[row * outs + o] = image[((size_t)colour * H + y * scale + dy) * W + x * scale + dx];
        }
      }
  }
  /* QR least squares: better conditioned than the normal equations. */
  lapack_int info = LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', (lapack_int)rows, params, outs, X, params,
                                  Y, outs);
  if (info == 0)
    status = allocate(pd, channels, scale, kernel, error);
  else
    status = os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                          "preview fit: the latents do not determine the decoder (LAPACK dgels "
                          "info %d; too few or degenerate samples)",
                          (int)info);
  if (status == ONESTEP_OK) {
    for (int o = 0; o < outs; o++) {
      for (int p = 0; p < params - 1; p++)
        pd->weight[(size_t)o * (params - 1) + p] = (float)Y[(size_t)p * outs + o];
      pd->bias[o] = (float)Y[(size_t)(params - 1) * outs + o];
    }
  }
  free(X);
  free(Y);
  return status;
}

void os_preview_apply_float(const os_preview_decoder *pd, const float *latents, int frames,
                            int h, int w, float *images)
{
  int C = pd->channels, k = pd->kernel, r = pd->scale, taps = C * k * k;
  int H = h * r, W = w * r, outs = out_channels(r);
  double *row = malloc(taps * sizeof *row);
  if (!row)
    return;
  for (int f = 0; f < frames; f++) {
    const float *latent = latents + (size_t)f * C * h * w;
    float *image = images + (size_t)f * 3 * H * W;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        gather(latent, C, h, w, k, y, x, row);
        for (int o = 0; o < outs; o++) {
          const float *wo = pd->weight + (size_t)o * taps;
          double v = pd->bias[o];
          for (int t = 0; t < taps; t++)
            v += wo[t] * row[t];
          int colour = o / (r * r), dy = o / r % r, dx = o % r;
          image[((size_t)colour * H + y * r + dy) * W + x * r + dx] = (float)v;
        }
      }
  }
  free(row);
}

void os_preview_apply(const os_preview_decoder *pd, const float *latents, int frames, int h,
                      int w, uint8_t *rgb)
{
  int H = h * pd->scale, W = w * pd->scale;
  size_t plane = (size_t)H * W;
  float *images = malloc((size_t)frames * 3 * plane * sizeof *images);
  if (!images)
    return;
  os_preview_apply_float(pd, latents, frames, h, w, images);
  for (int f = 0; f < frames; f++)
    for (size_t p = 0; p < plane; p++)
      for (int c = 0; c < 3; c++) {
        float v = (images[((size_t)f * 3 + c) * plane + p] + 1.0f) * 127.5f;
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        rgb[((size_t)f * plane + p) * 3 + c] = (uint8_t)lrintf(v);
      }
  free(images);
}

void os_preview_downsample(const float *images, int n, int H, int W, int factor, float *out)
{
  int h = H / factor, w = W / factor;
  float norm = 1.0f / (float)(factor * factor);
  for (int p = 0; p < n * 3; p++) {
    const float *in = images + (size_t)p * H * W;
    float *o = out + (size_t)p * h * w;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float sum = 0.0f;
        for (int dy = 0; dy < factor; dy++)
          for (int dx = 0; dx < factor; dx++)
            sum += in[(size_t)(y * factor + dy) * W + x * factor + dx];
        o[(size_t)y * w + x] = sum * norm;
      }
  }
}

static uint64_t fnv1a(uint64_t hash, const void *data, size_t n)
{
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

uint64_t os_preview_vae_hash(const os_safetensors *st, const char *prefix)
{
  uint64_t hash = 0xcbf29ce484222325ull;
  size_t len = strlen(prefix);
  for (int i = 0; i < st->n_tensors; i++) {
    const os_st_tensor *t = &st->tensors[i];
    if (strncmp(t->name, prefix, len) != 0)
      continue;
    int32_t dtype = t->dtype;
    hash = fnv1a(hash, &dtype, sizeof dtype);
    hash = fnv1a(hash, t->shape, t->ndim * sizeof *t->shape);
    hash = fnv1a(hash, t->data, t->nbytes);
  }
  return hash;
}

onestep_status os_preview_default_cache_dir(char *out, size_t cap, onestep_error *error)
{
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int len;
  if (xdg && xdg[0] == '/')
    len = snprintf(out, cap, "%s/onestep", xdg);
  else if (home && home[0])
    len = snprintf(out, cap, "%s/.cache/onestep", home);
  else
    return os_error_set(error, ONESTEP_ERR_IO,
                        "preview cache: neither XDG_CACHE_HOME nor HOME is set");
  if (len < 0 || (size_t)len >= cap)
    return os_error_set(error, ONESTEP_ERR_IO, "preview cache: the cache path is too long");
  return ONESTEP_OK;
}

static void cache_path(char *out, size_t cap, const char *dir, uint64_t hash, int scale,
                       int kernel)
{
  snprintf(out, cap, "%s/preview-%016llx-r%d-k%d.safetensors", dir, (unsigned long long)hash,
           scale, kernel);
}

/* mkdir -p */
static onestep_status make_dirs(const char *dir, onestep_error *error)
{
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1;; p++) {
    bool end = *p == '\0';
    if (*p == '/' || end) {
      *p = '\0';
      if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return os_error_set(error, ONESTEP_ERR_IO, "preview cache: cannot create %s: %s", path,
                            strerror(errno));
      if (end)
        break;
      *p = '/';
    }
  }
  return ONESTEP_OK;
}

onestep_status os_preview_save(const os_preview_decoder *pd, const char *cache_dir,
                               uint64_t vae_hash, onestep_error *error)
{
  onestep_status status = make_dirs(cache_dir, error);
  if (status != ONESTEP_OK)
    return status;
  char path[4200];
  cache_path(path, sizeof path, cache_dir, vae_hash, pd->scale, pd->kernel);
  os_st_write_tensor tensors[2] = {
      {.name = "weight", .ndim = 4,
       .shape = {out_channels(pd->scale), pd->channels, pd->kernel, pd->kernel},
       .data = pd->weight},
      {.name = "bias", .ndim = 1, .shape = {out_channels(pd->scale)}, .data = pd->bias},
  };
  return os_safetensors_write(path, tensors, 2, error);
}

onestep_status os_preview_load(os_preview_decoder *pd, const char *cache_dir, uint64_t vae_hash,
                               int channels, int scale, int kernel, onestep_error *error)
{
  memset(pd, 0, sizeof *pd);
  onestep_status status = check_shape(channels, scale, kernel, error);
  if (status != ONESTEP_OK)
    return status;
  char path[4200];
  cache_path(path, sizeof path, cache_dir, vae_hash, scale, kernel);
  struct stat sb;
  if (stat(path, &sb) != 0)
    return os_error_set(error, ONESTEP_ERR_IO, "preview cache: no fit at %s", path);
  os_safetensors *st = os_safetensors_open(path, error);
  if (!st)
    return error ? error->code : ONESTEP_ERR_FORMAT;
  const os_st_tensor *w = os_safetensors_find(st, "weight"), *b = os_safetensors_find(st, "bias");
  int64_t want_w[4] = {out_channels(scale), channels, kernel, kernel};
  if (!w || !b || w->ndim != 4 || memcmp(w->shape, want_w, sizeof want_w) != 0 || b->ndim != 1 ||
      b->shape[0] != out_channels(scale)) {
    os_safetensors_close(st);
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: not a preview decoder for %d channels, scale %d, kernel %d", path,
                        channels, scale, kernel);
  }
  status = allocate(pd, channels, scale, kernel, error);
  if (status == ONESTEP_OK) {
    os_dtype_to_f32(pd->weight, w->data, w->dtype, weight_count(pd));
    os_dtype_to_f32(pd->bias, b->data, b->dtype, out_channels(scale));
  }
  os_safetensors_close(st);
  return status;
}
