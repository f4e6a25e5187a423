/* golden_train.c: training cases (docs/training.md): the recorded optimiser
 * steps of a LoRA + full-tensor run through the UNet, every recorded tensor
 * compared. */
#include "golden_train.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_json.h"
#include "denoiser.h"
#include "error.h"
#include "golden_report.h"
#include "pipeline_internal.h"
#include "safetensors.h"
#include "tape_ops.h"
#include "train_optim.h"


typedef struct {
  int B, F, h, w, cross_dim;
  os_loss_config loss;
  os_adam_config adam;
  double max_grad_norm;
  float ema_decay;
} train_settings;

/* One recorded step: forward, loss, backward, clip, AdamW, EMA, each compared. */
static onestep_status
run_step(os_golden_report *c, onestep_context *ctx, os_train_params *p, os_tape *tape,
         const train_settings *s, int step, const cJSON *recorded, onestep_error *error)
{
  os_backend *be = ctx->be;
  int B = s->B;
  size_t per = (size_t)s->F * 4 * s->h * s->w, n = B * per;
  char key[600], prefix[64];
  snprintf(prefix, sizeof prefix, "step%d.", step);
#define KEY(name) (snprintf(key, sizeof key, "%s%s", prefix, name), key)
  onestep_status status = ONESTEP_ERR_FORMAT;
  float *dD = NULL, *x = NULL;
  float *x0 = os_golden_report_upload(c, be, KEY("x0"), n, error);
  float *noise = x0 ? os_golden_report_upload(c, be, KEY("noise"), n, error) : NULL;
  float *cond =
      noise ? os_golden_report_upload(c, be, KEY("cond_latent"), (size_t)B * 4 * s->h * s->w, error)
            : NULL;
  float *ehs = cond ? os_golden_report_upload(c, be, KEY("encoder_hidden_states"),
                                              (size_t)B * s->cross_dim, error)
                    : NULL;
  float *ids = ehs ? os_golden_report_host(c, KEY("added_time_ids"), (size_t)B * 3, error) : NULL;
  float *sigma = ids ? os_golden_report_host(c, KEY("sigma"), (size_t)B, error) : NULL;
  dD = sigma ? be->ops->alloc(be, n * sizeof(float)) : NULL;
  x = dD ? be->ops->alloc(be, n * sizeof(float)) : NULL;
  if (!x) {
    if (sigma)
      os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  /* x = x0 + sigma_b * noise_b */
  be->ops->copy(be, x, x0, n * sizeof(float));
  for (int b = 0; b < B; b++)
    be->ops->grad->axpy(be, x + b * per, noise + b * per, sigma[b], per);
  os_denoise_input in = {.B = B,
                         .F = s->F,
                         .h = s->h,
                         .w = s->w,
                         .sigma = sigma,
                         .cond_latent = os_tape_leaf(tape, cond, (size_t)B * 4 * s->h * s->w, NULL),
                         .context = os_tape_leaf(tape, ehs, (size_t)B * s->cross_dim, NULL),
                         .added_time_ids = ids};
  os_tv out;
  os_tv D = os_train_denoise(ctx->unet, p, tape, os_tape_leaf(tape, x, n, NULL), &in, &out);
  if ((status = os_tape_status(tape, error)) != ONESTEP_OK)
    goto done;
  os_golden_report_tensor(c, be, KEY("model_output"), os_tape_data(tape, out), n, true);
  os_golden_report_tensor(c, be, KEY("denoised"), os_tape_data(tape, D), n, true);
  be->ops->fill(be, dD, 0.0f, n);
  double loss = os_train_batch_loss(be, os_tape_data(tape, D), x0, sigma, B, per, &s->loss, dD);
  os_golden_report_scalar(c, KEY("loss"), loss, cJSON_GetObjectItem(recorded, "loss")->valuedouble);
  os_train_params_zero_grad(p);
  if ((status = os_tape_backward(tape, D, dD, error)) != ONESTEP_OK)
    goto done;
  double norm = os_train_grad_norm(p);
  os_golden_report_scalar(c, KEY("grad_norm_before_clip"), norm,
                          cJSON_GetObjectItem(recorded, "grad_norm_before_clip")->valuedouble);
  os_train_clip_grads(p, norm, s->max_grad_norm);
  os_golden_report_trained(c, be, p, KEY("grad."), OS_TRAINED_GRAD, false);
  os_train_adam_step(p, &s->adam, step + 1);
  os_golden_report_trained(c, be, p, KEY("param."), OS_TRAINED_VALUE, false);
  os_train_ema_update(p, s->ema_decay);
  os_golden_report_trained(c, be, p, KEY("ema."), OS_TRAINED_EMA, false);
  status = be->ops->sync(be, error);
#undef KEY
done:
  os_tape_reset(tape);
  float *device[] = {x0, noise, cond, ehs, dD, x};
  for (size_t i = 0; i < sizeof device / sizeof *device; i++)
    if (device[i])
      be->ops->free(be, device[i]);
  free(ids);
  free(sigma);
  return status;
}

/* The case's settings; the strings point into the JSON document. */
static onestep_status
read_settings(os_golden_report *c, train_settings *s, os_train_spec *spec, const char **lora,
              const char **full, onestep_error *error)
{
  os_json_file *j = &c->json;
  os_golden_read_shape(j, &s->B, &s->F, &s->h, &s->w);
  bool has_lora = os_golden_read_spec(j, spec, lora, full);
  const char *loss = os_json_string(j, "loss", "mse");
  s->loss.kind = strcmp(loss, "huber") == 0 ? OS_LOSS_PSEUDO_HUBER : OS_LOSS_SQUARED;
  s->loss.huber_c = (float)os_json_number(j, "huber_c", 0.0);
  s->loss.edm_weight = s->loss.kind == OS_LOSS_SQUARED;
  const cJSON *o = os_json_get(j, "optimizer");
  s->adam = os_golden_read_adam(o);
  s->max_grad_norm = os_json_number(j, "max_grad_norm", 0.0);
  s->ema_decay = (float)os_json_number(j, "ema_decay", 0.0);
  if (j->status == ONESTEP_OK && (s->h < 1 || s->w < 1 || !o || !has_lora))
    os_json_fail(j, ONESTEP_ERR_FORMAT, "latent_hw, lora or optimizer is missing");
  if (j->status != ONESTEP_OK)
    return os_error_set(error, j->status, "%s", j->error->message);
  return ONESTEP_OK;
}

os_golden_result
os_golden_train_check(const char *case_dir, const os_golden_options *options)
{
  os_golden_report c = {.tolerance = options->tolerance};
  train_settings s = {0};
  os_train_spec spec = {0};
  const char *lora[OS_GOLDEN_MAX_TARGETS], *full[OS_GOLDEN_MAX_TARGETS];
  onestep_error error = {0};
  onestep_context *ctx = NULL;
  os_train_params *p = NULL;
  os_tape *tape = NULL;
  os_golden_result result = OS_GOLDEN_FAILED;
  char *json_path = os_golden_case_path(case_dir, "golden.json");
  char *st_path = os_golden_case_path(case_dir, "golden.safetensors");
  char *peft_path = os_golden_case_path(case_dir, "lora_init/adapter_model.safetensors");
  char *model = NULL;
  const char *base = strrchr(case_dir, '/');
  c.name = base && base[1] ? base + 1 : case_dir;

  if (!json_path || !st_path || !peft_path) {
    os_error_set(&error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  if (os_json_open(&c.json, json_path, &error) != ONESTEP_OK ||
      read_settings(&c, &s, &spec, lora, full, &error) != ONESTEP_OK)
    goto done;
  if (!(c.st = os_safetensors_open(st_path, &error)))
    goto done;
  model = options->model_dir ? strdup(options->model_dir)
                             : os_golden_case_path(case_dir, os_json_string(&c.json, "model", "model"));
  ctx = model ? onestep_context_new(model, &options->params, &error) : NULL;
  if (!ctx) {
    if (error.code == ONESTEP_ERR_DEVICE)
      result = OS_GOLDEN_NO_DEVICE;
    goto done;
  }
  if (!ctx->be->ops->grad) {
    os_error_set(&error, ONESTEP_ERR_DEVICE, "the %s backend cannot train yet", ctx->be->ops->name);
    result = OS_GOLDEN_NO_DEVICE;
    goto done;
  }
  s.cross_dim = ctx->src.config.unet.cross_attention_dim;
  printf("case %s (training): model %s on %s\n", c.name, model, ctx->info.device_name);
  if (!(p = os_train_params_new(ctx->src.unet, &spec, &error)) ||
      (spec.n_lora_targets > 0 && os_train_params_load_peft(p, peft_path, &error) != ONESTEP_OK))
    goto done;
  if (!(tape = os_tape_new(ctx->be))) {
    os_error_set(&error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  printf("%-56s %12s %12s  %s\n", "tensor", "rel err", "max abs", "result");
  os_golden_report_trained(&c, ctx->be, p, "init.", OS_TRAINED_VALUE, false);
  const cJSON *steps = os_json_get(&c.json, "steps"), *recorded;
  int step = 0;
  cJSON_ArrayForEach(recorded, steps)
  {
    if (run_step(&c, ctx, p, tape, &s, step++, recorded, &error) != ONESTEP_OK)
      goto done;
  }
  printf("golden %s: %d of %d tensors, worst rel err %.3e (%s), tolerance %.0e\n", c.name,
         c.compared - c.failed, c.compared, c.worst, c.worst_key, c.tolerance);
  result = c.failed == 0 && c.compared > 0 ? OS_GOLDEN_PASSED : OS_GOLDEN_FAILED;
done:
  if (error.code != ONESTEP_OK)
    fprintf(stderr, "%s: %s\n", options->program, error.message);
  os_tape_free(tape);
  os_train_params_free(p);
  onestep_context_free(ctx);
  if (c.st)
    os_safetensors_close(c.st);
  if (c.json.root)
    os_json_close(&c.json);
  free(json_path);
  free(st_path);
  free(peft_path);
  free(model);
  return result;
}
