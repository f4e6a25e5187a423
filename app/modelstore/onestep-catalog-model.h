/* onestep-catalog-model.h: one model of the download catalogue: where its files
 * live on the Hugging Face hub, how large they are and what they must hash to. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct {
  char    *repository;  /* "owner/name" on the hub */
  char    *revision;    /* branch or commit */
  char    *path;        /* path inside the repository */
  char    *local_path;  /* path inside the model's folder */
  guint64  size;        /* bytes, as listed by the hub; a HEAD reply's size wins */
  char    *sha256;      /* lowercase hex, or NULL: the hub's ETag is used instead */
} OnestepCatalogFile;

#define ONESTEP_TYPE_CATALOG_MODEL (onestep_catalog_model_get_type ())

G_DECLARE_FINAL_TYPE (OnestepCatalogModel, onestep_catalog_model, ONESTEP, CATALOG_MODEL, GObject)

/* base: the catalogue model named by the object's "base" member, or NULL. */
OnestepCatalogModel *onestep_catalog_model_new_from_json    (JsonObject          *object,
                                                             OnestepCatalogModel *base,
                                                             GError             **error);
const char          *onestep_catalog_model_get_id           (OnestepCatalogModel *self);
const char          *onestep_catalog_model_get_name         (OnestepCatalogModel *self);
const char          *onestep_catalog_model_get_repository   (OnestepCatalogModel *self);
const char          *onestep_catalog_model_get_revision     (OnestepCatalogModel *self);
const char          *onestep_catalog_model_get_licence      (OnestepCatalogModel *self);
gboolean             onestep_catalog_model_get_gated        (OnestepCatalogModel *self);
/* The model's page, where a gated licence is accepted. */
char                *onestep_catalog_model_dup_page_url     (OnestepCatalogModel *self,
                                                             const char          *base_url);
/* Id of the catalogue model whose components this one reuses, or NULL. */
const char          *onestep_catalog_model_get_base_id      (OnestepCatalogModel *self);
/* Local path of a UNet file that replaces the folder's UNet, or NULL. */
const char          *onestep_catalog_model_get_unet_file    (OnestepCatalogModel *self);
/* Every file to fetch, base components included. Element type: OnestepCatalogFile. */
GPtrArray           *onestep_catalog_model_get_files        (OnestepCatalogModel *self);
guint64              onestep_catalog_model_get_total_size   (OnestepCatalogModel *self);

G_END_DECLS
