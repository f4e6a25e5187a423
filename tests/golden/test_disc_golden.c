/* test_disc_golden.c: OSV's discriminator against the osv-a test vectors
 * (docs/training.md section 5): for the LGP and then the ACD iteration, in
 * the reference's order, D(fake) for the generator, then D(real) and
 * D(fake) for the discriminator's loss, its gradients and one Adam step;
 * every logit, loss, gradient, updated tensor and spectral-norm vector
 * within 1e-4 relative L2. A gradient far smaller than the others (a conv
 * bias before BatchNormLocal, zero but for rounding; the upsampler's bias,
 * a sum that cancels) is measured against the rms of the whole gradient
 * instead of its own norm. Then a saved discriminator reloads to the same
 * state. Usage: test-disc-golden CASE_DIR (tests/data/golden/osv-a). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_json.h"
#include "discriminator.h"
#include "safetensors.h"
#include "tape_ops.h"
#include "test_check.h"
#include "train_optim.h"

#define TOLERANCE 1e-4

typedef struct {
  const char *name;
  double worst;
  int compared;
} group;

enum { LOGITS, LOSSES, GRADS, TENSORS, VECTORS, N_GROUPS };
static group groups[N_GROUPS] = {
  { "logits" }, { "losses" }, { "gradients grad_d.*" }, { "tensors after Adam" },
  { "spectral-norm u, v" },
};

static os_safetensors *golden;
static os_backend *be;

static void
record(int g, const char *key, double rel)
{
  CHECK(rel <= TOLERANCE, "%s: relative L2 error %.3g", key, rel);
  groups[g].compared++;
  if (rel > groups[g].worst || isnan(rel))
    groups[g].worst = rel;
}

/* The reference tensor `key` as host floats (n of them), or NULL. */
static float *
reference(const os_safetensors *st, const char *key, size_t n)
{
  const os_st_tensor *t = os_safetensors_find(st, key);
  CHECK(t && (size_t)os_shape_numel(t->ndim, t->shape) == n, "%s: missing or not %zu values",
        key, n);
  if (!t || (size_t)os_shape_numel(t->ndim, t->shape) != n)
    return NULL;
  float *host = malloc(n * sizeof(float));
  os_dtype_to_f32(host, t->data, t->dtype, n);
  return host;
}

/* ||got - want|| / max(||want||, floor_rms * sqrt(n)). */
static double
floored_l2(const float *got, const float *want, size_t n, double floor_rms)
{
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < n; i++) {
    diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
    norm += (double)want[i] * want[i];
  }
  return sqrt(diff) / fmax(sqrt(norm), floor_rms * sqrt((double)n));
}

/* n backend floats against the reference tensor `key` (floor_rms: see floored_l2). */
static void
compare(int g, const os_safetensors *st, const char *key, const float *data, size_t n,
        double floor_rms)
{
  float *want = reference(st, key, n), *got = malloc(n * sizeof(float));
  be->ops->download(be, got, data, n * sizeof(float));
  record(g, key, want ? floored_l2(got, want, n, floor_rms) : INFINITY);
  free(want);
  free(got);
}

/* The rms of every recorded gradient of the discriminator in one iteration. */
static double
gradient_rms(os_train_params *p, const char *tag)
{
  double squares = 0.0;
  size_t count = 0;
  char key[512];
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *tensor = os_train_params_tensor(p, i);
    snprintf(key, sizeof key, "%s.grad_d.%s", tag, tensor->name);
    float *want = reference(golden, key, tensor->n);
    for (size_t j = 0; want && j < tensor->n; j++)
      squares += (double)want[j] * want[j];
    count += tensor->n;
    free(want);
  }
  return sqrt(squares / (double)count);
}

static void
compare_scalar(const char *key, double got, double want)
{
  record(LOSSES, key, fabs(got - want) / fmax(fabs(want), 1e-30));
}

