/* onestep-model-index.c */
#include <errno.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "onestep-model-index.h"
#include "onestep-modelstore-error.h"

#define INDEX_FILE_NAME "models.json"

struct _OnestepModelIndex
{
  GObject    parent_instance;
  GMutex     mutex;
  char      *models_dir;
  GPtrArray *models;
};

G_DEFINE_FINAL_TYPE (OnestepModelIndex, onestep_model_index, G_TYPE_OBJECT)

static void
onestep_model_index_finalize (GObject *object)
{
  OnestepModelIndex *self = (OnestepModelIndex *) object;

  g_clear_pointer (&self->models_dir, g_free);
  g_clear_pointer (&self->models, g_ptr_array_unref);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (onestep_model_index_parent_class)->finalize (object);
}

static void
onestep_model_index_class_init (OnestepModelIndexClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = onestep_model_index_finalize;
}

static void
onestep_model_index_init (OnestepModelIndex *self)
{
  g_mutex_init (&self->mutex);
  self->models = g_ptr_array_new_with_free_func (g_object_unref);
}

char *
onestep_model_index_dup_default_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "onestep", "models", NULL);
}

/* Paths inside the models folder are stored relative to it, so the folder can move. */
static char *
path_for_index (OnestepModelIndex *self,
                const char        *path)
{
  g_autofree char *prefix = g_strconcat (self->models_dir, G_DIR_SEPARATOR_S, NULL);

  if (path != NULL && g_str_has_prefix (path, prefix))
    return g_strdup (path + strlen (prefix));
  return g_strdup (path);
}

static char *
path_from_index (OnestepModelIndex *self,
                 const char        *path)
{
  if (path == NULL || g_path_is_absolute (path))
    return g_strdup (path);
  return g_build_filename (self->models_dir, path, NULL);
}

static gboolean
load_entry (OnestepModelIndex  *self,
            JsonObject         *object,
            GError            **error)
{
  const char *id = json_object_get_string_member_with_default (object, "id", NULL);
  const char *path = json_object_get_string_member_with_default (object, "path", NULL);
  const char *kind_name = json_object_get_string_member_with_default (object, "kind", NULL);
  const char *source = json_object_get_string_member_with_default (object, "source", "import");
  g_autofree char *full_path = NULL;
  g_autofree char *unet_file = NULL;
  OnestepInstalledKind kind;

  if (id == NULL || path == NULL || !onestep_installed_kind_from_string (kind_name, &kind))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INDEX,
                   "%s/%s: every model needs an \"id\", a \"path\" and a known \"kind\"",
                   self->models_dir, INDEX_FILE_NAME);
      return FALSE;
    }
  full_path = path_from_index (self, path);
  unet_file = path_from_index (self, json_object_get_string_member_with_default (object, "unet_file", NULL));
  g_ptr_array_add (self->models,
                   onestep_installed_model_new (id,
                                                json_object_get_string_member_with_default (object, "name", id),
                                                kind,
                                                g_str_equal (source, "download")
                                                  ? ONESTEP_INSTALLED_SOURCE_DOWNLOAD
                                                  : ONESTEP_INSTALLED_SOURCE_IMPORT,
                                                full_path, unet_file,
                                                json_object_get_string_member_with_default (object, "base", NULL)));
  return TRUE;
}

static gboolean
load (OnestepModelIndex  *self,
      GError            **error)
{
  g_autofree char *index_path = g_build_filename (self->models_dir, INDEX_FILE_NAME, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;
  JsonArray *models;

  if (!g_file_test (index_path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!json_parser_load_from_file (parser, index_path, &local_error))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INDEX,
                   "%s is not valid JSON: %s", index_path, local_error->message);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
      !(models = json_object_get_array_member (json_node_get_object (root), "models")))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INDEX,
                   "%s must be an object with a \"models\" array", index_path);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (models); i++)
    {
      JsonNode *node = json_array_get_element (models, i);

      if (!JSON_NODE_HOLDS_OBJECT (node) || !load_entry (self, json_node_get_object (node), error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INDEX,
                         "%s: entry %u is not an object", index_path, i);
          return FALSE;
        }
    }
  return TRUE;
}

/* Called with the mutex held. g_file_set_contents() writes a temporary file
 * and renames it, so a crash never leaves a half-written index. */
