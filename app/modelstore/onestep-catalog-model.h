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

/* What a catalogue model is for ("kind" in catalog.json). */
typedef enum {
  ONESTEP_CATALOG_KIND_IMAGE_TO_VIDEO,  /* a video model to generate with (the default) */
  ONESTEP_CATALOG_KIND_FEATURE_NETWORK, /* a network training uses (DINOv2 for OSV's discriminator) */
} OnestepCatalogKind;

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
OnestepCatalogKind   onestep_catalog_model_get_kind         (OnestepCatalogModel *self);
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

/* "image-to-video" or "feature-network", as catalog.json spells them. */
const char          *onestep_catalog_kind_to_string         (OnestepCatalogKind   kind);
gboolean             onestep_catalog_kind_from_string       (const char          *text,
                                                             OnestepCatalogKind  *kind);

G_END_DECLS
