/* onestep-catalog-model.c */
#include <string.h>

#include "onestep-catalog-model.h"
#include "onestep-modelstore-error.h"

struct _OnestepCatalogModel
{
  GObject    parent_instance;
  char      *id;
  char      *name;
  char      *repository;
  char      *revision;
  char      *licence;
  gboolean   gated;
  OnestepCatalogKind kind;
  char      *base_id;
  char      *unet_file;
  GPtrArray *files;
};

G_DEFINE_FINAL_TYPE (OnestepCatalogModel, onestep_catalog_model, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_NAME,
  PROP_REPOSITORY,
  PROP_LICENCE,
  PROP_GATED,
  PROP_TOTAL_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *const kind_names[] = {
  [ONESTEP_CATALOG_KIND_IMAGE_TO_VIDEO] = "image-to-video",
  [ONESTEP_CATALOG_KIND_FEATURE_NETWORK] = "feature-network",
};

const char *
onestep_catalog_kind_to_string (OnestepCatalogKind kind)
{
  g_return_val_if_fail (kind < G_N_ELEMENTS (kind_names), NULL);
  return kind_names[kind];
}

gboolean
onestep_catalog_kind_from_string (const char         *text,
                                  OnestepCatalogKind *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS (kind_names); i++)
    if (g_strcmp0 (text, kind_names[i]) == 0)
      {
        *kind = i;
        return TRUE;
      }
  return FALSE;
}

static void
catalog_file_free (OnestepCatalogFile *file)
{
  g_free (file->repository);
  g_free (file->revision);
  g_free (file->path);
  g_free (file->local_path);
  g_free (file->sha256);
  g_free (file);
}

static OnestepCatalogFile *
catalog_file_copy (const OnestepCatalogFile *file)
{
  OnestepCatalogFile *copy = g_new0 (OnestepCatalogFile, 1);

  copy->repository = g_strdup (file->repository);
  copy->revision = g_strdup (file->revision);
  copy->path = g_strdup (file->path);
  copy->local_path = g_strdup (file->local_path);
  copy->size = file->size;
  copy->sha256 = g_strdup (file->sha256);
  return copy;
}

static gboolean
is_sha256_hex (const char *text)
{
  if (strlen (text) != 64)
    return FALSE;
  for (const char *c = text; *c; c++)
    if (!g_ascii_isxdigit (*c) || g_ascii_isupper (*c))
      return FALSE;
  return TRUE;
}

/* Paths from the catalogue become paths on disk: refuse anything that could
 * leave the model's folder. */
static gboolean
is_safe_relative_path (const char *path)
{
  g_auto(GStrv) parts = NULL;

  if (path[0] == '\0' || path[0] == '/' || strchr (path, '\\') != NULL)
    return FALSE;
  parts = g_strsplit (path, "/", -1);
  for (guint i = 0; parts[i]; i++)
    if (parts[i][0] == '\0' || g_str_equal (parts[i], ".") || g_str_equal (parts[i], ".."))
      return FALSE;
  return TRUE;
}

static const char *
get_required_string (JsonObject  *object,
                     const char  *member,
                     const char  *context,
                     GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING ||
      json_node_get_string (node)[0] == '\0')
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: \"%s\" must be a non-empty string", context, member);
      return NULL;
    }
  return json_node_get_string (node);
}

