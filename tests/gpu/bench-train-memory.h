/* bench-train-memory.h: the peak device memory of one LoRA training step of
 * the full-size UNet, measured on the dry backend (dry-backend.h). */
#ifndef BENCH_TRAIN_MEMORY_H
#define BENCH_TRAIN_MEMORY_H

#include "unet.h"
#include "weights.h"

/* One step of SVD's denoising objective (forward, loss, backward, AdamW)
 * with LoRA rank 8 on the self-attention projections and the given
 * gradient-checkpointing budget, at frames x width x height; prints the peak
 * with and without the weights (fp32). Returns 0 when the step ran and freed
 * everything it allocated. */
int bench_train_memory(os_backend *dry, const os_unet *unet, os_weight_set *unet_weights,
                       int64_t unet_params, int frames, int width, int height,
                       size_t checkpoint_budget);

#endif
