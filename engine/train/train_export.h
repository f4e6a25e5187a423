/* train_export.h: the trained parameters on disk: the whole training state
 * (for resuming), a PEFT adapter, and a UNet-only file with everything merged.
 * Every file is written atomically (temporary name, then rename). */
#ifndef ONESTEP_TRAIN_EXPORT_H
#define ONESTEP_TRAIN_EXPORT_H

#include "train_params.h"

/* value.<name>, m.<name>, v.<name>, ema.<name> for every trained tensor and
 * step ([2]: step / 2^24 and step % 2^24, exact in float32). */
onestep_status os_train_state_save(os_train_params *p, int64_t step, const char *path,
                                   onestep_error *error);
/* The file must hold exactly this run's tensors, with their sizes. */
onestep_status os_train_state_load(os_train_params *p, int64_t *step, const char *path,
                                   onestep_error *error);

/* The adapters' values alone (value.<name> of every LoRA tensor) from a
 * state file, into values and EMA: stage 2 starts from stage 1's adapters,
 * whatever that run trained in full. */
onestep_status os_train_state_load_adapters(os_train_params *p, const char *path,
                                            onestep_error *error);

/* adapter_model.safetensors (base_model.model.<module>.lora_A/B.weight) and
 * adapter_config.json in dir (created if absent). */
onestep_status os_train_export_peft(os_train_params *p, int rank, float alpha, bool use_ema,
                                    const char *dir, onestep_error *error);
/* Every tensor of the UNet's weight set under its diffusers name, with
 * W + (alpha / rank) B A where an adapter sits and the trained value where a
 * tensor trains in full. */
onestep_status os_train_export_unet(os_train_params *p, os_weight_set *unet, bool use_ema,
                                    const char *path, onestep_error *error);

#endif
