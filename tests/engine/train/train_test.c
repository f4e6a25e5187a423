/* train_test.c: see train_test.h. */
#include "train_test.h"

#include <stdlib.h>
#include <string.h>

#include "philox.h"

float *
train_test_upload_normal(os_backend *be, uint64_t seed, uint64_t stream, size_t n, float scale)
{
  float *host = malloc(n * sizeof(float)), *dev = be->ops->alloc(be, n * sizeof(float));
  os_philox_normal(seed, stream, 0, host, n);
  for (size_t i = 0; i < n; i++)
    host[i] *= scale;
  be->ops->upload(be, dev, host, n * sizeof(float));
  free(host);
  return dev;
}

void
train_test_fill_lora_b(os_train_params *p, uint64_t seed, uint64_t first_stream, float scale)
{
  os_backend *be = os_train_params_backend(p);
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    if (strstr(t->name, "lora_B")) {
      float *v = train_test_upload_normal(be, seed, first_stream + (uint64_t)i, t->n, scale);
      be->ops->copy(be, t->value, v, t->n * sizeof(float));
      be->ops->free(be, v);
    }
  }
}

float *
train_test_gradients(os_train_params *p, size_t *total)
{
  os_backend *be = os_train_params_backend(p);
  *total = (size_t)os_train_params_numel(p);
  float *all = malloc(*total * sizeof(float)), *at = all;
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    be->ops->download(be, at, t->grad, t->n * sizeof(float));
    at += t->n;
  }
  return all;
}

void
train_test_shift(os_train_params *p, const float *direction, double eps)
{
  os_backend *be = os_train_params_backend(p);
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    float *v = malloc(t->n * sizeof(float));
    be->ops->download(be, v, t->value, t->n * sizeof(float));
    for (size_t k = 0; k < t->n; k++)
      v[k] += (float)(eps * direction[k]);
    be->ops->upload(be, t->value, v, t->n * sizeof(float));
    free(v);
    direction += t->n;
  }
}
