/* checkpoint.c: os_checkpoint_open: folder or single file, optional UNet
 * replacement and LoRA, and what kind of model the result is. */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "error.h"
#include "grid.h"
#include "lora.h"
#include "preview.h"

os_checkpoint_options os_checkpoint_default_options(void)
{
  return (os_checkpoint_options){0};
}

onestep_sampler os_checkpoint_auto_sampler(onestep_model_kind kind, int steps)
{
  if (kind == ONESTEP_MODEL_KIND_CONSISTENCY)
    return steps == 1 ? ONESTEP_SAMPLER_TTS : ONESTEP_SAMPLER_CM;
  return ONESTEP_SAMPLER_EULER;
}

/* <dir>/<comp>/<stem>.safetensors, else its .fp16 variant. */
static onestep_status component_path(const char *dir, const char *comp, const char *stem,
                                     char *out, size_t cap, onestep_error *error)
{
  snprintf(out, cap, "%s/%s/%s.safetensors", dir, comp, stem);
  if (access(out, F_OK) == 0)
    return ONESTEP_OK;
  snprintf(out, cap, "%s/%s/%s.fp16.safetensors", dir, comp, stem);
  if (access(out, F_OK) == 0)
    return ONESTEP_OK;
  return os_error_set(error, ONESTEP_ERR_IO,
                      "%s weights missing: neither %s/%s/%s.safetensors nor its .fp16 variant "
                      "exists",
                      comp, dir, comp, stem);
}

static os_weight_set *open_set(os_checkpoint_store *s, const char *dir, const char *comp,
                               const char *stem, os_backend *be, bool is_unet,
                               onestep_error *error)
{
  char path[4200];
  if (component_path(dir, comp, stem, path, sizeof path, error) != ONESTEP_OK)
    return NULL;
  os_safetensors *st = os_store_open(s, path, error);
  if (!st)
    return NULL;
  os_weight_set *ws = os_weight_set_new(comp, path, be);
  if (!ws) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    return NULL;
  }
  onestep_status status = ONESTEP_OK;
  if (is_unet) {
    for (int i = 0; i < st->n_tensors && status == ONESTEP_OK; i++)
      status = os_store_add_unet(s, ws, st->tensors[i].name, &st->tensors[i], error);
  } else {
    status = os_weight_set_add_file(ws, st, error);
  }
  if (status != ONESTEP_OK) {
    os_weight_set_free(ws);
    return NULL;
  }
  return ws;
}

static onestep_status open_folder(os_checkpoint_store *s, const char *dir,
                                  const os_checkpoint_options *o, os_backend *be,
                                  os_model_source *out, onestep_error *error)
{
  onestep_status status = os_model_config_load(dir, &out->config, error);
  if (status != ONESTEP_OK)
    return status;
  if (o->unet_file) {
    out->unet = os_weight_set_new("unet", o->unet_file, be);
    if (!out->unet)
      return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", o->unet_file);
    if ((status = os_unet_file_add(s, o->unet_file, &out->config.unet, out->unet, error)))
      return status;
  } else if (!(out->unet = open_set(s, dir, "unet", "diffusion_pytorch_model", be, true, error))) {
    return error->code;
  }
  if (!(out->vae = open_set(s, dir, "vae", "diffusion_pytorch_model", be, false, error)) ||
      !(out->clip = open_set(s, dir, "image_encoder", "model", be, false, error)))
    return error->code;
  return ONESTEP_OK;
}

static bool name_contains(const char *path, const char *word)
{
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char lower[512];
  size_t i = 0;
  for (; base[i] && i + 1 < sizeof lower; i++)
    lower[i] = (char)tolower((unsigned char)base[i]);
  lower[i] = '\0';
  return strstr(lower, word) != NULL;
}

/* A folder whose scheduler is a consistency scheduler (AnimateLCM's
 * AnimateLCMSVDStochasticIterativeScheduler, diffusers' CMStochasticIterative):
 * its grid size, else 0. */
