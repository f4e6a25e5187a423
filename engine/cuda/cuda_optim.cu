// cuda_optim.cu: training ops: the elementwise losses, the AdamW step and the
// EMA update. The optimiser ops write weights in place, so they drop the
// cached converted copies of what they write (cuda_derived.cu) before the
// next forward could read them.

#include <math.h>

#include "cuda_common.h"
#include "cuda_reduce.cuh"

// partial[block] = the block's share of sum loss(pred, target) (in double);
// grad += scale * dloss/dpred when grad is not NULL.
__global__ void
loss_kernel(double *partial, float *grad, const float *pred, const float *target, size_t n,
            os_loss_kind kind, float c, float scale)
{
  double sum = 0.0;
  OS_CUDA_GRID_STRIDE(i, n)
  {
    float d = pred[i] - target[i];
    double dd = (double)pred[i] - target[i];
    if (kind == OS_LOSS_PSEUDO_HUBER) {
      sum += sqrt(dd * dd + (double)c * c) - c;
      if (grad)
        grad[i] += scale * (d / sqrtf(d * d + c * c));
    } else {
      sum += dd * dd;
      if (grad)
        grad[i] += scale * (2.0f * d);
    }
  }
  sum = os_block_sum(sum);
  if (threadIdx.x == 0)
    partial[blockIdx.x] = sum;
}

// The bias corrections come from the host (double, as PyTorch's Python
// floats): step_size = lr / (1 - b1^step), bias2_sqrt = sqrt(1 - b2^step).
__global__ void
adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float decay, float beta1,
             float beta2, float eps, float step_size, float bias2_sqrt)
{
  OS_CUDA_GRID_STRIDE(i, n)
  {
    float gi = g[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) / bias2_sqrt + eps);
  }
}

__global__ void
ema_kernel(float *e, const float *p, float mu, size_t n)
{
  OS_CUDA_GRID_STRIDE(i, n) { e[i] = mu * e[i] + (1.0f - mu) * p[i]; }
}

double
os_cuda_loss(os_backend *be, float *grad, const float *pred, const float *target, size_t n,
             os_loss_kind kind, float c, float scale)
{
  os_cuda_backend *cb = os_cuda(be);
  unsigned blocks = os_cuda_reduce_blocks(n);
  double *partial = (double *)os_cuda_scratch(cb, blocks * sizeof(double), "loss partial sums");
  if (!partial)
    return NAN;
  loss_kernel<<<blocks, OS_CUDA_THREADS, 0, cb->stream>>>(partial, grad, pred, target, n, kind, c,
                                                          scale);
  os_cuda_check_launch(cb, "loss_kernel");
  double total = os_cuda_sum_partials(cb, partial, blocks);
  os_cuda_free(be, partial);
  return total;
}

void
os_cuda_adamw_step(os_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                   float lr, float beta1, float beta2, float eps, float weight_decay,
                   int64_t step)
{
  os_cuda_backend *cb = os_cuda(be);
  if (n == 0)
    return;
  os_cuda_derived_invalidate(cb, p, n * sizeof(float));
  double decay = 1.0 - (double)lr * weight_decay;
  double step_size = lr / (1.0 - pow(beta1, (double)step));
  double bias2_sqrt = sqrt(1.0 - pow(beta2, (double)step));
  adamw_kernel<<<os_cuda_blocks(n), OS_CUDA_THREADS, 0, cb->stream>>>(
      p, g, m, v, n, (float)decay, beta1, beta2, eps, (float)step_size, (float)bias2_sqrt);
  os_cuda_check_launch(cb, "adamw_kernel");
}

void
os_cuda_ema_update(os_backend *be, float *e, const float *p, float mu, size_t n)
{
  os_cuda_backend *cb = os_cuda(be);
  if (n == 0)
    return;
  os_cuda_derived_invalidate(cb, e, n * sizeof(float));
  ema_kernel<<<os_cuda_blocks(n), OS_CUDA_THREADS, 0, cb->stream>>>(e, p, mu, n);
  os_cuda_check_launch(cb, "ema_kernel");
}
