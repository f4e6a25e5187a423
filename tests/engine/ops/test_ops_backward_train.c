/* test_ops_backward_train.c: the training ops: the losses (value and
 * gradient), the AdamW step against a double-precision reimplementation of
 * PyTorch 1.13's formula over three steps, and the EMA update; each also
 * bit-identical on 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grad_test.h"

static double
loss_reference(double d, os_loss_kind kind, double c)
{
  return kind == OS_LOSS_PSEUDO_HUBER ? sqrt(d * d + c * c) - c : d * d;
}

static void
test_loss(os_backend *be1, os_backend *be2, os_loss_kind kind)
{
  const char *name = kind == OS_LOSS_PSEUDO_HUBER ? "pseudo-Huber loss" : "squared loss";
  size_t n = (size_t)grad_random_int(40000, 90000);
  float c = 0.03f, scale = 0.5f;
  float *pred = grad_random(n, -1, 1), *target = grad_random(n, -1, 1);
  float *grad1 = grad_random(n, -1, 1), *grad2 = malloc(sizeof(float) * n);
  memcpy(grad2, grad1, sizeof(float) * n);
  double *want_grad = ops_zeros_double(n), want = 0.0;
  /* The gradient by central differences of the float64 loss. */
  double *got_grad = ops_zeros_double(n);
  for (size_t i = 0; i < n; i++) {
    double d = (double)pred[i] - target[i], h = 1e-4;
    want += loss_reference(d, kind, c);
    want_grad[i] = scale * (loss_reference(d + h, kind, c) - loss_reference(d - h, kind, c)) /
                   (2 * h);
    got_grad[i] = -(double)grad1[i];
  }
  double got1 = be1->ops->grad->loss(be1, grad1, pred, target, n, kind, c, scale);
  double got2 = be2->ops->grad->loss(be2, grad2, pred, target, n, kind, c, scale);
  for (size_t i = 0; i < n; i++)
    got_grad[i] += grad1[i]; /* what the loss added */
  char what[160];
  snprintf(what, sizeof what, "%s: sum of %zu values %.15g vs %.15g", name, n, got1, want);
  ops_check(what, fabs(got1 - want) <= 1e-12 * fabs(want));
  snprintf(what, sizeof what, "%s: gradient added vs finite differences", name);
  grad_check_l2(what, got_grad, want_grad, n, 1e-4);
  snprintf(what, sizeof what, "%s: value, same bits on 1 and 2 threads", name);
  ops_check(what, memcmp(&got1, &got2, sizeof got1) == 0);
  snprintf(what, sizeof what, "%s: gradient, same bits on 1 and 2 threads", name);
  ops_check_exact(what, grad2, grad1, n);
  double value_only = be2->ops->grad->loss(be2, NULL, pred, target, n, kind, c, scale);
  snprintf(what, sizeof what, "%s: NULL gradient gives the same value", name);
  ops_check(what, memcmp(&value_only, &got1, sizeof got1) == 0);
  free(pred), free(target), free(grad1), free(grad2), free(want_grad), free(got_grad);
}

/* PyTorch 1.13 _single_tensor_adamw in double, the scalars as the float
 * arguments give them. */
static void
adamw_reference(double *p, const float *g, double *m, double *v, size_t n, double lr,
                double beta1, double beta2, double eps, double weight_decay, int step)
{
  double bias_correction1 = 1.0 - pow(beta1, step), bias_correction2 = 1.0 - pow(beta2, step);
  double step_size = lr / bias_correction1;
  for (size_t i = 0; i < n; i++) {
    p[i] *= 1.0 - lr * weight_decay;
    m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
    double denom = sqrt(v[i]) / sqrt(bias_correction2) + eps;
    p[i] -= step_size * m[i] / denom;
  }
}

