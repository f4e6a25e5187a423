/* config.c: an SVD model's configuration from a diffusers folder.
 *
 * Absent keys take the defaults of the classes that wrote the files
 * (diffusers' UNetSpatioTemporalConditionModel, AutoencoderKLTemporalDecoder
 * and EulerDiscreteScheduler, transformers' CLIPVisionConfig and
 * CLIPImageProcessor), so a sparse config means what it means upstream. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "config_json.h"

#define UNET_CLASS "UNetSpatioTemporalConditionModel"
#define VAE_CLASS "AutoencoderKLTemporalDecoder"
#define CLIP_CLASS "CLIPVisionModelWithProjection"
#define SVD_PIPELINE_CLASS "StableVideoDiffusionPipeline"
#define UNET_NORM_GROUPS 32 /* fixed in every UNet GroupNorm */

/* The file's own class (key "_class_name") must be the expected one when given. */
static void
check_class(os_json_file *f, const char *component, const char *expected, const char *what)
{
  const char *class_name = os_json_string(f, "_class_name", expected);
  if (strcmp(class_name, expected) != 0)
    os_json_fail(f, ONESTEP_ERR_MODEL, "%s is a %s, not %s (%s)", component, class_name, what,
                 expected);
}

/* ---- unet ---- */

/* Reads a block type list; sets has_attention per entry from the two known names. */
static void
read_block_types(os_json_file *f, const char *key, const char *attention_type,
                 const char *plain_type, const char *const *fallback, int n_levels,
                 bool *has_attention)
{
  const char *types[OS_MAX_LEVELS];
  int n = os_json_string_list(f, key, fallback, 4, types, OS_MAX_LEVELS);
  if (f->status != ONESTEP_OK)
    return;
  if (n != n_levels) {
    os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' has %d entries but 'block_out_channels' has %d", key,
                 n, n_levels);
    return;
  }
  for (int i = 0; i < n; i++) {
    if (strcmp(types[i], attention_type) == 0) {
      has_attention[i] = true;
    } else if (strcmp(types[i], plain_type) == 0) {
      has_attention[i] = false;
    } else {
      os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' entry %d is %s; an SVD UNet uses %s or %s", key,
                   i, types[i], attention_type, plain_type);
      return;
    }
  }
}

static void
read_unet(os_json_file *f, os_unet_config *cfg)
{
  static const int default_channels[] = {320, 640, 1280, 1280};
  static const int default_heads[] = {5, 10, 20, 20};
  static const int default_layers[] = {1, 1, 1, 1};
  static const char *const default_down[] = {
      "CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
      "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"};
  static const char *const default_up[] = {
      "UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
      "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"};

  memset(cfg, 0, sizeof *cfg);
  check_class(f, "unet", UNET_CLASS, "an SVD image-to-video UNet");
  cfg->in_channels = os_json_int_min(f, "in_channels", 8, 1);
  cfg->out_channels = os_json_int_min(f, "out_channels", 4, 1);
  cfg->num_frames = os_json_int_min(f, "num_frames", 25, 1);
  cfg->layers_per_block = os_json_int_min(f, "layers_per_block", 2, 1);
  cfg->cross_attention_dim = os_json_int_min(f, "cross_attention_dim", 1024, 1);
  cfg->addition_time_embed_dim = os_json_int_min(f, "addition_time_embed_dim", 256, 2);
  cfg->projection_class_embeddings_input_dim =
      os_json_int_min(f, "projection_class_embeddings_input_dim", 768, 1);
  cfg->sample_size = os_json_int_min(f, "sample_size", 0, 0); /* diffusers: None */

  cfg->n_levels = os_json_int_list(f, "block_out_channels", default_channels, 4,
                                   cfg->block_out_channels, OS_MAX_LEVELS);
  os_json_int_per_level(f, "num_attention_heads", default_heads, 4, cfg->n_levels,
                        cfg->num_attention_heads);
  os_json_int_per_level(f, "transformer_layers_per_block", default_layers, 4, cfg->n_levels,
                        cfg->transformer_layers_per_block);
  read_block_types(f, "down_block_types", "CrossAttnDownBlockSpatioTemporal",
                   "DownBlockSpatioTemporal", default_down, cfg->n_levels,
                   cfg->down_has_attention);
  read_block_types(f, "up_block_types", "CrossAttnUpBlockSpatioTemporal",
                   "UpBlockSpatioTemporal", default_up, cfg->n_levels, cfg->up_has_attention);
  if (f->status != ONESTEP_OK)
    return;

  for (int i = 0; i < cfg->n_levels; i++) {
    int channels = cfg->block_out_channels[i], heads = cfg->num_attention_heads[i];
    if (channels % UNET_NORM_GROUPS != 0) {
      os_json_fail(f, ONESTEP_ERR_MODEL,
                   "'block_out_channels' entry %d is %d, not a multiple of the %d norm groups",
                   i, channels, UNET_NORM_GROUPS);
      return;
    }
    if (channels % heads != 0) {
      os_json_fail(f, ONESTEP_ERR_MODEL,
                   "'num_attention_heads' entry %d is %d, which does not divide the level's %d "
                   "channels",
                   i, heads, channels);
      return;
    }
  }
  if (cfg->projection_class_embeddings_input_dim != 3 * cfg->addition_time_embed_dim)
    os_json_fail(f, ONESTEP_ERR_MODEL,
                 "'projection_class_embeddings_input_dim' is %d but the three added time ids "
                 "of 'addition_time_embed_dim' %d make %d",
                 cfg->projection_class_embeddings_input_dim, cfg->addition_time_embed_dim,
                 3 * cfg->addition_time_embed_dim);
}

