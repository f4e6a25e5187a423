/* context.c: opening a checkpoint on a backend and binding its models. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
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
    os_backend *be = os_backend_cuda_new(params->precision, &cuda_error);
    if (be) {
      info->device = ONESTEP_DEVICE_CUDA;
      snprintf(info->device_name, sizeof info->device_name, "%s", be->name);
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
  if (params->device == ONESTEP_DEVICE_AUTO) {
    snprintf(info->device_name, sizeof info->device_name,
             "CPU (%ld threads, OpenBLAS); CUDA unavailable: %s", threads, cuda_error.message);
    return be;
  }
  /* Asked for the CPU with a GPU precision: reproduce that precision's
   * rounding, of product operands and (fp16, bf16) of what 16-bit buffers store. */
  bool rounds = params->precision != ONESTEP_PRECISION_AUTO &&
                params->precision != ONESTEP_PRECISION_FP32;
  bool stores_16_bits = params->precision == ONESTEP_PRECISION_FP16 ||
                        params->precision == ONESTEP_PRECISION_BF16;
  if (rounds) {
    os_backend_cpu_set_operand_precision(be, params->precision);
    os_backend_cpu_set_storage_precision(be, params->precision);
  }
  const char *rounded = !rounds          ? ""
                        : stores_16_bits ? ", operands and activations rounded to "
                                         : ", operands rounded to ";
  snprintf(info->device_name, sizeof info->device_name, "CPU (%ld threads, OpenBLAS)%s%s%s",
           threads, rounded, rounds ? onestep_precision_name(params->precision) : "",
           rounds ? " as on a GPU" : "");
  return be;
}

/* The models' bind latches errors in the weight set; finish reports them and unused tensors. */
static onestep_status finish_component(os_weight_set *ws, const void *model, const char *comp,
                                       onestep_error *error)
{
  onestep_status status = os_weights_finish(ws, error);
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
  onestep_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  ctx->be = open_backend(params, &ctx->info, error);
  if (!ctx->be)
    goto fail;
  ctx->host_threads = params->n_threads > 0 ? params->n_threads : omp_get_num_procs();

  os_checkpoint_options options = os_checkpoint_default_options();
  options.unet_file = params->unet_file;
  options.lora_files = params->lora_files;
  options.lora_scales = params->lora_scales;
  options.n_lora = params->n_lora;
  options.frames_hint = params->frames_hint;
  if (os_checkpoint_open(model_path, &options, ctx->be, &ctx->src, error) != ONESTEP_OK)
    goto fail;
  os_model_config *cfg = &ctx->src.config;
  if (check_configs_agree(cfg, error) != ONESTEP_OK)
    goto fail;

  ctx->unet = os_unet_bind(&cfg->unet, ctx->src.unet);
  if (finish_component(ctx->src.unet, ctx->unet, "unet", error) != ONESTEP_OK)
    goto fail;
  ctx->vae = os_vae_bind(&cfg->vae, ctx->src.vae);
  if (finish_component(ctx->src.vae, ctx->vae, "vae", error) != ONESTEP_OK)
    goto fail;
  ctx->clip = os_clip_bind(&cfg->clip, ctx->src.clip);
  if (finish_component(ctx->src.clip, ctx->clip, "image_encoder", error) != ONESTEP_OK)
    goto fail;

  os_fill_model_info(&ctx->src, os_vae_downscale(ctx->vae), &ctx->info);
  return ctx;

fail:
  onestep_context_free(ctx);
  return NULL;
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
  if (ctx->preview_state == OS_PREVIEW_READY)
    os_preview_free(&ctx->preview);
  os_checkpoint_close(&ctx->src);
  if (ctx->be)
    ctx->be->ops->destroy(ctx->be);
  free(ctx);
}

const onestep_model_info *onestep_context_get_info(const onestep_context *ctx)
{
  return &ctx->info;
}
