/* onestep-history.h: the session's results, newest first.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-result.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_HISTORY (onestep_history_get_type ())

G_DECLARE_FINAL_TYPE (OnestepHistory, onestep_history, ONESTEP, HISTORY, AdwBin)

void   onestep_history_add     (OnestepHistory *self,
                                OnestepResult  *result);
guint  onestep_history_get_len (OnestepHistory *self);

G_END_DECLS
