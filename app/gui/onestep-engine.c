/* onestep-engine.c
 *
 * The engine context is used from one dedicated thread, which owns it for its
 * whole life (a CUDA context and cuBLAS handle must stay on one thread). Jobs
 * arrive through a queue, each carrying a GTask made on the main thread;
 * progress, previews and results travel back as idle sources attached to the
 * task's main context.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-engine.h"
#include "onestep-image.h"
#include "onestep-main-context.h"

typedef enum
{
  JOB_LOAD,
  JOB_GENERATE,
  JOB_QUIT,
} JobKind;

typedef struct
{
  JobKind                    kind;
  GTask                     *task;
  GCancellable              *shutdown;
  char                      *model_path;
  char                      *unet_file;
  onestep_device             device;
  onestep_precision          precision;
  GBytes                    *image;
  int                        image_width;
  int                        image_height;
  OnestepParams             *params;
  int                       *step_counts;
  guint                      n_step_counts;
  OnestepEngineProgressFunc  progress_func;
  OnestepEngineResultFunc    result_func;
  gpointer                   func_data;
  /* Which step count the worker is running, and how far the whole job is. */
  int                        run;
  OnestepWorkEstimate       *work;
} Job;

/* Everything here belongs to the worker thread. */
typedef struct
{
  GAsyncQueue     *jobs;
  onestep_context *context;
  char            *context_path;
  char            *context_unet_file;
  onestep_device   context_device;
  onestep_precision context_precision;
} Worker;

/* A progress report or a result on its way to the main thread. */
typedef struct
{
  GTask                     *task;
  OnestepEngineProgressFunc  progress_func;
  OnestepEngineResultFunc    result_func;
  gpointer                   func_data;
  OnestepEngineProgress      progress;
  OnestepResult             *result;
} Delivery;

struct _OnestepEngine
{
  GObject       parent_instance;

  GThread      *thread;
  GAsyncQueue  *jobs;
  GCancellable *shutdown;
};

/* Workers still running, of every engine: the process waits for them before it exits. */
static GMutex workers_lock;
static GCond workers_ended;
static guint n_workers;

G_DEFINE_FINAL_TYPE (OnestepEngine, onestep_engine, G_TYPE_OBJECT)
G_DEFINE_QUARK (onestep-engine-error-quark, onestep_engine_error)

static void
job_free (Job *job)
{
  g_clear_object (&job->task);
  g_clear_object (&job->shutdown);
  g_clear_pointer (&job->model_path, g_free);
  g_clear_pointer (&job->unet_file, g_free);
  g_clear_pointer (&job->image, g_bytes_unref);
  g_clear_pointer (&job->params, onestep_params_free);
  g_clear_pointer (&job->step_counts, g_free);
  g_clear_pointer (&job->work, onestep_work_estimate_free);
  g_free (job);
}

static void
delivery_free (gpointer data)
{
  Delivery *delivery = data;

  g_clear_object (&delivery->task);
  g_clear_object (&delivery->result);
  g_clear_pointer (&delivery->progress.preview, g_bytes_unref);
  g_free (delivery);
}

static gboolean
delivery_run (gpointer data)
{
  Delivery *delivery = data;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (delivery->task)))
    return G_SOURCE_REMOVE;

  if (delivery->result != NULL)
    delivery->result_func (delivery->result, delivery->func_data);
  else
    delivery->progress_func (&delivery->progress, delivery->func_data);

  return G_SOURCE_REMOVE;
}

static void
job_deliver (Job      *job,
             Delivery *delivery)
{
  delivery->task = g_object_ref (job->task);
  delivery->progress_func = job->progress_func;
  delivery->result_func = job->result_func;
  delivery->func_data = job->func_data;
  onestep_main_context_post (g_task_get_context (job->task), "[onestep] engine delivery",
                             delivery_run, delivery, delivery_free);
}

static gboolean
job_is_cancelled (Job *job)
{
  return g_cancellable_is_cancelled (job->shutdown) ||
         g_cancellable_is_cancelled (g_task_get_cancellable (job->task));
}

