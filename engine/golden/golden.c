/* golden.c: the golden check (golden.h): golden.json through cJSON, the
 * recorded tensors through the engine's safetensors reader. */
#include "golden.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_json.h"
#include "error.h"
#include "golden_compare.h"
#include "safetensors.h"

typedef struct {
  const char *key; /* "RUN.NAME", inside the JSON document */
  int ndim;
  int64_t shape[OS_MAX_DIMS];
  float *reference;
  bool produced, shape_ok;
  double rel_err, max_abs;
} golden_tensor;

typedef struct {
  const char *name;        /* inside the JSON document */
  onestep_request request; /* the run's parameters and recorded noise */
  float *noise_image_aug, *noise_latents;
} golden_run;

struct os_golden_case {
  char *dir, *name, *json_path;
  os_json_file json;
  golden_run *runs;
  int n_runs;
  golden_tensor *tensors; /* run by run, each in golden.json's order */
  int n_tensors;
};

/* What the tap needs while one run generates. */
typedef struct {
  os_golden_case *golden;
  const char *run;
  bool stage_by_stage;
} tap_state;

/* "A<separator>B", allocated. */
static char *
joined(const char *a, char separator, const char *b)
{
  size_t size = strlen(a) + strlen(b) + 2;
  char *text = malloc(size);
  if (text)
    snprintf(text, size, "%s%c%s", a, separator, b);
  return text;
}

/* The last component of a folder path, trailing slashes aside. */
static char *
base_name(const char *dir)
{
  size_t end = strlen(dir);
  while (end > 1 && dir[end - 1] == '/')
    end--;
  size_t start = end;
  while (start > 0 && dir[start - 1] != '/')
    start--;
  return strndup(dir + start, end - start);
}

static bool
is_run_key(const char *key, const char *run)
{
  size_t length = strlen(run);
  return strncmp(key, run, length) == 0 && key[length] == '.';
}

/* A tensor of the case as float32; expected_numel < 0 takes any size. */
static float *
load_f32(const os_safetensors *st, const char *key, int64_t expected_numel, onestep_error *error)
{
  const os_st_tensor *t = os_safetensors_find(st, key);
  if (!t) {
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor %s is missing", st->path, key);
    return NULL;
  }
  int64_t n = os_shape_numel(t->ndim, t->shape);
  if (expected_numel >= 0 && n != expected_numel) {
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor %s does not have the shape golden.json gives",
                 st->path, key);
    return NULL;
  }
  float *data = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  if (!data) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory for tensor %s", st->path, key);
    return NULL;
  }
  os_dtype_to_f32(data, t->data, t->dtype, (size_t)n);
  return data;
}

static float *
load_noise(const os_safetensors *st, const char *run, const char *name, int64_t expected_numel,
           onestep_error *error)
{
  char *key = joined(run, '.', name);
  if (!key) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  float *noise = load_f32(st, key, expected_numel, error);
  free(key);
  return noise;
}

/* The file that sets key: the run, else the case, which then must. After a
 * failed read of the run, the run, so that its message stands. */
static os_json_file *
setting(os_json_file *run, os_json_file *top, const char *key)
{
  if (run->status != ONESTEP_OK || os_json_get(run, key))
    return run;
  if (!os_json_get(top, key))
    os_json_fail(top, ONESTEP_ERR_FORMAT, "'%s' is missing", key);
  return top;
}

static bool
has_run(const os_golden_case *golden, const char *name)
{
  for (int i = 0; i < golden->n_runs; i++)
    if (strcmp(golden->runs[i].name, name) == 0)
      return true;
  return false;
}