static gboolean
save (OnestepModelIndex  *self,
      GError            **error)
{
  g_autofree char *index_path = g_build_filename (self->models_dir, INDEX_FILE_NAME, NULL);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, 1);
  json_builder_set_member_name (builder, "models");
  json_builder_begin_array (builder);
  for (guint i = 0; i < self->models->len; i++)
    {
      OnestepInstalledModel *model = g_ptr_array_index (self->models, i);
      g_autofree char *path = path_for_index (self, onestep_installed_model_get_path (model));
      g_autofree char *unet_file = path_for_index (self, onestep_installed_model_get_unet_file (model));

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "id");
      json_builder_add_string_value (builder, onestep_installed_model_get_id (model));
      json_builder_set_member_name (builder, "name");
      json_builder_add_string_value (builder, onestep_installed_model_get_name (model));
      json_builder_set_member_name (builder, "kind");
      json_builder_add_string_value (builder, onestep_installed_kind_to_string (onestep_installed_model_get_kind (model)));
      json_builder_set_member_name (builder, "source");
      json_builder_add_string_value (builder,
                                     onestep_installed_model_get_source (model) == ONESTEP_INSTALLED_SOURCE_DOWNLOAD
                                       ? "download" : "import");
      json_builder_set_member_name (builder, "path");
      json_builder_add_string_value (builder, path);
      if (unet_file != NULL)
        {
          json_builder_set_member_name (builder, "unet_file");
          json_builder_add_string_value (builder, unet_file);
        }
      if (onestep_installed_model_get_base (model) != NULL)
        {
          json_builder_set_member_name (builder, "base");
          json_builder_add_string_value (builder, onestep_installed_model_get_base (model));
        }
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  text = json_generator_to_data (generator, NULL);

  if (g_mkdir_with_parents (self->models_dir, 0755) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "Could not create the models folder %s: %s", self->models_dir,
                   g_strerror (saved_errno));
      return FALSE;
    }
  return g_file_set_contents (index_path, text, -1, error);
}

OnestepModelIndex *
onestep_model_index_new (const char  *models_dir,
                         GError     **error)
{
  g_autoptr(OnestepModelIndex) self = NULL;

  g_return_val_if_fail (models_dir != NULL, NULL);

  self = g_object_new (ONESTEP_TYPE_MODEL_INDEX, NULL);
  self->models_dir = g_canonicalize_filename (models_dir, NULL);
  if (!load (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

const char *
onestep_model_index_get_models_dir (OnestepModelIndex *self)
{
  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (self), NULL);
  return self->models_dir;
}

GPtrArray *
onestep_model_index_dup_models (OnestepModelIndex *self)
{
  GPtrArray *copy;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (self), NULL);

  g_mutex_lock (&self->mutex);
  copy = g_ptr_array_new_full (self->models->len, g_object_unref);
  for (guint i = 0; i < self->models->len; i++)
    g_ptr_array_add (copy, g_object_ref (g_ptr_array_index (self->models, i)));
  g_mutex_unlock (&self->mutex);
  return copy;
}

GPtrArray *
onestep_model_index_dup_image_to_video_models (OnestepModelIndex *self)
{
  GPtrArray *models;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (self), NULL);

  models = onestep_model_index_dup_models (self);
  for (guint i = models->len; i > 0; i--)
    {
      OnestepInstalledModel *model = g_ptr_array_index (models, i - 1);

      if (!onestep_installed_kind_is_image_to_video (onestep_installed_model_get_kind (model)))
        g_ptr_array_remove_index (models, i - 1);
    }
  return models;
}

static gint
find_locked (OnestepModelIndex *self,
             const char        *id)
{
  for (guint i = 0; i < self->models->len; i++)
    if (g_str_equal (onestep_installed_model_get_id (g_ptr_array_index (self->models, i)), id))
      return (gint) i;
  return -1;
}

OnestepInstalledModel *
onestep_model_index_lookup (OnestepModelIndex *self,
                            const char        *id)
{
  OnestepInstalledModel *model = NULL;
  gint position;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  g_mutex_lock (&self->mutex);
  if ((position = find_locked (self, id)) >= 0)
    model = g_object_ref (g_ptr_array_index (self->models, position));
  g_mutex_unlock (&self->mutex);
  return model;
}

gboolean
onestep_model_index_add (OnestepModelIndex      *self,
                         OnestepInstalledModel  *model,
                         GError                **error)
{
  gboolean saved;
  gint position;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (self), FALSE);
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (model), FALSE);

  g_mutex_lock (&self->mutex);
  position = find_locked (self, onestep_installed_model_get_id (model));
  if (position >= 0)
    {
      g_object_unref (g_ptr_array_index (self->models, position));
      g_ptr_array_index (self->models, position) = g_object_ref (model);
    }
  else
    g_ptr_array_add (self->models, g_object_ref (model));
  saved = save (self, error);
  g_mutex_unlock (&self->mutex);
  return saved;
}

gboolean
onestep_model_index_remove (OnestepModelIndex  *self,
                            const char         *id,
                            GError            **error)
{
  gboolean saved;
  gint position;

  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  g_mutex_lock (&self->mutex);
  position = find_locked (self, id);
  if (position < 0)
    {
      g_mutex_unlock (&self->mutex);
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_UNKNOWN_MODEL,
                   "No model named %s is installed", id);
      return FALSE;
    }
  g_ptr_array_remove_index (self->models, position);
  saved = save (self, error);
  g_mutex_unlock (&self->mutex);
  return saved;
}
