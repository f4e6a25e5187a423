/* onestep_train.h: public API of Onestep's training (docs/training.md).
 *
 * Plain C11, no GLib, like onestep.h. Training reads a latent cache (clips
 * already encoded by the model's VAE and CLIP), and trains LoRA adapters and
 * chosen tensors of the UNet with SVD's denoising objective. Every random
 * draw comes from the seed, the step and its purpose, so a run resumed from a
 * checkpoint continues bit for bit, on any thread count.
 */
#ifndef ONESTEP_TRAIN_H
#define ONESTEP_TRAIN_H

#include "onestep.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the latent cache ---- */

/* A cache folder holds cache.json (the model's identity, the clip size and
 * frame rate, the shards) and shards of clips (safetensors: latents
 * [n, F, 4, h, w] = VAE posterior mean x 0.18215, cond_latent [n, 4, h, w] =
 * the first frame's posterior mean with noise augmentation, image_embeds
 * [n, D] = the first frame's CLIP embedding). */
typedef struct onestep_cache_writer onestep_cache_writer;

/* Starts a cache at dir, which must not exist; it is written under a
 * temporary name and appears only when finished. frames, width, height: the
 * clip size (width and height multiples of the VAE's downscale); fps: the
 * frame rate the clips were sampled at (the UNet is conditioned on it). */
onestep_cache_writer *onestep_cache_writer_new(onestep_context *ctx, const char *dir, int frames,
                                               int width, int height, float fps,
                                               onestep_error *error);
/* Encodes one clip: `frames` RGB images of exactly width x height. */
onestep_status onestep_cache_writer_add(onestep_cache_writer *w, const onestep_image *frames,
                                        onestep_error *error);
int onestep_cache_writer_count(const onestep_cache_writer *w);
/* Writes the last shard and cache.json and moves the cache into place. */
onestep_status onestep_cache_writer_finish(onestep_cache_writer *w, onestep_error *error);
/* Without finish, removes everything written. */
void onestep_cache_writer_free(onestep_cache_writer *w);

/* ---- training ---- */

typedef enum {
  ONESTEP_LOSS_MSE = 0,     /* SVD's weighted squared error */
  ONESTEP_LOSS_PSEUDO_HUBER /* element-wise sqrt(d^2 + c^2) - c */
} onestep_loss;

typedef enum {
  ONESTEP_OBJECTIVE_DIFFUSION = 0, /* SVD's denoising objective (fine-tuning, teachers) */
  ONESTEP_OBJECTIVE_OSV_LGP,       /* OSV stage 1: latent GAN pretraining (adapters only) */
  ONESTEP_OBJECTIVE_OSV_ACD,       /* OSV stage 2: adversarial consistency distillation */
} onestep_objective;

typedef struct {
  const char *model_path;          /* the base model */
  onestep_context_params context;  /* device, threads */
  const char *cache_dir;
  /* What trains: LoRA on Linear layers whose module names match a glob, and
   * tensors trained in full whose names match a glob. */
  int lora_rank;
  float lora_alpha;
  const char *const *lora_targets;
  int n_lora_targets;
  const char *const *train_targets;
  int n_train_targets;
  /* The objective: x = x0 + s eps with ln s ~ N(sigma_log_mean, sigma_log_std). */
  onestep_loss loss;
  float huber_c;
  float sigma_log_mean, sigma_log_std;
  int motion_bucket_id;
  float noise_aug_strength;
  /* AdamW, clipping, EMA. */
  float lr, beta1, beta2, eps, weight_decay;
  float max_grad_norm; /* 0: no clipping */
  float ema_decay;
  int batch;
  uint64_t seed;
  /* Gradient checkpointing: once the device holds more than this many bytes
   * during the forward, each further UNet block keeps only its output and is
   * recomputed in the backward (the same gradients). 0: keep everything. */
  size_t checkpoint_budget;

  /* OSV (docs/training.md): the objective's stage, the frozen DINOv2 folder
   * (Hugging Face Dinov2Model) behind the discriminator, and its settings. */
  onestep_objective objective;
  const char *dinov2_path;
  int disc_cmap;                     /* 64 */
  float lr_d, beta1_d, beta2_d;      /* the discriminator's Adam: 1e-5, (0, 0.999) */
  float max_grad_norm_d;             /* 1.0 */
  float lambda_adv;                  /* 0.1 */
  int grid_points, teacher_steps;    /* 100, m = 5 */
  float guidance_min, guidance_max;  /* 1, 3: frame-wise CFG of the teacher */
  /* Stage 2 starts from this stage-1 checkpoint folder (its adapters and
   * discriminator, fresh moments, the EMA equal to the student); NULL: none. */
  const char *init_from;
} onestep_train_params;

/* The defaults: LoRA rank 8 (alpha 8) on the attention projections, MSE,
 * ln s ~ N(0.7, 1.6), AdamW lr 1e-4 (0.9, 0.999, 1e-8, wd 0.01), clipping at
 * 1.0, EMA 0.999, batch 1, seed 0, motion bucket 127, noise augmentation 0.02,
 * and OSV's settings as docs/training.md gives them (objective: diffusion). */
onestep_train_params onestep_train_default_params(void);

typedef struct onestep_trainer onestep_trainer;

typedef struct {
  int64_t step;          /* steps done, this one included */
  double loss;           /* the generator's loss for OSV */
  double grad_norm;      /* before clipping (the generator's for OSV) */
  /* OSV only */
  double loss_d, adv_g, consistency, grad_norm_d;
  int grid_index;
  float lr;
  double seconds;        /* this step's wall time */
  size_t peak_bytes;     /* the backend's peak memory so far */
} onestep_train_stats;

onestep_trainer *onestep_trainer_new(const onestep_train_params *params, onestep_error *error);
void onestep_trainer_free(onestep_trainer *trainer);

/* What trains, for people: "LoRA rank 8 on 90 layers + 20 tensors, 1.2 M values". */
const char *onestep_trainer_describe(const onestep_trainer *trainer);
const onestep_model_info *onestep_trainer_model_info(const onestep_trainer *trainer);
int64_t onestep_trainer_step_count(const onestep_trainer *trainer);
/* The cache's clips: frames, size in pixels and frame rate. */
void onestep_trainer_clip_size(const onestep_trainer *trainer, int *frames, int *width,
                               int *height, float *fps);

/* One optimiser step on a batch drawn from the cache. */
onestep_status onestep_trainer_step(onestep_trainer *trainer, onestep_train_stats *stats,
                                    onestep_error *error);

/* The whole training state (trained values, Adam moments, EMA, step count,
 * and for OSV the discriminator with its spectral-norm vectors) in a folder
 * of safetensors files, written beside it (PATH.new) and swapped in: after a
 * failure (a full disk) the earlier checkpoint at path is intact. */
onestep_status onestep_trainer_save(onestep_trainer *trainer, const char *path,
                                    onestep_error *error);
/* Restores a state saved by a trainer with the same targets, rank and objective. */
onestep_status onestep_trainer_load(onestep_trainer *trainer, const char *path,
                                    onestep_error *error);

/* The result: a PEFT adapter folder (adapter_model.safetensors +
 * adapter_config.json; NULL: none; the adapters only) and a UNet-only file
 * with the adapters merged and the trained tensors in place (NULL: none),
 * from the trained values or their EMA. */
onestep_status onestep_trainer_export(onestep_trainer *trainer, const char *adapter_dir,
                                      const char *unet_file, bool use_ema, onestep_error *error);

#ifdef __cplusplus
}
#endif

#endif
