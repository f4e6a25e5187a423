/* onestep-model-catalog.h: the list of models Onestep knows how to download, a
 * GListModel of OnestepCatalogModel. */
#pragma once

#include <gio/gio.h>

#include "onestep-catalog-model.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_MODEL_CATALOG (onestep_model_catalog_get_type ())

G_DECLARE_FINAL_TYPE (OnestepModelCatalog, onestep_model_catalog, ONESTEP, MODEL_CATALOG, GObject)

/* The catalogue compiled into the library. */
OnestepModelCatalog *onestep_model_catalog_new_default   (GError             **error);
OnestepModelCatalog *onestep_model_catalog_new_from_data (const char          *json,
                                                          gssize               length,
                                                          GError             **error);
/* Returns: (transfer none) (nullable) */
OnestepCatalogModel *onestep_model_catalog_lookup        (OnestepModelCatalog *self,
                                                          const char          *id);

G_END_DECLS
