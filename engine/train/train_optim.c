/* train_optim.c: see train_optim.h. */
#include "train_optim.h"

#include <math.h>

double
os_train_grad_norm(os_train_params *p)
{
  os_backend *be = os_train_params_backend(p);
  double sum = 0.0;
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    sum += be->ops->grad->dot(be, t->grad, t->grad, t->n);
  }
  return sqrt(sum);
}

void
os_train_clip_grads(os_train_params *p, double total, double max_norm)
{
  if (max_norm <= 0.0)
    return;
  double coef = max_norm / (total + 1e-6);
  if (coef >= 1.0)
    return;
  os_backend *be = os_train_params_backend(p);
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    be->ops->scale(be, t->grad, t->grad, (float)coef, t->n);
  }
}

void
os_train_adam_step(os_train_params *p, const os_adam_config *cfg, int64_t step)
{
  os_backend *be = os_train_params_backend(p);
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    be->ops->grad->adamw_step(be, t->value, t->grad, t->m, t->v, t->n, cfg->lr, cfg->beta1,
                              cfg->beta2, cfg->eps, cfg->weight_decay, step);
  }
}

void
os_train_ema_update(os_train_params *p, float mu)
{
  os_backend *be = os_train_params_backend(p);
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    be->ops->grad->ema_update(be, t->ema, t->value, mu, t->n);
  }
}
