/* Model configs: tiny-a's real folder, diffusers' defaults, and every kind of
 * bad config giving an error that names the file and the key.
 * argv[1] is tests/data/golden/tiny-a/model. */
#include <cjson/cJSON.h>
#include <math.h>

#include "config.h"
#include "loader_test.h"

static const char *tiny_model;

static const char *const config_files[] = {
    "model_index.json",          "unet/config.json",
    "vae/config.json",           "image_encoder/config.json",
    "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json",
};

static char *
read_text(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  if (fread(text, 1, (size_t)size, f) != (size_t)size)
    exit(2);
  text[size] = '\0';
  fclose(f);
  return text;
}

/* A temp folder holding a copy of tiny-a's config files (no weights needed). */
static char *
copy_tiny_configs(void)
{
  char *dir = make_temp_dir();
  static const char *const folders[] = {"unet", "vae", "image_encoder", "scheduler",
                                        "feature_extractor"};
  for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++) {
    char *sub = join_path(dir, folders[i]);
    mkdir(sub, 0700);
    free(sub);
  }
  for (size_t i = 0; i < sizeof config_files / sizeof config_files[0]; i++) {
    char *from = join_path(tiny_model, config_files[i]);
    char *to = join_path(dir, config_files[i]);
    char *text = read_text(from);
    write_text(to, text);
    free(text), free(from), free(to);
  }
  return dir;
}

/* Replaces (value != NULL) or deletes key in dir/relative. */
static void
edit_config(const char *dir, const char *relative, const char *key, cJSON *value)
{
  char *path = join_path(dir, relative);
  char *text = read_text(path);
  cJSON *root = cJSON_Parse(text);
  cJSON_DeleteItemFromObjectCaseSensitive(root, key);
  if (value)
    cJSON_AddItemToObject(root, key, value);
  char *printed = cJSON_Print(root);
  write_text(path, printed);
  cJSON_free(printed);
  cJSON_Delete(root);
  free(text);
  free(path);
}

static void
test_tiny_a(void)
{
  os_model_config cfg;
  onestep_error err = {0};
  CHECK(os_model_config_load(tiny_model, &cfg, &err) == ONESTEP_OK);
  if (err.code)
    fprintf(stderr, "%s\n", err.message);
  CHECK(strcmp(cfg.path, tiny_model) == 0);

  const os_unet_config *u = &cfg.unet;
  CHECK(u->in_channels == 8 && u->out_channels == 4 && u->num_frames == 2);
  CHECK(u->n_levels == 2 && u->block_out_channels[0] == 32 && u->block_out_channels[1] == 64);
  CHECK(u->num_attention_heads[0] == 8 && u->num_attention_heads[1] == 8);
  CHECK(u->transformer_layers_per_block[0] == 1 && u->transformer_layers_per_block[1] == 1);
  CHECK(u->down_has_attention[0] && !u->down_has_attention[1]);
  CHECK(!u->up_has_attention[0] && u->up_has_attention[1]);
  CHECK(u->layers_per_block == 2 && u->cross_attention_dim == 32);
  CHECK(u->addition_time_embed_dim == 32 && u->projection_class_embeddings_input_dim == 96);
  CHECK(u->sample_size == 32);

  const os_vae_config *v = &cfg.vae;
  CHECK(v->in_channels == 3 && v->out_channels == 3 && v->latent_channels == 4);
  CHECK(v->n_levels == 2 && v->block_out_channels[0] == 32 && v->block_out_channels[1] == 64);
  CHECK(v->layers_per_block == 1 && v->norm_num_groups == 32 && v->force_upcast);
  CHECK(v->scaling_factor == 0.18215f && v->sample_size == 32);

  const os_clip_config *c = &cfg.clip;
  CHECK(c->hidden_size == 32 && c->intermediate_size == 37 && c->num_hidden_layers == 2);
  CHECK(c->num_attention_heads == 4 && c->patch_size == 32 && c->image_size == 224);
  CHECK(c->num_channels == 3 && c->projection_dim == 32 && c->layer_norm_eps == 1e-5f);
  CHECK(!c->quick_gelu);

  const os_scheduler_config *s = &cfg.scheduler;
  CHECK(s->sigma_min == 0.002f && s->sigma_max == 700.0f && s->use_karras_sigmas);
  CHECK(s->v_prediction && s->timestep_continuous && s->final_sigma_zero);
  CHECK(strcmp(s->timestep_spacing, "leading") == 0);
  CHECK(s->num_train_timesteps == 1000 && s->rho == 7.0f);

  CHECK(cfg.preprocess.image_mean[0] == 0.48145466f && cfg.preprocess.image_std[2] == 0.27577711f);
}