static void
test_adamw(os_backend *be1, os_backend *be2, float weight_decay)
{
  size_t n = (size_t)grad_random_int(40000, 90000);
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float *p1 = grad_random(n, -1, 1), *p2 = malloc(sizeof(float) * n);
  float *m1 = ops_zeros(n), *v1 = ops_zeros(n), *m2 = ops_zeros(n), *v2 = ops_zeros(n);
  memcpy(p2, p1, sizeof(float) * n);
  double *p = ops_to_double(p1, n), *m = ops_zeros_double(n), *v = ops_zeros_double(n);
  double *start = ops_to_double(p1, n);
  for (int step = 1; step <= 3; step++) {
    /* Gradients of mixed scales, some tiny (where eps matters). */
    float *g = grad_random(n, -1, 1);
    for (size_t i = 0; i < n; i += 7)
      g[i] *= 1e-6f;
    be1->ops->grad->adamw_step(be1, p1, g, m1, v1, n, lr, beta1, beta2, eps, weight_decay, step);
    be2->ops->grad->adamw_step(be2, p2, g, m2, v2, n, lr, beta1, beta2, eps, weight_decay, step);
    adamw_reference(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, step);
    free(g);
  }
  /* The update (p - start) to float precision of the update itself, and m, v. */
  double *update = ops_zeros_double(n);
  float *got_update = ops_zeros(n);
  for (size_t i = 0; i < n; i++) {
    update[i] = p[i] - start[i];
    got_update[i] = (float)((double)p1[i] - start[i]);
  }
  char what[120];
  snprintf(what, sizeof what, "adamw weight_decay=%g: 3 steps' update vs double", weight_decay);
  /* The update is ~3e-3 and p ~1: one rounding of p is ~1e-4 of the update. */
  ops_check_scaled(what, got_update, update, n, 3e-4);
  ops_check_scaled("adamw: m after 3 steps vs double", m1, m, n, 1e-6);
  ops_check_scaled("adamw: v after 3 steps vs double", v1, v, n, 1e-6);
  ops_check_exact("adamw: p, same bits on 1 and 2 threads", p2, p1, n);
  ops_check_exact("adamw: m, same bits on 1 and 2 threads", m2, m1, n);
  ops_check_exact("adamw: v, same bits on 1 and 2 threads", v2, v1, n);
  free(p1), free(p2), free(m1), free(v1), free(m2), free(v2), free(p), free(m), free(v);
  free(start), free(update), free(got_update);
}

/* One step by hand, eps 0: p = 1 decays to 0.99; m = 0.05, v = 0.0025;
 * step_size = 0.1 / 0.1 = 1, denom = 0.05 / 0.1 = 0.5: p = 0.99 - 0.05 / 0.5. */
static void
test_adamw_hand(os_backend *be)
{
  float p = 1.0f, g = 0.5f, m = 0.0f, v = 0.0f;
  be->ops->grad->adamw_step(be, &p, &g, &m, &v, 1, 0.1f, 0.9f, 0.99f, 0.0f, 0.1f, 1);
  double want = 0.89;
  ops_check_pointwise("adamw by hand: one step with weight decay", &p, &want, 1, 1e-6);
}

static void
test_ema(os_backend *be1, os_backend *be2)
{
  size_t n = (size_t)grad_random_int(40000, 90000);
  float mu = 0.999f;
  float *e1 = grad_random(n, -1, 1), *e2 = malloc(sizeof(float) * n), *p = grad_random(n, -1, 1);
  memcpy(e2, e1, sizeof(float) * n);
  double *want = ops_zeros_double(n);
  for (size_t i = 0; i < n; i++)
    want[i] = (double)mu * e1[i] + (1.0 - (double)mu) * p[i];
  be1->ops->grad->ema_update(be1, e1, p, mu, n);
  be2->ops->grad->ema_update(be2, e2, p, mu, n);
  ops_check_pointwise("ema_update mu=0.999 vs double", e1, want, n, 2e-7);
  ops_check_exact("ema_update: same bits on 1 and 2 threads", e2, e1, n);
  free(e1), free(e2), free(p), free(want);
}

int
main(int argc, char **argv)
{
  grad_test_seed(argc, argv);
  os_backend *be1 = ops_test_backend(1), *be2 = ops_test_backend(2);
  test_loss(be1, be2, OS_LOSS_SQUARED);
  test_loss(be1, be2, OS_LOSS_PSEUDO_HUBER);
  test_adamw(be1, be2, 0.0f);
  test_adamw(be1, be2, 0.01f);
  test_adamw_hand(be1);
  test_ema(be1, be2);
  be1->ops->destroy(be1);
  be2->ops->destroy(be2);
  return ops_test_finish("test-ops-backward-train");
}