static onestep_status
read_run(os_golden_case *golden, const cJSON *item, const os_safetensors *st, golden_run *run,
         onestep_error *error)
{
  os_json_file *top = &golden->json;
  run->name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
  /* Tensor keys are "RUN.NAME": a shared name or a dot in one would make them ambiguous. */
  if (!cJSON_IsObject(item) || !run->name || strchr(run->name, '.') || has_run(golden, run->name))
    return os_json_fail(top, ONESTEP_ERR_FORMAT, "run %d needs a name of its own without '.'",
                        golden->n_runs);

  char where[1100];
  snprintf(where, sizeof where, "%s (run %s)", golden->json_path, run->name);
  os_json_file json = {.path = where, .root = (cJSON *)item, .error = error};
  onestep_request *request = &run->request;
  *request = onestep_request_default();
  request->width = os_json_int(setting(&json, top, "width"), "width", 0);
  request->height = os_json_int(setting(&json, top, "height"), "height", 0);
  request->frames = os_json_int(setting(&json, top, "num_frames"), "num_frames", 0);
  request->fps = os_json_int(setting(&json, top, "fps"), "fps", 0);
  request->motion_bucket_id =
      os_json_int(setting(&json, top, "motion_bucket_id"), "motion_bucket_id", 0);
  request->noise_aug_strength =
      (float)os_json_number(setting(&json, top, "noise_aug_strength"), "noise_aug_strength", 0);
  request->steps =
      os_json_int(setting(&json, top, "num_inference_steps"), "num_inference_steps", 0);
  request->min_guidance =
      (float)os_json_number(setting(&json, top, "min_guidance_scale"), "min_guidance_scale", 0);
  request->max_guidance =
      (float)os_json_number(setting(&json, top, "max_guidance_scale"), "max_guidance_scale", 0);
  request->decode_chunk_size =
      os_json_int(&json, "decode_chunk_size", request->decode_chunk_size);
  request->sampler = ONESTEP_SAMPLER_EULER;
  if (json.status != ONESTEP_OK)
    return json.status;
  if (top->status != ONESTEP_OK)
    return top->status;

  /* The engine reads as much noise as the request's size asks for: [3,H,W]
   * for the image (the latents' size follows the model's VAE, not read here). */
  int64_t image_numel = 3 * (int64_t)request->width * request->height;
  run->noise_image_aug = load_noise(st, run->name, "noise.image_aug", image_numel, error);
  run->noise_latents =
      run->noise_image_aug ? load_noise(st, run->name, "noise.latents", -1, error) : NULL;
  if (!run->noise_latents)
    return error->code;
  request->noise_image_aug = run->noise_image_aug;
  request->noise_latents = run->noise_latents;
  return ONESTEP_OK;
}

static onestep_status
read_runs(os_golden_case *golden, const os_safetensors *st, onestep_error *error)
{
  const cJSON *runs = os_json_get(&golden->json, "runs");
  if (!cJSON_IsArray(runs) || cJSON_GetArraySize(runs) == 0)
    return os_json_fail(&golden->json, ONESTEP_ERR_FORMAT, "'runs' must be a list of runs");
  golden->runs = calloc((size_t)cJSON_GetArraySize(runs), sizeof *golden->runs);
  if (!golden->runs)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  const cJSON *item;
  cJSON_ArrayForEach(item, runs) {
    onestep_status status = read_run(golden, item, st, &golden->runs[golden->n_runs], error);
    golden->n_runs++; /* counted before the check: its noise is freed with the case */
    if (status != ONESTEP_OK)
      return status;
  }
  return ONESTEP_OK;
}

