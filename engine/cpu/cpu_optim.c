/* cpu_optim.c: the training ops: losses, the AdamW step and the EMA update.
 * Sums run over fixed spans whose partial sums are added in span order, so
 * results do not depend on the thread count. */
#include "cpu_internal.h"

#include <math.h>
#include <stdlib.h>

/* Values per span of the loss's sum. */
#define LOSS_SPAN 16384

/* The loss of one difference and its derivative with respect to pred. */
static inline double
elementwise_loss(double difference, os_loss_kind kind, double c, double *derivative)
{
  if (kind == OS_LOSS_PSEUDO_HUBER) {
    double root = sqrt(difference * difference + c * c);
    *derivative = difference / root;
    return root - c;
  }
  *derivative = 2.0 * difference;
  return difference * difference;
}

double
os_cpu_loss(os_backend *be, float *grad, const float *pred, const float *target, size_t n,
            os_loss_kind kind, float c, float scale)
{
  size_t n_spans = (n + LOSS_SPAN - 1) / LOSS_SPAN;
  double *partial = os_cpu_scratch(be, sizeof(double) * n_spans);
  if (!partial)
    return 0.0;
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t s = 0; s < n_spans; s++) {
    size_t end = (s + 1) * LOSS_SPAN < n ? (s + 1) * LOSS_SPAN : n;
    double total = 0.0;
    for (size_t i = s * LOSS_SPAN; i < end; i++) {
      double derivative;
      total += elementwise_loss((double)pred[i] - target[i], kind, c, &derivative);
      if (grad)
        grad[i] += (float)(scale * derivative);
    }
    partial[s] = total;
  }
  double total = 0.0;
  for (size_t s = 0; s < n_spans; s++)
    total += partial[s];
  free(partial);
  return total;
}

/* PyTorch 1.13's _single_tensor_adamw, operation for operation: its Python
 * float scalars (bias corrections, step size) are computed in double and
 * enter each float32 tensor op rounded to float. */
void
os_cpu_adamw_step(os_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                  float lr, float beta1, float beta2, float eps, float weight_decay,
                  int64_t step)
{
  float decay = (float)(1.0 - (double)lr * weight_decay);
  float one_minus_beta1 = (float)(1.0 - (double)beta1);
  float one_minus_beta2 = (float)(1.0 - (double)beta2);
  double bias_correction1 = 1.0 - pow(beta1, (double)step);
  double bias_correction2 = 1.0 - pow(beta2, (double)step);
  float neg_step_size = (float)(-(double)lr / bias_correction1);
  float bias_correction2_sqrt = (float)sqrt(bias_correction2);
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++) {
    p[i] = p[i] * decay;                                 /* param.mul_(1 - lr * wd) */
    m[i] = m[i] * beta1 + one_minus_beta1 * g[i];        /* exp_avg.mul_(b1).add_(g, 1 - b1) */
    v[i] = v[i] * beta2 + one_minus_beta2 * g[i] * g[i]; /* .addcmul_(g, g, 1 - b2) */
    float denom = sqrtf(v[i]) / bias_correction2_sqrt + eps;
    p[i] = p[i] + neg_step_size * m[i] / denom;          /* addcdiv_(m, denom, -step_size) */
  }
}

void
os_cpu_ema_update(os_backend *be, float *e, const float *p, float mu, size_t n)
{
  float one_minus_mu = (float)(1.0 - (double)mu);
  int n_threads = os_cpu_threads(be);
#pragma omp parallel for simd num_threads(n_threads) if (n >= OS_CPU_PARALLEL_MIN)
  for (size_t i = 0; i < n; i++)
    e[i] = e[i] * mu + one_minus_mu * p[i];
}