static void
return_engine_error (GTask               *task,
                     const onestep_error *error)
{
  if (error->code == ONESTEP_ERR_ABORTED)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s", error->message);
  else
    g_task_return_new_error (task, ONESTEP_ENGINE_ERROR, error->code, "%s", error->message);
}

static gboolean
worker_ensure_context (Worker         *worker,
                       const char     *model_path,
                       const char     *unet_file,
                       onestep_device  device,
                       onestep_precision precision,
                       onestep_error  *error)
{
  onestep_context_params context_params;

  if (worker->context != NULL &&
      g_strcmp0 (worker->context_path, model_path) == 0 &&
      g_strcmp0 (worker->context_unet_file, unet_file) == 0 &&
      worker->context_device == device &&
      worker->context_precision == precision)
    return TRUE;

  g_clear_pointer (&worker->context, onestep_context_free);
  g_clear_pointer (&worker->context_path, g_free);
  g_clear_pointer (&worker->context_unet_file, g_free);

  context_params = onestep_context_default_params ();
  context_params.device = device;
  /* On the CPU, explicit 16-bit precisions would only emulate a GPU's rounding. */
  context_params.precision = device == ONESTEP_DEVICE_CPU ? ONESTEP_PRECISION_FP32 : precision;
  context_params.unet_file = unet_file;
  worker->context = onestep_context_new (model_path, &context_params, error);
  if (worker->context == NULL)
    return FALSE;

  worker->context_path = g_strdup (model_path);
  worker->context_unet_file = g_strdup (unet_file);
  worker->context_device = device;
  worker->context_precision = precision;

  return TRUE;
}

/* A model that fails to load leaves the one loaded before it in place: the worker
 * opens that again (one model at a time, so that two never share the memory). */
static void
worker_load (Worker *worker,
             Job    *job)
{
  onestep_error error = { 0 };
  onestep_error reopen_error = { 0 };
  g_autofree char *previous_path = g_strdup (worker->context_path);
  g_autofree char *previous_unet_file = g_strdup (worker->context_unet_file);
  onestep_device previous_device = worker->context_device;
  onestep_precision previous_precision = worker->context_precision;

  if (!worker_ensure_context (worker, job->model_path, job->unet_file, job->device,
                              job->precision, &error))
    {
      if (previous_path != NULL)
        worker_ensure_context (worker, previous_path, previous_unet_file, previous_device,
                               previous_precision, &reopen_error);
      return_engine_error (job->task, &error);
      return;
    }

  g_task_return_pointer (job->task,
                         g_memdup2 (onestep_context_get_info (worker->context),
                                    sizeof (onestep_model_info)),
                         g_free);
}

static bool
job_should_abort (void *user_data)
{
  return job_is_cancelled (user_data);
}

static void
job_report_progress (const onestep_progress *progress,
                     void                   *user_data)
{
  Job *job = user_data;
  Delivery *delivery;

  if (job->progress_func == NULL)
    return;

  delivery = g_new0 (Delivery, 1);
  delivery->progress.stage = progress->stage;
  delivery->progress.step = progress->step;
  delivery->progress.n_steps = progress->n_steps;
  delivery->progress.run = job->run;
  delivery->progress.n_runs = job->n_step_counts;
  delivery->progress.run_steps = job->step_counts[job->run];
  delivery->progress.time = g_get_monotonic_time ();
  onestep_work_estimate_report (job->work, progress, delivery->progress.time);
  onestep_work_estimate_get_state (job->work, &delivery->progress.work);

  if (progress->preview_rgb != NULL)
    {
      delivery->progress.preview = g_bytes_new (progress->preview_rgb,
                                                (gsize)progress->preview_frames *
                                                progress->preview_width *
                                                progress->preview_height * 3);
      delivery->progress.preview_frames = progress->preview_frames;
      delivery->progress.preview_width = progress->preview_width;
      delivery->progress.preview_height = progress->preview_height;
    }

  job_deliver (job, delivery);
}

