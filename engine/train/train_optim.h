/* train_optim.h: the optimiser over the trained parameters: global-norm
 * clipping, Adam(W) and the EMA, as PyTorch computes them (training.md in the
 * repository's docs/). */
#ifndef ONESTEP_TRAIN_OPTIM_H
#define ONESTEP_TRAIN_OPTIM_H

#include "train_params.h"

typedef struct {
  float lr, beta1, beta2, eps;
  float weight_decay; /* decoupled (AdamW); 0: Adam */
} os_adam_config;

/* The L2 norm of all gradients together. */
double os_train_grad_norm(os_train_params *p);
/* PyTorch's clip_grad_norm_: with total the gradients' norm, scales them by
 * min(1, max_norm / (total + 1e-6)); max_norm <= 0 clips nothing. */
void os_train_clip_grads(os_train_params *p, double total, double max_norm);
/* One optimiser step on every trained tensor; step counts from 1. */
void os_train_adam_step(os_train_params *p, const os_adam_config *cfg, int64_t step);
/* ema = mu * ema + (1 - mu) * value for every trained tensor. */
void os_train_ema_update(os_train_params *p, float mu);

#endif
