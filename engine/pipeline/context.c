/* context.c: loading a diffusers SVD folder onto a backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "pipeline_internal.h"

/* Picks the backend the params ask for; for auto, CUDA when usable, else the
 * CPU, and says in device_name why CUDA was not used. */
static os_backend *open_backend(const onestep_context_params *params, onestep_model_info *info,
                                onestep_error *error)
{
  onestep_error cuda_error = {0};
  if (params->device == ONESTEP_DEVICE_CUDA || params->device == ONESTEP_DEVICE_AUTO) {
    os_backend *be = os_backend_cuda_new(&cuda_error);
    if (be) {
      info->device = ONESTEP_DEVICE_CUDA;
      snprintf(info->device_name, sizeof info->device_name, "CUDA GPU");
      return be;
    }
    if (params->device == ONESTEP_DEVICE_CUDA) {
      os_error_set(error, ONESTEP_ERR_DEVICE, "device cuda is unusable: %s", cuda_error.message);
      return NULL;
    }
  }
  os_backend *be = os_backend_cpu_new(params->n_threads, error);
  if (!be)
    return NULL;
  long threads = params->n_threads > 0 ? params->n_threads : sysconf(_SC_NPROCESSORS_ONLN);
  info->device = ONESTEP_DEVICE_CPU;
  if (params->device == ONESTEP_DEVICE_AUTO)
    snprintf(info->device_name, sizeof info->device_name,
             "CPU (%ld threads, OpenBLAS); CUDA unavailable: %s", threads, cuda_error.message);
  else
    snprintf(info->device_name, sizeof info->device_name, "CPU (%ld threads, OpenBLAS)", threads);
  return be;
}

/* Opens <dir>/<comp>/<stem>.safetensors, else the .fp16 variant, and registers its tensors. */
static onestep_status open_component(onestep_context *ctx, const char *comp, const char *stem,
                                     const char *override_file, os_component *part,
                                     onestep_error *error)
{
  char path[4200], fp16_path[4200];
  snprintf(path, sizeof path, "%s/%s/%s.safetensors", ctx->cfg.path, comp, stem);
  snprintf(fp16_path, sizeof fp16_path, "%s/%s/%s.fp16.safetensors", ctx->cfg.path, comp, stem);
  const char *chosen = override_file;
  if (!chosen) {
    if (access(path, F_OK) == 0)
      chosen = path;
    else if (access(fp16_path, F_OK) == 0)
      chosen = fp16_path;
    else
      return os_error_set(error, ONESTEP_ERR_IO, "%s weights missing: neither %s nor %s exists",
                          comp, path, fp16_path);
  }
  part->file = os_safetensors_open(chosen, error);
  if (!part->file)
    return error ? error->code : ONESTEP_ERR_IO;
  part->weights = os_weight_set_new(comp, chosen, ctx->be);
  if (!part->weights)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", chosen);
  return os_weight_set_add_file(part->weights, part->file, error);
}

/* The models' bind latches errors in the weight set; finish reports them and unused tensors. */
static onestep_status finish_component(os_component *part, const void *model, const char *comp,
                                       onestep_error *error)
{
  onestep_status status = os_weights_finish(part->weights, error);
  if (status == ONESTEP_OK && !model)
    status = os_error_set(error, ONESTEP_ERR_MODEL, "%s: the model could not be built", comp);
  return status;
}

/* Sizes that must agree between the components' configs. */
static onestep_status check_configs_agree(const os_model_config *cfg, onestep_error *error)
{
  if (cfg->unet.in_channels != cfg->unet.out_channels + cfg->vae.latent_channels)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: unet in_channels %d is not out_channels %d + vae latent_channels %d",
                        cfg->path, cfg->unet.in_channels, cfg->unet.out_channels,
                        cfg->vae.latent_channels);
  if (cfg->unet.out_channels != cfg->vae.latent_channels)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: unet out_channels %d differs from vae latent_channels %d", cfg->path,
                        cfg->unet.out_channels, cfg->vae.latent_channels);
  if (cfg->unet.cross_attention_dim != cfg->clip.projection_dim)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: unet cross_attention_dim %d differs from image_encoder projection_dim %d",
                        cfg->path, cfg->unet.cross_attention_dim, cfg->clip.projection_dim);
  return ONESTEP_OK;
}

onestep_context *onestep_context_new(const char *model_path, const onestep_context_params *params,
                                     onestep_error *error)
{
  os_error_clear(error);
  onestep_context_params defaults = onestep_context_default_params();
  if (!params)
    params = &defaults;
  if (!model_path) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "model path is missing");
    return NULL;
  }
  if (params->n_lora > 0) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "LoRA files are not supported yet (%s)",
                 params->lora_files[0]);
    return NULL;
  }
  onestep_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  if (os_model_config_load(model_path, &ctx->cfg, error) != ONESTEP_OK ||
      check_configs_agree(&ctx->cfg, error) != ONESTEP_OK)
    goto fail;
  ctx->be = open_backend(params, &ctx->info, error);
  if (!ctx->be)
    goto fail;

  if (open_component(ctx, "unet", "diffusion_pytorch_model", params->unet_file, &ctx->unet_part,
                     error) != ONESTEP_OK)
    goto fail;
  ctx->unet = os_unet_bind(&ctx->cfg.unet, ctx->unet_part.weights);
  if (finish_component(&ctx->unet_part, ctx->unet, "unet", error) != ONESTEP_OK)
    goto fail;

  if (open_component(ctx, "vae", "diffusion_pytorch_model", NULL, &ctx->vae_part, error) !=
      ONESTEP_OK)
    goto fail;
  ctx->vae = os_vae_bind(&ctx->cfg.vae, ctx->vae_part.weights);
  if (finish_component(&ctx->vae_part, ctx->vae, "vae", error) != ONESTEP_OK)
    goto fail;

  if (open_component(ctx, "image_encoder", "model", NULL, &ctx->clip_part, error) != ONESTEP_OK)
    goto fail;
  ctx->clip = os_clip_bind(&ctx->cfg.clip, ctx->clip_part.weights);
  if (finish_component(&ctx->clip_part, ctx->clip, "image_encoder", error) != ONESTEP_OK)
    goto fail;

  os_fill_model_defaults(&ctx->cfg, os_vae_downscale(ctx->vae), &ctx->info);
  ctx->info.unet_params = os_weights_param_count(ctx->unet_part.weights);
  ctx->info.vae_params = os_weights_param_count(ctx->vae_part.weights);
  ctx->info.clip_params = os_weights_param_count(ctx->clip_part.weights);
  snprintf(ctx->info.weight_dtype, sizeof ctx->info.weight_dtype, "%s",
           os_weights_dtype_name(ctx->unet_part.weights));
  return ctx;

fail:
  onestep_context_free(ctx);
  return NULL;
}

static void component_free(os_component *part)
{
  if (part->weights)
    os_weight_set_free(part->weights);
  if (part->file)
    os_safetensors_close(part->file);
}

void onestep_context_free(onestep_context *ctx)
{
  if (!ctx)
    return;
  if (ctx->unet)
    os_unet_free(ctx->unet);
  if (ctx->vae)
    os_vae_free(ctx->vae);
  if (ctx->clip)
    os_clip_free(ctx->clip);
  component_free(&ctx->unet_part);
  component_free(&ctx->vae_part);
  component_free(&ctx->clip_part);
  if (ctx->be)
    ctx->be->ops->destroy(ctx->be);
  free(ctx);
}

const onestep_model_info *onestep_context_get_info(const onestep_context *ctx)
{
  return &ctx->info;
}