/* The engine's request for the job's run (which step count), at the fitted size. */
static onestep_request
job_make_request (Job   *job,
                  int    width,
                  int    height,
                  guint  run)
{
  onestep_request request = onestep_request_default ();

  request.width = width;
  request.height = height;
  request.frames = job->params->frames;
  if (job->params->fps > 0)
    request.fps = job->params->fps;
  request.motion_bucket_id = job->params->motion_bucket_id;
  request.noise_aug_strength = job->params->noise_aug_strength;
  request.steps = job->step_counts[run];
  request.seed = job->params->seed;
  request.sampler = job->params->sampler;
  request.progress = job_report_progress;
  request.abort = job_should_abort;
  request.user_data = job;

  return request;
}

static void
worker_generate (Worker *worker,
                 Job    *job)
{
  onestep_error error = { 0 };
  const onestep_model_info *info;
  g_autoptr(GBytes) fitted = NULL;
  g_autofree onestep_plan *plans = NULL;
  onestep_image image;
  int width;
  int height;

  if (!worker_ensure_context (worker, job->params->model_path, job->params->unet_file,
                              job->params->device, job->params->precision, &error))
    {
      return_engine_error (job->task, &error);
      return;
    }

  info = onestep_context_get_info (worker->context);
  width = job->params->width > 0 ? job->params->width : info->default_width;
  height = job->params->height > 0 ? job->params->height : info->default_height;

  fitted = onestep_image_fit (job->image, job->image_width, job->image_height, width, height,
                              job->params->crop_position);
  if (fitted == NULL)
    {
      g_task_return_new_error (job->task, ONESTEP_ENGINE_ERROR, ONESTEP_ERR_OUT_OF_MEMORY,
                               _("Out of memory for the image at %d × %d"), width, height);
      return;
    }
  image.width = width;
  image.height = height;
  image.stride = width * 3;
  image.rgb = g_bytes_get_data (fitted, NULL);

  plans = g_new0 (onestep_plan, job->n_step_counts);
  for (guint run = 0; run < job->n_step_counts; run++)
    {
      onestep_request request = job_make_request (job, width, height, run);

      if (onestep_plan_request (worker->context, &image, &request, &plans[run], &error) != ONESTEP_OK)
        {
          return_engine_error (job->task, &error);
          return;
        }
    }
  job->work = onestep_work_estimate_new (plans, job->n_step_counts);

  for (job->run = 0; job->run < (int)job->n_step_counts; job->run++)
    {
      onestep_request request = job_make_request (job, width, height, job->run);
      g_autoptr(OnestepParams) used = onestep_params_copy (job->params);
      onestep_clip *clip;
      gint64 start;
      Delivery *delivery;

      start = g_get_monotonic_time ();
      onestep_work_estimate_start_run (job->work, job->run, start);
      clip = onestep_generate (worker->context, &image, &request, &error);
      if (clip == NULL)
        {
          return_engine_error (job->task, &error);
          return;
        }
      onestep_work_estimate_finish_run (job->work);

      used->steps = clip->steps;
      used->frames = clip->frames;
      used->width = clip->width;
      used->height = clip->height;
      used->fps = request.fps;

      delivery = g_new0 (Delivery, 1);
      delivery->result = onestep_result_new (g_bytes_new (clip->rgb, (gsize)clip->frames *
                                                          clip->width * clip->height * 3),
                                             clip->frames, clip->width, clip->height, used,
                                             clip->sampler, clip->nfe,
                                             (g_get_monotonic_time () - start) / (double)G_USEC_PER_SEC);
      onestep_clip_free (clip);
      job_deliver (job, delivery);
    }

  g_task_return_boolean (job->task, TRUE);
}

