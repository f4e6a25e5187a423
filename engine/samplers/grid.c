/* grid.c: Karras consistency grid and k-step schedules, as AnimateLCM-SVD's
 * scheduler computes them (float64 ramp, float32 storage). */
#include "grid.h"

#include <math.h>

#include "error.h"

float os_cm_grid_sigma(int grid_points, int j)
{
  double max_inv_rho = pow(OS_CM_SIGMA_MAX, 1.0 / OS_CM_RHO);
  double min_inv_rho = pow(OS_CM_SIGMA_MIN, 1.0 / OS_CM_RHO);
  double ramp = grid_points > 1 ? (double)j / (grid_points - 1) : 0.0;
  return (float)pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), OS_CM_RHO);
}

void os_cm_grid(int grid_points, float *out)
{
  for (int j = 0; j < grid_points; j++)
    out[j] = os_cm_grid_sigma(grid_points, j);
}

int os_cm_schedule_index(int grid_points, int k, int i)
{
  return i * (grid_points / k);
}

onestep_status os_cm_schedule(int grid_points, int k, float *out, onestep_error *error)
{
  if (grid_points < 2)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "consistency grid: %d points (need at least 2)", grid_points);
  if (k < 1 || k > grid_points)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "consistency sampler: %d steps on a %d-point grid (allowed 1..%d)", k,
                        grid_points, grid_points);
  for (int i = 0; i < k; i++)
    out[i] = os_cm_grid_sigma(grid_points, os_cm_schedule_index(grid_points, k, i));
  out[k] = 0.0f;
  return ONESTEP_OK;
}

int os_sampler_nfe(onestep_sampler sampler, int steps, bool cfg)
{
  int per_step = cfg ? 2 : 1;
  if (sampler == ONESTEP_SAMPLER_TTS)
    per_step *= 2; /* down to the interleaved level and back: two UNet calls */
  return steps * per_step;
}
