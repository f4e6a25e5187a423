/* config.h: the model's configuration, read from a diffusers folder's JSON files. */
#ifndef ONESTEP_CONFIG_H
#define ONESTEP_CONFIG_H

#include <stdbool.h>

#include "onestep.h"

#define OS_MAX_LEVELS 8

typedef struct {
  int in_channels, out_channels;
  int num_frames;
  int n_levels;
  int block_out_channels[OS_MAX_LEVELS];
  int num_attention_heads[OS_MAX_LEVELS];          /* per level (an int in JSON applies to all) */
  int transformer_layers_per_block[OS_MAX_LEVELS]; /* per level */
  bool down_has_attention[OS_MAX_LEVELS];          /* CrossAttnDownBlockSpatioTemporal */
  bool up_has_attention[OS_MAX_LEVELS];            /* CrossAttnUpBlockSpatioTemporal, in up order */
  int layers_per_block;
  int cross_attention_dim;
  int addition_time_embed_dim;
  int projection_class_embeddings_input_dim;
  int sample_size;
} os_unet_config;

typedef struct {
  int in_channels, out_channels, latent_channels;
  int layers_per_block;
  int n_levels;
  int block_out_channels[OS_MAX_LEVELS];
  int norm_num_groups; /* 32 unless the config says otherwise */
  float scaling_factor;
  bool force_upcast;
  int sample_size;
} os_vae_config;

typedef struct {
  int hidden_size, intermediate_size;
  int num_hidden_layers, num_attention_heads;
  int patch_size, image_size, num_channels;
  int projection_dim;
  float layer_norm_eps;
  bool quick_gelu; /* hidden_act "quick_gelu"; false for "gelu" */
} os_clip_config;

typedef struct {
  float image_mean[3], image_std[3];
} os_preprocess_config;

typedef struct {
  float sigma_min, sigma_max;
  bool use_karras_sigmas;
  bool v_prediction;        /* prediction_type "v_prediction" */
  bool timestep_continuous; /* timestep_type "continuous" */
  char timestep_spacing[24];   /* "leading", "linspace", "trailing" */
  bool final_sigma_zero;       /* final_sigmas_type "zero" */
  int num_train_timesteps;
  float rho;                   /* 7 */
} os_scheduler_config;

typedef struct {
  char path[4096]; /* the model folder */
  os_unet_config unet;
  os_vae_config vae;
  os_clip_config clip;
  os_preprocess_config preprocess;
  os_scheduler_config scheduler;
} os_model_config;

/* Reads model_index.json and every component's config from a diffusers folder.
 * A missing file, bad JSON, a wrong class or an impossible value is an error
 * naming the file and the key. */
onestep_status os_model_config_load(const char *dir, os_model_config *cfg, onestep_error *error);

/* The same for one component file, for tests and single-file loaders. */
onestep_status os_unet_config_load(const char *json_path, os_unet_config *cfg, onestep_error *error);
onestep_status os_vae_config_load(const char *json_path, os_vae_config *cfg, onestep_error *error);
onestep_status os_clip_config_load(const char *json_path, os_clip_config *cfg, onestep_error *error);
onestep_status os_scheduler_config_load(const char *json_path, os_scheduler_config *cfg,
                                        onestep_error *error);
onestep_status os_preprocess_config_load(const char *json_path, os_preprocess_config *cfg,
                                         onestep_error *error);

#endif
