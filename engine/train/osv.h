/* osv.h: one iteration of OSV's two-player training (docs/training.md):
 *   fake = f_student(x_noisy, sigma)
 *   L_G = lambda_adv * mean(relu(1 - D(fake))) + weight * huber(target, fake)
 *   generator step (Adam), then
 *   L_D = mean(relu(1 - D(real))) + mean(relu(1 + D(fake detached)))
 *   discriminator step (Adam).
 * Stage 1 (LGP): x_noisy = x0 + sigma_n eps, target = real = x0, weight 1.
 * Stage 2 (ACD): x_noisy = x_hi, target = real = the EMA student's value after
 * the teacher's steps (osv_target.h), weight lambda(n); then the EMA update. */
#ifndef ONESTEP_OSV_H
#define ONESTEP_OSV_H

#include "discriminator.h"
#include "osv_target.h"
#include "train_optim.h"

typedef struct {
  const os_unet *unet;
  os_train_params *student;
  os_disc *disc;
  float lambda_adv, huber_c;
  os_adam_config adam_g, adam_d;
  float max_grad_norm_g, max_grad_norm_d; /* 0: no clipping */
  int64_t step_g, step_d;                 /* optimiser steps taken in this stage */
} os_osv_players;

typedef struct {
  double loss_g, adv_g, huber, loss_d, grad_norm_g, grad_norm_d;
} os_osv_stats;

/* Where an iteration can be watched (golden checks): each call names the
 * point reached ("student_x0", "logits_fake_g", "grad_g" (after the
 * generator's backward, before its step), "param_g", "logits_real",
 * "logits_fake_d", "grad_d", "disc" (after the discriminator's step)) with
 * the tensor when there is one (backend memory), else NULL. The watch may
 * overwrite "student_x0" (the losses and the discriminator then use it), so
 * that a check can feed each stage the reference's input. */
typedef void (*os_osv_watch)(const char *point, float *data, size_t n, void *user_data);

onestep_status os_osv_iteration(os_osv_players *players, os_backend *be, const float *x_noisy,
                                float sigma, const float *target, float huber_weight,
                                const os_osv_conditioning *c, os_osv_watch watch,
                                void *user_data, os_osv_stats *stats, onestep_error *error);

#endif
