/* export-metadata.c: generation settings as JSON for file metadata. */
#include "export-metadata.h"

#include <json-glib/json-glib.h>
#include <string.h>

static int
compare_keys (gconstpointer a,
              gconstpointer b,
              gpointer      user_data)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

char *
_onestep_export_metadata_to_json (GHashTable *metadata,
                                  gboolean    pretty)
{
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree gpointer *keys = NULL;
  guint n_keys;

  if (metadata == NULL || g_hash_table_size (metadata) == 0)
    return NULL;

  /* Sorted so that the same settings always give the same bytes. */
  keys = g_hash_table_get_keys_as_array (metadata, &n_keys);
  g_qsort_with_data (keys, n_keys, sizeof (gpointer), compare_keys, NULL);

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  for (guint i = 0; i < n_keys; i++)
    {
      json_builder_set_member_name (builder, keys[i]);
      json_builder_add_string_value (builder, g_hash_table_lookup (metadata, keys[i]));
    }
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  generator = json_generator_new ();
  json_generator_set_pretty (generator, pretty);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}
