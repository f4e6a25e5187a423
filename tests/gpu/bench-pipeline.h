/* bench-pipeline.h: the whole engine, image in to frames in host memory,
 * through onestep_generate() on a synthetic full-size model folder. */
#ifndef BENCH_PIPELINE_H
#define BENCH_PIPELINE_H

/* Tensor ranges of the three components (see bench_weights_count). */
typedef struct {
  int unet_first, unet_last;
  int vae_first, vae_last;
  int clip_first, clip_last;
} bench_model_tensors;

/* Writes the SVD-XT-shaped model folder under $TMPDIR (or /tmp), times `runs`
 * one-step Time Travel Sampler generations of `frames` frames at 1024x576
 * (after a warm-up) on the CUDA backend, prints a row, and removes the folder. */
void bench_pipeline(const bench_model_tensors *tensors, int frames, int runs);

#endif
