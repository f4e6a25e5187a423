/* train_params.c: see train_params.h. */
#include "train_params.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "philox.h"
#include "safetensors.h"

/* Philox stream of new adapters' lora_A values (seeded by the spec). */
#define LORA_INIT_STREAM 0x4c6f5241ull

typedef struct {
  const float *weight; /* a base tensor the graph reads */
  int full;            /* index of the tensor trained in full, or -1 */
  int lora;            /* index of its adapter, or -1 */
} weight_route;

struct os_train_params {
  os_backend *be;
  os_train_tensor *tensors;
  int n_tensors;
  os_lora_adapter *adapters;
  int n_adapters;
  weight_route *routes; /* sorted by weight pointer */
  int n_routes;
  float lora_scale;
  os_train_view view;
  bool full_frozen;
};

static bool
matches_any(const char *name, const char *const *globs, int n, int *hits)
{
  bool any = false;
  for (int i = 0; i < n; i++)
    if (fnmatch(globs[i], name, 0) == 0) {
      hits[i]++;
      any = true;
    }
  return any;
}

static int
compare_routes(const void *a, const void *b)
{
  const float *x = ((const weight_route *)a)->weight, *y = ((const weight_route *)b)->weight;
  return x < y ? -1 : x > y;
}

static const weight_route *
find_route(const os_train_params *p, const float *w)
{
  weight_route key = {.weight = w};
  return bsearch(&key, p->routes, (size_t)p->n_routes, sizeof key, compare_routes);
}

static float *
alloc_zeroed(os_backend *be, size_t n)
{
  float *x = be->ops->alloc(be, (n ? n : 1) * sizeof(float));
  if (x)
    be->ops->fill(be, x, 0.0f, n);
  return x;
}

/* A trained tensor of the given shape starting from init (host values). */
static onestep_status
add_tensor(os_train_params *p, const char *name, int ndim, const int64_t *shape,
           const float *base, const float *host_init, onestep_error *error)
{
  os_backend *be = p->be;
  os_train_tensor *t = &p->tensors[p->n_tensors];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  t->ndim = ndim;
  t->n = 1;
  for (int d = 0; d < ndim; d++) {
    t->shape[d] = shape[d];
    t->n *= (size_t)shape[d];
  }
  t->base = base;
  t->value = alloc_zeroed(be, t->n);
  t->grad = alloc_zeroed(be, t->n);
  t->m = alloc_zeroed(be, t->n);
  t->v = alloc_zeroed(be, t->n);
  t->ema = alloc_zeroed(be, t->n);
  p->n_tensors++;
  if (!t->name || !t->value || !t->grad || !t->m || !t->v || !t->ema)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                        "out of memory for the trained tensor '%s'", name);
  if (base)
    be->ops->copy(be, t->value, base, t->n * sizeof(float));
  else
    be->ops->upload(be, t->value, host_init, t->n * sizeof(float));
  be->ops->copy(be, t->ema, t->value, t->n * sizeof(float));
  return ONESTEP_OK;
}

/* PEFT's kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(in), 1/sqrt(in)); B starts at 0. */
static onestep_status
add_adapter(os_train_params *p, const char *module, const float *weight, const int64_t *shape,
            int rank, uint64_t seed, onestep_error *error)
{
  int out = (int)shape[0], in = (int)shape[1];
  size_t na = (size_t)rank * in, nb = (size_t)out * rank;
  float *host = calloc(na > nb ? na : nb, sizeof(float));
  double *u = malloc(na * sizeof(double));
  onestep_status status = ONESTEP_ERR_OUT_OF_MEMORY;
  char name[512];
  if (!host || !u) {
    status = os_error_set(error, status, "out of memory creating the adapter of '%s'", module);
    goto done;
  }
  os_philox_uniform(seed, LORA_INIT_STREAM + (uint64_t)p->n_adapters, 0, u, na);
  double bound = 1.0 / sqrt((double)in);
  for (size_t i = 0; i < na; i++)
    host[i] = (float)((2.0 * u[i] - 1.0) * bound);
  os_lora_adapter *a = &p->adapters[p->n_adapters];
  *a = (os_lora_adapter){.weight = weight, .a = p->n_tensors, .b = p->n_tensors + 1,
                         .in = in, .out = out};
  snprintf(name, sizeof name, "%.*s.lora_A.weight", (int)(sizeof name - 16), module);
  if ((status = add_tensor(p, name, 2, (int64_t[]){rank, in}, NULL, host, error)) != ONESTEP_OK)
    goto done;
  memset(host, 0, nb * sizeof(float));
  snprintf(name, sizeof name, "%.*s.lora_B.weight", (int)(sizeof name - 16), module);
  if ((status = add_tensor(p, name, 2, (int64_t[]){out, rank}, NULL, host, error)) !=
      ONESTEP_OK)
    goto done;
  p->n_adapters++;
done:
  free(host);
  free(u);
  return status;
}

