/* onestep-work-estimate.h: how far a request of several generations has got, in
 * seconds of work, as the engine's worker thread sees it.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>
#include "onestep.h"

G_BEGIN_DECLS

typedef struct _OnestepWorkEstimate OnestepWorkEstimate;

/* Where a request stands: fractions of its whole work, and seconds once any of it
 * has been timed. */
typedef struct
{
  double   fraction;           /* done, never going back */
  double   fraction_under_way; /* what the engine is doing until its next report */
  double   seconds_under_way;  /* the same in seconds; 0 while nothing was timed */
  double   seconds_left;       /* from this report to the end; negative while nothing was timed */
} OnestepWorkState;

OnestepWorkEstimate *onestep_work_estimate_new        (const onestep_plan     *plans,
                                                       guint                   n_runs);
void                 onestep_work_estimate_free       (OnestepWorkEstimate    *self);
void                 onestep_work_estimate_start_run  (OnestepWorkEstimate    *self,
                                                       guint                   run,
                                                       gint64                  time);
void                 onestep_work_estimate_report     (OnestepWorkEstimate    *self,
                                                       const onestep_progress *progress,
                                                       gint64                  time);
void                 onestep_work_estimate_finish_run (OnestepWorkEstimate    *self);
void                 onestep_work_estimate_get_state  (OnestepWorkEstimate    *self,
                                                       OnestepWorkState       *state);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OnestepWorkEstimate, onestep_work_estimate_free)

G_END_DECLS
