/* unet.h: UNetSpatioTemporalConditionModel. */
#ifndef ONESTEP_UNET_H
#define ONESTEP_UNET_H

#include "backend.h"
#include "config.h"
#include "weights.h"

typedef struct os_unet os_unet;

/* NULL for a config the model cannot run (levels or layers beyond the limits,
 * added time ids that do not fill the embedding's input); tensor errors are
 * latched in ws. */
os_unet *os_unet_bind(const os_unet_config *cfg, os_weight_set *ws);
void os_unet_free(os_unet *unet);

/* sample [B, F, in_channels, h, w], context [B, cross_attention_dim] (backend
 * memory); timestep and added_time_ids [B, 3] are host values (one timestep
 * for the whole batch). out [B, F, out_channels, h, w] (backend memory).
 * Returns ONESTEP_ERR_ABORTED when the backend's abort callback fires. */
onestep_status os_unet_forward(const os_unet *unet, os_backend *be, const float *sample,
                               float timestep, const float *context,
                               const float *added_time_ids, int B, int F, int h, int w,
                               float *out, onestep_error *error);

#endif
