/* onestep.h: public API of the Onestep image-to-video engine.
 *
 * Plain C11, no GLib. One opaque context per loaded model; a context is used
 * from one thread at a time (the app gives it a dedicated worker thread).
 */
#ifndef ONESTEP_H
#define ONESTEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onestep_context onestep_context;

typedef enum {
  ONESTEP_OK = 0,
  ONESTEP_ERR_INVALID_ARGUMENT, /* a request or parameter value is impossible */
  ONESTEP_ERR_IO,               /* a file is missing or unreadable */
  ONESTEP_ERR_FORMAT,           /* a file is corrupt or not what it claims */
  ONESTEP_ERR_MODEL,            /* configs and weights disagree, or wrong model type */
  ONESTEP_ERR_OUT_OF_MEMORY,
  ONESTEP_ERR_DEVICE,           /* the requested device is unusable */
  ONESTEP_ERR_ABORTED,          /* the abort callback asked to stop */
} onestep_status;

/* Errors carry a code and a message that names the file, tensor or
 * parameter at fault. Fixed-size so it needs no allocation. */
#define ONESTEP_MESSAGE_SIZE 1024
typedef struct {
  onestep_status code;
  char message[ONESTEP_MESSAGE_SIZE];
} onestep_error;

typedef enum {
  ONESTEP_DEVICE_AUTO = 0,
  ONESTEP_DEVICE_CPU,
  ONESTEP_DEVICE_CUDA,
} onestep_device;

/* Arithmetic of the GPU's matrix products. Buffers, norms, softmax statistics
 * and the sampler stay float32 throughout. The CPU computes in float32; asked
 * explicitly for the CPU (device CPU, not AUTO) with FP16, BF16 or TF32, it
 * rounds its product operands as the GPU does, to study a precision's effect. */
typedef enum {
  ONESTEP_PRECISION_AUTO = 0, /* fp16 operands on a GPU: the fast default */
  ONESTEP_PRECISION_FP32,     /* exact single precision (golden checks) */
  ONESTEP_PRECISION_TF32,
  ONESTEP_PRECISION_FP16,     /* fp16 operands, fp32 accumulation */
  ONESTEP_PRECISION_BF16,
} onestep_precision;

typedef enum {
  ONESTEP_SAMPLER_AUTO = 0,
  ONESTEP_SAMPLER_EULER, /* SVD's EulerDiscreteScheduler with per-frame CFG */
  ONESTEP_SAMPLER_CM,    /* consistency multistep */
  ONESTEP_SAMPLER_TTS,   /* OSV's Time Travel Sampler */
} onestep_sampler;

typedef enum {
  ONESTEP_MODEL_KIND_UNKNOWN = 0,
  ONESTEP_MODEL_KIND_BASE_SVD,
  ONESTEP_MODEL_KIND_CONSISTENCY, /* OSV-style or AnimateLCM-style distilled */
} onestep_model_kind;

typedef enum {
  ONESTEP_STAGE_LOAD = 0,
  ONESTEP_STAGE_CLIP,
  ONESTEP_STAGE_ENCODE,
  ONESTEP_STAGE_DENOISE,
  ONESTEP_STAGE_DECODE,
} onestep_stage;

typedef struct {
  onestep_device device;
  onestep_precision precision; /* see onestep_precision */
  int n_threads;            /* 0: all cores */
  const char *unet_file;    /* optional UNet-only safetensors replacing the model's UNet */
  const char *const *lora_files; /* optional LoRA files merged at load */
  const float *lora_scales;      /* one per LoRA file, NULL = all 1.0 */
  int n_lora;
  int frames_hint;          /* single-file checkpoints: frame count (0: from the file name) */
} onestep_context_params;

typedef struct {
  onestep_model_kind kind;
  onestep_device device;    /* the backend actually in use */
  /* e.g. "CPU (2 threads, OpenBLAS)" or the GPU's name; on the CPU with device AUTO it
   * goes on with "; CUDA unavailable: " and the whole reason (an onestep_error message). */
  char device_name[128 + ONESTEP_MESSAGE_SIZE];
  int default_frames;
  int default_width, default_height;
  int default_steps;
  onestep_sampler default_sampler;
  float default_min_guidance, default_max_guidance;
  int grid_points;          /* consistency grid N (0 for base SVD) */
  int64_t unet_params, vae_params, clip_params;
  char weight_dtype[8];     /* "F32", "F16" or "BF16" as stored */
} onestep_model_info;

