/* data_cache.c: the latent cache, written (onestep_train.h) and read
 * (data_cache.h). A cache is written under DIR.partial and renamed into place
 * when finished, so a cache that exists is always whole. */
#include "data_cache.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clip_preprocess.h"
#include "config_json.h"
#include "error.h"
#include "image_encode.h"
#include "onestep_train.h"
#include "philox.h"
#include "pipeline_internal.h"
#include "safetensors.h"

#define CACHE_FORMAT "onestep-latent-cache"
#define CACHE_VERSION 1
#define CLIPS_PER_SHARD 64
#define COND_AUG_STRENGTH 0.02f
/* Philox stream of the conditioning frame's noise augmentation (seed 0, by clip). */
#define COND_AUG_STREAM 0x43616368ull

/* ---- the model's identity, as a cache records it ---- */

typedef struct {
  int latent_channels, cross_dim, downscale;
  uint64_t vae_hash;
} model_identity;

static model_identity
identity_of(onestep_context *ctx)
{
  return (model_identity){
    .latent_channels = ctx->src.config.vae.latent_channels,
    .cross_dim = ctx->src.config.clip.projection_dim,
    .downscale = os_vae_downscale(ctx->vae),
    .vae_hash = os_checkpoint_decoder_hash(&ctx->src),
  };
}

static char *
path_join(const char *dir, const char *name)
{
  size_t size = strlen(dir) + strlen(name) + 2;
  char *path = malloc(size);
  if (path)
    snprintf(path, size, "%s/%s", dir, name);
  return path;
}

/* Removes a folder of plain files (a cache's); absent is fine. */
static void
remove_folder(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *path = path_join(dir, e->d_name);
    if (path)
      unlink(path);
    free(path);
  }
  closedir(d);
  rmdir(dir);
}

/* ---- writing ---- */

struct onestep_cache_writer {
  onestep_context *ctx;
  char *dir, *partial;
  int frames, width, height, latent_h, latent_w;
  float fps;
  model_identity id;
  size_t latent_floats, cond_floats; /* per clip */
  float *latents, *cond, *embeds;    /* the current shard's clips */
  float *image, *noise;              /* one frame [3, H, W] */
  int in_shard, shards, clips;
};

onestep_cache_writer *
onestep_cache_writer_new(onestep_context *ctx, const char *dir, int frames, int width,
                         int height, float fps, onestep_error *error)
{
  os_error_clear(error);
  model_identity id = identity_of(ctx);
  if (frames < 1 || width < id.downscale || height < id.downscale || width % id.downscale ||
      height % id.downscale || !(fps > 0.0f)) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                 "clips of %d frames at %dx%d and %g fps: frames and fps must be positive and "
                 "the size a multiple of %d",
                 frames, width, height, fps, id.downscale);
    return NULL;
  }
  struct stat st;
  if (stat(dir, &st) == 0) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "%s already exists: give a new folder",
                 dir);
    return NULL;
  }
  onestep_cache_writer *w = calloc(1, sizeof *w);
  if (!w) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  *w = (onestep_cache_writer){.ctx = ctx, .frames = frames, .width = width, .height = height,
                              .latent_h = height / id.downscale, .latent_w = width / id.downscale,
                              .fps = fps, .id = id};
  w->latent_floats = (size_t)frames * id.latent_channels * w->latent_h * w->latent_w;
  w->cond_floats = (size_t)id.latent_channels * w->latent_h * w->latent_w;
  size_t frame = (size_t)3 * width * height;
  w->dir = strdup(dir);
  size_t n = strlen(dir) + sizeof ".partial";
  w->partial = malloc(n);
  w->latents = malloc(CLIPS_PER_SHARD * w->latent_floats * sizeof(float));
  w->cond = malloc(CLIPS_PER_SHARD * w->cond_floats * sizeof(float));
  w->embeds = malloc((size_t)CLIPS_PER_SHARD * id.cross_dim * sizeof(float));
  w->image = malloc(frame * sizeof(float));
  w->noise = malloc(frame * sizeof(float));
  if (!w->dir || !w->partial || !w->latents || !w->cond || !w->embeds || !w->image || !w->noise) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the cache's buffers");
    onestep_cache_writer_free(w);
    return NULL;
  }
  snprintf(w->partial, n, "%s.partial", dir);
  /* A partial cache is an interrupted earlier run's: start afresh. */
  remove_folder(w->partial);
  if (mkdir(w->partial, 0755) != 0) {
    os_error_set(error, ONESTEP_ERR_IO, "cannot create %s: %s", w->partial, strerror(errno));
    onestep_cache_writer_free(w);
    return NULL;
  }
  return w;
}

