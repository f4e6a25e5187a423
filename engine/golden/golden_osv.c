/* golden_osv.c: see golden_osv.h. */
#include "golden_osv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "golden_report.h"
#include "osv.h"
#include "pipeline_internal.h"

#define MAX_TAPS 16
#define MAX_GRID 1000

typedef struct {
  int B, F, h, w, m, cmap, grid_n, taps[MAX_TAPS], n_taps;
  double grid_min, grid_max, rho;
  float huber_c, lambda_adv, guidance[2], ema_decay;
  os_adam_config adam_g, adam_d;
} osv_settings;

/* What the watch compares for the iteration being checked. */
typedef struct {
  os_golden_report *report;
  os_backend *be;
  os_train_params *student;
  os_disc *disc;
  const char *tag; /* "lgp" or "acd" */
  bool adapters_only;
  char *scratch_path; /* for the discriminator's saved state */
} watch_state;

static void
compare_disc_state(watch_state *w, const char *prefix)
{
  onestep_error error = {0};
  os_safetensors *st = NULL;
  if (os_disc_save(w->disc, w->scratch_path, &error) != ONESTEP_OK ||
      !(st = os_safetensors_open(w->scratch_path, &error))) {
    printf("%-56s cannot read the discriminator's state: %s\n", prefix, error.message);
    os_golden_report_count(w->report, prefix, INFINITY, INFINITY, true);
    return;
  }
  double worst = 0.0;
  char key[600], worst_key[600] = "";
  for (int i = 0; i < st->n_tensors; i++) {
    const os_st_tensor *t = &st->tensors[i];
    snprintf(key, sizeof key, "%s%s", prefix, t->name);
    double rel = os_golden_report_tensor(w->report, w->be, key, t->data,
                                         (size_t)os_shape_numel(t->ndim, t->shape), false);
    if (rel > worst || i == 0) {
      worst = rel;
      snprintf(worst_key, sizeof worst_key, "%s", key);
    }
  }
  printf("%-56s %12.3e  (%d tensors, worst %s)\n", prefix, worst, st->n_tensors, worst_key);
  os_safetensors_close(st);
  unlink(w->scratch_path);
}

/* Compares a tensor, then gives it the reference's values so that the next
 * stage is checked on its own: OSV's consistency loss has |fake - target|
 * near c, where float32 rounding of either side moves its gradient by 1e-3. */
static void
compare_and_substitute(os_golden_report *c, os_backend *be, const char *key, float *data,
                       size_t n)
{
  os_golden_report_tensor(c, be, key, data, n, true);
  float *want = os_golden_report_reference(c, key, n);
  if (want)
    be->ops->upload(be, data, want, n * sizeof(float));
  free(want);
}

static void
watch(const char *point, float *data, size_t n, void *user_data)
{
  watch_state *w = user_data;
  char key[128];
  snprintf(key, sizeof key, "%s.%s", w->tag, point);
  if (data && strcmp(point, "student_x0") == 0) {
    compare_and_substitute(w->report, w->be, key, data, n);
    return;
  }
  if (data) {
    os_golden_report_tensor(w->report, w->be, key, data, n, true);
    return;
  }
  strncat(key, ".", sizeof key - strlen(key) - 1);
  if (strcmp(point, "grad_g") == 0)
    os_golden_report_trained(w->report, w->be, w->student, key, OS_TRAINED_GRAD, w->adapters_only);
  else if (strcmp(point, "param_g") == 0)
    os_golden_report_trained(w->report, w->be, w->student, key, OS_TRAINED_VALUE, false);
  else if (strcmp(point, "grad_d") == 0)
    os_golden_report_trained(w->report, w->be, os_disc_params(w->disc), key, OS_TRAINED_GRAD,
                             false);
  else if (strcmp(point, "disc") == 0)
    compare_disc_state(w, key);
}

