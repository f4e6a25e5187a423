/* onestep-model-catalog.c */
#include "onestep-model-catalog.h"
#include "onestep-modelstore-error.h"
#include "onestep-modelstore-resources.h"

#define CATALOGUE_RESOURCE "/io/github/onestep/Onestep/modelstore/catalog.json"

struct _OnestepModelCatalog
{
  GObject    parent_instance;
  GPtrArray *models;
};

static void list_model_iface_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OnestepModelCatalog, onestep_model_catalog, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init))

static GType
onestep_model_catalog_get_item_type (GListModel *model)
{
  return ONESTEP_TYPE_CATALOG_MODEL;
}

static guint
onestep_model_catalog_get_n_items (GListModel *model)
{
  return ONESTEP_MODEL_CATALOG (model)->models->len;
}

static gpointer
onestep_model_catalog_get_item (GListModel *model,
                                guint       position)
{
  OnestepModelCatalog *self = ONESTEP_MODEL_CATALOG (model);

  if (position >= self->models->len)
    return NULL;
  return g_object_ref (g_ptr_array_index (self->models, position));
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = onestep_model_catalog_get_item_type;
  iface->get_n_items = onestep_model_catalog_get_n_items;
  iface->get_item = onestep_model_catalog_get_item;
}

static void
onestep_model_catalog_finalize (GObject *object)
{
  OnestepModelCatalog *self = (OnestepModelCatalog *) object;

  g_clear_pointer (&self->models, g_ptr_array_unref);

  G_OBJECT_CLASS (onestep_model_catalog_parent_class)->finalize (object);
}

static void
onestep_model_catalog_class_init (OnestepModelCatalogClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = onestep_model_catalog_finalize;
}

static void
onestep_model_catalog_init (OnestepModelCatalog *self)
{
  self->models = g_ptr_array_new_with_free_func (g_object_unref);
}

OnestepCatalogModel *
onestep_model_catalog_lookup (OnestepModelCatalog *self,
                              const char          *id)
{
  g_return_val_if_fail (ONESTEP_IS_MODEL_CATALOG (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  for (guint i = 0; i < self->models->len; i++)
    {
      OnestepCatalogModel *model = g_ptr_array_index (self->models, i);

      if (g_str_equal (onestep_catalog_model_get_id (model), id))
        return model;
    }
  return NULL;
}

OnestepModelCatalog *
onestep_model_catalog_new_from_data (const char  *json,
                                     gssize       length,
                                     GError     **error)
{
  g_autoptr(OnestepModelCatalog) self = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;
  JsonArray *models;

  g_return_val_if_fail (json != NULL, NULL);

  if (!json_parser_load_from_data (parser, json, length, &local_error))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "The model catalogue is not valid JSON: %s", local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
      !(models = json_object_get_array_member (json_node_get_object (root), "models")))
    {
      g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                   "The model catalogue must be an object with a \"models\" array");
      return NULL;
    }

  self = g_object_new (ONESTEP_TYPE_MODEL_CATALOG, NULL);
  for (guint i = 0; i < json_array_get_length (models); i++)
    {
      JsonNode *node = json_array_get_element (models, i);
      OnestepCatalogModel *model;
      OnestepCatalogModel *base = NULL;
      JsonObject *object;
      const char *base_id;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                       "The model catalogue's entry %u is not an object", i);
          return NULL;
        }
      object = json_node_get_object (node);
      base_id = json_object_get_string_member_with_default (object, "base", NULL);
      if (base_id != NULL)
        base = onestep_model_catalog_lookup (self, base_id);

      if (!(model = onestep_catalog_model_new_from_json (object, base, error)))
        return NULL;
      if (onestep_model_catalog_lookup (self, onestep_catalog_model_get_id (model)))
        {
          g_set_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE,
                       "The model catalogue lists %s twice", onestep_catalog_model_get_id (model));
          g_object_unref (model);
          return NULL;
        }
      g_ptr_array_add (self->models, model);
    }
  return g_steal_pointer (&self);
}

OnestepModelCatalog *
onestep_model_catalog_new_default (GError **error)
{
  g_autoptr(GBytes) bytes = NULL;
  gsize length;
  const char *data;

  /* Looked up in our own GResource so the static library's resource object is
   * always linked in. */
  bytes = g_resource_lookup_data (onestep_modelstore_get_resource (), CATALOGUE_RESOURCE,
                                  G_RESOURCE_LOOKUP_FLAGS_NONE, error);
  if (bytes == NULL)
    return NULL;
  data = g_bytes_get_data (bytes, &length);
  return onestep_model_catalog_new_from_data (data, length, error);
}
