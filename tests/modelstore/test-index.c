/* test-index.c: the models folder index survives a reload and keeps paths
 * inside the folder relative. */
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "onestep-model-index.h"
#include "onestep-modelstore-error.h"

static void
test_add_reload_remove (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("onestep-index-XXXXXX", &error);
  g_autofree char *inside = g_build_filename (dir, "svd-xt", NULL);
  g_autofree char *unet = g_build_filename (dir, "svd-xt", "AnimateLCM-SVD-xt.safetensors", NULL);
  g_autofree char *index_path = g_build_filename (dir, "models.json", NULL);
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(OnestepModelIndex) reloaded = NULL;
  g_autoptr(OnestepInstalledModel) downloaded = NULL;
  g_autoptr(OnestepInstalledModel) imported = NULL;
  g_autoptr(OnestepInstalledModel) found = NULL;
  g_autoptr(GPtrArray) models = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonArray *saved;

  g_assert_no_error (error);
  index = onestep_model_index_new (dir, &error);
  g_assert_no_error (error);
  models = onestep_model_index_dup_models (index);
  g_assert_cmpuint (models->len, ==, 0);
  g_clear_pointer (&models, g_ptr_array_unref);

  downloaded = onestep_installed_model_new ("alcm", "AnimateLCM", ONESTEP_INSTALLED_KIND_DIFFUSERS,
                                            ONESTEP_INSTALLED_SOURCE_DOWNLOAD, inside, unet, NULL);
  imported = onestep_installed_model_new ("mine", NULL, ONESTEP_INSTALLED_KIND_SINGLE_FILE,
                                          ONESTEP_INSTALLED_SOURCE_IMPORT, "/data/svd_xt.safetensors",
                                          NULL, NULL);
  g_assert_true (onestep_model_index_add (index, downloaded, &error));
  g_assert_no_error (error);
  g_assert_true (onestep_model_index_add (index, imported, &error));
  g_assert_no_error (error);

  /* Paths inside the folder are saved relative so the folder can move. */
  json_parser_load_from_file (parser, index_path, &error);
  g_assert_no_error (error);
  saved = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "models");
  g_assert_cmpuint (json_array_get_length (saved), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (saved, 0), "path"), ==, "svd-xt");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (saved, 0), "unet_file"),
                   ==, "svd-xt/AnimateLCM-SVD-xt.safetensors");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (saved, 1), "path"),
                   ==, "/data/svd_xt.safetensors");

  reloaded = onestep_model_index_new (dir, &error);
  g_assert_no_error (error);
  found = onestep_model_index_lookup (reloaded, "alcm");
  g_assert_nonnull (found);
  g_assert_cmpstr (onestep_installed_model_get_path (found), ==, inside);
  g_assert_cmpstr (onestep_installed_model_get_unet_file (found), ==, unet);
  g_assert_cmpint (onestep_installed_model_get_source (found), ==, ONESTEP_INSTALLED_SOURCE_DOWNLOAD);
  g_clear_object (&found);
  found = onestep_model_index_lookup (reloaded, "mine");
  g_assert_cmpstr (onestep_installed_model_get_name (found), ==, "mine");
  g_assert_cmpint (onestep_installed_model_get_kind (found), ==, ONESTEP_INSTALLED_KIND_SINGLE_FILE);

  g_assert_true (onestep_model_index_remove (reloaded, "alcm", &error));
  g_assert_no_error (error);
  g_assert_false (onestep_model_index_remove (reloaded, "alcm", &error));
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_UNKNOWN_MODEL);
  g_clear_error (&error);
  g_clear_object (&index);
  index = onestep_model_index_new (dir, &error);
  models = onestep_model_index_dup_models (index);
  g_assert_cmpuint (models->len, ==, 1);

  g_unlink (index_path);
  g_rmdir (dir);
}

static void
test_corrupt_index (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("onestep-index-XXXXXX", &error);
  g_autofree char *index_path = g_build_filename (dir, "models.json", NULL);
  g_autoptr(OnestepModelIndex) index = NULL;

  g_file_set_contents (index_path, "{\"models\": [{\"id\": \"x\"}]}", -1, &error);
  g_assert_no_error (error);
  index = onestep_model_index_new (dir, &error);
  g_assert_null (index);
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INDEX);
  g_assert_nonnull (strstr (error->message, index_path));

  g_unlink (index_path);
  g_rmdir (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/modelstore/index/add-reload-remove", test_add_reload_remove);
  g_test_add_func ("/modelstore/index/corrupt", test_corrupt_index);

  return g_test_run ();
}
