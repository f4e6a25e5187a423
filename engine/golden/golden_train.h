/* golden_train.h: the training core against a recorded training case
 * (docs/training.md): the case's LoRA adapters loaded from lora_init/, its
 * recorded inputs fed step by step, and every recorded tensor (model output,
 * denoised latents, loss, gradient norm, every trained tensor's gradient,
 * value after the optimiser step and EMA) compared. */
#ifndef ONESTEP_GOLDEN_TRAIN_H
#define ONESTEP_GOLDEN_TRAIN_H

#include "golden.h"

/* Prints a row per input-side tensor, a summary row per group of trained
 * tensors (and every failing tensor), then "golden CASE: N of M tensors,
 * worst rel err X (KEY), tolerance T". Uses options' model_dir, params,
 * tolerance and program. */
os_golden_result os_golden_train_check(const char *case_dir, const os_golden_options *options);

#endif
