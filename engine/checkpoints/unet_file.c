/* unet_file.c: a UNet-only safetensors file (AnimateLCM-SVD-xt and the like)
 * in diffusers naming, or in sgm naming with or without its prefix. */
#include <stdio.h>
#include <string.h>

#include "checkpoint_internal.h"
#include "error.h"
#include "sgm_names.h"

static const char *const sgm_prefixes[] = {"model.diffusion_model.", "diffusion_model.", ""};

/* The sgm prefix the file uses, or NULL when it has no sgm UNet tensors. */
static const char *sgm_prefix(const os_safetensors *st)
{
  for (size_t p = 0; p < sizeof sgm_prefixes / sizeof *sgm_prefixes; p++)
    if (os_find_tensorf(st, "%sinput_blocks.0.0.weight", sgm_prefixes[p]))
      return sgm_prefixes[p];
  return NULL;
}

onestep_status os_unet_file_add(os_checkpoint_store *s, const char *path,
                                const os_unet_config *cfg, os_weight_set *ws,
                                onestep_error *error)
{
  os_safetensors *st = os_store_open(s, path, error);
  if (!st)
    return error->code;
  onestep_status status = ONESTEP_OK;
  if (os_safetensors_find(st, "conv_in.weight") &&
      os_safetensors_find(st, "down_blocks.0.resnets.0.spatial_res_block.conv1.weight")) {
    for (int i = 0; i < st->n_tensors && status == ONESTEP_OK; i++)
      status = os_store_add_unet(s, ws, st->tensors[i].name, &st->tensors[i], error);
    return status;
  }
  const char *prefix = sgm_prefix(st);
  if (!prefix)
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: not an SVD UNet file (neither diffusers names such as "
                        "down_blocks.0.resnets.0.spatial_res_block.conv1.weight nor sgm names "
                        "such as input_blocks.0.0.weight)",
                        path);
  if (!os_find_tensorf(st, "%sinput_blocks.1.0.time_stack.in_layers.0.weight", prefix))
    return os_error_set(error, ONESTEP_ERR_MODEL,
                        "%s: an image UNet (no time_stack layers), not an SVD UNet", path);
  size_t skip = strlen(prefix);
  for (int i = 0; i < st->n_tensors && status == ONESTEP_OK; i++) {
    const os_st_tensor *t = &st->tensors[i];
    char mapped[512];
    if (!os_has_prefix(t->name, prefix) ||
        !os_sgm_unet_name(cfg, OS_TO_DIFFUSERS, t->name + skip, mapped, sizeof mapped))
      return os_error_set(error, ONESTEP_ERR_MODEL,
                          "%s: unexpected UNet tensor %s (no diffusers counterpart in the base "
                          "model's layout)",
                          path, t->name);
    status = os_store_add_unet(s, ws, mapped, t, error);
  }
  return status;
}