/* The module of a Linear weight ("x.to_q" of "x.to_q.weight"), or false. */
static bool
linear_module(const char *name, int ndim, const int64_t *shape, char *module, size_t cap)
{
  size_t len = strlen(name), suffix = strlen(".weight");
  while (ndim > 0 && shape[ndim - 1] == 1)
    ndim--;
  if (ndim != 2 || len <= suffix || len - suffix >= cap ||
      strcmp(name + len - suffix, ".weight") != 0)
    return false;
  memcpy(module, name, len - suffix);
  module[len - suffix] = '\0';
  return true;
}

static onestep_status
check_globs(const char *kind, const char *const *globs, const int *hits, int n,
            onestep_error *error)
{
  for (int i = 0; i < n; i++)
    if (hits[i] == 0)
      return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                          "%s target '%s' matches nothing in the UNet", kind, globs[i]);
  return ONESTEP_OK;
}

os_train_params *
os_train_params_new(os_weight_set *ws, const os_train_spec *spec, onestep_error *error)
{
  if (spec->n_lora_targets > 0 && spec->rank < 1) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "LoRA rank %d: it must be 1 or more",
                 spec->rank);
    return NULL;
  }
  int n = os_weights_count(ws);
  os_train_params *p = calloc(1, sizeof *p);
  int *lora_hits = calloc((size_t)spec->n_lora_targets + 1, sizeof(int));
  int *full_hits = calloc((size_t)spec->n_full_targets + 1, sizeof(int));
  if (p) {
    p->be = os_weight_set_backend(ws);
    p->tensors = calloc((size_t)3 * n + 1, sizeof *p->tensors);
    p->adapters = calloc((size_t)n + 1, sizeof *p->adapters);
    p->routes = calloc((size_t)n + 1, sizeof *p->routes);
    p->lora_scale = spec->rank > 0 ? spec->alpha / (float)spec->rank : 0.0f;
  }
  if (!p || !lora_hits || !full_hits || !p->tensors || !p->adapters || !p->routes) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory setting up training");
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    const float *bound;
    int ndim;
    const int64_t *shape;
    const char *name = os_weights_entry(ws, i, &bound, &ndim, &shape);
    char module[512];
    weight_route route = {.weight = bound, .full = -1, .lora = -1};
    if (matches_any(name, spec->full_targets, spec->n_full_targets, full_hits)) {
      route.full = p->n_tensors;
      if (add_tensor(p, name, ndim, shape, bound, NULL, error) != ONESTEP_OK)
        goto fail;
    }
    if (linear_module(name, ndim, shape, module, sizeof module) &&
        matches_any(module, spec->lora_targets, spec->n_lora_targets, lora_hits)) {
      route.lora = p->n_adapters;
      if (add_adapter(p, module, bound, shape, spec->rank, spec->seed, error) != ONESTEP_OK)
        goto fail;
    }
    if ((route.full >= 0 || route.lora >= 0) && bound)
      p->routes[p->n_routes++] = route;
  }
  if (check_globs("LoRA", spec->lora_targets, lora_hits, spec->n_lora_targets, error) != ONESTEP_OK ||
      check_globs("training", spec->full_targets, full_hits, spec->n_full_targets, error) !=
          ONESTEP_OK)
    goto fail;
  if (p->n_tensors == 0) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                 "nothing to train: give LoRA targets or tensors to train in full");
    goto fail;
  }
  qsort(p->routes, (size_t)p->n_routes, sizeof *p->routes, compare_routes);
  free(lora_hits);
  free(full_hits);
  return p;
fail:
  free(lora_hits);
  free(full_hits);
  os_train_params_free(p);
  return NULL;
}

void
os_train_params_free(os_train_params *p)
{
  if (!p)
    return;
  os_backend *be = p->be;
  for (int i = 0; i < p->n_tensors; i++) {
    os_train_tensor *t = &p->tensors[i];
    float *buffers[] = {t->value, t->grad, t->m, t->v, t->ema};
    for (size_t k = 0; k < sizeof buffers / sizeof *buffers; k++)
      if (buffers[k])
        be->ops->free(be, buffers[k]);
    free(t->name);
  }
  free(p->tensors);
  free(p->adapters);
  free(p->routes);
  free(p);
}

os_backend *
os_train_params_backend(const os_train_params *p)
{
  return p->be;
}

int
os_train_params_count(const os_train_params *p)
{
  return p->n_tensors;
}

os_train_tensor *
os_train_params_tensor(os_train_params *p, int i)
{
  return &p->tensors[i];
}

int
os_train_params_find(const os_train_params *p, const char *name)
{
  for (int i = 0; i < p->n_tensors; i++)
    if (strcmp(p->tensors[i].name, name) == 0)
      return i;
  return -1;
}

int64_t
os_train_params_numel(const os_train_params *p)
{
  int64_t n = 0;
  for (int i = 0; i < p->n_tensors; i++)
    n += (int64_t)p->tensors[i].n;
  return n;
}

