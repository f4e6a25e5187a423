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

#define N_NAMES(table) (sizeof table / sizeof *table)

/* Enum <-> name through a table indexed by the enum value. */
static const char *name_of(const char *const *names, size_t n, unsigned value)
{
  return value < n ? names[value] : "unknown";
}

static bool value_of(const char *const *names, size_t n, const char *name, unsigned *value)
{
  for (size_t i = 0; name && i < n; i++)
    if (strcmp(name, names[i]) == 0) {
      *value = (unsigned)i;
      return true;
    }
  return false;
}

static const char *const precision_names[] = {
    [ONESTEP_PRECISION_AUTO] = "auto", [ONESTEP_PRECISION_FP32] = "fp32",
    [ONESTEP_PRECISION_TF32] = "tf32", [ONESTEP_PRECISION_FP16] = "fp16",
    [ONESTEP_PRECISION_BF16] = "bf16",
};

const char *onestep_precision_name(onestep_precision precision)
{
  return name_of(precision_names, N_NAMES(precision_names), (unsigned)precision);
}

bool onestep_precision_from_name(const char *name, onestep_precision *out)
{
  unsigned value;
  if (!value_of(precision_names, N_NAMES(precision_names), name, &value))
    return false;
  *out = (onestep_precision)value;
  return true;
}

static const char *const sampler_names[] = {
    [ONESTEP_SAMPLER_AUTO] = "auto",
    [ONESTEP_SAMPLER_EULER] = "euler",
    [ONESTEP_SAMPLER_CM] = "cm",
    [ONESTEP_SAMPLER_TTS] = "tts",
};

const char *onestep_sampler_name(onestep_sampler sampler)
{
  return name_of(sampler_names, N_NAMES(sampler_names), (unsigned)sampler);
}

bool onestep_sampler_from_name(const char *name, onestep_sampler *out)
{
  unsigned value;
  if (!value_of(sampler_names, N_NAMES(sampler_names), name, &value))
    return false;
  *out = (onestep_sampler)value;
  return true;
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