/* A tape leaf holding the reference tensor `key` (grad: its gradient buffer or NULL). */
static os_tv
input(os_tape *t, const char *key, size_t n, float *grad)
{
  float *host = reference(golden, key, n);
  os_tv v = os_tape_alloc(t, n);
  if (!host || v == OS_TAPE_NONE)
    exit(1);
  be->ops->upload(be, os_tape_data(t, v), host, n * sizeof(float));
  free(host);
  return grad ? os_tape_leaf(t, os_tape_data(t, v), n, grad) : v;
}

typedef struct {
  int B, T, h, w, cond_dim;
  os_adam_config adam;
  double adv_g, loss_d;
} iteration;

/* Fresh Adam moments, as each stage's new optimiser starts. */
static void
reset_moments(os_train_params *p)
{
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *t = os_train_params_tensor(p, i);
    be->ops->fill(be, t->m, 0.0f, t->n);
    be->ops->fill(be, t->v, 0.0f, t->n);
  }
}

static void
run_iteration(os_disc *disc, os_tape *t, const char *tag, const char *real_key,
              const iteration *it)
{
  char key[512], fake_key[128], emb_key[128];
  onestep_error error = { 0 };
  size_t n_latents = (size_t)it->B * it->T * 4 * it->h * it->w;
  size_t n_logits = (size_t)it->B * os_disc_logit_count(disc, it->T, it->h, it->w);
  snprintf(fake_key, sizeof fake_key, "%s.student_x0", tag);
  snprintf(emb_key, sizeof emb_key, "%s.image_embeds", tag);
  os_train_params *p = os_disc_params(disc);
  reset_moments(p);
  os_train_params_zero_grad(p);

  /* 1. The generator's D(fake): gradients reach the latents, not the tensors. */
  float *fake_grad = be->ops->alloc(be, n_latents * sizeof(float));
  be->ops->fill(be, fake_grad, 0.0f, n_latents);
  os_tv fake = input(t, fake_key, n_latents, fake_grad);
  os_tv emb = input(t, emb_key, (size_t)it->B * it->cond_dim, NULL);
  os_tv logits;
  CHECK(os_disc_forward(disc, t, fake, emb, it->B, it->T, it->h, it->w, false, &logits, &error) ==
            ONESTEP_OK, "%s: D(fake): %s", tag, error.message);
  snprintf(key, sizeof key, "%s.logits_fake_g", tag);
  compare(LOGITS, golden, key, os_tape_data(t, logits), n_logits, 0.0);
  float *seed = be->ops->alloc(be, n_logits * sizeof(float));
  be->ops->fill(be, seed, 0.0f, n_logits);
  double adv = os_disc_hinge(be, os_tape_data(t, logits), n_logits, 1.0f, 1.0f, seed);
  snprintf(key, sizeof key, "%s adv_g", tag);
  compare_scalar(key, adv, it->adv_g);
  CHECK(os_tape_backward(t, logits, seed, &error) == ONESTEP_OK, "%s: %s", tag, error.message);
  double fake_norm = sqrt(be->ops->grad->dot(be, fake_grad, fake_grad, n_latents));
  printf("%s: generator's gradient into the fake latents: norm %.4g\n", tag, fake_norm);
  CHECK(isfinite(fake_norm) && fake_norm > 0, "%s: no gradient reaches the fake latents", tag);
  CHECK(os_train_grad_norm(p) == 0.0, "%s: the generator's pass left gradients in D", tag);
  be->ops->free(be, seed);
  be->ops->free(be, fake_grad);
  os_tape_reset(t);

  /* 2-3. The discriminator's D(real), D(fake), loss, backward, Adam. */
  os_tv real = input(t, real_key, n_latents, NULL);
  fake = input(t, fake_key, n_latents, NULL);
  emb = input(t, emb_key, (size_t)it->B * it->cond_dim, NULL);
  double loss_d = NAN;
  os_tv on_real, on_fake;
  CHECK(os_disc_backward_d(disc, t, real, fake, emb, it->B, it->T, it->h, it->w, &loss_d,
                           &on_real, &on_fake, &error) == ONESTEP_OK,
        "%s: the discriminator's step: %s", tag, error.message);
  snprintf(key, sizeof key, "%s.logits_real", tag);
  compare(LOGITS, golden, key, os_tape_data(t, on_real), n_logits, 0.0);
  snprintf(key, sizeof key, "%s.logits_fake_d", tag);
  compare(LOGITS, golden, key, os_tape_data(t, on_fake), n_logits, 0.0);
  snprintf(key, sizeof key, "%s loss_d", tag);
  compare_scalar(key, loss_d, it->loss_d);
  double rms = gradient_rms(p, tag);
  for (int i = 0; i < os_train_params_count(p); i++) {
    os_train_tensor *tensor = os_train_params_tensor(p, i);
    snprintf(key, sizeof key, "%s.grad_d.%s", tag, tensor->name);
    compare(GRADS, golden, key, tensor->grad, tensor->n, rms);
  }
  os_tape_reset(t);
  os_train_adam_step(p, &it->adam, 1);

  /* The updated tensors and u, v, as the saved file holds them. */
  char path[] = "/tmp/onestep-disc-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0 && os_disc_save(disc, path, &error) == ONESTEP_OK, "saving: %s", error.message);
  os_safetensors *saved = os_safetensors_open(path, &error);
  CHECK(saved != NULL, "reopening the saved discriminator: %s", error.message);
  for (int i = 0; saved && i < saved->n_tensors; i++) {
    const os_st_tensor *s = &saved->tensors[i];
    size_t len = strlen(s->name);
    bool vector = len > 9 && (!strcmp(s->name + len - 9, ".weight_u") ||
                              !strcmp(s->name + len - 9, ".weight_v"));
    size_t n = (size_t)os_shape_numel(s->ndim, s->shape);
    snprintf(key, sizeof key, "%s.disc.%s", tag, s->name);
    float *want = reference(golden, key, n);
    record(vector ? VECTORS : TENSORS, key,
           want ? floored_l2((const float *)s->data, want, n, 0.0) : INFINITY);
    free(want);
  }
  os_safetensors_close(saved);
  if (fd >= 0)
    close(fd), unlink(path);
}