/* ---- vae ---- */

static void
read_vae(os_json_file *f, os_vae_config *cfg)
{
  static const int default_channels[] = {64};
  static const char *const default_down[] = {"DownEncoderBlock2D"};

  memset(cfg, 0, sizeof *cfg);
  check_class(f, "vae", VAE_CLASS, "SVD's temporal-decoder VAE");
  cfg->in_channels = os_json_int_min(f, "in_channels", 3, 1);
  cfg->out_channels = os_json_int_min(f, "out_channels", 3, 1);
  cfg->latent_channels = os_json_int_min(f, "latent_channels", 4, 1);
  cfg->layers_per_block = os_json_int_min(f, "layers_per_block", 1, 1);
  cfg->norm_num_groups = os_json_int_min(f, "norm_num_groups", 32, 1);
  cfg->scaling_factor = (float)os_json_number(f, "scaling_factor", 0.18215);
  cfg->force_upcast = os_json_bool(f, "force_upcast", true);
  cfg->sample_size = os_json_int_min(f, "sample_size", 32, 0);
  cfg->n_levels = os_json_int_list(f, "block_out_channels", default_channels, 1,
                                   cfg->block_out_channels, OS_MAX_LEVELS);
  const char *down[OS_MAX_LEVELS];
  int n_down = os_json_string_list(f, "down_block_types", default_down, 1, down, OS_MAX_LEVELS);
  if (f->status != ONESTEP_OK)
    return;

  if (n_down != cfg->n_levels) {
    os_json_fail(f, ONESTEP_ERR_MODEL,
                 "'down_block_types' has %d entries but 'block_out_channels' has %d", n_down,
                 cfg->n_levels);
    return;
  }
  for (int i = 0; i < n_down; i++) {
    if (strcmp(down[i], "DownEncoderBlock2D") != 0) {
      os_json_fail(f, ONESTEP_ERR_MODEL,
                   "'down_block_types' entry %d is %s; the SVD VAE uses DownEncoderBlock2D", i,
                   down[i]);
      return;
    }
  }
  for (int i = 0; i < cfg->n_levels; i++) {
    if (cfg->block_out_channels[i] % cfg->norm_num_groups != 0) {
      os_json_fail(f, ONESTEP_ERR_MODEL,
                   "'block_out_channels' entry %d is %d, not a multiple of 'norm_num_groups' %d",
                   i, cfg->block_out_channels[i], cfg->norm_num_groups);
      return;
    }
  }
  if (!(cfg->scaling_factor > 0.0f))
    os_json_fail(f, ONESTEP_ERR_MODEL, "'scaling_factor' must be positive");
}

/* ---- image encoder ---- */

