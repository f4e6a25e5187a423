/* train_test.h: what the training graph's tests share: seeded inputs in
 * backend memory, and the trained tensors read and moved as one vector. */
#ifndef ONESTEP_TRAIN_TEST_H
#define ONESTEP_TRAIN_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "train_params.h"

/* n standard normal values of (seed, stream) times scale, in backend memory. */
float *train_test_upload_normal(os_backend *be, uint64_t seed, uint64_t stream, size_t n,
                                float scale);
/* lora_B starts at zero, which would hide lora_A's gradients: every lora_B
 * tensor i gets normal values of (seed, first_stream + i) times scale. */
void train_test_fill_lora_b(os_train_params *p, uint64_t seed, uint64_t first_stream,
                            float scale);
/* Every trained tensor's gradient, concatenated on the host (malloc'ed). */
float *train_test_gradients(os_train_params *p, size_t *total);
/* Every trained value += eps * direction (the tensors concatenated in order). */
void train_test_shift(os_train_params *p, const float *direction, double eps);

#endif
