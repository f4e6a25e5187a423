/* onestep-work-estimate.c
 *
 * A request's work is, for each of its runs (one per step count), the image
 * stages (CLIP and VAE encoding), the UNet calls and the decoding of the
 * frames. Each kind is weighed by its cost in units of about the same work:
 * decoding a frame costs about as much as evaluating the UNet on one frame of
 * one input (for SVD-XT at 1024 × 576 both are about 3 TFLOP), and the image
 * stages about half that. As the engine reports, the time each kind took is
 * measured, and costs turn into seconds: a kind not timed yet is estimated
 * from the seconds per unit of those that were.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "onestep-work-estimate.h"

/* The image stages of a run, in units of decoding one frame. */
#define IMAGE_UNITS 0.5

typedef enum
{
  WORK_IMAGE,
  WORK_UNET_CALL,
  WORK_DECODE_FRAME,
  N_WORK_KINDS
} WorkKind;

struct _OnestepWorkEstimate
{
  onestep_plan  *plans;
  guint          n_runs;

  /* Work timed so far: its seconds and its cost units, per kind. */
  double         timed_seconds[N_WORK_KINDS];
  double         timed_units[N_WORK_KINDS];

  /* The run under way, as far as its latest report. */
  guint          run;
  onestep_stage  stage;
  int            calls_done;
  int            frames_decoded;
  gboolean       run_finished;
  /* When the image stages, the next UNet call and the next decoder chunk began. */
  gint64         image_start;
  gint64         image_end;
  gint64         call_start;
  gint64         decode_start;

  double         last_fraction;
};

OnestepWorkEstimate *
onestep_work_estimate_new (const onestep_plan *plans,
                           guint               n_runs)
{
  OnestepWorkEstimate *self;

  g_return_val_if_fail (plans != NULL && n_runs > 0, NULL);

  self = g_new0 (OnestepWorkEstimate, 1);
  self->plans = g_memdup2 (plans, sizeof (onestep_plan) * n_runs);
  self->n_runs = n_runs;

  return self;
}

void
onestep_work_estimate_free (OnestepWorkEstimate *self)
{
  g_free (self->plans);
  g_free (self);
}

static double
unit_cost (const onestep_plan *plan,
           WorkKind            kind)
{
  switch (kind)
    {
    case WORK_IMAGE:
      return IMAGE_UNITS;
    case WORK_UNET_CALL:
      return (double)plan->unet_batch * plan->frames;
    case WORK_DECODE_FRAME:
    case N_WORK_KINDS:
    default:
      return 1.0;
    }
}

static gboolean
onestep_work_estimate_is_timed (OnestepWorkEstimate *self)
{
  for (int kind = 0; kind < N_WORK_KINDS; kind++)
    if (self->timed_units[kind] > 0)
      return TRUE;
  return FALSE;
}

/* What one unit of the kind of work costs: its measured seconds, or those of
 * all the work timed, or 1 (a unit) while nothing was. */
static double
seconds_per_unit (OnestepWorkEstimate *self,
                  WorkKind             kind)
{
  double seconds = 0;
  double units = 0;

  if (self->timed_units[kind] > 0)
    return self->timed_seconds[kind] / self->timed_units[kind];

  for (int other = 0; other < N_WORK_KINDS; other++)
    {
      seconds += self->timed_seconds[other];
      units += self->timed_units[other];
    }
  return units > 0 ? seconds / units : 1.0;
}

static double
cost (OnestepWorkEstimate *self,
      guint                run,
      WorkKind             kind,
      double               count)
{
  return count * unit_cost (&self->plans[run], kind) * seconds_per_unit (self, kind);
}

static double
run_cost (OnestepWorkEstimate *self,
          guint                run)
{
  const onestep_plan *plan = &self->plans[run];

  return cost (self, run, WORK_IMAGE, 1) + cost (self, run, WORK_UNET_CALL, plan->unet_calls) +
         cost (self, run, WORK_DECODE_FRAME, plan->frames);
}

static void
add_timing (OnestepWorkEstimate *self,
            WorkKind             kind,
            gint64               start,
            gint64               end,
            double               count)
{
  self->timed_seconds[kind] += (double)(end - start) / G_USEC_PER_SEC;
  self->timed_units[kind] += count * unit_cost (&self->plans[self->run], kind);
}