static onestep_status
read_settings(os_golden_report *c, osv_settings *s, os_train_spec *spec, const char **lora,
              const char **full, onestep_error *error)
{
  os_json_file *j = &c->json;
  os_golden_read_shape(j, &s->B, &s->F, &s->h, &s->w);
  s->m = os_json_int_min(j, "m", 5, 1);
  s->cmap = os_json_int_min(j, "cmap", 64, 1);
  s->huber_c = (float)os_json_number(j, "huber_c", 0.001);
  s->lambda_adv = (float)os_json_number(j, "lambda_adv", 0.1);
  s->ema_decay = (float)os_json_number(j, "ema_decay", 0.95);
  os_json_number_list(j, "guidance", (const float[]){1.0f, 3.0f}, 2, s->guidance);
  const cJSON *grid = os_json_get(j, "grid"), *dino = os_json_get(j, "dinov2"), *item;
  bool has_lora = os_golden_read_spec(j, spec, lora, full);
  s->grid_n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(grid, "n"));
  s->grid_min = cJSON_GetNumberValue(cJSON_GetObjectItem(grid, "sigma_min"));
  s->grid_max = cJSON_GetNumberValue(cJSON_GetObjectItem(grid, "sigma_max"));
  s->rho = cJSON_GetNumberValue(cJSON_GetObjectItem(grid, "rho"));
  cJSON_ArrayForEach(item, cJSON_GetObjectItem(dino, "hooks"))
    if (s->n_taps < MAX_TAPS)
      s->taps[s->n_taps++] = item->valueint;
  s->adam_g = os_golden_read_adam(os_json_get(j, "optimizer_g"));
  s->adam_d = os_golden_read_adam(os_json_get(j, "optimizer_d"));
  if (j->status == ONESTEP_OK &&
      (s->h < 1 || s->w < 1 || !has_lora || !grid || s->grid_n < 2 || s->grid_n > MAX_GRID ||
       s->n_taps == 0 || !os_json_get(j, "optimizer_g") || !os_json_get(j, "optimizer_d")))
    os_json_fail(j, ONESTEP_ERR_FORMAT, "latent_hw, lora, grid, dinov2 hooks or an optimizer is "
                                         "missing or impossible");
  if (j->status != ONESTEP_OK)
    return os_error_set(error, j->status, "%s", j->error->message);
  return ONESTEP_OK;
}

/* One iteration's recorded inputs in backend memory. */
typedef struct {
  float *x0, *noise, *cond, *embeds, *x, *target;
  float ids[3 * OS_TAPE_MAX_ARGS];
} iteration_inputs;

static void
inputs_free(os_backend *be, iteration_inputs *in)
{
  float *buffers[] = {in->x0, in->noise, in->cond, in->embeds, in->x, in->target};
  for (int i = 0; i < 6; i++)
    if (buffers[i])
      be->ops->free(be, buffers[i]);
}

static onestep_status
inputs_load(os_golden_report *c, os_backend *be, const char *tag, const osv_settings *s,
            int cross_dim, iteration_inputs *in, onestep_error *error)
{
  size_t n = (size_t)s->B * s->F * 4 * s->h * s->w, cond_n = (size_t)s->B * 4 * s->h * s->w;
  char key[64];
#define KEY(name) (snprintf(key, sizeof key, "%s.%s", tag, name), key)
  in->x0 = os_golden_report_upload(c, be, KEY("x0"), n, error);
  in->noise = in->x0 ? os_golden_report_upload(c, be, KEY("noise"), n, error) : NULL;
  in->cond = in->noise ? os_golden_report_upload(c, be, KEY("cond_latent"), cond_n, error) : NULL;
  in->embeds = in->cond ? os_golden_report_upload(c, be, KEY("image_embeds"),
                                                  (size_t)s->B * cross_dim, error)
                        : NULL;
  float *ids = in->embeds ? os_golden_report_host(c, KEY("added_time_ids"), (size_t)s->B * 3, error)
                          : NULL;
#undef KEY
  in->x = ids ? be->ops->alloc(be, n * sizeof(float)) : NULL;
  in->target = in->x ? be->ops->alloc(be, n * sizeof(float)) : NULL;
  if (ids)
    memcpy(in->ids, ids, (size_t)s->B * 3 * sizeof(float));
  free(ids);
  if (!in->target)
    return error->code ? error->code
                       : os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  return ONESTEP_OK;
}

/* x = x0 + sigma * noise */
static void
noised(os_backend *be, const iteration_inputs *in, double sigma, size_t n)
{
  be->ops->copy(be, in->x, in->x0, n * sizeof(float));
  be->ops->grad->axpy(be, in->x, in->noise, (float)sigma, n);
}

static void
compare_scalars(os_golden_report *c, const char *tag, const os_osv_stats *st, const cJSON *rec)
{
  char key[64];
  const char *names[] = {"loss_g", "adv_g", "loss_d", "huber"};
  double values[] = {st->loss_g, st->adv_g, st->loss_d, st->huber};
  for (int i = 0; i < 4; i++) {
    snprintf(key, sizeof key, "%s.%s", tag, names[i]);
    os_golden_report_scalar(c, key, values[i], cJSON_GetNumberValue(cJSON_GetObjectItem(rec, names[i])));
  }
}

