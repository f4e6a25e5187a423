/* tts.c: OSV's Time Travel Sampler (osv-method.md section 2).
 *
 * Each level s of the k-step schedule costs two network calls: one at s, a jump
 * down to the interleaved level sM of the (k+1)-step schedule, one call there,
 * then a "travel back" to s that reuses the second output instead of a third call.
 * Onestep's choices where the paper is silent: the noise eps0 is the initial
 * draw, shared by the start and both noise mixes, and for k > 1 it is also the
 * noise that lifts each level's x0 to the next level (so the sampler stays
 * deterministic given eps0). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grid.h"
#include "sampler.h"

typedef struct {
  float *x, *f, *model_out, *xm;
} tts_buffers;

/* One down-and-back step at level s via sM; x holds the noisy latents at s
 * and receives the x0 estimate. */
static onestep_status tts_level(const os_denoiser *d, float s, float sm, const float *eps0,
                                tts_buffers *b, onestep_error *error)
{
  size_t n = d->n;
  onestep_status status = d->denoise(d->self, b->x, s, b->f, b->model_out, error);
  if (status != ONESTEP_OK)
    return status;
  for (size_t j = 0; j < n; j++) {
    float e1 = 0.5f * (eps0[j] + (b->x[j] - b->f[j]) / s);
    b->xm[j] = b->f[j] + sm * e1;
  }
  status = d->denoise(d->self, b->xm, sm, b->f, b->model_out, error);
  if (status != ONESTEP_OK)
    return status;
  float skip = os_c_skip(s), out = os_c_out(s);
  for (size_t j = 0; j < n; j++) {
    float e2 = 0.5f * (eps0[j] + (b->xm[j] - b->f[j]) / sm);
    b->x[j] = skip * (b->f[j] + s * e2) + out * b->model_out[j];
  }
  return ONESTEP_OK;
}

onestep_status os_sample_tts(const os_denoiser *d, const float *grid, int grid_points, int k,
                             const float *eps0, float *x_out, onestep_error *error)
{
  if (!grid || grid_points < 2 || k < 1 || k + 1 > grid_points)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "tts sampler: %d steps on a %d-point grid (allowed 1..%d, grid required)", k,
                        grid_points, grid_points - 1);
  size_t n = d->n;
  tts_buffers b = {malloc(n * sizeof(float)), malloc(n * sizeof(float)),
                   malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  onestep_status status = ONESTEP_OK;
  if (!b.x || !b.f || !b.model_out || !b.xm) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                          "tts sampler: out of memory for %zu latents", n);
    goto done;
  }
  for (int i = 0; i < k && status == ONESTEP_OK; i++) {
    float s = grid[os_cm_schedule_index(grid_points, k, i)];
    float sm = grid[os_cm_schedule_index(grid_points, k + 1, i + 1)];
    if (i == 0) {
      for (size_t j = 0; j < n; j++)
        b.x[j] = s * eps0[j];
    } else {
      for (size_t j = 0; j < n; j++)
        b.x[j] += s * eps0[j];
    }
    status = tts_level(d, s, sm, eps0, &b, error);
  }
  if (status == ONESTEP_OK)
    memcpy(x_out, b.x, n * sizeof(float));
done:
  free(b.x);
  free(b.f);
  free(b.model_out);
  free(b.xm);
  return status;
}
