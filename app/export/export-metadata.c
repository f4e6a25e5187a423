/* export-metadata.c: generation settings as JSON and as text for file metadata. */
#include "export-metadata.h"

#include <json-glib/json-glib.h>

/* value as a double whose shortest decimal is the shortest that gives the float back,
 * so that 0.02f is written 0.02, not 0.019999999552965164. */
static double
float_as_written (float value)
{
  char format[8];
  char text[G_ASCII_DTOSTR_BUF_SIZE];

  for (int digits = 1; digits < 9; digits++)
    {
      g_snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (text, sizeof text, format, value);
      if ((float) g_ascii_strtod (text, NULL) == value)
        break;
    }
  return g_ascii_strtod (text, NULL);
}

/* Members in sorted order, so that the same settings always give the same bytes. */
static JsonNode *
settings_to_node (const OnestepClipSettings *settings)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *model = g_canonicalize_filename (settings->model, NULL);
  g_autofree char *unet_file = settings->unet_file ? g_canonicalize_filename (settings->unet_file, NULL)
                                                   : NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "crop_position");
  json_builder_add_double_value (builder, settings->crop_position);
  json_builder_set_member_name (builder, "fps");
  json_builder_add_int_value (builder, settings->fps);
  json_builder_set_member_name (builder, "frames");
  json_builder_add_int_value (builder, settings->frames);
  json_builder_set_member_name (builder, "height");
  json_builder_add_int_value (builder, settings->height);
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, model);
  json_builder_set_member_name (builder, "motion_bucket_id");
  json_builder_add_int_value (builder, settings->motion_bucket_id);
  json_builder_set_member_name (builder, "noise_aug_strength");
  json_builder_add_double_value (builder, float_as_written (settings->noise_aug_strength));
  json_builder_set_member_name (builder, "sampler");
  json_builder_add_string_value (builder, settings->sampler);
  json_builder_set_member_name (builder, "seed");
  json_builder_add_int_value (builder, (gint64) settings->seed);
  json_builder_set_member_name (builder, "steps");
  json_builder_add_int_value (builder, settings->steps);
  json_builder_set_member_name (builder, "unet_file");
  if (unet_file != NULL)
    json_builder_add_string_value (builder, unet_file);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "width");
  json_builder_add_int_value (builder, settings->width);
  json_builder_end_object (builder);

  return json_builder_get_root (builder);
}

char *
_onestep_export_settings_to_json (const OnestepClipSettings *settings,
                                  gboolean                   pretty)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonGenerator) generator = NULL;

  if (settings == NULL)
    return NULL;

  root = settings_to_node (settings);
  generator = json_generator_new ();
  json_generator_set_pretty (generator, pretty);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

void
_onestep_export_settings_to_text (const OnestepClipSettings *settings,
                                  GPtrArray                 *keys,
                                  GPtrArray                 *values)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  g_autoptr(GList) members = NULL;

  if (settings == NULL)
    return;

  root = settings_to_node (settings);
  object = json_node_get_object (root);
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *member = json_object_get_member (object, l->data);

      if (JSON_NODE_HOLDS_NULL (member))
        continue;
      g_ptr_array_add (keys, g_strdup (l->data));
      if (json_node_get_value_type (member) == G_TYPE_STRING)
        g_ptr_array_add (values, g_strdup (json_node_get_string (member)));
      else
        g_ptr_array_add (values, json_to_string (member, FALSE));
    }
}