static void
read_clip(os_json_file *f, os_clip_config *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  const cJSON *architectures = os_json_get(f, "architectures");
  if (architectures) {
    const char *names[8];
    int n = os_json_string_list(f, "architectures", NULL, 0, names, 8);
    bool found = false;
    for (int i = 0; i < n; i++)
      found = found || strcmp(names[i], CLIP_CLASS) == 0;
    if (n > 0 && !found)
      os_json_fail(f, ONESTEP_ERR_MODEL, "image_encoder is a %s, not a %s", names[0], CLIP_CLASS);
  }
  const char *model_type = os_json_string(f, "model_type", "clip_vision_model");
  if (strcmp(model_type, "clip_vision_model") != 0)
    os_json_fail(f, ONESTEP_ERR_MODEL, "'model_type' is %s, not clip_vision_model", model_type);

  cfg->hidden_size = os_json_int_min(f, "hidden_size", 768, 1);
  cfg->intermediate_size = os_json_int_min(f, "intermediate_size", 3072, 1);
  cfg->num_hidden_layers = os_json_int_min(f, "num_hidden_layers", 12, 1);
  cfg->num_attention_heads = os_json_int_min(f, "num_attention_heads", 12, 1);
  cfg->patch_size = os_json_int_min(f, "patch_size", 32, 1);
  cfg->image_size = os_json_int_min(f, "image_size", 224, 1);
  cfg->num_channels = os_json_int_min(f, "num_channels", 3, 1);
  cfg->projection_dim = os_json_int_min(f, "projection_dim", 512, 1);
  cfg->layer_norm_eps = (float)os_json_number(f, "layer_norm_eps", 1e-5);
  const char *act = os_json_string(f, "hidden_act", "quick_gelu");
  if (f->status != ONESTEP_OK)
    return;

  cfg->quick_gelu = strcmp(act, "quick_gelu") == 0;
  if (!cfg->quick_gelu && strcmp(act, "gelu") != 0)
    os_json_fail(f, ONESTEP_ERR_MODEL, "'hidden_act' is %s; Onestep supports gelu and quick_gelu",
                 act);
  else if (cfg->hidden_size % cfg->num_attention_heads != 0)
    os_json_fail(f, ONESTEP_ERR_MODEL,
                 "'num_attention_heads' %d does not divide 'hidden_size' %d",
                 cfg->num_attention_heads, cfg->hidden_size);
  else if (cfg->patch_size > cfg->image_size)
    os_json_fail(f, ONESTEP_ERR_MODEL, "'patch_size' %d is larger than 'image_size' %d",
                 cfg->patch_size, cfg->image_size);
  else if (!(cfg->layer_norm_eps > 0.0f))
    os_json_fail(f, ONESTEP_ERR_MODEL, "'layer_norm_eps' must be positive");
}

/* ---- scheduler and preprocessing ---- */

static bool
one_of(const char *value, const char *const *allowed)
{
  for (; *allowed; allowed++)
    if (strcmp(value, *allowed) == 0)
      return true;
  return false;
}

/* A string key restricted to a few values. */
static const char *
read_choice(os_json_file *f, const char *key, const char *fallback, const char *const *allowed)
{
  const char *value = os_json_string(f, key, fallback);
  if (f->status == ONESTEP_OK && !one_of(value, allowed)) {
    char list[256] = "";
    for (const char *const *a = allowed; *a; a++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", a == allowed ? "" : ", ",
               *a);
    os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' is %s; expected one of %s", key, value, list);
    return fallback;
  }
  return value;
}

static void
read_scheduler(os_json_file *f, os_scheduler_config *cfg)
{
  static const char *const predictions[] = {"epsilon", "v_prediction", "sample", NULL};
  static const char *const timestep_types[] = {"discrete", "continuous", NULL};
  static const char *const spacings[] = {"linspace", "leading", "trailing", NULL};
  static const char *const final_sigmas[] = {"zero", "sigma_min", NULL};

  memset(cfg, 0, sizeof *cfg);
  cfg->use_karras_sigmas = os_json_bool(f, "use_karras_sigmas", false);
  cfg->v_prediction =
      strcmp(read_choice(f, "prediction_type", "epsilon", predictions), "v_prediction") == 0;
  cfg->timestep_continuous =
      strcmp(read_choice(f, "timestep_type", "discrete", timestep_types), "continuous") == 0;
  snprintf(cfg->timestep_spacing, sizeof cfg->timestep_spacing, "%s",
           read_choice(f, "timestep_spacing", "linspace", spacings));
  cfg->final_sigma_zero =
      strcmp(read_choice(f, "final_sigmas_type", "zero", final_sigmas), "zero") == 0;
  cfg->num_train_timesteps = os_json_int_min(f, "num_train_timesteps", 1000, 1);
  cfg->rho = (float)os_json_number(f, "rho", 7.0);
  /* diffusers derives absent sigma bounds from the beta schedule and the chosen
   * timesteps; Karras schedules here need them stated (every SVD config does). */
  bool has_bounds = os_json_get(f, "sigma_min") && os_json_get(f, "sigma_max");
  cfg->sigma_min = (float)os_json_number(f, "sigma_min", 0.0);
  cfg->sigma_max = (float)os_json_number(f, "sigma_max", 0.0);
  if (f->status != ONESTEP_OK)
    return;

  if (cfg->use_karras_sigmas && !has_bounds)
    os_json_fail(f, ONESTEP_ERR_MODEL,
                 "'sigma_min' and 'sigma_max' are needed with 'use_karras_sigmas'");
  else if (has_bounds && !(cfg->sigma_min > 0.0f && cfg->sigma_max > cfg->sigma_min))
    os_json_fail(f, ONESTEP_ERR_MODEL, "'sigma_min' %g and 'sigma_max' %g must satisfy 0 < min < max",
                 cfg->sigma_min, cfg->sigma_max);
  else if (!(cfg->rho > 0.0f))
    os_json_fail(f, ONESTEP_ERR_MODEL, "'rho' must be positive");
}