void
onestep_work_estimate_start_run (OnestepWorkEstimate *self,
                                 guint                run,
                                 gint64               time)
{
  g_return_if_fail (run < self->n_runs);

  self->run = run;
  self->stage = ONESTEP_STAGE_CLIP;
  self->calls_done = 0;
  self->frames_decoded = 0;
  self->run_finished = FALSE;
  self->image_start = time;
  self->image_end = time;
}

void
onestep_work_estimate_report (OnestepWorkEstimate    *self,
                              const onestep_progress *progress,
                              gint64                  time)
{
  const onestep_plan *plan = &self->plans[self->run];

  switch (progress->stage)
    {
    case ONESTEP_STAGE_DENOISE:
      if (progress->step == 0)
        {
          /* Readying the denoiser (reported at step 0 before and after) counts as
           * the image stages' work, timed with them at the first call. */
          self->image_end = time;
          self->call_start = time;
        }
      else if (progress->step > self->calls_done)
        {
          if (self->calls_done == 0)
            add_timing (self, WORK_IMAGE, self->image_start, self->image_end, 1);
          add_timing (self, WORK_UNET_CALL, self->call_start, time,
                      progress->step - self->calls_done);
          self->calls_done = progress->step;
          self->call_start = time;
        }
      break;

    case ONESTEP_STAGE_DECODE:
      if (progress->step == 0)
        self->decode_start = time;
      else
        {
          int decoded = MIN (progress->step * MAX (plan->decode_chunk, 1), plan->frames);

          add_timing (self, WORK_DECODE_FRAME, self->decode_start, time,
                      decoded - self->frames_decoded);
          self->frames_decoded = decoded;
          self->decode_start = time;
        }
      break;

    case ONESTEP_STAGE_LOAD:
    case ONESTEP_STAGE_CLIP:
    case ONESTEP_STAGE_ENCODE:
    default:
      break;
    }

  self->stage = progress->stage;
}

void
onestep_work_estimate_finish_run (OnestepWorkEstimate *self)
{
  self->run_finished = TRUE;
}

/* The work of the run under way that is done, and the part the engine is doing
 * until its next report. */
static void
current_run_work (OnestepWorkEstimate *self,
                  double              *done,
                  double              *under_way)
{
  const onestep_plan *plan = &self->plans[self->run];
  double image = cost (self, self->run, WORK_IMAGE, 1);
  double calls = cost (self, self->run, WORK_UNET_CALL, self->calls_done);

  if (self->run_finished)
    {
      *done = run_cost (self, self->run);
      *under_way = self->run + 1 < self->n_runs ? cost (self, self->run + 1, WORK_IMAGE, 1) : 0;
      return;
    }

  switch (self->stage)
    {
    case ONESTEP_STAGE_DENOISE:
      *done = image + calls;
      *under_way = self->calls_done < plan->unet_calls ? cost (self, self->run, WORK_UNET_CALL, 1)
                                                       : 0;
      break;

    case ONESTEP_STAGE_DECODE:
      *done = image + cost (self, self->run, WORK_UNET_CALL, plan->unet_calls) +
              cost (self, self->run, WORK_DECODE_FRAME, self->frames_decoded);
      *under_way = cost (self, self->run, WORK_DECODE_FRAME,
                         MIN (MAX (plan->decode_chunk, 1), plan->frames - self->frames_decoded));
      break;

    case ONESTEP_STAGE_ENCODE:
      /* CLIP and the encoder are not timed apart: each is taken as half. */
      *done = image / 2;
      *under_way = image / 2;
      break;

    case ONESTEP_STAGE_LOAD:
    case ONESTEP_STAGE_CLIP:
    default:
      *done = 0;
      *under_way = image;
      break;
    }
}

void
onestep_work_estimate_get_state (OnestepWorkEstimate *self,
                                 OnestepWorkState    *state)
{
  gboolean timed = onestep_work_estimate_is_timed (self);
  double total = 0;
  double done = 0;
  double run_done;
  double under_way;

  for (guint run = 0; run < self->n_runs; run++)
    {
      double run_total = run_cost (self, run);

      total += run_total;
      if (run < self->run)
        done += run_total;
    }
  current_run_work (self, &run_done, &under_way);
  done += run_done;

  /* A new measurement reweighs the work already done: the fraction holds still
   * rather than go back. */
  self->last_fraction = CLAMP (done / total, self->last_fraction, 1.0);
  state->fraction = self->last_fraction;
  state->fraction_under_way = MIN (under_way / total, 1.0 - state->fraction);
  state->seconds_under_way = timed ? under_way : 0;
  state->seconds_left = timed ? MAX (total - done, 0) : -1;
}
