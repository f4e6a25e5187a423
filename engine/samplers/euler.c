/* euler.c: Karras sigmas, EDM v-prediction preconditioning and the Euler
 * sampler, following diffusers' EulerDiscreteScheduler (s_churn = 0). */
#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "sampler.h"

float os_c_skip(float sigma) { return 1.0f / (sigma * sigma + 1.0f); }

float os_c_out(float sigma) { return -sigma / sqrtf(sigma * sigma + 1.0f); }

float os_c_in(float sigma) { return 1.0f / sqrtf(sigma * sigma + 1.0f); }

float os_c_noise(float sigma) { return 0.25f * logf(sigma); }

void os_karras_sigmas(float sigma_min, float sigma_max, float rho, int n, float *out)
{
  /* diffusers computes the ramp in float64 and stores the result as float32. */
  double min_inv_rho = pow((double)sigma_min, 1.0 / rho);
  double max_inv_rho = pow((double)sigma_max, 1.0 / rho);
  for (int i = 0; i < n; i++) {
    double ramp = n > 1 ? (double)i / (n - 1) : 0.0;
    out[i] = (float)pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho);
  }
  out[n] = 0.0f;
}

onestep_status os_sample_euler(const os_denoiser *d, const float *sigmas, int n_steps, float *x,
                               onestep_error *error)
{
  float *x0 = malloc(d->n * sizeof *x0);
  if (!x0)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "euler sampler: out of memory for %zu latents",
                        d->n);
  onestep_status status = ONESTEP_OK;
  for (int i = 0; i < n_steps && status == ONESTEP_OK; i++) {
    float sigma = sigmas[i];
    status = d->denoise(d->self, x, sigma, x0, NULL, error);
    if (status != ONESTEP_OK)
      break;
    float dt = sigmas[i + 1] - sigma;
    for (size_t j = 0; j < d->n; j++) {
      float derivative = (x[j] - x0[j]) / sigma;
      x[j] = x[j] + derivative * dt;
    }
  }
  free(x0);
  return status;
}