static onestep_status
load_tensors(os_golden_case *golden, const os_safetensors *st, onestep_error *error)
{
  const cJSON *keys = os_json_get(&golden->json, "keys");
  if (!cJSON_IsObject(keys))
    return os_json_fail(&golden->json, ONESTEP_ERR_FORMAT, "'keys' must be an object of shapes");
  /* Run names are distinct and have no dot, so each key belongs to one run at most. */
  golden->tensors = calloc((size_t)cJSON_GetArraySize(keys) + 1, sizeof *golden->tensors);
  if (!golden->tensors)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  char where[1100];
  snprintf(where, sizeof where, "%s (keys)", golden->json_path);
  os_json_file shapes = {.path = where, .root = (cJSON *)keys, .error = error};
  for (int r = 0; r < golden->n_runs; r++) {
    const cJSON *item;
    cJSON_ArrayForEach(item, keys) {
      golden_tensor *t = &golden->tensors[golden->n_tensors];
      int dims[OS_MAX_DIMS];
      if (!is_run_key(item->string, golden->runs[r].name))
        continue;
      t->key = item->string;
      t->ndim = os_json_int_list(&shapes, t->key, NULL, 0, dims, OS_MAX_DIMS);
      if (shapes.status != ONESTEP_OK)
        return shapes.status;
      for (int i = 0; i < t->ndim; i++)
        t->shape[i] = dims[i];
      t->reference = load_f32(st, t->key, os_shape_numel(t->ndim, t->shape), error);
      if (!t->reference)
        return error->code;
      golden->n_tensors++;
    }
  }
  return ONESTEP_OK;
}

static onestep_status
read_case(os_golden_case *golden, const char *case_dir, onestep_error *error)
{
  golden->dir = strdup(case_dir);
  golden->name = base_name(case_dir);
  golden->json_path = joined(case_dir, '/', "golden.json");
  char *st_path = joined(case_dir, '/', "golden.safetensors");
  if (!golden->dir || !golden->name || !golden->json_path || !st_path) {
    free(st_path);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  }
  onestep_status status = os_json_open(&golden->json, golden->json_path, error);
  os_safetensors *st = status == ONESTEP_OK ? os_safetensors_open(st_path, error) : NULL;
  free(st_path);
  if (!st)
    return error->code;
  status = read_runs(golden, st, error);
  if (status == ONESTEP_OK)
    status = load_tensors(golden, st, error);
  os_safetensors_close(st);
  return status;
}

onestep_status
os_golden_case_kind(const char *case_dir, os_golden_kind *kind, onestep_error *error)
{
  char *path = joined(case_dir, '/', "golden.json");
  os_json_file f = {0};
  if (!path)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  onestep_status status = os_json_open(&f, path, error);
  if (status == ONESTEP_OK) {
    *kind = os_json_get(&f, "iterations") ? OS_GOLDEN_KIND_OSV
            : os_json_get(&f, "steps")    ? OS_GOLDEN_KIND_TRAINING
                                          : OS_GOLDEN_KIND_INFERENCE;
    os_json_close(&f);
  }
  free(path);
  return status;
}

os_golden_case *
os_golden_case_open(const char *case_dir, onestep_error *error)
{
  os_golden_case *golden = calloc(1, sizeof *golden);
  if (!golden) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  if (read_case(golden, case_dir, error) != ONESTEP_OK) {
    os_golden_case_free(golden);
    return NULL;
  }
  return golden;
}

void
os_golden_case_free(os_golden_case *golden)
{
  if (!golden)
    return;
  for (int i = 0; i < golden->n_runs; i++) {
    free(golden->runs[i].noise_image_aug);
    free(golden->runs[i].noise_latents);
  }
  for (int i = 0; i < golden->n_tensors; i++)
    free(golden->tensors[i].reference);
  free(golden->runs);
  free(golden->tensors);
  os_json_close(&golden->json);
  free(golden->dir);
  free(golden->name);
  free(golden->json_path);
  free(golden);
}

static golden_tensor *
find_tensor(os_golden_case *golden, const char *run, const char *name)
{
  for (int i = 0; i < golden->n_tensors; i++) {
    golden_tensor *t = &golden->tensors[i];
    if (is_run_key(t->key, run) && strcmp(t->key + strlen(run) + 1, name) == 0)
      return t;
  }
  return NULL;
}

/* The engine's tap: compares a tensor the case recorded with its reference. */
static void
compare(const char *name, float *data, int ndim, const int64_t *shape, void *user_data)
{
  const tap_state *state = user_data;
  golden_tensor *t = find_tensor(state->golden, state->run, name);
  if (!t)
    return;
  t->produced = true;
  t->shape_ok = ndim == t->ndim;
  for (int i = 0; t->shape_ok && i < ndim; i++)
    t->shape_ok = shape[i] == t->shape[i];
  if (!t->shape_ok)
    return;
  size_t n = (size_t)os_shape_numel(t->ndim, t->shape);
  t->rel_err = os_golden_rel_err(data, t->reference, n, &t->max_abs);
  if (state->stage_by_stage)
    for (size_t i = 0; i < n; i++)
      data[i] = t->reference[i];
}

