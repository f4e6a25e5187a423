/* onestep-model-importer.c */
#include <string.h>

#include "onestep.h"
#include "onestep-model-importer.h"
#include "onestep-modelstore-error.h"

struct _OnestepModelImporter
{
  GObject            parent_instance;
  OnestepModelIndex *index;
};

G_DEFINE_FINAL_TYPE (OnestepModelImporter, onestep_model_importer, G_TYPE_OBJECT)

typedef struct {
  char                 *path;
  OnestepInstalledKind  kind;
  char                 *base;
  char                 *id;
  char                 *name;
} ImportJob;

static void
import_job_free (ImportJob *job)
{
  g_free (job->path);
  g_free (job->base);
  g_free (job->id);
  g_free (job->name);
  g_free (job);
}

OnestepInstalledKind
onestep_model_importer_guess_kind (const char *path,
                                   const char *base)
{
  g_return_val_if_fail (path != NULL, ONESTEP_INSTALLED_KIND_DIFFUSERS);

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return ONESTEP_INSTALLED_KIND_DIFFUSERS;
  return base != NULL ? ONESTEP_INSTALLED_KIND_UNET : ONESTEP_INSTALLED_KIND_SINGLE_FILE;
}

/* "My Model.safetensors" -> "my-model" */
static char *
id_from_path (const char *path)
{
  g_autofree char *basename = g_path_get_basename (path);
  GString *id = g_string_new (NULL);
  char *dot;

  if ((dot = strrchr (basename, '.')) != NULL && dot != basename &&
      !g_file_test (path, G_FILE_TEST_IS_DIR))
    *dot = '\0';
  for (const char *c = basename; *c; c++)
    {
      if (g_ascii_isalnum (*c) || *c == '.' || *c == '_')
        g_string_append_c (id, g_ascii_tolower (*c));
      else if (id->len > 0 && id->str[id->len - 1] != '-')
        g_string_append_c (id, '-');
    }
  if (id->len == 0)
    g_string_append (id, "model");
  return g_string_free (id, FALSE);
}

/* The engine path of the base model: an index entry's path, or a path as given. */
static char *
resolve_base (OnestepModelImporter  *self,
              const char            *base,
              GError               **error)
{
  g_autoptr(OnestepInstalledModel) entry = onestep_model_index_lookup (self->index, base);

  if (entry != NULL)
    {
      if (onestep_installed_model_get_kind (entry) != ONESTEP_INSTALLED_KIND_DIFFUSERS &&
          onestep_installed_model_get_kind (entry) != ONESTEP_INSTALLED_KIND_SINGLE_FILE)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INVALID_MODEL,
                       "%s cannot be a base model: it is a %s, not a complete model",
                       base, onestep_installed_kind_to_string (onestep_installed_model_get_kind (entry)));
          return NULL;
        }
      return g_strdup (onestep_installed_model_get_path (entry));
    }
  if (g_file_test (base, G_FILE_TEST_EXISTS))
    return g_canonicalize_filename (base, NULL);

  g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_UNKNOWN_MODEL,
               "The base model %s is neither an installed model nor an existing path", base);
  return NULL;
}

/* Opens the model with the engine on the CPU, exactly as generation would. */
static gboolean
validate_with_engine (const char            *model_path,
                      OnestepInstalledKind   kind,
                      const char            *path,
                      GError               **error)
{
  onestep_context_params params = onestep_context_default_params ();
  onestep_error engine_error = { 0 };
  const char *lora_files[1] = { path };
  onestep_context *context;

  params.device = ONESTEP_DEVICE_CPU;
  params.n_threads = 1;
  if (kind == ONESTEP_INSTALLED_KIND_UNET)
    params.unet_file = path;
  else if (kind == ONESTEP_INSTALLED_KIND_LORA)
    {
      params.lora_files = lora_files;
      params.n_lora = 1;
    }

  context = onestep_context_new (model_path, &params, &engine_error);
  if (context == NULL)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INVALID_MODEL,
                   "%s cannot be used as a %s model: %s", path,
                   onestep_installed_kind_to_string (kind), engine_error.message);
      return FALSE;
    }
  onestep_context_free (context);
  return TRUE;
}