static OnestepCatalogFile *
parse_file (JsonNode    *node,
            const char  *repository,
            const char  *revision,
            const char  *model_id,
            GError     **error)
{
  g_autofree char *context = NULL;
  OnestepCatalogFile *file;
  JsonObject *object;
  const char *path;
  const char *local_path;
  const char *sha256;
  gint64 size;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: every file must be an object", model_id);
      return NULL;
    }
  object = json_node_get_object (node);
  if (!(path = get_required_string (object, "path", model_id, error)))
    return NULL;
  context = g_strdup_printf ("%s, file %s", model_id, path);
  local_path = json_object_get_string_member_with_default (object, "save_as", path);
  sha256 = json_object_get_string_member_with_default (object, "sha256", NULL);
  size = json_object_get_int_member_with_default (object, "size", 0);

  if (!is_safe_relative_path (path) || !is_safe_relative_path (local_path))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: paths must be relative and stay inside the model folder",
                   context);
      return NULL;
    }
  if (size <= 0)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: \"size\" must be a positive number of bytes", context);
      return NULL;
    }
  if (sha256 != NULL && !is_sha256_hex (sha256))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: \"sha256\" must be 64 lowercase hex digits", context);
      return NULL;
    }

  file = g_new0 (OnestepCatalogFile, 1);
  file->repository = g_strdup (repository);
  file->revision = g_strdup (revision);
  file->path = g_strdup (path);
  file->local_path = g_strdup (local_path);
  file->size = (guint64) size;
  file->sha256 = g_strdup (sha256);
  return file;
}

static const OnestepCatalogFile *
find_file (OnestepCatalogModel *self,
           const char          *path)
{
  for (guint i = 0; i < self->files->len; i++)
    {
      const OnestepCatalogFile *file = g_ptr_array_index (self->files, i);

      if (g_str_equal (file->path, path))
        return file;
    }
  return NULL;
}

static gboolean
add_base_components (OnestepCatalogModel  *self,
                     JsonObject           *object,
                     OnestepCatalogModel  *base,
                     GError              **error)
{
  JsonArray *components = json_object_get_array_member (object, "base_components");

  if (base == NULL || !g_str_equal (base->id, self->base_id) ||
      components == NULL || json_array_get_length (components) == 0)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: \"base\" must name an earlier model and "
                   "\"base_components\" must list the files taken from it", self->id);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (components); i++)
    {
      const char *path = json_array_get_string_element (components, i);
      const OnestepCatalogFile *file = path ? find_file (base, path) : NULL;

      if (file == NULL)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                       "Catalogue entry %s: base component %s is not a file of %s",
                       self->id, path ? path : "(not a string)", base->id);
          return FALSE;
        }
      g_ptr_array_add (self->files, catalog_file_copy (file));
    }
  return TRUE;
}

OnestepCatalogModel *
onestep_catalog_model_new_from_json (JsonObject           *object,
                                     OnestepCatalogModel  *base,
                                     GError              **error)
{
  g_autoptr(OnestepCatalogModel) self = NULL;
  JsonArray *files;
  const char *id;
  const char *kind;

  g_return_val_if_fail (object != NULL, NULL);

  if (!(id = get_required_string (object, "id", "(no id)", error)))
    return NULL;

  self = g_object_new (ONESTEP_TYPE_CATALOG_MODEL, NULL);
  self->id = g_strdup (id);
  if (!(self->name = g_strdup (get_required_string (object, "name", id, error))) ||
      !(self->repository = g_strdup (get_required_string (object, "repository", id, error))) ||
      !(self->revision = g_strdup (get_required_string (object, "revision", id, error))) ||
      !(self->licence = g_strdup (get_required_string (object, "licence", id, error))))
    return NULL;
  self->gated = json_object_get_boolean_member_with_default (object, "gated", FALSE);
  kind = json_object_get_string_member_with_default (object, "kind", "image-to-video");
  if (!onestep_catalog_kind_from_string (kind, &self->kind))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: \"kind\" must be \"image-to-video\" or \"feature-network\"",
                   id);
      return NULL;
    }
  self->unet_file = g_strdup (json_object_get_string_member_with_default (object, "unet_file", NULL));
  self->base_id = g_strdup (json_object_get_string_member_with_default (object, "base", NULL));

  files = json_object_get_array_member (object, "files");
  if (files == NULL || json_array_get_length (files) == 0)
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: \"files\" must list at least one file", id);
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (files); i++)
    {
      OnestepCatalogFile *file = parse_file (json_array_get_element (files, i),
                                             self->repository, self->revision, id, error);
      if (file == NULL)
        return NULL;
      g_ptr_array_add (self->files, file);
    }

  /* A replacement UNet and a base model only make sense for a video model. */
  if (self->kind != ONESTEP_CATALOG_KIND_IMAGE_TO_VIDEO &&
      (self->base_id != NULL || self->unet_file != NULL))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "Catalogue entry %s: a %s has no \"base\" and no \"unet_file\"",
                   id, onestep_catalog_kind_to_string (self->kind));
      return NULL;
    }

  if (self->base_id != NULL && !add_base_components (self, object, base, error))
    return NULL;

  if (self->unet_file != NULL)
    {
      gboolean listed = FALSE;

      for (guint i = 0; i < self->files->len; i++)
        listed |= g_str_equal (((OnestepCatalogFile *) g_ptr_array_index (self->files, i))->local_path,
                               self->unet_file);
      if (!listed)
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                       "Catalogue entry %s: \"unet_file\" %s is not one of its files",
                       id, self->unet_file);
          return NULL;
        }
    }

  return g_steal_pointer (&self);
}