static gpointer
worker_main (gpointer data)
{
  Worker *worker = data;

  for (;;)
    {
      Job *job = g_async_queue_pop (worker->jobs);

      if (job->kind == JOB_QUIT)
        {
          job_free (job);
          break;
        }

      if (job_is_cancelled (job))
        g_task_return_new_error (job->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                 _("The operation was cancelled"));
      else if (job->kind == JOB_LOAD)
        worker_load (worker, job);
      else
        worker_generate (worker, job);

      job_free (job);
    }

  g_clear_pointer (&worker->context, onestep_context_free);
  g_clear_pointer (&worker->context_path, g_free);
  g_clear_pointer (&worker->context_unet_file, g_free);
  g_async_queue_unref (worker->jobs);
  g_free (worker);

  g_mutex_lock (&workers_lock);
  n_workers--;
  g_cond_broadcast (&workers_ended);
  g_mutex_unlock (&workers_lock);

  return NULL;
}

static void
onestep_engine_dispose (GObject *object)
{
  OnestepEngine *self = (OnestepEngine *)object;

  onestep_engine_shutdown (self);

  G_OBJECT_CLASS (onestep_engine_parent_class)->dispose (object);
}

static void
onestep_engine_finalize (GObject *object)
{
  OnestepEngine *self = (OnestepEngine *)object;

  g_clear_pointer (&self->jobs, g_async_queue_unref);
  g_clear_object (&self->shutdown);

  G_OBJECT_CLASS (onestep_engine_parent_class)->finalize (object);
}

static void
onestep_engine_class_init (OnestepEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = onestep_engine_dispose;
  object_class->finalize = onestep_engine_finalize;
}

static void
onestep_engine_init (OnestepEngine *self)
{
  Worker *worker = g_new0 (Worker, 1);

  self->jobs = g_async_queue_new ();
  self->shutdown = g_cancellable_new ();
  worker->jobs = g_async_queue_ref (self->jobs);
  g_mutex_lock (&workers_lock);
  n_workers++;
  g_mutex_unlock (&workers_lock);
  self->thread = g_thread_new ("onestep-engine", worker_main, worker);
}

OnestepEngine *
onestep_engine_new (void)
{
  return g_object_new (ONESTEP_TYPE_ENGINE, NULL);
}

/* Stops the running job at its next abort check and lets the worker thread end by
 * itself: the worker owns its state, and quitting never waits for a job in the middle
 * of a long layer (see onestep_engine_wait_for_workers). */
void
onestep_engine_shutdown (OnestepEngine *self)
{
  Job *quit;

  g_return_if_fail (ONESTEP_IS_ENGINE (self));

  if (self->thread == NULL)
    return;

  g_cancellable_cancel (self->shutdown);
  quit = g_new0 (Job, 1);
  quit->kind = JOB_QUIT;
  g_async_queue_push (self->jobs, quit);
  g_thread_unref (g_steal_pointer (&self->thread));
}

/* Blocks until the worker of every engine, shut down, has ended. The process calls it
 * last, once its windows are gone, so that no worker is still computing while the
 * libraries it uses are torn down at exit. */
void
onestep_engine_wait_for_workers (void)
{
  g_mutex_lock (&workers_lock);
  while (n_workers > 0)
    g_cond_wait (&workers_ended, &workers_lock);
  g_mutex_unlock (&workers_lock);
}

static Job *
job_new (OnestepEngine       *self,
         JobKind              kind,
         GCancellable        *cancellable,
         GAsyncReadyCallback  callback,
         gpointer             user_data,
         gpointer             source_tag)
{
  Job *job = g_new0 (Job, 1);

  job->kind = kind;
  job->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, source_tag);
  job->shutdown = g_object_ref (self->shutdown);

  return job;
}

static void
onestep_engine_push (OnestepEngine *self,
                     Job           *job)
{
  if (self->thread == NULL)
    {
      g_task_return_new_error (job->task, G_IO_ERROR, G_IO_ERROR_CLOSED,
                               _("The engine has been shut down"));
      job_free (job);
      return;
    }

  g_async_queue_push (self->jobs, job);
}