static int folder_consistency_grid(const char *dir)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  char text[16384];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  cJSON *json = cJSON_Parse(text);
  int grid = 0;
  const cJSON *cls = cJSON_GetObjectItemCaseSensitive(json, "_class_name");
  if (cJSON_IsString(cls) && strstr(cls->valuestring, "StochasticIterative")) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(json, "num_train_timesteps");
    grid = cJSON_IsNumber(n) && n->valueint >= 2 ? n->valueint : OS_CM_GRID_ANIMATELCM;
  }
  cJSON_Delete(json);
  return grid;
}

/* Kind and defaults: AnimateLCM (grid 40, 4 steps) and OSV-style (grid 100,
 * 1 step) are recognised by name or scheduler; a foreign UNet file is unknown. */
static void classify(const char *path, bool is_dir, const os_checkpoint_options *o,
                     os_model_source *out)
{
  const char *named = o->unet_file ? o->unet_file : path;
  int grid = 0;
  if (name_contains(named, "animatelcm"))
    grid = OS_CM_GRID_ANIMATELCM;
  else if (name_contains(named, "osv"))
    grid = OS_CM_GRID_OSV;
  else if (is_dir && !o->unet_file)
    grid = folder_consistency_grid(path);
  if (grid) {
    out->kind = ONESTEP_MODEL_KIND_CONSISTENCY;
    out->grid_points = grid;
    out->default_steps = grid == OS_CM_GRID_OSV ? 1 : 4;
    out->default_min_guidance = out->default_max_guidance = 1.0f; /* guidance is distilled in */
  } else {
    out->kind = o->unet_file ? ONESTEP_MODEL_KIND_UNKNOWN : ONESTEP_MODEL_KIND_BASE_SVD;
    out->grid_points = 0;
    out->default_steps = 25;
    out->default_min_guidance = 1.0f;
    out->default_max_guidance = 3.0f;
  }
  out->default_sampler = os_checkpoint_auto_sampler(out->kind, out->default_steps);
}

onestep_status os_checkpoint_open(const char *path, const os_checkpoint_options *options,
                                  os_backend *be, os_model_source *out, onestep_error *error)
{
  onestep_error local;
  if (!error)
    error = &local;
  os_error_clear(error);
  os_checkpoint_options defaults = os_checkpoint_default_options();
  if (!options)
    options = &defaults;
  memset(out, 0, sizeof *out);
  struct stat sb;
  if (!path || stat(path, &sb) != 0)
    return os_error_set(error, ONESTEP_ERR_IO, "model %s: %s", path ? path : "(none)",
                        path ? strerror(errno) : "no path given");
  if (!(out->store = os_store_new()))
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory opening %s", path);
  bool is_dir = S_ISDIR(sb.st_mode);
  onestep_status status = is_dir ? open_folder(out->store, path, options, be, out, error)
                                 : os_single_file_open(out->store, path, options, be, out, error);
  if (status == ONESTEP_OK)
    status = os_lora_merge_prepare(out->store, &out->config.unet, options->lora_files,
                                   options->lora_scales, options->n_lora, out->unet, error);
  if (status != ONESTEP_OK) {
    os_checkpoint_close(out);
    return status;
  }
  classify(path, is_dir, options, out);
  return ONESTEP_OK;
}

void os_checkpoint_close(os_model_source *src)
{
  os_weight_set_free(src->unet);
  os_weight_set_free(src->vae);
  os_weight_set_free(src->clip);
  os_store_free(src->store);
  memset(src, 0, sizeof *src);
}

uint64_t os_checkpoint_decoder_hash(const os_model_source *src)
{
  static const char *const prefixes[] = {"decoder.", "first_stage_model.decoder."};
  for (int i = 0; i < src->store->n_files; i++)
    for (int p = 0; p < 2; p++)
      if (os_find_tensorf(src->store->files[i], "%sconv_in.weight", prefixes[p]))
        return os_preview_vae_hash(src->store->files[i], prefixes[p]);
  return 0;
}