static void
onestep_catalog_model_finalize (GObject *object)
{
  OnestepCatalogModel *self = (OnestepCatalogModel *) object;

  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->repository, g_free);
  g_clear_pointer (&self->revision, g_free);
  g_clear_pointer (&self->licence, g_free);
  g_clear_pointer (&self->base_id, g_free);
  g_clear_pointer (&self->unet_file, g_free);
  g_clear_pointer (&self->files, g_ptr_array_unref);

  G_OBJECT_CLASS (onestep_catalog_model_parent_class)->finalize (object);
}

static void
onestep_catalog_model_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  OnestepCatalogModel *self = ONESTEP_CATALOG_MODEL (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_REPOSITORY:
      g_value_set_string (value, self->repository);
      break;
    case PROP_LICENCE:
      g_value_set_string (value, self->licence);
      break;
    case PROP_GATED:
      g_value_set_boolean (value, self->gated);
      break;
    case PROP_TOTAL_SIZE:
      g_value_set_uint64 (value, onestep_catalog_model_get_total_size (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_catalog_model_class_init (OnestepCatalogModelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = onestep_catalog_model_finalize;
  object_class->get_property = onestep_catalog_model_get_property;

  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_REPOSITORY] =
    g_param_spec_string ("repository", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_LICENCE] =
    g_param_spec_string ("licence", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_GATED] =
    g_param_spec_boolean ("gated", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TOTAL_SIZE] =
    g_param_spec_uint64 ("total-size", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
onestep_catalog_model_init (OnestepCatalogModel *self)
{
  self->files = g_ptr_array_new_with_free_func ((GDestroyNotify) catalog_file_free);
}

const char *
onestep_catalog_model_get_id (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->id;
}

const char *
onestep_catalog_model_get_name (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->name;
}

const char *
onestep_catalog_model_get_repository (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->repository;
}

const char *
onestep_catalog_model_get_revision (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->revision;
}

const char *
onestep_catalog_model_get_licence (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->licence;
}

gboolean
onestep_catalog_model_get_gated (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), FALSE);
  return self->gated;
}

char *
onestep_catalog_model_dup_page_url (OnestepCatalogModel *self,
                                    const char          *base_url)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  g_return_val_if_fail (base_url != NULL, NULL);

  if (g_str_has_suffix (base_url, "/"))
    return g_strconcat (base_url, self->repository, NULL);
  return g_strconcat (base_url, "/", self->repository, NULL);
}

OnestepCatalogKind
onestep_catalog_model_get_kind (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), ONESTEP_CATALOG_KIND_IMAGE_TO_VIDEO);
  return self->kind;
}

const char *
onestep_catalog_model_get_base_id (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->base_id;
}

const char *
onestep_catalog_model_get_unet_file (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->unet_file;
}

GPtrArray *
onestep_catalog_model_get_files (OnestepCatalogModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), NULL);
  return self->files;
}

guint64
onestep_catalog_model_get_total_size (OnestepCatalogModel *self)
{
  guint64 total = 0;

  g_return_val_if_fail (ONESTEP_IS_CATALOG_MODEL (self), 0);

  for (guint i = 0; i < self->files->len; i++)
    total += ((OnestepCatalogFile *) g_ptr_array_index (self->files, i))->size;
  return total;
}
