/* golden_osv.h: OSV's two stages against a recorded case (docs/training.md):
 * one LGP and one ACD iteration from the case's adapters and discriminator,
 * every recorded tensor compared (student output, teacher steps and target,
 * logits, losses, both players' gradients and updated tensors, the
 * spectral-norm vectors, the EMA). */
#ifndef ONESTEP_GOLDEN_OSV_H
#define ONESTEP_GOLDEN_OSV_H

#include "golden.h"

os_golden_result os_golden_osv_check(const char *case_dir, const os_golden_options *options);

#endif
