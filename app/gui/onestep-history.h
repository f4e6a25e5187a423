/* onestep-history.h: the results of this and earlier sessions, newest first.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-result.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_HISTORY (onestep_history_get_type ())

G_DECLARE_FINAL_TYPE (OnestepHistory, onestep_history, ONESTEP, HISTORY, AdwBin)

void           onestep_history_add        (OnestepHistory *self,
                                           OnestepResult  *result);
guint          onestep_history_get_len    (OnestepHistory *self);
gboolean       onestep_history_get_loaded (OnestepHistory *self);
gboolean       onestep_history_get_saving (OnestepHistory *self);
OnestepResult *onestep_history_dup_result (OnestepHistory *self,
                                           guint           position);

G_END_DECLS
