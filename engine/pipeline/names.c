/* names.c: defaults and the string names of public enums. */
#include <string.h>

#include "onestep.h"

onestep_context_params onestep_context_default_params(void)
{
  onestep_context_params params = {0};
  params.device = ONESTEP_DEVICE_AUTO;
  return params;
}

onestep_request onestep_request_default(void)
{
  /* The diffusers pipeline's call defaults; sizes, frames, steps and guidance
   * come from the model when left at 0 / negative. */
  onestep_request request = {0};
  request.fps = 7;
  request.motion_bucket_id = 127;
  request.noise_aug_strength = 0.02f;
  request.min_guidance = -1.0f;
  request.max_guidance = -1.0f;
  request.sampler = ONESTEP_SAMPLER_AUTO;
  return request;
}

static const char *const precision_names[] = {
    [ONESTEP_PRECISION_AUTO] = "auto", [ONESTEP_PRECISION_FP32] = "fp32",
    [ONESTEP_PRECISION_TF32] = "tf32", [ONESTEP_PRECISION_FP16] = "fp16",
    [ONESTEP_PRECISION_BF16] = "bf16",
};

const char *onestep_precision_name(onestep_precision precision)
{
  if ((unsigned)precision < sizeof precision_names / sizeof *precision_names)
    return precision_names[precision];
  return "unknown";
}

bool onestep_precision_from_name(const char *name, onestep_precision *out)
{
  for (size_t i = 0; i < sizeof precision_names / sizeof *precision_names; i++)
    if (name && strcmp(name, precision_names[i]) == 0) {
      *out = (onestep_precision)i;
      return true;
    }
  return false;
}

static const char *const sampler_names[] = {
    [ONESTEP_SAMPLER_AUTO] = "auto",
    [ONESTEP_SAMPLER_EULER] = "euler",
    [ONESTEP_SAMPLER_CM] = "cm",
    [ONESTEP_SAMPLER_TTS] = "tts",
};

const char *onestep_sampler_name(onestep_sampler sampler)
{
  if ((unsigned)sampler < sizeof sampler_names / sizeof *sampler_names)
    return sampler_names[sampler];
  return "unknown";
}

bool onestep_sampler_from_name(const char *name, onestep_sampler *out)
{
  for (size_t i = 0; i < sizeof sampler_names / sizeof *sampler_names; i++)
    if (name && strcmp(name, sampler_names[i]) == 0) {
      *out = (onestep_sampler)i;
      return true;
    }
  return false;
}

const char *onestep_model_kind_name(onestep_model_kind kind)
{
  switch (kind) {
  case ONESTEP_MODEL_KIND_BASE_SVD:
    return "base-svd";
  case ONESTEP_MODEL_KIND_CONSISTENCY:
    return "consistency";
  case ONESTEP_MODEL_KIND_UNKNOWN:
    break;
  }
  return "unknown";
}

const char *onestep_stage_name(onestep_stage stage)
{
  switch (stage) {
  case ONESTEP_STAGE_LOAD:
    return "load";
  case ONESTEP_STAGE_CLIP:
    return "clip";
  case ONESTEP_STAGE_ENCODE:
    return "encode";
  case ONESTEP_STAGE_DENOISE:
    return "denoise";
  case ONESTEP_STAGE_DECODE:
    return "decode";
  }
  return "unknown";
}
