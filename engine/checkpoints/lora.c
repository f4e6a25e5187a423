/* lora.c: LoRA parsing, name resolution and the merge transform. */
#include "lora.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "error.h"
#include "sgm_names.h"

typedef struct {
  const char *target; /* the UNet weight's registered name */
  const os_st_tensor *down, *up;
  float factor; /* user scale * alpha / rank */
} lora_patch;

struct os_lora_merge {
  lora_patch *patches; /* sorted by target */
  int n, cap;
};

/* ---- the lookup table: every spelling of every UNet weight's module ---- */

typedef struct {
  char *key;
  int unet_index;
} lookup_entry;

typedef struct {
  lookup_entry *entries;
  int n, cap;
} lookup_table;

static int compare_keys(const void *a, const void *b)
{
  return strcmp(((const lookup_entry *)a)->key, ((const lookup_entry *)b)->key);
}

static bool table_add(lookup_table *t, const char *key, int unet_index)
{
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 1024;
    lookup_entry *grown = realloc(t->entries, cap * sizeof *grown);
    if (!grown)
      return false;
    t->entries = grown;
    t->cap = cap;
  }
  char *copy = strdup(key);
  if (!copy)
    return false;
  t->entries[t->n++] = (lookup_entry){copy, unet_index};
  return true;
}

static void flatten(const char *in, char *out, size_t cap)
{
  snprintf(out, cap, "%s", in);
  for (char *c = out; *c; c++)
    if (*c == '.')
      *c = '_';
}

/* stem and its kohya-flattened form. */
static bool table_add_both(lookup_table *t, const char *stem, int unet_index)
{
  char flat[512];
  flatten(stem, flat, sizeof flat);
  return table_add(t, stem, unet_index) && table_add(t, flat, unet_index);
}

static void table_free(lookup_table *t)
{
  for (int i = 0; i < t->n; i++)
    free(t->entries[i].key);
  free(t->entries);
}

static bool strip_suffix(char *s, const char *suffix)
{
  size_t len = strlen(s), slen = strlen(suffix);
  if (len < slen || strcmp(s + len - slen, suffix) != 0)
    return false;
  s[len - slen] = '\0';
  return true;
}

static onestep_status table_build(lookup_table *t, const os_checkpoint_store *s,
                                  const os_unet_config *cfg, onestep_error *error)
{
  for (int i = 0; i < s->n_unet; i++) {
    char stem[512], sgm[512];
    snprintf(stem, sizeof stem, "%s", s->unet_names[i]);
    if (!strip_suffix(stem, ".weight"))
      continue;
    bool ok = table_add_both(t, stem, i);
    if (ok && os_sgm_unet_name(cfg, OS_TO_SGM, s->unet_names[i], sgm, sizeof sgm) &&
        strip_suffix(sgm, ".weight"))
      ok = table_add_both(t, sgm, i);
    if (!ok)
      return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "LoRA: out of memory");
  }
  qsort(t->entries, t->n, sizeof *t->entries, compare_keys);
  return ONESTEP_OK;
}

static int table_find(const lookup_table *t, const char *key)
{
  lookup_entry probe = {(char *)key, 0};
  const lookup_entry *e = bsearch(&probe, t->entries, t->n, sizeof *t->entries, compare_keys);
  return e ? e->unet_index : -1;
}

/* ---- parsing one file ---- */

typedef enum { ROLE_DOWN, ROLE_UP, ROLE_ALPHA } lora_role;

static const struct {
  const char *suffix;
  lora_role role;
} suffixes[] = {
    {".lora_A.weight", ROLE_DOWN},     {".lora_B.weight", ROLE_UP},
    {".lora_A.default.weight", ROLE_DOWN}, {".lora_B.default.weight", ROLE_UP},
    {".lora_down.weight", ROLE_DOWN},  {".lora_up.weight", ROLE_UP},
    {".lora.down.weight", ROLE_DOWN},  {".lora.up.weight", ROLE_UP},
    {".alpha", ROLE_ALPHA},
    /* older diffusers attention processors: M.processor.to_q_lora.down.weight */
    {"_lora.down.weight", ROLE_DOWN},  {"_lora.up.weight", ROLE_UP},
};

