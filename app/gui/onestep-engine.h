/* onestep-engine.h: the generation engine on its own worker thread.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "onestep-params.h"
#include "onestep-result.h"
#include "onestep-work-estimate.h"

G_BEGIN_DECLS

#define ONESTEP_ENGINE_ERROR (onestep_engine_error_quark ())
#define ONESTEP_TYPE_ENGINE  (onestep_engine_get_type ())

/* The codes are the engine's onestep_status values. */
GQuark onestep_engine_error_quark (void);

G_DECLARE_FINAL_TYPE (OnestepEngine, onestep_engine, ONESTEP, ENGINE, GObject)

typedef struct
{
  onestep_stage  stage;
  int            step;
  int            n_steps;
  /* The work of the whole request, all its step counts, weighed by its cost. */
  OnestepWorkState work;
  gint64         time;          /* g_get_monotonic_time () when the engine reported */
  int            run;           /* which step count is running, 0-based */
  int            n_runs;
  int            run_steps;     /* the step count of that run */
  /* A fast preview of the current estimate, or NULL:
   * preview_frames x preview_height x preview_width RGB8. */
  GBytes        *preview;
  int            preview_frames;
  int            preview_width;
  int            preview_height;
} OnestepEngineProgress;

/* The sampler step (1-based, of progress->run_steps) that the denoise stage is at; the
 * engine's step counts UNet evaluations, which some samplers make two of per step. */
int onestep_engine_progress_get_run_step (const OnestepEngineProgress *progress);
/* The request's fraction done, and the seconds of work left (negative while
 * unknown), at now: the report moved on by the time since, within the work
 * that was under way. */
double onestep_engine_progress_get_fraction     (const OnestepEngineProgress *progress,
                                                 gint64                       now);
double onestep_engine_progress_get_seconds_left (const OnestepEngineProgress *progress,
                                                 gint64                       now);

/* Both run on the main thread, never after the request was cancelled. */
typedef void (*OnestepEngineProgressFunc) (const OnestepEngineProgress *progress,
                                           gpointer                     user_data);
typedef void (*OnestepEngineResultFunc)   (OnestepResult               *result,
                                           gpointer                     user_data);

OnestepEngine *onestep_engine_new               (void);
void           onestep_engine_shutdown          (OnestepEngine              *self);
void           onestep_engine_wait_for_workers  (void);
void           onestep_engine_load_model_async  (OnestepEngine              *self,
                                                 const char                 *model_path,
                                                 const char                 *unet_file,
                                                 onestep_device              device,
                                                 onestep_precision           precision,
                                                 GCancellable               *cancellable,
                                                 GAsyncReadyCallback         callback,
                                                 gpointer                    user_data);
gboolean       onestep_engine_load_model_finish (OnestepEngine              *self,
                                                 GAsyncResult               *result,
                                                 onestep_model_info         *info,
                                                 GError                    **error);
void           onestep_engine_generate_async    (OnestepEngine              *self,
                                                 GBytes                     *image,
                                                 int                         image_width,
                                                 int                         image_height,
                                                 const OnestepParams        *params,
                                                 const int                  *step_counts,
                                                 guint                       n_step_counts,
                                                 OnestepEngineProgressFunc   progress_func,
                                                 OnestepEngineResultFunc     result_func,
                                                 gpointer                    func_data,
                                                 GCancellable               *cancellable,
                                                 GAsyncReadyCallback         callback,
                                                 gpointer                    user_data);
gboolean       onestep_engine_generate_finish   (OnestepEngine              *self,
                                                 GAsyncResult               *result,
                                                 GError                    **error);

G_END_DECLS
