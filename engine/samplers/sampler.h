/* sampler.h: samplers as plain functions over host latents and a denoiser.
 *
 * The denoiser wraps the UNet with the EDM v-prediction preconditioning
 * (c_in, c_noise, c_skip, c_out) and, for base SVD, per-frame guidance, so the
 * samplers only see x0 estimates and noise levels. */
#ifndef ONESTEP_SAMPLER_H
#define ONESTEP_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "onestep.h"

typedef struct {
  /* x0 = D(x; sigma) for latents x [n] at noise level sigma (host memory).
   * model_out, when not NULL, receives the raw (guided) network output F
   * with x0 = c_skip(sigma) x + c_out(sigma) F. */
  onestep_status (*denoise)(void *self, const float *x, float sigma, float *x0,
                            float *model_out, onestep_error *error);
  void *self;
  size_t n; /* latent elements: frames * channels * h * w */
} os_denoiser;

/* EDM preconditioning with sigma_data = 1. */
float os_c_skip(float sigma);
float os_c_out(float sigma);
float os_c_in(float sigma);
float os_c_noise(float sigma);

/* Karras sigmas: n points from sigma_max down to sigma_min (rho), then a final 0
 * appended: out has n + 1 entries (float32, as diffusers stores them). */
void os_karras_sigmas(float sigma_min, float sigma_max, float rho, int n, float *out);

/* Euler (diffusers EulerDiscreteScheduler, s_churn = 0): x holds the initial
 * latents (noise * init_noise_sigma) and receives the result; sigmas has
 * n_steps + 1 entries ending in 0. */
onestep_status os_sample_euler(const os_denoiser *d, const float *sigmas, int n_steps, float *x,
                               onestep_error *error);

/* Consistency multistep (Song et al. Algorithm 1): sigmas [n_steps + 1] ending in 0;
 * eps0 is the initial noise; fresh noise between steps comes from the seed. */
onestep_status os_sample_cm(const os_denoiser *d, const float *sigmas, int n_steps,
                            const float *eps0, uint64_t seed, float *x_out,
                            onestep_error *error);

/* OSV Time Travel Sampler (osv-method.md section 2), k steps, 2k evaluations. */
onestep_status os_sample_tts(const os_denoiser *d, const float *grid, int grid_points, int k,
                             const float *eps0, float *x_out, onestep_error *error);

#endif