os_golden_result
os_golden_osv_check(const char *case_dir, const os_golden_options *options)
{
  os_golden_report c = {.tolerance = options->tolerance};
  osv_settings s = {0};
  os_train_spec spec = {0};
  const char *lora[OS_GOLDEN_MAX_TARGETS], *full[OS_GOLDEN_MAX_TARGETS];
  onestep_error error = {0};
  onestep_context *ctx = NULL;
  os_train_params *student = NULL;
  os_dinov2 *dino = NULL;
  os_disc *disc = NULL;
  iteration_inputs lgp = {0}, acd = {0};
  double grid[MAX_GRID];
  os_golden_result result = OS_GOLDEN_FAILED;
  char *json_path = os_golden_case_path(case_dir, "golden.json");
  char *st_path = os_golden_case_path(case_dir, "golden.safetensors");
  char *peft_path = os_golden_case_path(case_dir, "lora_init/adapter_model.safetensors");
  char *disc_path = os_golden_case_path(case_dir, "disc_init.safetensors");
  char *dino_dir = os_golden_case_path(case_dir, "dinov2");
  char scratch[] = "/tmp/onestep-golden-disc-XXXXXX";
  int scratch_fd = mkstemp(scratch);
  char *model = NULL;
  const char *base = strrchr(case_dir, '/');
  c.name = base && base[1] ? base + 1 : case_dir;

  if (!json_path || !st_path || !peft_path || !disc_path || !dino_dir || scratch_fd < 0) {
    os_error_set(&error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory or no temporary file");
    goto done;
  }
  close(scratch_fd);
  if (os_json_open(&c.json, json_path, &error) != ONESTEP_OK ||
      read_settings(&c, &s, &spec, lora, full, &error) != ONESTEP_OK ||
      !(c.st = os_safetensors_open(st_path, &error)))
    goto done;
  model = options->model_dir ? strdup(options->model_dir)
                             : os_golden_case_path(case_dir, os_json_string(&c.json, "model", "model"));
  if (!(ctx = model ? onestep_context_new(model, &options->params, &error) : NULL)) {
    result = error.code == ONESTEP_ERR_DEVICE ? OS_GOLDEN_NO_DEVICE : OS_GOLDEN_FAILED;
    goto done;
  }
  os_backend *be = ctx->be;
  if (!be->ops->grad) {
    os_error_set(&error, ONESTEP_ERR_DEVICE, "the %s backend cannot train yet", be->ops->name);
    result = OS_GOLDEN_NO_DEVICE;
    goto done;
  }
  int cross_dim = ctx->src.config.unet.cross_attention_dim;
  printf("case %s (OSV): model %s on %s\n", c.name, model, ctx->info.device_name);
  if (!(student = os_train_params_new(ctx->src.unet, &spec, &error)) ||
      os_train_params_load_peft(student, peft_path, &error) != ONESTEP_OK ||
      !(dino = os_dinov2_load(dino_dir, be, s.taps, s.n_taps, &error)) ||
      !(disc = os_disc_new(dino, &(os_disc_config){.cond_dim = cross_dim, .cmap = s.cmap}, &error)) ||
      os_disc_load(disc, disc_path, &error) != ONESTEP_OK)
    goto done;
  os_osv_grid(s.grid_n, s.grid_min, s.grid_max, s.rho, grid);
  printf("%-56s %12s %12s  %s\n", "tensor", "rel err", "max abs", "result");
  os_golden_report_trained(&c, be, student, "init.", OS_TRAINED_VALUE, false);

  os_osv_players players = {.unet = ctx->unet, .student = student, .disc = disc,
                            .lambda_adv = s.lambda_adv, .huber_c = s.huber_c,
                            .adam_g = s.adam_g, .adam_d = s.adam_d};
  watch_state w = {.report = &c, .be = be, .student = student, .disc = disc,
                   .scratch_path = scratch};
  const cJSON *iterations = os_json_get(&c.json, "iterations");
  const cJSON *rec_lgp = cJSON_GetObjectItem(iterations, "lgp");
  const cJSON *rec_acd = cJSON_GetObjectItem(iterations, "acd");
  int n_lgp = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rec_lgp, "grid_index"));
  int n_acd = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(rec_acd, "grid_index"));
  size_t n = (size_t)s.B * s.F * 4 * s.h * s.w;
  os_osv_stats stats;
  if (n_lgp < 0 || n_lgp >= s.grid_n || n_acd < 0 || n_acd + s.m >= s.grid_n) {
    os_error_set(&error, ONESTEP_ERR_FORMAT, "%s: a grid index is off the grid", c.json.path);
    goto done;
  }

  /* Stage 1 (LGP): the adapters alone train; real = target = x0. */
  if (inputs_load(&c, be, "lgp", &s, cross_dim, &lgp, &error) != ONESTEP_OK)
    goto done;
  os_osv_conditioning cond = {.B = s.B, .F = s.F, .h = s.h, .w = s.w, .cross_dim = cross_dim,
                              .cond_latent = lgp.cond, .context = lgp.embeds,
                              .added_time_ids = lgp.ids};
  noised(be, &lgp, grid[n_lgp], n);
  os_train_params_freeze_full(student, true);
  w.tag = "lgp";
  w.adapters_only = true;
  if (os_osv_iteration(&players, be, lgp.x, (float)grid[n_lgp], lgp.x0, 1.0f, &cond, watch, &w,
                       &stats, &error) != ONESTEP_OK)
    goto done;
  compare_scalars(&c, "lgp", &stats, rec_lgp);

  /* Stage 2 (ACD): fresh moments, the EMA from the student, full tensors train too. */
  if (inputs_load(&c, be, "acd", &s, cross_dim, &acd, &error) != ONESTEP_OK)
    goto done;
  os_train_params_freeze_full(student, false);
  os_train_params_reset_moments(student);
  os_train_params_reset_moments(os_disc_params(disc));
  os_train_params_reset_ema(student);
  players.step_g = players.step_d = 0;
  cond.cond_latent = acd.cond;
  cond.context = acd.embeds;
  cond.added_time_ids = acd.ids;
  noised(be, &acd, grid[n_acd], n);
  os_acd_schedule schedule = {.grid = grid, .n = n_acd, .m = s.m, .guidance_min = s.guidance[0],
                              .guidance_max = s.guidance[1]};
  float *teacher_x = be->ops->alloc(be, n * sizeof(float));
  if (!teacher_x ||
      os_osv_acd_target(ctx->unet, student, be, acd.x, &schedule, &cond, acd.target, teacher_x,
                        &error) != ONESTEP_OK) {
    if (teacher_x)
      be->ops->free(be, teacher_x);
    goto done;
  }
  os_golden_report_tensor(&c, be, "acd.teacher_x", teacher_x, n, true);
  be->ops->free(be, teacher_x);
  compare_and_substitute(&c, be, "acd.target", acd.target, n);
  double lambda = pow(1.0 / (grid[n_acd] - grid[n_acd + s.m]), 0.1);
  os_golden_report_scalar(&c, "acd.lambda", lambda,
                          cJSON_GetNumberValue(cJSON_GetObjectItem(rec_acd, "lambda")));
  w.tag = "acd";
  w.adapters_only = false;
  if (os_osv_iteration(&players, be, acd.x, (float)grid[n_acd], acd.target, (float)lambda, &cond,
                       watch, &w, &stats, &error) != ONESTEP_OK)
    goto done;
  compare_scalars(&c, "acd", &stats, rec_acd);
  os_train_ema_update(student, s.ema_decay);
  os_golden_report_trained(&c, be, student, "acd.ema.", OS_TRAINED_EMA, false);

  printf("golden %s: %d of %d tensors, worst rel err %.3e (%s), tolerance %.0e\n", c.name,
         c.compared - c.failed, c.compared, c.worst, c.worst_key, c.tolerance);
  result = c.failed == 0 && c.compared > 0 ? OS_GOLDEN_PASSED : OS_GOLDEN_FAILED;
done:
  if (error.code != ONESTEP_OK)
    fprintf(stderr, "%s: %s\n", options->program, error.message);
  if (ctx) {
    inputs_free(ctx->be, &lgp);
    inputs_free(ctx->be, &acd);
  }
  os_disc_free(disc);
  os_dinov2_free(dino);
  os_train_params_free(student);
  onestep_context_free(ctx);
  if (c.st)
    os_safetensors_close(c.st);
  if (c.json.root)
    os_json_close(&c.json);
  if (scratch_fd >= 0)
    unlink(scratch);
  free(json_path);
  free(st_path);
  free(peft_path);
  free(disc_path);
  free(dino_dir);
  free(model);
  return result;
}