/* "X.processor.to_out" -> "X.to_out.0", "X.processor.to_q" -> "X.to_q". */
static void processor_module_name(char *name)
{
  char *p = strstr(name, ".processor.");
  if (!p)
    return;
  memmove(p, p + strlen(".processor"), strlen(p + strlen(".processor")) + 1);
  size_t len = strlen(name);
  if (len >= 7 && strcmp(name + len - 7, ".to_out") == 0 && len + 3 < 400)
    strcat(name, ".0");
}

typedef struct {
  char name[400];
  const os_st_tensor *part[3];
} lora_module;

static const char *const unsupported[] = {"hada_", "lokr_", "lora_mid", "dora_scale",
                                          "lora_magnitude_vector", "oft_", "lora_B.bias"};

static onestep_status parse_modules(const os_safetensors *st, lora_module **out, int *n_out,
                                    onestep_error *error)
{
  lora_module *modules = calloc(st->n_tensors ? st->n_tensors : 1, sizeof *modules);
  if (!modules)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", st->path);
  int n = 0;
  for (int i = 0; i < st->n_tensors; i++) {
    const char *key = st->tensors[i].name;
    for (size_t u = 0; u < sizeof unsupported / sizeof *unsupported; u++)
      if (strstr(key, unsupported[u])) {
        free(modules);
        return os_error_set(error, ONESTEP_ERR_FORMAT,
                            "%s: tensor %s belongs to an adapter type Onestep does not merge "
                            "(only plain LoRA: lora_A/lora_B or lora_down/lora_up/alpha)",
                            st->path, key);
      }
    char name[400];
    int role = -1;
    for (size_t f = 0; f < sizeof suffixes / sizeof *suffixes && role < 0; f++) {
      snprintf(name, sizeof name, "%s", key);
      if (strip_suffix(name, suffixes[f].suffix)) {
        role = suffixes[f].role;
        if (suffixes[f].suffix[0] == '_')
          processor_module_name(name);
      }
    }
    if (role < 0) {
      free(modules);
      return os_error_set(error, ONESTEP_ERR_FORMAT, "%s: %s is not a LoRA tensor", st->path, key);
    }
    int m = 0;
    while (m < n && strcmp(modules[m].name, name) != 0)
      m++;
    if (m == n)
      snprintf(modules[n++].name, sizeof modules[m].name, "%s", name);
    modules[m].part[role] = &st->tensors[i];
  }
  for (int m = 0; m < n; m++)
    if (!modules[m].part[ROLE_DOWN] || !modules[m].part[ROLE_UP]) {
      onestep_status status = os_error_set(error, ONESTEP_ERR_FORMAT,
                                           "%s: LoRA module %s lacks its %s matrix", st->path,
                                           modules[m].name,
                                           modules[m].part[ROLE_DOWN] ? "up (B)" : "down (A)");
      free(modules);
      return status;
    }
  *out = modules;
  *n_out = n;
  return ONESTEP_OK;
}

/* The module's name as the table spells it, prefixes removed. */
static const char *module_key(const char *name, const char *path, onestep_error *error)
{
  static const char *const prefixes[] = {"lora_unet_", "unet.", "base_model.model.",
                                         "model.diffusion_model.", "diffusion_model."};
  if (os_has_prefix(name, "lora_te")) {
    os_error_set(error, ONESTEP_ERR_MODEL,
                 "%s: LoRA module %s targets a text encoder; SVD has none (a LoRA for another "
                 "model?)",
                 path, name);
    return NULL;
  }
  for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++)
    if (os_has_prefix(name, prefixes[p]))
      return name + strlen(prefixes[p]);
  return name;
}

/* A [rank, in, k...] and B [out, rank, 1...] against W [out, in, k...]; a
 * linear W also accepts 1x1-conv shaped factors ([rank, in, 1, 1]). */
static bool shapes_fit(const os_st_tensor *W, const os_st_tensor *A, const os_st_tensor *B)
{
  if (A->ndim < 2 || B->ndim < 2 || W->ndim < 2)
    return false;
  int64_t rank = A->shape[0];
  if (B->shape[1] != rank || B->shape[0] != W->shape[0])
    return false;
  for (int d = 2; d < B->ndim; d++)
    if (B->shape[d] != 1)
      return false;
  int dims = A->ndim > W->ndim ? A->ndim : W->ndim;
  for (int d = 1; d < dims; d++) {
    int64_t a = d < A->ndim ? A->shape[d] : 1, w = d < W->ndim ? W->shape[d] : 1;
    if (a != w)
      return false;
  }
  return true;
}

