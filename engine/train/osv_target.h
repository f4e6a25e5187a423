/* osv_target.h: the pieces of OSV's consistency distillation that need no
 * gradient (docs/training.md, OSV): the noise grid, and ACD's target, reached
 * by the teacher's guided Euler steps and evaluated by the EMA student. */
#ifndef ONESTEP_OSV_TARGET_H
#define ONESTEP_OSV_TARGET_H

#include "denoiser.h"

/* n Karras noise levels from sigma_max down to sigma_min (rho), index 0 the
 * noisiest, computed in double as the reference does. */
void os_osv_grid(int n, double sigma_min, double sigma_max, double rho, double *out);

/* A batch's conditioning in backend memory, for denoisers on any tape. */
typedef struct {
  int B, F, h, w, cross_dim;
  const float *cond_latent;    /* [B, 4, h, w] */
  const float *context;        /* [B, cross_dim] */
  const float *added_time_ids; /* host [B, 3] */
} os_osv_conditioning;

/* The denoiser input for these conditions on `tape` at noise level sigma
 * (host [B], kept by the caller). */
os_denoise_input os_osv_denoise_input(os_tape *tape, const os_osv_conditioning *c,
                                      const float *sigma);

typedef struct {
  const double *grid;
  int n;                            /* the grid index of x_hi */
  int m;                            /* teacher steps */
  float guidance_min, guidance_max; /* frame-wise CFG, rising linearly over the frames */
} os_acd_schedule;

/* From x_hi (backend [B, F, 4, h, w]) at grid[n]: m Euler steps of the
 * teacher (LoRA off, base tensors) with frame-wise classifier-free guidance
 * (the unconditional side sees a zero embedding and a zero image latent),
 * then target = f_EMA(x, grid[n + m]). teacher_x (may be NULL) gets x after
 * the teacher's steps. Nothing is recorded for gradients; the parameters'
 * view is the student's again afterwards. */
onestep_status os_osv_acd_target(const os_unet *unet, os_train_params *params, os_backend *be,
                                 const float *x_hi, const os_acd_schedule *schedule,
                                 const os_osv_conditioning *c, float *target, float *teacher_x,
                                 onestep_error *error);

#endif