static void
test_defaults(void)
{
  char *dir = make_temp_dir();
  char *path = join_path(dir, "empty.json");
  write_text(path, "{}");
  onestep_error err = {0};

  os_clip_config clip;
  CHECK(os_clip_config_load(path, &clip, &err) == ONESTEP_OK);
  CHECK(clip.hidden_size == 768 && clip.num_attention_heads == 12 && clip.quick_gelu);
  CHECK(clip.projection_dim == 512 && clip.patch_size == 32);

  os_scheduler_config sched;
  CHECK(os_scheduler_config_load(path, &sched, &err) == ONESTEP_OK);
  CHECK(strcmp(sched.timestep_spacing, "linspace") == 0 && sched.final_sigma_zero);
  CHECK(!sched.v_prediction && !sched.timestep_continuous && !sched.use_karras_sigmas);
  CHECK(sched.rho == 7.0f && sched.num_train_timesteps == 1000);

  os_unet_config unet;
  CHECK(os_unet_config_load(path, &unet, &err) == ONESTEP_OK);
  CHECK(unet.n_levels == 4 && unet.block_out_channels[3] == 1280);
  CHECK(unet.num_attention_heads[0] == 5 && unet.num_attention_heads[3] == 20);
  CHECK(unet.down_has_attention[2] && !unet.down_has_attention[3]);
  CHECK(!unet.up_has_attention[0] && unet.up_has_attention[1]);
  CHECK(unet.num_frames == 25 && unet.cross_attention_dim == 1024 && unet.sample_size == 0);

  os_vae_config vae;
  CHECK(os_vae_config_load(path, &vae, &err) == ONESTEP_OK);
  CHECK(vae.n_levels == 1 && vae.block_out_channels[0] == 64 && vae.norm_num_groups == 32);
  CHECK(vae.scaling_factor == 0.18215f);

  os_preprocess_config pre;
  CHECK(os_preprocess_config_load(path, &pre, &err) == ONESTEP_OK);
  CHECK(pre.image_mean[1] == 0.4578275f && pre.image_std[0] == 0.26862954f);

  /* per-level lists, and null meaning "absent" */
  write_text(path, "{\"block_out_channels\": [64, 128, 128], \"num_attention_heads\": [2, 4, 8],"
                   "\"transformer_layers_per_block\": [1, 2, 3], \"sample_size\": null,"
                   "\"down_block_types\": [\"CrossAttnDownBlockSpatioTemporal\","
                   "\"CrossAttnDownBlockSpatioTemporal\", \"DownBlockSpatioTemporal\"],"
                   "\"up_block_types\": [\"UpBlockSpatioTemporal\","
                   "\"CrossAttnUpBlockSpatioTemporal\", \"CrossAttnUpBlockSpatioTemporal\"]}");
  CHECK(os_unet_config_load(path, &unet, &err) == ONESTEP_OK);
  CHECK(unet.n_levels == 3 && unet.num_attention_heads[2] == 8);
  CHECK(unet.transformer_layers_per_block[1] == 2 && unet.sample_size == 0);

  write_text(path, "{\"use_karras_sigmas\": true}");
  CHECK_ERROR(os_scheduler_config_load(path, &sched, &err), err, ONESTEP_ERR_MODEL, path,
              "'sigma_min'");

  unlink(path);
  free(path);
  remove_tree(dir);
}

/* Loads dir and expects the error code with a message naming file and fragments. */
#define EXPECT_MODEL_ERROR(dir, code, ...)                                      \
  do {                                                                          \
    os_model_config cfg;                                                        \
    onestep_error err = {0};                                                    \
    CHECK_ERROR(os_model_config_load((dir), &cfg, &err), err, (code), __VA_ARGS__); \
  } while (0)

