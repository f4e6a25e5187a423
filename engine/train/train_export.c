/* train_export.c: see train_export.h. */
#include "train_export.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "safetensors.h"

#define PEFT_PREFIX "base_model.model."
static const char *const STATE_FIELDS[] = {"value.", "m.", "v.", "ema."};
#define N_STATE_FIELDS 4

static float *
state_field(os_train_tensor *t, int field)
{
  float *fields[N_STATE_FIELDS] = {t->value, t->m, t->v, t->ema};
  return fields[field];
}

static char *
prefixed(const char *prefix, const char *name)
{
  size_t size = strlen(prefix) + strlen(name) + 1;
  char *s = malloc(size);
  if (s)
    snprintf(s, size, "%s%s", prefix, name);
  return s;
}

/* Host copies of tensors to write, freed together: each tensor's name and
 * data are allocated for the list and owned by it. */
typedef struct {
  os_st_write_tensor *tensors;
  int n, capacity;
} write_list;

/* Takes name and data (freed here on failure, also when either is NULL). */
static bool
write_list_add(write_list *l, char *name, int ndim, const int64_t *shape, float *data)
{
  if (l->n == l->capacity) {
    int capacity = l->capacity ? 2 * l->capacity : 256;
    os_st_write_tensor *grown = realloc(l->tensors, (size_t)capacity * sizeof *grown);
    if (grown) {
      l->tensors = grown;
      l->capacity = capacity;
    }
  }
  if (!name || !data || l->n == l->capacity) {
    free(name);
    free(data);
    return false;
  }
  os_st_write_tensor *t = &l->tensors[l->n++];
  memset(t, 0, sizeof *t);
  t->name = name;
  t->ndim = ndim;
  memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  t->data = data;
  return true;
}

static void
write_list_free(write_list *l)
{
  for (int i = 0; i < l->n; i++) {
    free((char *)l->tensors[i].name);
    free((float *)l->tensors[i].data);
  }
  free(l->tensors);
}

static float *
download(os_backend *be, const float *src, size_t n)
{
  float *host = malloc((n ? n : 1) * sizeof(float));
  if (host)
    be->ops->download(be, host, src, n * sizeof(float));
  return host;
}

static onestep_status
out_of_memory(onestep_error *error, const char *path)
{
  return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
}

onestep_status
os_train_state_save(os_train_params *p, int64_t step, const char *path, onestep_error *error)
{
  os_backend *be = os_train_params_backend(p);
  write_list l = {0};
  onestep_status status = ONESTEP_OK;
  for (int i = 0; i < os_train_params_count(p) && status == ONESTEP_OK; i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    for (int f = 0; f < N_STATE_FIELDS && status == ONESTEP_OK; f++)
      if (!write_list_add(&l, prefixed(STATE_FIELDS[f], t->name), t->ndim, t->shape,
                          download(be, state_field(t, f), t->n)))
        status = out_of_memory(error, path);
  }
  float *counter = malloc(2 * sizeof(float));
  if (counter) {
    counter[0] = (float)(step >> 24);
    counter[1] = (float)(step & 0xffffff);
  }
  if (status == ONESTEP_OK &&
      !write_list_add(&l, strdup("step"), 1, (int64_t[]){2}, counter))
    status = out_of_memory(error, path);
  else if (status != ONESTEP_OK)
    free(counter);
  if (status == ONESTEP_OK)
    status = os_safetensors_write(path, l.tensors, l.n, error);
  write_list_free(&l);
  return status;
}

