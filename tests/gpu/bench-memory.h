/* bench-memory.h: the engine's peak device memory per piece of a generation,
 * measured on the dry backend (dry-backend.h) in seconds. */
#ifndef BENCH_MEMORY_H
#define BENCH_MEMORY_H

#include <stdint.h>

#include "backend.h"
#include "clip.h"
#include "config.h"
#include "unet.h"
#include "vae.h"

typedef struct {
  const os_unet *unet;
  const os_vae *vae;
  const os_clip *clip;
  os_unet_config unet_cfg;
  os_vae_config vae_cfg;
  os_clip_config clip_cfg;
  size_t weight_bytes[3]; /* UNet, VAE, CLIP: the resident weights in fp16 */
} bench_memory_models;

/* Runs the UNet (14 and 25 frames, batch 1 and 2), the VAE decoder (14, 25
 * frames), the encoder, CLIP and the one-step TTS chain (14, 25 frames) at
 * width x height on `dry`, the models bound on it; prints the peak of each
 * in fp32 and in fp16 (each buffer counted as its storage is: float32 at 4
 * bytes, activations at 2) and the one-step totals with the fp16 weights.
 * Returns 0 when every piece ran, freed all it allocated and passed the dry
 * backend's buffer checks, and with check_goal when the totals meet issue
 * 12's goals (25 frames at most 12e9 bytes, 14 frames under 10e9); 1
 * otherwise. */
int bench_memory(os_backend *dry, const bench_memory_models *m, int width, int height,
                 bool check_goal);

/* Runs the UNet (3 frames, batch 2), the decoder (3 frames), the encoder and
 * CLIP with the smallest chunks, once per allocation each makes with that
 * allocation failing: each run must report out of memory, leave nothing
 * allocated and pass the dry backend's checks. Returns 0 when all do. */
int bench_memory_faults(os_backend *dry, const bench_memory_models *m, int width, int height);

#endif