static void
test_bad_configs(void)
{
  char *dir;

  dir = copy_tiny_configs();
  EXPECT_MODEL_ERROR(dir, ONESTEP_OK, "");
  remove_tree(dir);

  dir = copy_tiny_configs();
  {
    char *path = join_path(dir, "unet/config.json");
    write_text(path, "{\n  \"in_channels\": 8,\n  \"out_channels\": 4,,\n}");
    free(path);
  }
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_FORMAT, "unet/config.json", "not valid JSON", "line 3");
  remove_tree(dir);

  dir = copy_tiny_configs();
  {
    char *path = join_path(dir, "vae/config.json");
    unlink(path);
    free(path);
  }
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_IO, "vae/config.json");
  remove_tree(dir);

  dir = copy_tiny_configs();
  {
    char *path = join_path(dir, "model_index.json");
    write_text(path, "{\"_class_name\": \"StableDiffusionPipeline\","
                     "\"unet\": [\"diffusers\", \"UNet2DConditionModel\"],"
                     "\"vae\": [\"diffusers\", \"AutoencoderKL\"],"
                     "\"text_encoder\": [\"transformers\", \"CLIPTextModel\"],"
                     "\"scheduler\": [\"diffusers\", \"PNDMScheduler\"]}");
    free(path);
  }
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "model_index.json",
                     "unet is a UNet2DConditionModel, not an SVD image-to-video UNet");
  remove_tree(dir);

  dir = copy_tiny_configs();
  {
    char *path = join_path(dir, "model_index.json");
    write_text(path, "{\"_class_name\": \"MyPipeline\","
                     "\"unet\": [\"diffusers\", \"UNetSpatioTemporalConditionModel\"]}");
    free(path);
  }
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "model_index.json", "'vae'");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "_class_name", cJSON_CreateString("UNet2DConditionModel"));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "UNet2DConditionModel");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "num_attention_heads",
              cJSON_CreateIntArray((const int[]){8, 8, 8}, 3));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "'num_attention_heads'",
                     "3 entries", "2 levels");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "num_attention_heads", cJSON_CreateNumber(5));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "'num_attention_heads'",
                     "does not divide");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "transformer_layers_per_block",
              cJSON_CreateIntArray((const int[]){1}, 1));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "'transformer_layers_per_block'", "1 entries");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "block_out_channels",
              cJSON_CreateIntArray((const int[]){32, 0}, 2));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "'block_out_channels'",
                     "positive");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "block_out_channels",
              cJSON_CreateIntArray((const int[]){32, 48}, 2));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "'block_out_channels'",
                     "norm groups");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "block_out_channels",
              cJSON_CreateIntArray((const int[]){32, 32, 32, 32, 32, 32, 32, 32, 32}, 9));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "'block_out_channels'",
                     "9 entries");
  remove_tree(dir);

  dir = copy_tiny_configs();
  {
    const char *types[] = {"CrossAttnDownBlock3D", "DownBlockSpatioTemporal"};
    edit_config(dir, "unet/config.json", "down_block_types", cJSON_CreateStringArray(types, 2));
  }
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "unet/config.json", "'down_block_types'",
                     "CrossAttnDownBlock3D");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "in_channels", cJSON_CreateString("eight"));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_FORMAT, "unet/config.json", "'in_channels'");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "unet/config.json", "projection_class_embeddings_input_dim",
              cJSON_CreateNumber(64));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "'projection_class_embeddings_input_dim'");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "vae/config.json", "norm_num_groups", cJSON_CreateNumber(24));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "vae/config.json", "'norm_num_groups' 24");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "image_encoder/config.json", "num_attention_heads", cJSON_CreateNumber(5));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "image_encoder/config.json",
                     "'num_attention_heads' 5");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "image_encoder/config.json", "hidden_act", cJSON_CreateString("relu"));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "image_encoder/config.json", "'hidden_act'",
                     "relu");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "image_encoder/config.json", "hidden_act", cJSON_CreateString("quick_gelu"));
  {
    os_model_config cfg;
    onestep_error err = {0};
    CHECK(os_model_config_load(dir, &cfg, &err) == ONESTEP_OK && cfg.clip.quick_gelu);
  }
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "scheduler/scheduler_config.json", "timestep_spacing",
              cJSON_CreateString("cosine"));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "scheduler/scheduler_config.json",
                     "'timestep_spacing'", "cosine");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "scheduler/scheduler_config.json", "sigma_min", cJSON_CreateNumber(800));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "scheduler_config.json", "'sigma_min'");
  remove_tree(dir);

  dir = copy_tiny_configs();
  edit_config(dir, "feature_extractor/preprocessor_config.json", "image_std",
              cJSON_CreateIntArray((const int[]){1, 0, 1}, 3));
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_MODEL, "preprocessor_config.json", "'image_std'");
  remove_tree(dir);

  dir = make_temp_dir();
  EXPECT_MODEL_ERROR(dir, ONESTEP_ERR_IO, "model_index.json");
  remove_tree(dir);
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s TINY_MODEL_DIR\n", argv[0]);
    return 2;
  }
  tiny_model = argv[1];
  test_tiny_a();
  test_defaults();
  test_bad_configs();
  return test_summary("config");
}
