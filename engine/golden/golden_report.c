/* golden_report.c: see golden_report.h. */
#include "golden_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "golden_compare.h"

double
os_golden_report_count(os_golden_report *c, const char *key, double rel, double max_abs,
                       bool print_row)
{
  bool ok = rel <= c->tolerance;
  c->compared++;
  c->failed += !ok;
  if (c->compared == 1 || rel > c->worst) {
    c->worst = rel;
    snprintf(c->worst_key, sizeof c->worst_key, "%s", key);
  }
  if (print_row || !ok)
    printf("%-56s %12.3e %12.3e  %s\n", key, rel, max_abs, ok ? "ok" : "FAILED");
  return rel;
}

float *
os_golden_report_reference(os_golden_report *c, const char *key, size_t n)
{
  const os_st_tensor *ref = os_safetensors_find(c->st, key);
  if (!ref || (size_t)os_shape_numel(ref->ndim, ref->shape) != n)
    return NULL;
  float *want = malloc((n ? n : 1) * sizeof(float));
  if (want)
    os_dtype_to_f32(want, ref->data, ref->dtype, n);
  return want;
}

/* Against `scale` instead of the reference's own norm when that is below it. */
static double
compare_scaled(os_golden_report *c, os_backend *be, const char *key, const float *data, size_t n,
               double scale, bool print_row)
{
  float *want = os_golden_report_reference(c, key, n);
  float *host = malloc((n ? n : 1) * sizeof(float));
  double rel = INFINITY, max_abs = INFINITY;
  if (want && host) {
    be->ops->download(be, host, data, n * sizeof(float));
    rel = os_golden_rel_err(host, want, n, &max_abs);
    double ref2 = 0.0;
    for (size_t i = 0; i < n; i++)
      ref2 += (double)want[i] * want[i];
    if (sqrt(ref2) < scale && isfinite(rel))
      rel = rel * (ref2 > 0.0 ? sqrt(ref2) : 1.0) / scale;
  } else {
    printf("%-56s missing from the case or of another size\n", key);
  }
  free(want);
  free(host);
  return os_golden_report_count(c, key, rel, max_abs, print_row);
}

double
os_golden_report_tensor(os_golden_report *c, os_backend *be, const char *key, const float *data,
                        size_t n, bool print_row)
{
  return compare_scaled(c, be, key, data, n, 0.0, print_row);
}

/* The rms over every element of the references "PREFIX<name>" compared. */
static double
group_rms(os_golden_report *c, os_train_params *p, const char *prefix, bool adapters_only)
{
  double sum = 0.0;
  size_t count = 0;
  char key[600];
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    if (adapters_only && t->base)
      continue;
    snprintf(key, sizeof key, "%s%s", prefix, t->name);
    float *want = os_golden_report_reference(c, key, t->n);
    for (size_t k = 0; want && k < t->n; k++)
      sum += (double)want[k] * want[k];
    count += want ? t->n : 0;
    free(want);
  }
  return count ? sqrt(sum / (double)count) : 0.0;
}

void
os_golden_report_scalar(os_golden_report *c, const char *key, double value, double expected)
{
  float x = (float)value, ref = (float)expected;
  double max_abs, rel = os_golden_rel_err(&x, &ref, 1, &max_abs);
  os_golden_report_count(c, key, rel, max_abs, true);
}

void
os_golden_report_trained(os_golden_report *c, os_backend *be, os_train_params *p,
                         const char *prefix, os_trained_field field, bool adapters_only)
{
  double worst = 0.0;
  char key[600], worst_key[600] = "";
  /* A gradient far smaller than the rest holds mostly rounding on both sides
   * (a bias in front of a normalisation has none in exact arithmetic; some
   * are sums that cancel): its error counts against a tensor of its size at
   * the group's rms. */
  double rms = field == OS_TRAINED_GRAD ? group_rms(c, p, prefix, adapters_only) : 0.0;
  int compared = 0;
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    if (adapters_only && t->base)
      continue;
    compared++;
    const float *data = field == OS_TRAINED_VALUE  ? t->value
                        : field == OS_TRAINED_GRAD ? t->grad
                                                   : t->ema;
    snprintf(key, sizeof key, "%s%s", prefix, t->name);
    double rel = compare_scaled(c, be, key, data, t->n, rms * sqrt((double)t->n), false);
    if (compared == 1 || rel > worst) {
      worst = rel;
      snprintf(worst_key, sizeof worst_key, "%s", key);
    }
  }
  printf("%-56s %12.3e  (%d tensors, worst %s)\n", prefix, worst, compared, worst_key);
}

float *
os_golden_report_upload(os_golden_report *c, os_backend *be, const char *key, size_t n,
                        onestep_error *error)
{
  float *host = os_golden_report_reference(c, key, n);
  float *dev = host ? be->ops->alloc(be, n * sizeof(float)) : NULL;
  if (dev)
    be->ops->upload(be, dev, host, n * sizeof(float));
  else
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor %s is missing or of another size",
                 c->st->path, key);
  free(host);
  return dev;
}

float *
os_golden_report_host(os_golden_report *c, const char *key, size_t n, onestep_error *error)
{
  float *host = os_golden_report_reference(c, key, n);
  if (!host)
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor %s is missing or of another size",
                 c->st->path, key);
  return host;
}

void
os_golden_read_shape(os_json_file *j, int *B, int *F, int *h, int *w)
{
  int hw[2] = {0, 0};
  *B = os_json_int_min(j, "batch", 1, 1);
  *F = os_json_int_min(j, "frames", 1, 1);
  os_json_int_list(j, "latent_hw", NULL, 0, hw, 2);
  *h = hw[0];
  *w = hw[1];
}

char *
os_golden_case_path(const char *dir, const char *name)
{
  size_t size = strlen(dir) + strlen(name) + 2;
  char *path = malloc(size);
  if (path)
    snprintf(path, size, "%s/%s", dir, name);
  return path;
}

bool
os_golden_read_spec(os_json_file *j, os_train_spec *spec, const char **lora, const char **full)
{
  const cJSON *l = os_json_get(j, "lora"), *item;
  spec->rank = cJSON_GetObjectItem(l, "rank") ? cJSON_GetObjectItem(l, "rank")->valueint : 0;
  spec->alpha = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(l, "alpha"));
  spec->n_lora_targets = 0;
  cJSON_ArrayForEach(item, cJSON_GetObjectItem(l, "targets"))
  {
    if (cJSON_IsString(item) && spec->n_lora_targets < OS_GOLDEN_MAX_TARGETS)
      lora[spec->n_lora_targets++] = item->valuestring;
  }
  spec->lora_targets = lora;
  spec->n_full_targets =
      os_json_string_list(j, "full_targets", NULL, 0, full, OS_GOLDEN_MAX_TARGETS);
  spec->full_targets = full;
  return l != NULL;
}

os_adam_config
os_golden_read_adam(const cJSON *o)
{
  const cJSON *betas = cJSON_GetObjectItem(o, "betas");
  const cJSON *decay = cJSON_GetObjectItem(o, "weight_decay");
  return (os_adam_config){
      .lr = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "lr")),
      .beta1 = (float)cJSON_GetNumberValue(cJSON_GetArrayItem(betas, 0)),
      .beta2 = (float)cJSON_GetNumberValue(cJSON_GetArrayItem(betas, 1)),
      .eps = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "eps")),
      .weight_decay = decay ? (float)cJSON_GetNumberValue(decay) : 0.0f,
  };
}
