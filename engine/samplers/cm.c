/* cm.c: consistency multistep sampling (Song et al. 2023, Algorithm 1), as
 * AnimateLCM-SVD runs it: full re-noising of each x0 estimate to the next level. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "philox.h"
#include "sampler.h"

onestep_status os_sample_cm(const os_denoiser *d, const float *sigmas, int n_steps,
                            const float *eps0, uint64_t seed, float *x_out,
                            onestep_error *error)
{
  if (n_steps < 1)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "cm sampler: %d steps (need >= 1)",
                        n_steps);
  size_t n = d->n;
  float *x = malloc(n * sizeof *x);
  float *x0 = malloc(n * sizeof *x0);
  if (!x || !x0) {
    free(x);
    free(x0);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "cm sampler: out of memory for %zu latents",
                        n);
  }
  /* The initial scale is init_noise_sigma = sqrt(sigma_0^2 + 1), not sigma_0. */
  float init_scale = sqrtf(sigmas[0] * sigmas[0] + 1.0f);
  for (size_t j = 0; j < n; j++)
    x[j] = init_scale * eps0[j];

  onestep_status status = ONESTEP_OK;
  for (int i = 0; i < n_steps; i++) {
    status = d->denoise(d->self, x, sigmas[i], x0, NULL, error);
    if (status != ONESTEP_OK)
      break;
    if (i == n_steps - 1)
      break;
    /* Fresh noise: the old x is discarded, not integrated. */
    os_philox_normal(seed, OS_NOISE_STEP_BASE + (uint64_t)i, 0, x, n);
    float next = sigmas[i + 1];
    for (size_t j = 0; j < n; j++)
      x[j] = x0[j] + next * x[j];
  }
  if (status == ONESTEP_OK)
    memcpy(x_out, x0, n * sizeof *x0);
  free(x);
  free(x0);
  return status;
}