static onestep_status
write_shard(onestep_cache_writer *w, onestep_error *error)
{
  char name[64];
  snprintf(name, sizeof name, "shard-%05d.safetensors", w->shards);
  char *path = path_join(w->partial, name);
  if (!path)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  int n = w->in_shard, lc = w->id.latent_channels;
  os_st_write_tensor tensors[3] = {
    {.name = "latents", .ndim = 5, .shape = {n, w->frames, lc, w->latent_h, w->latent_w},
     .data = w->latents},
    {.name = "cond_latent", .ndim = 4, .shape = {n, lc, w->latent_h, w->latent_w},
     .data = w->cond},
    {.name = "image_embeds", .ndim = 2, .shape = {n, w->id.cross_dim}, .data = w->embeds},
  };
  onestep_status status = os_safetensors_write(path, tensors, 3, error);
  free(path);
  if (status == ONESTEP_OK) {
    w->shards++;
    w->in_shard = 0;
  }
  return status;
}

onestep_status
onestep_cache_writer_add(onestep_cache_writer *w, const onestep_image *frames, onestep_error *error)
{
  os_error_clear(error);
  onestep_context *ctx = w->ctx;
  for (int f = 0; f < w->frames; f++)
    if (frames[f].width != w->width || frames[f].height != w->height)
      return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                          "frame %d is %dx%d, the cache's clips are %dx%d", f, frames[f].width,
                          frames[f].height, w->width, w->height);
  float scaling = ctx->src.config.vae.scaling_factor;
  float *latents = w->latents + (size_t)w->in_shard * w->latent_floats;
  size_t per_frame = w->cond_floats, n_img = (size_t)3 * w->width * w->height;
  onestep_status status = ONESTEP_OK;
  for (int f = 0; f < w->frames && status == ONESTEP_OK; f++) {
    os_image_to_signed_float(&frames[f], w->image, ctx->host_threads);
    float *mean = latents + (size_t)f * per_frame;
    status = os_image_encode_latent(ctx, w->image, w->height, w->width, mean, NULL, error);
    for (size_t i = 0; status == ONESTEP_OK && i < per_frame; i++)
      mean[i] *= scaling;
  }
  if (status != ONESTEP_OK)
    return status;
  /* The conditioning frame as inference encodes it: noise-augmented, unscaled. */
  os_image_to_signed_float(&frames[0], w->image, ctx->host_threads);
  os_philox_normal(0, COND_AUG_STREAM, (uint64_t)w->clips * n_img, w->noise, n_img);
  for (size_t i = 0; i < n_img; i++)
    w->image[i] += COND_AUG_STRENGTH * w->noise[i];
  status = os_image_encode_latent(ctx, w->image, w->height, w->width,
                                  w->cond + (size_t)w->in_shard * w->cond_floats, NULL, error);
  if (status == ONESTEP_OK)
    status = os_image_embed(ctx, &frames[0], NULL,
                            w->embeds + (size_t)w->in_shard * w->id.cross_dim, error);
  if (status != ONESTEP_OK)
    return status;
  w->in_shard++;
  w->clips++;
  return w->in_shard == CLIPS_PER_SHARD ? write_shard(w, error) : ONESTEP_OK;
}

int
onestep_cache_writer_count(const onestep_cache_writer *w)
{
  return w->clips;
}