static onestep_status
generate_run(os_golden_case *golden, const golden_run *run, onestep_context *ctx,
             const os_golden_options *options, onestep_error *error)
{
  onestep_request request = run->request;
  tap_state state = {golden, run->name, options->stage_by_stage};
  onestep_image image;
  onestep_status status =
      options->image_for(request.width, request.height, &image, options->user_data, error);
  if (status != ONESTEP_OK)
    return status;
  request.tap = compare;
  request.user_data = &state;
  onestep_clip *clip = onestep_generate(ctx, &image, &request, error);
  if (!clip)
    return error->code;
  onestep_clip_free(clip);
  return ONESTEP_OK;
}

static os_golden_result
report(const os_golden_case *golden, double tolerance)
{
  const golden_tensor *worst = NULL;
  int failures = 0, compared = 0;

  printf("%-36s %12s %12s  %s\n", "tensor", "rel err", "max abs", "result");
  for (int i = 0; i < golden->n_tensors; i++) {
    const golden_tensor *t = &golden->tensors[i];
    const char *verdict = "ok";
    if (!t->produced)
      verdict = "FAIL (never produced)";
    else if (!t->shape_ok)
      verdict = "FAIL (shape differs)";
    else if (!(t->rel_err <= tolerance))
      verdict = "FAIL";
    failures += verdict[0] == 'F';
    if (t->produced && t->shape_ok) {
      printf("%-36s %12.3e %12.3e  %s\n", t->key, t->rel_err, t->max_abs, verdict);
      compared++;
      if (!worst || t->rel_err > worst->rel_err)
        worst = t;
    } else {
      printf("%-36s %12s %12s  %s\n", t->key, "-", "-", verdict);
    }
  }
  printf("golden %s: %d of %d tensors, worst rel err %.3e (%s), tolerance %.0e\n", golden->name,
         compared, golden->n_tensors, worst ? worst->rel_err : 0.0, worst ? worst->key : "none",
         tolerance);
  return failures == 0 && golden->n_tensors > 0 ? OS_GOLDEN_PASSED : OS_GOLDEN_FAILED;
}

os_golden_result
os_golden_check(os_golden_case *golden, const os_golden_options *options)
{
  char *default_model = options->model_dir ? NULL : joined(golden->dir, '/', "model");
  const char *model = options->model_dir ? options->model_dir : default_model;
  onestep_error error = {0};
  onestep_context *ctx = NULL;
  if (!model)
    os_error_set(&error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  else
    ctx = onestep_context_new(model, &options->params, &error);
  if (!ctx) {
    fprintf(stderr, "%s: %s\n", options->program, error.message);
    free(default_model);
    return error.code == ONESTEP_ERR_DEVICE ? OS_GOLDEN_NO_DEVICE : OS_GOLDEN_FAILED;
  }
  printf("case %s: model %s on %s%s\n", golden->name, model,
         onestep_context_get_info(ctx)->device_name,
         options->stage_by_stage ? ", stage by stage (each stage fed the reference's inputs)" : "");
  fflush(stdout); /* before the runs' errors on stderr, where both go to one pipe */

  for (int i = 0; i < golden->n_tensors; i++)
    golden->tensors[i].produced = false;
  for (int r = 0; r < golden->n_runs; r++) {
    if (generate_run(golden, &golden->runs[r], ctx, options, &error) != ONESTEP_OK)
      fprintf(stderr, "%s: run %s: %s\n", options->program, golden->runs[r].name, error.message);
  }
  onestep_context_free(ctx);
  free(default_model);
  return report(golden, options->tolerance);
}