onestep_status
os_train_state_load(os_train_params *p, int64_t *step, const char *path, onestep_error *error)
{
  os_backend *be = os_train_params_backend(p);
  os_safetensors *st = os_safetensors_open(path, error);
  if (!st)
    return error->code;
  onestep_status status = ONESTEP_OK;
  const os_st_tensor *counter = os_safetensors_find(st, "step");
  if (!counter || counter->dtype != OS_DTYPE_F32 || os_shape_numel(counter->ndim, counter->shape) != 2 ||
      st->n_tensors != 1 + N_STATE_FIELDS * os_train_params_count(p))
    status = os_error_set(error, ONESTEP_ERR_FORMAT,
                          "%s is not a checkpoint of this run (other targets or rank?)", path);
  for (int i = 0; i < os_train_params_count(p) && status == ONESTEP_OK; i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    for (int f = 0; f < N_STATE_FIELDS && status == ONESTEP_OK; f++) {
      char *name = prefixed(STATE_FIELDS[f], t->name);
      const os_st_tensor *s = name ? os_safetensors_find(st, name) : NULL;
      if (!s || s->dtype != OS_DTYPE_F32 || (size_t)os_shape_numel(s->ndim, s->shape) != t->n)
        status = os_error_set(error, ONESTEP_ERR_FORMAT,
                              "%s: '%s' is missing or of another size (a checkpoint of another "
                              "run?)",
                              path, name ? name : t->name);
      else
        be->ops->upload(be, state_field(t, f), s->data, t->n * sizeof(float));
      free(name);
    }
  }
  if (status == ONESTEP_OK) {
    float c[2];
    memcpy(c, counter->data, sizeof c);
    *step = ((int64_t)c[0] << 24) + (int64_t)c[1];
  }
  os_safetensors_close(st);
  return status;
}

onestep_status
os_train_state_load_adapters(os_train_params *p, const char *path, onestep_error *error)
{
  os_backend *be = os_train_params_backend(p);
  os_safetensors *st = os_safetensors_open(path, error);
  if (!st)
    return error->code;
  onestep_status status = ONESTEP_OK;
  for (int i = 0; i < os_train_params_count(p) && status == ONESTEP_OK; i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    if (t->base)
      continue; /* trained in full: stage 2 starts it from the base value */
    char *name = prefixed("value.", t->name);
    const os_st_tensor *s = name ? os_safetensors_find(st, name) : NULL;
    if (!s || s->dtype != OS_DTYPE_F32 || (size_t)os_shape_numel(s->ndim, s->shape) != t->n) {
      status = os_error_set(error, ONESTEP_ERR_FORMAT,
                            "%s has no adapter '%s' of this size (other LoRA targets or rank?)",
                            path, t->name);
    } else {
      be->ops->upload(be, t->value, s->data, t->n * sizeof(float));
      be->ops->upload(be, t->ema, s->data, t->n * sizeof(float));
    }
    free(name);
  }
  os_safetensors_close(st);
  return status;
}