static void format_shape(char *out, size_t cap, const os_st_tensor *t)
{
  size_t len = snprintf(out, cap, "[");
  for (int d = 0; d < t->ndim && len < cap; d++)
    len += snprintf(out + len, cap - len, d ? ", %lld" : "%lld", (long long)t->shape[d]);
  if (len < cap)
    snprintf(out + len, cap - len, "]");
}

static onestep_status add_patch(os_lora_merge *m, const lora_patch *p, const char *path,
                                onestep_error *error)
{
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 64;
    lora_patch *grown = realloc(m->patches, cap * sizeof *grown);
    if (!grown)
      return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    m->patches = grown;
    m->cap = cap;
  }
  m->patches[m->n++] = *p;
  return ONESTEP_OK;
}

/* PEFT keeps alpha beside the weights, in adapter_config.json. */
typedef struct {
  bool present, rslora;
  float alpha;
} peft_config;

static onestep_status read_peft_config(const char *lora_path, peft_config *pc,
                                       onestep_error *error)
{
  memset(pc, 0, sizeof *pc);
  char path[4200];
  const char *slash = strrchr(lora_path, '/');
  int dir_len = slash ? (int)(slash - lora_path) : 1;
  snprintf(path, sizeof path, "%.*s/adapter_config.json", dir_len, slash ? lora_path : ".");
  FILE *f = fopen(path, "rb");
  if (!f)
    return ONESTEP_OK;
  char text[65536];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  cJSON *json = cJSON_Parse(text);
  onestep_status status = ONESTEP_OK;
  const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(json, "lora_alpha");
  const cJSON *rank_pattern = cJSON_GetObjectItemCaseSensitive(json, "rank_pattern");
  const cJSON *alpha_pattern = cJSON_GetObjectItemCaseSensitive(json, "alpha_pattern");
  if (!json || !cJSON_IsNumber(alpha))
    status = os_error_set(error, ONESTEP_ERR_FORMAT, "%s: not a PEFT adapter config (no numeric "
                          "lora_alpha)", path);
  else if (cJSON_GetArraySize(rank_pattern) > 0 || cJSON_GetArraySize(alpha_pattern) > 0)
    status = os_error_set(error, ONESTEP_ERR_FORMAT,
                          "%s: per-module rank_pattern / alpha_pattern is not supported", path);
  if (status == ONESTEP_OK) {
    pc->present = true;
    pc->alpha = (float)alpha->valuedouble;
    pc->rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "use_rslora"));
  }
  cJSON_Delete(json);
  return status;
}

static onestep_status resolve_file(os_lora_merge *m, const os_safetensors *st, float scale,
                                   const lookup_table *table, const os_checkpoint_store *s,
                                   onestep_error *error)
{
  lora_module *modules = NULL;
  int n = 0;
  peft_config pc;
  onestep_status status = read_peft_config(st->path, &pc, error);
  if (status != ONESTEP_OK)
    return status;
  status = parse_modules(st, &modules, &n, error);
  if (status != ONESTEP_OK)
    return status;
  if (n == 0)
    status = os_error_set(error, ONESTEP_ERR_FORMAT, "%s: no LoRA tensors", st->path);
  for (int i = 0; i < n && status == ONESTEP_OK; i++) {
    const lora_module *mod = &modules[i];
    const char *key = module_key(mod->name, st->path, error);
    if (!key) {
      status = error->code;
      break;
    }
    int index = table_find(table, key);
    if (index < 0) {
      status = os_error_set(error, ONESTEP_ERR_MODEL,
                            "%s: LoRA module %s matches no weight of this UNet (a LoRA for "
                            "another model?)",
                            st->path, mod->name);
      break;
    }
    const os_st_tensor *W = s->unet_tensors[index];
    const os_st_tensor *A = mod->part[ROLE_DOWN], *B = mod->part[ROLE_UP];
    if (!shapes_fit(W, A, B)) {
      char ws[96], as[96], bs[96];
      format_shape(ws, sizeof ws, W);
      format_shape(as, sizeof as, A);
      format_shape(bs, sizeof bs, B);
      status = os_error_set(error, ONESTEP_ERR_MODEL,
                            "%s: LoRA module %s (down %s, up %s) does not fit UNet weight %s %s "
                            "(a LoRA for another model?)",
                            st->path, mod->name, as, bs, s->unet_names[index], ws);
      break;
    }
    /* gamma = alpha / rank; without any alpha, gamma = 1 (alpha = rank). */
    float rank = (float)A->shape[0], gamma = 1.0f;
    if (mod->part[ROLE_ALPHA] && mod->part[ROLE_ALPHA]->nbytes > 0) {
      float alpha;
      os_dtype_to_f32(&alpha, mod->part[ROLE_ALPHA]->data, mod->part[ROLE_ALPHA]->dtype, 1);
      if (alpha != 0.0f) /* kohya: 0 marks an old LoRA without alpha */
        gamma = alpha / rank;
    } else if (pc.present) {
      gamma = pc.alpha / (pc.rslora ? sqrtf(rank) : rank);
    }
    lora_patch p = {s->unet_names[index], A, B, scale * gamma};
    status = add_patch(m, &p, st->path, error);
  }
  free(modules);
  return status;
}

