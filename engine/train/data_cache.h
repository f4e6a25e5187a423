/* data_cache.h: reading the latent cache that onestep_cache_writer makes
 * (onestep_train.h), checked against the model that trains on it. */
#ifndef ONESTEP_DATA_CACHE_H
#define ONESTEP_DATA_CACHE_H

#include "onestep.h"

typedef struct os_data_cache os_data_cache;

/* Maps every shard and checks cache.json, the shards' shapes and the model's
 * identity (latent channels, CLIP width, VAE weights). */
os_data_cache *os_data_cache_open(const char *dir, onestep_context *ctx, onestep_error *error);
void os_data_cache_close(os_data_cache *cache);

int os_data_cache_clips(const os_data_cache *cache);
void os_data_cache_size(const os_data_cache *cache, int *frames, int *latent_h, int *latent_w);
float os_data_cache_fps(const os_data_cache *cache);
/* Clip i's latents [F, 4, h, w], cond_latent [4, h, w] and image_embeds [D], mapped. */
void os_data_cache_clip(const os_data_cache *cache, int i, const float **latents,
                        const float **cond_latent, const float **image_embeds);

#endif
