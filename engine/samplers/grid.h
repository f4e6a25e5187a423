/* grid.h: the consistency-model noise grid, k-step schedules on it, and the
 * NFE convention (checkpoints.md section 1.5, osv-method.md sections 1-2). */
#ifndef ONESTEP_GRID_H
#define ONESTEP_GRID_H

#include <stdbool.h>

#include "onestep.h"

#define OS_CM_SIGMA_MIN 0.002f
#define OS_CM_SIGMA_MAX 700.0f
#define OS_CM_RHO 7.0f
#define OS_CM_GRID_OSV 100       /* OSV trained on a 100-point grid */
#define OS_CM_GRID_ANIMATELCM 40 /* AnimateLCM-SVD's inference scheduler */

/* Sigma of grid index j (0 = sigma_max, grid_points - 1 = sigma_min). */
float os_cm_grid_sigma(int grid_points, int j);

/* The whole grid: out[grid_points], descending. */
void os_cm_grid(int grid_points, float *out);

/* The k-step schedule: sigmas at grid indices 0, r, ..., (k-1) r with
 * r = floor(N / k), then 0; out has k + 1 entries. 1 <= k <= N. */
onestep_status os_cm_schedule(int grid_points, int k, float *out, onestep_error *error);

/* Grid index of level i of the k-step schedule. */
int os_cm_schedule_index(int grid_points, int k, int i);

/* UNet evaluations per sample with the paper's convention (a CFG batch counts 2):
 * tts k steps = 2k, cm k steps = k (2k with CFG), euler k steps = 2k with CFG, k without. */
int os_sampler_nfe(onestep_sampler sampler, int steps, bool cfg);

#endif
