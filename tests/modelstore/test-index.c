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

/* A feature network keeps its kind through a reload, and the list offered for
 * generating (the GUI's Model row and installed models) leaves it out. */
static void
test_feature_network (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("onestep-index-XXXXXX", &error);
  g_autofree char *dinov2_dir = g_build_filename (dir, "dinov2-small", NULL);
  g_autofree char *svd_dir = g_build_filename (dir, "svd-xt", NULL);
  g_autofree char *index_path = g_build_filename (dir, "models.json", NULL);
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(OnestepModelIndex) reloaded = NULL;
  g_autoptr(OnestepInstalledModel) svd = NULL;
  g_autoptr(OnestepInstalledModel) lora = NULL;
  g_autoptr(OnestepInstalledModel) dinov2 = NULL;
  g_autoptr(OnestepInstalledModel) found = NULL;
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GPtrArray) offered = NULL;

  g_assert_no_error (error);
  index = onestep_model_index_new (dir, &error);
  g_assert_no_error (error);
  svd = onestep_installed_model_new ("svd-xt", NULL, ONESTEP_INSTALLED_KIND_DIFFUSERS,
                                     ONESTEP_INSTALLED_SOURCE_DOWNLOAD, svd_dir, NULL, NULL);
  dinov2 = onestep_installed_model_new ("dinov2-small", "DINOv2", ONESTEP_INSTALLED_KIND_FEATURE_NETWORK,
                                        ONESTEP_INSTALLED_SOURCE_DOWNLOAD, dinov2_dir, NULL, NULL);
  lora = onestep_installed_model_new ("style", NULL, ONESTEP_INSTALLED_KIND_LORA,
                                      ONESTEP_INSTALLED_SOURCE_IMPORT, "/data/style.safetensors",
                                      NULL, "svd-xt");
  g_assert_true (onestep_model_index_add (index, svd, &error));
  g_assert_true (onestep_model_index_add (index, dinov2, &error));
  g_assert_true (onestep_model_index_add (index, lora, &error));
  g_assert_no_error (error);

  reloaded = onestep_model_index_new (dir, &error);
  g_assert_no_error (error);
  found = onestep_model_index_lookup (reloaded, "dinov2-small");
  g_assert_nonnull (found);
  g_assert_cmpint (onestep_installed_model_get_kind (found), ==, ONESTEP_INSTALLED_KIND_FEATURE_NETWORK);
  g_assert_cmpstr (onestep_installed_kind_to_string (onestep_installed_model_get_kind (found)), ==,
                   "feature-network");
  g_assert_cmpstr (onestep_installed_model_get_path (found), ==, dinov2_dir);
  g_assert_false (onestep_installed_kind_is_image_to_video (ONESTEP_INSTALLED_KIND_FEATURE_NETWORK));
  g_assert_true (onestep_installed_kind_is_image_to_video (ONESTEP_INSTALLED_KIND_LORA));

  all = onestep_model_index_dup_models (reloaded);
  g_assert_cmpuint (all->len, ==, 3);
  offered = onestep_model_index_dup_image_to_video_models (reloaded);
  g_assert_cmpuint (offered->len, ==, 2);
  /* The rest keep their order. */
  g_assert_cmpstr (onestep_installed_model_get_id (g_ptr_array_index (offered, 0)), ==, "svd-xt");
  g_assert_cmpstr (onestep_installed_model_get_id (g_ptr_array_index (offered, 1)), ==, "style");

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
  g_test_add_func ("/modelstore/index/feature-network", test_feature_network);
  g_test_add_func ("/modelstore/index/corrupt", test_corrupt_index);

  return g_test_run ();
}