static int compare_patches(const void *a, const void *b)
{
  return strcmp(((const lora_patch *)a)->target, ((const lora_patch *)b)->target);
}

/* ---- the merge ---- */

static float *to_f32(const os_st_tensor *t)
{
  size_t n = (size_t)os_shape_numel(t->ndim, t->shape);
  float *out = malloc((n ? n : 1) * sizeof *out);
  if (out)
    os_dtype_to_f32(out, t->data, t->dtype, n);
  return out;
}

static onestep_status merge_transform(const char *name, float *data, int ndim,
                                      const int64_t *shape, void *user_data,
                                      onestep_error *error)
{
  const os_lora_merge *m = user_data;
  lora_patch probe = {.target = name};
  const lora_patch *hit = bsearch(&probe, m->patches, m->n, sizeof *m->patches, compare_patches);
  if (!hit)
    return ONESTEP_OK;
  while (hit > m->patches && strcmp(hit[-1].target, name) == 0)
    hit--;
  int rows = (int)shape[0];
  int cols = (int)(os_shape_numel(ndim, shape) / rows);
  for (; hit < m->patches + m->n && strcmp(hit->target, name) == 0; hit++) {
    int rank = (int)hit->down->shape[0];
    float *A = to_f32(hit->down), *B = to_f32(hit->up);
    if (!A || !B) {
      free(A);
      free(B);
      return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "LoRA: out of memory merging %s", name);
    }
    /* W[rows, cols] += factor * B[rows, rank] A[rank, cols]; a conv's kernel
     * positions are part of cols. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, rank, hit->factor, B, rank,
                A, cols, 1.0f, data, cols);
    free(A);
    free(B);
  }
  return ONESTEP_OK;
}

onestep_status os_lora_merge_prepare(os_checkpoint_store *s, const os_unet_config *cfg,
                                     const char *const *files, const float *scales, int n,
                                     os_weight_set *unet, onestep_error *error)
{
  if (n <= 0)
    return ONESTEP_OK;
  os_lora_merge *m = calloc(1, sizeof *m);
  if (!m)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "LoRA: out of memory");
  s->lora = m;
  lookup_table table = {0};
  onestep_status status = table_build(&table, s, cfg, error);
  for (int f = 0; f < n && status == ONESTEP_OK; f++) {
    os_safetensors *st = os_store_open(s, files[f], error);
    if (!st) {
      status = error->code;
      break;
    }
    status = resolve_file(m, st, scales ? scales[f] : 1.0f, &table, s, error);
  }
  table_free(&table);
  if (status != ONESTEP_OK)
    return status;
  qsort(m->patches, m->n, sizeof *m->patches, compare_patches);
  os_weight_set_set_transform(unet, merge_transform, m);
  return ONESTEP_OK;
}

void os_lora_merge_free(os_lora_merge *m)
{
  if (!m)
    return;
  free(m->patches);
  free(m);
}