/* A discriminator saved and loaded into a new one: the same next logits
 * (both advance their u and v alike), bit for bit. */
static void
check_reload(os_disc *disc, os_dinov2 *dino, const os_disc_config *cfg, os_tape *t,
             const iteration *it)
{
  onestep_error error = { 0 };
  char path[] = "/tmp/onestep-disc-XXXXXX";
  int fd = mkstemp(path);
  os_disc *copy = os_disc_new(dino, cfg, &error);
  CHECK(fd >= 0 && copy && os_disc_save(disc, path, &error) == ONESTEP_OK &&
            os_disc_load(copy, path, &error) == ONESTEP_OK,
        "save and load: %s", error.message);
  if (fd >= 0)
    close(fd), unlink(path);
  if (!copy)
    return;
  size_t n_latents = (size_t)it->B * it->T * 4 * it->h * it->w;
  size_t n_logits = (size_t)it->B * os_disc_logit_count(disc, it->T, it->h, it->w);
  os_tv x = input(t, "acd.x0", n_latents, NULL);
  os_tv emb = input(t, "acd.image_embeds", (size_t)it->B * it->cond_dim, NULL);
  os_tv a, b;
  os_disc_forward(disc, t, x, emb, it->B, it->T, it->h, it->w, false, &a, &error);
  os_disc_forward(copy, t, x, emb, it->B, it->T, it->h, it->w, false, &b, &error);
  CHECK(os_tape_status(t, &error) == ONESTEP_OK &&
            memcmp(os_tape_data(t, a), os_tape_data(t, b), n_logits * sizeof(float)) == 0,
        "a reloaded discriminator gives other logits");
  os_tape_reset(t);
  os_disc_free(copy);
}