/* unet_file (nullable) replaces the model's UNet, as for AnimateLCM. */
void
onestep_engine_load_model_async (OnestepEngine       *self,
                                 const char          *model_path,
                                 const char          *unet_file,
                                 onestep_device       device,
                                 onestep_precision    precision,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  Job *job;

  g_return_if_fail (ONESTEP_IS_ENGINE (self));
  g_return_if_fail (model_path != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  job = job_new (self, JOB_LOAD, cancellable, callback, user_data,
                 onestep_engine_load_model_async);
  job->model_path = g_strdup (model_path);
  job->unet_file = g_strdup (unet_file);
  job->device = device;
  job->precision = precision;
  onestep_engine_push (self, job);
}

/* Fills info (may be NULL) with the loaded model's description. */
gboolean
onestep_engine_load_model_finish (OnestepEngine       *self,
                                  GAsyncResult        *result,
                                  onestep_model_info  *info,
                                  GError             **error)
{
  g_autofree onestep_model_info *loaded = NULL;

  g_return_val_if_fail (ONESTEP_IS_ENGINE (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  loaded = g_task_propagate_pointer (G_TASK (result), error);
  if (loaded == NULL)
    return FALSE;

  if (info != NULL)
    *info = *loaded;

  return TRUE;
}

/* Generates the image once per step count, in order, with the same settings
 * and seed; result_func sees each clip as it is finished. */
void
onestep_engine_generate_async (OnestepEngine             *self,
                               GBytes                    *image,
                               int                        image_width,
                               int                        image_height,
                               const OnestepParams       *params,
                               const int                 *step_counts,
                               guint                      n_step_counts,
                               OnestepEngineProgressFunc  progress_func,
                               OnestepEngineResultFunc    result_func,
                               gpointer                   func_data,
                               GCancellable              *cancellable,
                               GAsyncReadyCallback        callback,
                               gpointer                   user_data)
{
  Job *job;

  g_return_if_fail (ONESTEP_IS_ENGINE (self));
  g_return_if_fail (image != NULL);
  g_return_if_fail (g_bytes_get_size (image) == (gsize)image_width * image_height * 3);
  g_return_if_fail (params != NULL && params->model_path != NULL);
  g_return_if_fail (step_counts != NULL && n_step_counts > 0);
  g_return_if_fail (result_func != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  job = job_new (self, JOB_GENERATE, cancellable, callback, user_data,
                 onestep_engine_generate_async);
  job->image = g_bytes_ref (image);
  job->image_width = image_width;
  job->image_height = image_height;
  job->params = onestep_params_copy (params);
  job->step_counts = g_memdup2 (step_counts, sizeof (int) * n_step_counts);
  job->n_step_counts = n_step_counts;
  job->progress_func = progress_func;
  job->result_func = result_func;
  job->func_data = func_data;
  onestep_engine_push (self, job);
}

int
onestep_engine_progress_get_run_step (const OnestepEngineProgress *progress)
{
  return MIN (progress->step * progress->run_steps / MAX (progress->n_steps, 1) + 1,
              progress->run_steps);
}

double
onestep_engine_progress_get_fraction (const OnestepEngineProgress *progress,
                                      gint64                       now)
{
  const OnestepWorkState *work = &progress->work;
  double elapsed = (double)(now - progress->time) / G_USEC_PER_SEC;
  double under_way = 0;

  /* Until the work under way has an estimate in seconds, there is nothing to move on by. */
  if (work->seconds_under_way > 0)
    under_way = work->fraction_under_way * CLAMP (elapsed / work->seconds_under_way, 0.0, 1.0);

  return MIN (work->fraction + under_way, 1.0);
}

double
onestep_engine_progress_get_seconds_left (const OnestepEngineProgress *progress,
                                          gint64                       now)
{
  const OnestepWorkState *work = &progress->work;
  double elapsed = (double)(now - progress->time) / G_USEC_PER_SEC;

  if (work->seconds_left < 0)
    return -1;

  /* Work taking longer than its estimate holds the count at the next report's. */
  return MAX (work->seconds_left - CLAMP (elapsed, 0.0, work->seconds_under_way), 0.0);
}

gboolean
onestep_engine_generate_finish (OnestepEngine  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (ONESTEP_IS_ENGINE (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
