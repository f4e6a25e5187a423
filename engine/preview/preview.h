/* preview.h: the instant preview decoder (osv-method.md section 3).
 *
 * A sub-pixel convolution: Conv2d(C -> 3 r^2, kernel k, zero padding k/2)
 * followed by PixelShuffle(r), mapping latents [C, h, w] to RGB [3, r h, r w].
 * It is linear in the latents, so for a given VAE its weights are fitted in
 * closed form by least squares on pairs (latents, VAE-decoded frame
 * downsampled to r h x r w), then cached per VAE. r = 4 for SVD's 8x VAE
 * (a quarter of the final resolution); any r that divides the VAE's factor works.
 *
 * The kernel is 3x3 by default: each 4x4 output block then also sees its
 * neighbouring latents, which removes most of the block seams a 1x1 kernel
 * leaves, at 37 instead of 5 parameters per output channel. */
#ifndef ONESTEP_PREVIEW_H
#define ONESTEP_PREVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "onestep.h"
#include "safetensors.h"
#include "vae.h"

#define OS_PREVIEW_SCALE 4
#define OS_PREVIEW_KERNEL 3

typedef struct {
  int channels; /* latent channels C */
  int scale;    /* r */
  int kernel;   /* k, odd */
  float *weight; /* [3 r^2, C, k, k], output channel o = colour * r^2 + dy * r + dx */
  float *bias;   /* [3 r^2] */
} os_preview_decoder;

/* Least-squares fit on n pairs: latents [n, C, h, w] and images [n, 3, r h, r w]
 * (in the decoder's output range, about [-1, 1]). Needs at least C k^2 + 1
 * latent positions in all. */
onestep_status os_preview_fit(os_preview_decoder *pd, int channels, int scale, int kernel,
                              const float *latents, const float *images, int n, int h, int w,
                              onestep_error *error);
void os_preview_free(os_preview_decoder *pd);

/* latents [F, C, h, w] -> images [F, 3, r h, r w] (float, decoder range). */
void os_preview_apply_float(const os_preview_decoder *pd, const float *latents, int frames,
                            int h, int w, float *images);
/* latents [F, C, h, w] -> RGB8 [F, r h, r w, 3], mapping [-1, 1] to [0, 255]. */
void os_preview_apply(const os_preview_decoder *pd, const float *latents, int frames, int h,
                      int w, uint8_t *rgb);

/* Box-filter downsampling of images [n, 3, H, W] by factor (dividing H and W). */
void os_preview_downsample(const float *images, int n, int H, int W, int factor, float *out);

/* FNV-1a 64 over the shapes and bytes of the tensors whose names start with
 * prefix (e.g. "decoder." in a diffusers VAE file): the cache key of a VAE. */
uint64_t os_preview_vae_hash(const os_safetensors *st, const char *prefix);

/* $XDG_CACHE_HOME/onestep, else $HOME/.cache/onestep. */
onestep_status os_preview_default_cache_dir(char *out, size_t cap, onestep_error *error);

/* <cache_dir>/preview-<hash>-r<r>-k<k>.safetensors: weight and bias tensors.
 * load returns ONESTEP_ERR_IO when no cached fit exists. */
onestep_status os_preview_save(const os_preview_decoder *pd, const char *cache_dir,
                               uint64_t vae_hash, onestep_error *error);
onestep_status os_preview_load(os_preview_decoder *pd, const char *cache_dir, uint64_t vae_hash,
                               int channels, int scale, int kernel, onestep_error *error);

/* Synthetic picture number `index` in [-1, 1], images [3, H, W]: the fit's inputs. */
void os_preview_synthetic_image(float *img, int H, int W, int index);

/* The preview decoder of a VAE (r = min(4, the VAE's factor), 3x3 kernel):
 * from cache_dir (NULL: the default) when a fit for vae_hash is there, else
 * fitted on 8 synthetic 32x32-latent images and saved there (best effort: an
 * unwritable cache does not fail the call). Latents are in the sampler's space
 * (the VAE's latents times its scaling factor). */
onestep_status os_preview_for_vae(os_preview_decoder *pd, const os_vae *vae,
                                  const os_vae_config *cfg, os_backend *be, uint64_t vae_hash,
                                  const char *cache_dir, onestep_error *error);

#endif