static double
json_path_number(os_json_file *f, const char *a, const char *b, const char *c)
{
  const cJSON *node = os_json_get(f, a);
  node = cJSON_GetObjectItemCaseSensitive(node, b);
  node = c ? cJSON_GetObjectItemCaseSensitive(node, c) : node;
  CHECK(cJSON_IsNumber(node), "golden.json: %s.%s%s%s missing", a, b, c ? "." : "", c ? c : "");
  return cJSON_IsNumber(node) ? node->valuedouble : NAN;
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE_DIR\n", argv[0]);
    return 2;
  }
  char path[4200];
  onestep_error error = { 0 };
  os_json_file json;
  snprintf(path, sizeof path, "%s/golden.json", argv[1]);
  if (os_json_open(&json, path, &error) != ONESTEP_OK) {
    fprintf(stderr, "%s\n", error.message);
    return 1;
  }
  const cJSON *dino_cfg = os_json_get(&json, "dinov2");
  const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(dino_cfg, "hooks"), *hook;
  int taps[OS_DINOV2_MAX_TAPS], n_taps = 0;
  cJSON_ArrayForEach(hook, hooks) if (n_taps < OS_DINOV2_MAX_TAPS) taps[n_taps++] = hook->valueint;
  int hw[2] = { 0, 0 };
  os_json_int_list(&json, "latent_hw", NULL, 0, hw, 2);
  iteration it = {
    .B = os_json_int(&json, "batch", 1), .T = os_json_int(&json, "frames", 1), .h = hw[0],
    .w = hw[1],
    .adam = { .lr = (float)json_path_number(&json, "optimizer_d", "lr", NULL),
              .eps = (float)json_path_number(&json, "optimizer_d", "eps", NULL) },
  };
  const cJSON *betas = cJSON_GetObjectItemCaseSensitive(os_json_get(&json, "optimizer_d"), "betas");
  it.adam.beta1 = (float)cJSON_GetArrayItem(betas, 0)->valuedouble;
  it.adam.beta2 = (float)cJSON_GetArrayItem(betas, 1)->valuedouble;

  snprintf(path, sizeof path, "%s/golden.safetensors", argv[1]);
  golden = os_safetensors_open(path, &error);
  be = os_backend_cpu_new(2, &error);
  snprintf(path, sizeof path, "%s/dinov2", argv[1]);
  os_dinov2 *dino = golden && be ? os_dinov2_load(path, be, taps, n_taps, &error) : NULL;
  const os_st_tensor *emb = golden ? os_safetensors_find(golden, "lgp.image_embeds") : NULL;
  it.cond_dim = emb ? (int)emb->shape[1] : 0;
  os_disc_config cfg = { .cond_dim = it.cond_dim, .cmap = os_json_int(&json, "cmap", 64) };
  os_disc *disc = dino ? os_disc_new(dino, &cfg, &error) : NULL;
  snprintf(path, sizeof path, "%s/disc_init.safetensors", argv[1]);
  if (!disc || os_disc_load(disc, path, &error) != ONESTEP_OK) {
    fprintf(stderr, "setting up: %s\n", error.message);
    return 1;
  }
  os_tape *t = os_tape_new(be);

  static const char *const tags[2] = { "lgp", "acd" }, *const reals[2] = { "lgp.x0", "acd.target" };
  for (int i = 0; i < 2; i++) {
    it.adv_g = json_path_number(&json, "iterations", tags[i], "adv_g");
    it.loss_d = json_path_number(&json, "iterations", tags[i], "loss_d");
    run_iteration(disc, t, tags[i], reals[i], &it);
  }
  check_reload(disc, dino, &cfg, t, &it);

  printf("%-24s %8s  %s\n", "group", "compared", "worst relative L2 error");
  for (int g = 0; g < N_GROUPS; g++)
    printf("%-24s %8d  %.3e\n", groups[g].name, groups[g].compared, groups[g].worst);
  os_tape_free(t);
  os_disc_free(disc);
  os_dinov2_free(dino);
  os_safetensors_close(golden);
  os_json_close(&json);
  be->ops->destroy(be);
  return test_summary("test-disc-golden");
}