static char *
unique_id (OnestepModelImporter *self,
           const char           *wanted)
{
  char *id = g_strdup (wanted);

  for (guint n = 2; ; n++)
    {
      g_autoptr(OnestepInstalledModel) existing = onestep_model_index_lookup (self->index, id);

      if (existing == NULL)
        return id;
      g_free (id);
      id = g_strdup_printf ("%s-%u", wanted, n);
    }
}

static OnestepInstalledModel *
run_import (OnestepModelImporter  *self,
            ImportJob             *job,
            GError               **error)
{
  g_autofree char *path = NULL;
  g_autofree char *base_path = NULL;
  g_autofree char *id = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  gboolean needs_base = job->kind == ONESTEP_INSTALLED_KIND_UNET ||
                        job->kind == ONESTEP_INSTALLED_KIND_LORA;

  if (!g_file_test (job->path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s does not exist", job->path);
      return NULL;
    }
  path = g_canonicalize_filename (job->path, NULL);
  if (needs_base && job->base == NULL)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INVALID_MODEL,
                   "%s: a %s file needs a base model to be used with",
                   path, onestep_installed_kind_to_string (job->kind));
      return NULL;
    }
  if (needs_base && !(base_path = resolve_base (self, job->base, error)))
    return NULL;

  if (!validate_with_engine (needs_base ? base_path : path, job->kind, path, error))
    return NULL;

  if (job->id != NULL)
    id = g_strdup (job->id);
  else
    {
      g_autofree char *wanted = id_from_path (path);

      id = unique_id (self, wanted);
    }
  switch (job->kind)
    {
    case ONESTEP_INSTALLED_KIND_UNET:
      installed = onestep_installed_model_new (id, job->name, job->kind, ONESTEP_INSTALLED_SOURCE_IMPORT,
                                               base_path, path, job->base);
      break;
    case ONESTEP_INSTALLED_KIND_LORA:
      installed = onestep_installed_model_new (id, job->name, job->kind, ONESTEP_INSTALLED_SOURCE_IMPORT,
                                               path, NULL, job->base);
      break;
    case ONESTEP_INSTALLED_KIND_DIFFUSERS:
    case ONESTEP_INSTALLED_KIND_SINGLE_FILE:
    default:
      installed = onestep_installed_model_new (id, job->name, job->kind, ONESTEP_INSTALLED_SOURCE_IMPORT,
                                               path, NULL, NULL);
      break;
    }
  if (!onestep_model_index_add (self->index, installed, error))
    return NULL;
  return g_steal_pointer (&installed);
}

static void
import_worker (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  GError *error = NULL;
  OnestepInstalledModel *installed = run_import (source_object, task_data, &error);

  if (installed == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, installed, g_object_unref);
}

void
onestep_model_importer_import_async (OnestepModelImporter *self,
                                     const char           *path,
                                     OnestepInstalledKind  kind,
                                     const char           *base,
                                     const char           *id,
                                     const char           *name,
                                     GCancellable         *cancellable,
                                     GAsyncReadyCallback   callback,
                                     gpointer              user_data)
{
  g_autoptr(GTask) task = NULL;
  ImportJob *job;

  g_return_if_fail (ONESTEP_IS_MODEL_IMPORTER (self));
  g_return_if_fail (path != NULL);

  job = g_new0 (ImportJob, 1);
  job->path = g_strdup (path);
  job->kind = kind;
  job->base = g_strdup (base);
  job->id = g_strdup (id);
  job->name = g_strdup (name);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, onestep_model_importer_import_async);
  g_task_set_task_data (task, job, (GDestroyNotify) import_job_free);
  g_task_run_in_thread (task, import_worker);
}

OnestepInstalledModel *
onestep_model_importer_import_finish (OnestepModelImporter  *self,
                                      GAsyncResult          *result,
                                      GError               **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
onestep_model_importer_finalize (GObject *object)
{
  OnestepModelImporter *self = (OnestepModelImporter *) object;

  g_clear_object (&self->index);

  G_OBJECT_CLASS (onestep_model_importer_parent_class)->finalize (object);
}

static void
onestep_model_importer_class_init (OnestepModelImporterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = onestep_model_importer_finalize;
}

static void
onestep_model_importer_init (OnestepModelImporter *self)
{
}

OnestepModelImporter *
onestep_model_importer_new (OnestepModelIndex *index)
{
  OnestepModelImporter *self;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (index), NULL);

  self = g_object_new (ONESTEP_TYPE_MODEL_IMPORTER, NULL);
  self->index = g_object_ref (index);
  return self;
}