static void
read_preprocess(os_json_file *f, os_preprocess_config *cfg)
{
  /* transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD */
  static const float default_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  static const float default_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  os_json_number_list(f, "image_mean", default_mean, 3, cfg->image_mean);
  os_json_number_list(f, "image_std", default_std, 3, cfg->image_std);
  for (int i = 0; i < 3 && f->status == ONESTEP_OK; i++)
    if (!(cfg->image_std[i] > 0.0f))
      os_json_fail(f, ONESTEP_ERR_MODEL, "'image_std' entry %d must be positive", i);
}

/* ---- entry points ---- */

#define DEFINE_COMPONENT_LOADER(function, type, reader)                              \
  onestep_status function(const char *json_path, type *cfg, onestep_error *error)   \
  {                                                                                 \
    os_json_file f;                                                                 \
    if (os_json_open(&f, json_path, error) == ONESTEP_OK)                           \
      reader(&f, cfg);                                                              \
    os_json_close(&f);                                                              \
    return f.status;                                                                \
  }

DEFINE_COMPONENT_LOADER(os_unet_config_load, os_unet_config, read_unet)
DEFINE_COMPONENT_LOADER(os_vae_config_load, os_vae_config, read_vae)
DEFINE_COMPONENT_LOADER(os_clip_config_load, os_clip_config, read_clip)
DEFINE_COMPONENT_LOADER(os_scheduler_config_load, os_scheduler_config, read_scheduler)
DEFINE_COMPONENT_LOADER(os_preprocess_config_load, os_preprocess_config, read_preprocess)

/* model_index.json: an SVD pipeline, or at least SVD's components. */
static void
read_model_index(os_json_file *f)
{
  static const struct {
    const char *component, *class_name, *what;
  } expected[] = {
      {"unet", UNET_CLASS, "an SVD image-to-video UNet"},
      {"vae", VAE_CLASS, "SVD's temporal-decoder VAE"},
      {"image_encoder", CLIP_CLASS, "a CLIP vision encoder with projection"},
      {"scheduler", NULL, "a scheduler"},
  };
  const char *pipeline = os_json_string(f, "_class_name", "");
  bool is_svd_pipeline = strcmp(pipeline, SVD_PIPELINE_CLASS) == 0;
  for (size_t i = 0; i < sizeof expected / sizeof expected[0] && f->status == ONESTEP_OK; i++) {
    const cJSON *entry = os_json_get(f, expected[i].component);
    const cJSON *class_name = cJSON_IsArray(entry) ? cJSON_GetArrayItem(entry, 1) : NULL;
    if (!entry) {
      if (!is_svd_pipeline)
        os_json_fail(f, ONESTEP_ERR_MODEL,
                     "names a %s pipeline without a '%s' component; an SVD model has unet, vae, "
                     "image_encoder and scheduler",
                     *pipeline ? pipeline : "nameless", expected[i].component);
    } else if (!cJSON_IsString(class_name)) {
      os_json_fail(f, ONESTEP_ERR_FORMAT, "'%s' must be [library, class name]",
                   expected[i].component);
    } else if (expected[i].class_name &&
               strcmp(class_name->valuestring, expected[i].class_name) != 0) {
      os_json_fail(f, ONESTEP_ERR_MODEL, "%s is a %s, not %s (%s)", expected[i].component,
                   class_name->valuestring, expected[i].what, expected[i].class_name);
    }
  }
}

onestep_status
os_model_config_load(const char *dir, os_model_config *cfg, onestep_error *error)
{
  memset(cfg, 0, sizeof *cfg);
  os_error_clear(error);
  if (strlen(dir) >= sizeof cfg->path)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "model path is too long: %.200s...",
                        dir);
  snprintf(cfg->path, sizeof cfg->path, "%s", dir);

  char path[sizeof cfg->path + 64];
  os_json_file index;
  snprintf(path, sizeof path, "%s/model_index.json", dir);
  if (os_json_open(&index, path, error) == ONESTEP_OK)
    read_model_index(&index);
  os_json_close(&index);
  if (index.status != ONESTEP_OK)
    return index.status;

  onestep_status status;
#define LOAD_COMPONENT(relative, loader, field)                         \
  snprintf(path, sizeof path, "%s/%s", dir, relative);                  \
  if ((status = loader(path, &cfg->field, error)) != ONESTEP_OK)        \
    return status;
  LOAD_COMPONENT("unet/config.json", os_unet_config_load, unet)
  LOAD_COMPONENT("vae/config.json", os_vae_config_load, vae)
  LOAD_COMPONENT("image_encoder/config.json", os_clip_config_load, clip)
  LOAD_COMPONENT("scheduler/scheduler_config.json", os_scheduler_config_load, scheduler)
  LOAD_COMPONENT("feature_extractor/preprocessor_config.json", os_preprocess_config_load,
                 preprocess)
#undef LOAD_COMPONENT
  return ONESTEP_OK;
}