static onestep_status
write_manifest(onestep_cache_writer *w, onestep_error *error)
{
  cJSON *root = cJSON_CreateObject();
  char hash[32], *path = path_join(w->partial, "cache.json"), *text = NULL;
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)w->id.vae_hash);
  cJSON_AddStringToObject(root, "format", CACHE_FORMAT);
  cJSON_AddNumberToObject(root, "version", CACHE_VERSION);
  cJSON_AddNumberToObject(root, "frames", w->frames);
  cJSON_AddNumberToObject(root, "width", w->width);
  cJSON_AddNumberToObject(root, "height", w->height);
  cJSON_AddNumberToObject(root, "fps", w->fps);
  cJSON_AddNumberToObject(root, "clips", w->clips);
  cJSON_AddNumberToObject(root, "shards", w->shards);
  cJSON_AddNumberToObject(root, "clips_per_shard", CLIPS_PER_SHARD);
  cJSON_AddNumberToObject(root, "latent_channels", w->id.latent_channels);
  cJSON_AddNumberToObject(root, "cross_attention_dim", w->id.cross_dim);
  cJSON_AddNumberToObject(root, "vae_downscale", w->id.downscale);
  cJSON_AddStringToObject(root, "vae_hash", hash);
  text = cJSON_Print(root);
  onestep_status status = ONESTEP_OK;
  FILE *f = path && text ? fopen(path, "w") : NULL;
  if (!f || fputs(text, f) == EOF || fputc('\n', f) == EOF)
    status = os_error_set(error, ONESTEP_ERR_IO, "cannot write %s: %s",
                          path ? path : "cache.json", strerror(errno));
  if (f && fclose(f) != 0 && status == ONESTEP_OK)
    status = os_error_set(error, ONESTEP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  cJSON_Delete(root);
  free(text);
  free(path);
  return status;
}

onestep_status
onestep_cache_writer_finish(onestep_cache_writer *w, onestep_error *error)
{
  os_error_clear(error);
  if (w->clips == 0)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "no clip to write to %s", w->dir);
  onestep_status status = w->in_shard > 0 ? write_shard(w, error) : ONESTEP_OK;
  if (status == ONESTEP_OK)
    status = write_manifest(w, error);
  if (status == ONESTEP_OK && rename(w->partial, w->dir) != 0)
    status = os_error_set(error, ONESTEP_ERR_IO, "cannot move %s to %s: %s", w->partial, w->dir,
                          strerror(errno));
  if (status == ONESTEP_OK) {
    free(w->partial);
    w->partial = NULL; /* in place: nothing for free() to remove */
  }
  return status;
}

void
onestep_cache_writer_free(onestep_cache_writer *w)
{
  if (!w)
    return;
  if (w->partial)
    remove_folder(w->partial);
  free(w->partial);
  free(w->dir);
  free(w->latents);
  free(w->cond);
  free(w->embeds);
  free(w->image);
  free(w->noise);
  free(w);
}

/* ---- reading ---- */

typedef struct {
  os_safetensors *st;
  const float *latents, *cond, *embeds;
  int clips;
} shard;

struct os_data_cache {
  int frames, latent_h, latent_w, clips, n_shards;
  float fps;
  size_t latent_floats, cond_floats, cross_dim;
  shard *shards;
};

void
os_data_cache_close(os_data_cache *c)
{
  if (!c)
    return;
  for (int i = 0; c->shards && i < c->n_shards; i++)
    if (c->shards[i].st)
      os_safetensors_close(c->shards[i].st);
  free(c->shards);
  free(c);
}

/* The shard's tensor `name`, F32 of exactly this shape, or NULL after an error. */
static const float *
shard_tensor(const os_safetensors *st, const char *name, int ndim, const int64_t *shape,
             onestep_error *error)
{
  const os_st_tensor *t = os_safetensors_find(st, name);
  bool ok = t && t->dtype == OS_DTYPE_F32 && t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++)
    ok = d == 0 ? t->shape[0] >= 1 : t->shape[d] == shape[d];
  if (!ok) {
    os_error_set(error, ONESTEP_ERR_FORMAT,
                 "%s: tensor '%s' is missing or not of the cache's shape (a corrupt shard?)",
                 st->path, name);
    return NULL;
  }
  return t->data;
}

static onestep_status
open_shard(os_data_cache *c, const char *dir, int i, int lc, onestep_error *error)
{
  char name[64];
  snprintf(name, sizeof name, "shard-%05d.safetensors", i);
  char *path = path_join(dir, name);
  if (!path)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  shard *s = &c->shards[i];
  s->st = os_safetensors_open(path, error);
  free(path);
  if (!s->st)
    return error->code;
  int64_t lat[5] = {0, c->frames, lc, c->latent_h, c->latent_w};
  int64_t cond[4] = {0, lc, c->latent_h, c->latent_w}, emb[2] = {0, (int64_t)c->cross_dim};
  s->latents = shard_tensor(s->st, "latents", 5, lat, error);
  s->cond = s->latents ? shard_tensor(s->st, "cond_latent", 4, cond, error) : NULL;
  s->embeds = s->cond ? shard_tensor(s->st, "image_embeds", 2, emb, error) : NULL;
  if (!s->embeds)
    return error->code;
  s->clips = (int)os_safetensors_find(s->st, "latents")->shape[0];
  if (os_safetensors_find(s->st, "cond_latent")->shape[0] != s->clips ||
      os_safetensors_find(s->st, "image_embeds")->shape[0] != s->clips)
    return os_error_set(error, ONESTEP_ERR_FORMAT, "%s: its tensors hold different clip counts",
                        s->st->path);
  return ONESTEP_OK;
}

