/* onestep-cli-train-samples.h: sample clips of a training run's student. */
#pragma once

#include "onestep-cli.h"
#include "onestep_train.h"

G_BEGIN_DECLS

/* For each image, RUN/samples/step-NNNNNN-NAME.mp4 (WebM or GIF where this
 * system cannot write MP4): the current student (adapters merged, trained
 * tensors in place) at the cache's clip size, with the given sampler and
 * steps, seed 0. */
gboolean onestep_cli_train_write_samples (onestep_trainer                 *trainer,
                                          const char                      *run_dir,
                                          const char                      *model,
                                          const onestep_context_params    *context,
                                          char                           **images,
                                          onestep_sampler                  sampler,
                                          int                              steps,
                                          GError                         **error);

G_END_DECLS
