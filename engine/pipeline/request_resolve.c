/* request_resolve.c: every request value checked before anything is allocated. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "request_resolve.h"

#define MAX_SIDE 16384
#define MAX_FRAMES 1024
#define MAX_STEPS 1000

/* Bytes of RAM the kernel says are available now. */
static double available_ram_bytes(void)
{
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    unsigned long long kib;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
        fclose(f);
        return (double)kib * 1024.0;
      }
    fclose(f);
  }
  return (double)sysconf(_SC_AVPHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

/* A lower bound on the host memory a generation needs: the decoded frames
 * (float and RGB8 copies) and, on the CPU, one full-resolution activation of
 * the VAE decoder's first level for a whole decode chunk. */
static double needed_bytes(const onestep_context *ctx, const os_resolved_request *r)
{
  double pixels = (double)r->width * r->height;
  double frames_bytes = (double)r->frames * pixels * 3.0 * (4.0 * 2.0 + 1.0);
  double decoder_bytes = 0.0;
  if (ctx->be->ops->is_host)
    decoder_bytes = (double)r->decode_chunk * pixels * ctx->src.config.vae.block_out_channels[0] * 4.0;
  return frames_bytes + decoder_bytes;
}

/* "auto" picks by model kind and step count (tts for one consistency step,
 * cm for more, euler for base SVD). */
static onestep_status resolve_sampler(const onestep_context *ctx, onestep_sampler asked, int steps,
                                      onestep_sampler *out, onestep_error *error)
{
  onestep_sampler s =
      asked == ONESTEP_SAMPLER_AUTO ? os_checkpoint_auto_sampler(ctx->info.kind, steps) : asked;
  if (s != ONESTEP_SAMPLER_EULER && s != ONESTEP_SAMPLER_CM && s != ONESTEP_SAMPLER_TTS)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "sampler %d is unknown", (int)asked);
  *out = s;
  return ONESTEP_OK;
}

onestep_status os_request_resolve(const onestep_context *ctx, const onestep_image *image,
                                  const onestep_request *req, os_resolved_request *r,
                                  onestep_error *error)
{
  const onestep_model_info *info = &ctx->info;
  memset(r, 0, sizeof *r);
  if (!image || !image->rgb || image->width <= 0 || image->height <= 0 ||
      image->stride < 3 * image->width)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "image: missing pixels or impossible size/stride");
  r->width = req->width ? req->width : info->default_width;
  r->height = req->height ? req->height : info->default_height;
  r->frames = req->frames ? req->frames : info->default_frames;
  r->steps = req->steps ? req->steps : info->default_steps;
  r->min_guidance = req->min_guidance < 0 ? info->default_min_guidance : req->min_guidance;
  r->max_guidance = req->max_guidance < 0 ? info->default_max_guidance : req->max_guidance;
  r->cfg = r->max_guidance > 1.0f;
  r->vae_factor = os_vae_downscale(ctx->vae);

  if (r->width < 0 || r->height < 0 || r->width > MAX_SIDE || r->height > MAX_SIDE)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "width x height %dx%d: each side must be between %d and %d pixels",
                        r->width, r->height, r->vae_factor, MAX_SIDE);
  if (r->width % r->vae_factor || r->height % r->vae_factor || r->width < r->vae_factor ||
      r->height < r->vae_factor)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "width x height %dx%d: both must be positive multiples of %d (the VAE factor)",
                        r->width, r->height, r->vae_factor);
  if (r->frames < 1 || r->frames > MAX_FRAMES)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "frames %d: must be between 1 and %d", r->frames, MAX_FRAMES);
  if (r->steps < 1 || r->steps > MAX_STEPS)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "steps %d: must be between 1 and %d",
                        r->steps, MAX_STEPS);
  if (req->fps < 1)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "fps %d: must be at least 1", req->fps);
  if (req->decode_chunk_size < 0)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "decode_chunk_size %d: must be 0 (all frames) or positive",
                        req->decode_chunk_size);
  if (!(req->noise_aug_strength >= 0.0f) || !(r->max_guidance >= r->min_guidance))
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "noise_aug_strength %g must be >= 0 and max_guidance %g >= min_guidance %g",
                        req->noise_aug_strength, r->max_guidance, r->min_guidance);
  if (image->width != r->width || image->height != r->height)
    return os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                        "image is %dx%d but the request is %dx%d: scale the image first",
                        image->width, image->height, r->width, r->height);
  r->decode_chunk = req->decode_chunk_size && req->decode_chunk_size < r->frames
                        ? req->decode_chunk_size
                        : r->frames;
  r->latent_h = r->height / r->vae_factor;
  r->latent_w = r->width / r->vae_factor;

  double need = needed_bytes(ctx, r), have = available_ram_bytes();
  if (need > have)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                        "%d frames of %dx%d need at least %.1f GiB of memory but only %.1f GiB is "
                        "available: use fewer frames, a smaller size or a smaller decode chunk",
                        r->frames, r->width, r->height, need / 1073741824.0, have / 1073741824.0);
  return resolve_sampler(ctx, req->sampler, r->steps, &r->sampler, error);
}