os_data_cache *
os_data_cache_open(const char *dir, onestep_context *ctx, onestep_error *error)
{
  os_json_file j = {0};
  char *path = path_join(dir, "cache.json");
  os_data_cache *c = calloc(1, sizeof *c);
  if (!path || !c) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  if (os_json_open(&j, path, error) != ONESTEP_OK)
    goto fail;
  const char *format = os_json_string(&j, "format", "");
  int version = os_json_int(&j, "version", 0);
  c->frames = os_json_int_min(&j, "frames", 0, 1);
  int width = os_json_int_min(&j, "width", 0, 1), height = os_json_int_min(&j, "height", 0, 1);
  c->fps = (float)os_json_number(&j, "fps", 0.0);
  c->clips = os_json_int_min(&j, "clips", 0, 1);
  c->n_shards = os_json_int_min(&j, "shards", 0, 1);
  int lc = os_json_int_min(&j, "latent_channels", 0, 1);
  c->cross_dim = (size_t)os_json_int_min(&j, "cross_attention_dim", 0, 1);
  int downscale = os_json_int_min(&j, "vae_downscale", 0, 1);
  const char *hash = os_json_string(&j, "vae_hash", "");
  if (j.status != ONESTEP_OK)
    goto fail;
  if (strcmp(format, CACHE_FORMAT) != 0 || version != CACHE_VERSION) {
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: not a latent cache of this version", path);
    goto fail;
  }
  model_identity id = identity_of(ctx);
  char want[32];
  snprintf(want, sizeof want, "%016llx", (unsigned long long)id.vae_hash);
  if (lc != id.latent_channels || (int)c->cross_dim != id.cross_dim || downscale != id.downscale ||
      strcmp(hash, want) != 0) {
    os_error_set(error, ONESTEP_ERR_MODEL,
                 "%s was made with another model (its VAE or image encoder differs from this "
                 "one's): prepare it again with this model",
                 dir);
    goto fail;
  }
  c->latent_h = height / downscale;
  c->latent_w = width / downscale;
  c->cond_floats = (size_t)lc * c->latent_h * c->latent_w;
  c->latent_floats = (size_t)c->frames * c->cond_floats;
  c->shards = calloc((size_t)c->n_shards, sizeof *c->shards);
  if (!c->shards) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
    goto fail;
  }
  int total = 0;
  for (int i = 0; i < c->n_shards; i++) {
    if (open_shard(c, dir, i, lc, error) != ONESTEP_OK)
      goto fail;
    total += c->shards[i].clips;
  }
  if (total != c->clips) {
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: the shards hold %d clips, cache.json says %d",
                 dir, total, c->clips);
    goto fail;
  }
  os_json_close(&j);
  free(path);
  return c;
fail:
  if (j.root)
    os_json_close(&j);
  free(path);
  os_data_cache_close(c);
  return NULL;
}

int
os_data_cache_clips(const os_data_cache *c)
{
  return c->clips;
}

void
os_data_cache_size(const os_data_cache *c, int *frames, int *latent_h, int *latent_w)
{
  *frames = c->frames;
  *latent_h = c->latent_h;
  *latent_w = c->latent_w;
}

float
os_data_cache_fps(const os_data_cache *c)
{
  return c->fps;
}

void
os_data_cache_clip(const os_data_cache *c, int i, const float **latents, const float **cond,
                   const float **embeds)
{
  int s = 0;
  while (i >= c->shards[s].clips) {
    i -= c->shards[s].clips;
    s++;
  }
  *latents = c->shards[s].latents + (size_t)i * c->latent_floats;
  *cond = c->shards[s].cond + (size_t)i * c->cond_floats;
  *embeds = c->shards[s].embeds + (size_t)i * c->cross_dim;
}