int
os_train_params_lora_count(const os_train_params *p)
{
  return p->n_adapters;
}

const os_lora_adapter *
os_train_params_adapter(const os_train_params *p, int i)
{
  return &p->adapters[i];
}

int
os_train_params_full_index(const os_train_params *p, const float *w)
{
  const weight_route *r = find_route(p, w);
  return r ? r->full : -1;
}

float
os_train_params_lora_scale(const os_train_params *p)
{
  return p->lora_scale;
}

void
os_train_params_set_view(os_train_params *p, os_train_view view)
{
  p->view = view;
}

os_tv
os_train_tensor_leaf(os_train_params *p, os_tape *tape, int i)
{
  os_train_tensor *t = &p->tensors[i];
  switch (p->view) {
  case OS_TRAIN_VIEW_TEACHER:
    return os_tape_leaf(tape, t->base, t->n, NULL);
  case OS_TRAIN_VIEW_EMA:
    return os_tape_leaf(tape, t->ema, t->n, NULL);
  default:
    return os_tape_leaf(tape, t->value, t->n, t->grad);
  }
}

void
os_train_params_freeze_full(os_train_params *p, bool frozen)
{
  p->full_frozen = frozen;
}

os_tv
os_train_weight(os_train_params *p, os_tape *tape, const float *w, size_t n)
{
  const weight_route *r = find_route(p, w);
  if (!r || r->full < 0)
    return os_tape_leaf(tape, w, n, NULL);
  if (p->full_frozen && p->view == OS_TRAIN_VIEW_STUDENT)
    return os_tape_leaf(tape, p->tensors[r->full].value, n, NULL);
  return os_train_tensor_leaf(p, tape, r->full);
}

const os_lora_adapter *
os_train_lora_for(const os_train_params *p, const float *w)
{
  if (p->view == OS_TRAIN_VIEW_TEACHER)
    return NULL;
  const weight_route *r = find_route(p, w);
  return r && r->lora >= 0 ? &p->adapters[r->lora] : NULL;
}

#define PEFT_PREFIX "base_model.model."

onestep_status
os_train_params_load_peft(os_train_params *p, const char *path, onestep_error *error)
{
  os_safetensors *st = os_safetensors_open(path, error);
  if (!st)
    return error->code;
  onestep_status status = ONESTEP_OK;
  int loaded = 0;
  float *host = NULL;
  for (int i = 0; i < st->n_tensors && status == ONESTEP_OK; i++) {
    const os_st_tensor *f = &st->tensors[i];
    size_t prefix = strlen(PEFT_PREFIX);
    int at = strncmp(f->name, PEFT_PREFIX, prefix) == 0 ? os_train_params_find(p, f->name + prefix)
                                                         : -1;
    os_train_tensor *t = at >= 0 ? &p->tensors[at] : NULL;
    if (!t || t->base) {
      status = os_error_set(error, ONESTEP_ERR_MODEL,
                            "%s: tensor '%s' is not an adapter of this run (other targets?)", path,
                            f->name);
      break;
    }
    if ((size_t)os_shape_numel(f->ndim, f->shape) != t->n || f->ndim != 2 ||
        f->shape[0] != t->shape[0]) {
      status = os_error_set(error, ONESTEP_ERR_MODEL,
                            "%s: tensor '%s' has another shape than this run's (another rank?)",
                            path, f->name);
      break;
    }
    float *grown = realloc(host, t->n * sizeof(float));
    if (!grown) {
      status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
      break;
    }
    host = grown;
    os_dtype_to_f32(host, f->data, f->dtype, t->n);
    p->be->ops->upload(p->be, t->value, host, t->n * sizeof(float));
    p->be->ops->upload(p->be, t->ema, host, t->n * sizeof(float));
    loaded++;
  }
  if (status == ONESTEP_OK && loaded != 2 * p->n_adapters)
    status = os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s holds %d adapter tensors, this run has %d (other targets?)", path,
                          loaded, 2 * p->n_adapters);
  free(host);
  os_safetensors_close(st);
  return status;
}

void
os_train_params_reset_moments(os_train_params *p)
{
  for (int i = 0; i < p->n_tensors; i++) {
    p->be->ops->fill(p->be, p->tensors[i].m, 0.0f, p->tensors[i].n);
    p->be->ops->fill(p->be, p->tensors[i].v, 0.0f, p->tensors[i].n);
  }
}

void
os_train_params_reset_ema(os_train_params *p)
{
  for (int i = 0; i < p->n_tensors; i++)
    p->be->ops->copy(p->be, p->tensors[i].ema, p->tensors[i].value,
                     p->tensors[i].n * sizeof(float));
}

void
os_train_params_zero_grad(os_train_params *p)
{
  for (int i = 0; i < p->n_tensors; i++)
    p->be->ops->fill(p->be, p->tensors[i].grad, 0.0f, p->tensors[i].n);
}