/* Writes text to path atomically. */
static onestep_status
write_text_file(const char *path, const char *text, onestep_error *error)
{
  char *tmp = prefixed(path, ".tmp");
  if (!tmp)
    return out_of_memory(error, path);
  FILE *f = fopen(tmp, "w");
  bool ok = f && fputs(text, f) != EOF;
  ok = f && fclose(f) == 0 && ok;
  ok = ok && rename(tmp, path) == 0;
  onestep_status status = ONESTEP_OK;
  if (!ok) {
    status = os_error_set(error, ONESTEP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return status;
}

/* "to_q" of "x.attn1.to_q", "to_out.0" of "x.attn1.to_out.0" (PEFT's target names). */
static const char *
target_suffix(const char *module)
{
  const char *last = strrchr(module, '.');
  if (!last)
    return module;
  if (last[1] >= '0' && last[1] <= '9' && last > module) {
    const char *before = last - 1;
    while (before > module && *before != '.')
      before--;
    return *before == '.' ? before + 1 : before;
  }
  return last + 1;
}

onestep_status
os_train_export_peft(os_train_params *p, int rank, float alpha, bool use_ema, const char *dir,
                     onestep_error *error)
{
  os_backend *be = os_train_params_backend(p);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return os_error_set(error, ONESTEP_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
  write_list l = {0};
  cJSON *config = cJSON_CreateObject(), *targets = cJSON_CreateArray();
  onestep_status status = ONESTEP_OK;
  char *model_path = prefixed(dir, "/adapter_model.safetensors");
  char *config_path = prefixed(dir, "/adapter_config.json");
  if (!model_path || !config_path || !config || !targets)
    status = out_of_memory(error, dir);
  for (int i = 0; i < os_train_params_count(p) && status == ONESTEP_OK; i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    if (t->base)
      continue; /* trained in full: only the merged UNet file carries it */
    if (!write_list_add(&l, prefixed(PEFT_PREFIX, t->name), t->ndim, t->shape,
                        download(be, use_ema ? t->ema : t->value, t->n)))
      status = out_of_memory(error, dir);
    /* the module's target name, once */
    char module[512];
    snprintf(module, sizeof module, "%.*s", (int)(strlen(t->name) - strlen(".lora_A.weight")),
             t->name);
    const char *suffix = target_suffix(module);
    bool seen = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, targets) seen |= strcmp(item->valuestring, suffix) == 0;
    if (!seen)
      cJSON_AddItemToArray(targets, cJSON_CreateString(suffix));
  }
  if (status == ONESTEP_OK)
    status = os_safetensors_write(model_path, l.tensors, l.n, error);
  if (status == ONESTEP_OK) {
    cJSON_AddStringToObject(config, "peft_type", "LORA");
    cJSON_AddNumberToObject(config, "r", rank);
    cJSON_AddNumberToObject(config, "lora_alpha", alpha);
    cJSON_AddNumberToObject(config, "lora_dropout", 0.0);
    cJSON_AddStringToObject(config, "bias", "none");
    cJSON_AddItemToObject(config, "target_modules", targets);
    targets = NULL;
    char *text = cJSON_Print(config);
    status = text ? write_text_file(config_path, text, error) : out_of_memory(error, dir);
    free(text);
  }
  cJSON_Delete(targets);
  cJSON_Delete(config);
  free(model_path);
  free(config_path);
  write_list_free(&l);
  return status;
}

onestep_status
os_train_export_unet(os_train_params *p, os_weight_set *unet, bool use_ema, const char *path,
                     onestep_error *error)
{
  os_backend *be = os_train_params_backend(p);
  write_list l = {0};
  onestep_status status = ONESTEP_OK;
  float scale = os_train_params_lora_scale(p);
  for (int i = 0; i < os_weights_count(unet) && status == ONESTEP_OK; i++) {
    const float *bound;
    int ndim;
    const int64_t *shape;
    const char *name = os_weights_entry(unet, i, &bound, &ndim, &shape);
    size_t n = (size_t)os_shape_numel(ndim, shape);
    int full = os_train_params_full_index(p, bound);
    const float *src = bound;
    if (full >= 0) {
      os_train_tensor *t = os_train_params_tensor(p, full);
      src = use_ema ? t->ema : t->value;
    }
    float *host = download(be, src, n);
    if (!write_list_add(&l, strdup(name), ndim, shape, host)) {
      status = out_of_memory(error, path);
      break;
    }
    for (int a = 0; a < os_train_params_lora_count(p); a++) {
      const os_lora_adapter *ad = os_train_params_adapter(p, a);
      if (ad->weight != bound)
        continue;
      os_train_tensor *A = os_train_params_tensor(p, ad->a), *B = os_train_params_tensor(p, ad->b);
      int rank = (int)A->shape[0];
      float *ha = download(be, use_ema ? A->ema : A->value, A->n);
      float *hb = download(be, use_ema ? B->ema : B->value, B->n);
      if (ha && hb) /* W [out, in] += scale * B [out, rank] A [rank, in] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ad->out, ad->in, rank, scale, hb,
                    rank, ha, ad->in, 1.0f, host, ad->in);
      else
        status = out_of_memory(error, path);
      free(ha);
      free(hb);
    }
  }
  if (status == ONESTEP_OK)
    status = os_safetensors_write(path, l.tensors, l.n, error);
  write_list_free(&l);
  return status;
}
