/* clip.h: CLIPVisionModelWithProjection (the image encoder). */
#ifndef ONESTEP_CLIP_H
#define ONESTEP_CLIP_H

#include "backend.h"
#include "config.h"
#include "weights.h"

typedef struct os_clip os_clip;

/* Binds every tensor of the vision tower (names as transformers writes them);
 * errors are latched in ws (see os_weights_finish). */
os_clip *os_clip_bind(const os_clip_config *cfg, os_weight_set *ws);
void os_clip_free(os_clip *clip);

/* pixel_values [1, C, S, S] (normalised, backend memory) -> image_embeds
 * [projection_dim] (backend memory). */
onestep_status os_clip_forward(const os_clip *clip, os_backend *be, const float *pixel_values,
                               float *image_embeds, onestep_error *error);

#endif