typedef struct {
  int width, height;   /* pixels */
  int stride;          /* bytes per row */
  const uint8_t *rgb;  /* RGB8, row-major */
} onestep_image;

typedef struct {
  onestep_stage stage;
  int step, n_steps;      /* UNet evaluations done / planned within the denoise stage */
  float fraction;         /* 0..1 over the whole generation */
  /* A fast preview of the current estimate, or NULL: frames x height x width RGB8. */
  const uint8_t *preview_rgb;
  int preview_frames, preview_width, preview_height;
} onestep_progress;

typedef void (*onestep_progress_cb)(const onestep_progress *progress, void *user_data);
/* Return true to stop; polled between layers. */
typedef bool (*onestep_abort_cb)(void *user_data);
/* Sees named intermediate tensors (float32, row-major, host memory) as the
 * generation produces them; used by golden checks. It may overwrite the values
 * (same shape): the generation then goes on from them, so a check can give
 * every stage the reference's inputs and measure each stage's own error. */
typedef void (*onestep_tap_cb)(const char *name, float *data, int ndim, const int64_t *shape,
                               void *user_data);

typedef struct {
  int width, height, frames;     /* 0: model default */
  int fps;                       /* the UNet sees fps - 1 */
  int motion_bucket_id;
  float noise_aug_strength;
  float min_guidance, max_guidance; /* negative: model default */
  int steps;                     /* 0: model default */
  uint64_t seed;
  onestep_sampler sampler;
  int decode_chunk_size;         /* 0: all frames at once */
  bool want_float_frames;

  onestep_progress_cb progress;
  onestep_abort_cb abort;
  onestep_tap_cb tap;
  void *user_data;

  /* Optional noise supplied by the caller instead of the seeded generator:
   * image augmentation noise [3,H,W] and initial latent noise [F,4,h,w]. */
  const float *noise_image_aug;
  const float *noise_latents;
} onestep_request;

typedef struct {
  int frames, width, height;
  uint8_t *rgb;        /* frames x height x width x 3 */
  float *rgb_float;    /* same layout in [0,1], only if want_float_frames */
  int steps, nfe;      /* nfe: UNet evaluations, a CFG batch counting 2 */
  onestep_sampler sampler;
  int n_sigmas;
  float *sigmas;
  double seconds_clip, seconds_encode, seconds_denoise, seconds_decode;
  size_t peak_bytes;   /* peak backend memory for activations and weights */
} onestep_clip;

/* What onestep_generate would compute for a request, found without computing it:
 * the model's defaults filled in and the sampler chosen. A caller running several
 * generations weighs their work with it before the first one starts. */
typedef struct {
  int frames, width, height, steps;
  onestep_sampler sampler;
  int unet_calls;   /* the denoise stage's UNet calls, as its progress counts them */
  int unet_batch;   /* inputs of each call: 2 with classifier-free guidance, else 1 */
  int decode_chunk; /* frames per decoder call */
} onestep_plan;

onestep_context_params onestep_context_default_params(void);
onestep_request onestep_request_default(void);

onestep_context *onestep_context_new(const char *model_path,
                                     const onestep_context_params *params,
                                     onestep_error *error);
void onestep_context_free(onestep_context *ctx);

const onestep_model_info *onestep_context_get_info(const onestep_context *ctx);

/* Generates a clip; on failure returns NULL and fills error. */
onestep_clip *onestep_generate(onestep_context *ctx, const onestep_image *image,
                               const onestep_request *request, onestep_error *error);
void onestep_clip_free(onestep_clip *clip);
/* Fills plan for the request as onestep_generate would run it; fails as it would on
 * a request the model cannot run. */
onestep_status onestep_plan_request(const onestep_context *ctx, const onestep_image *image,
                                    const onestep_request *request, onestep_plan *plan,
                                    onestep_error *error);


const char *onestep_sampler_name(onestep_sampler sampler);
const char *onestep_precision_name(onestep_precision precision);
bool onestep_precision_from_name(const char *name, onestep_precision *out);
bool onestep_sampler_from_name(const char *name, onestep_sampler *out);
const char *onestep_model_kind_name(onestep_model_kind kind);
const char *onestep_stage_name(onestep_stage stage);

#ifdef __cplusplus
}
#endif
#endif
