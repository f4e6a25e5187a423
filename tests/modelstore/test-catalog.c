/* test-catalog.c: the built-in catalogue is complete and consistent, entries'
 * kinds are read, and bad catalogues are refused with messages naming the entry. */
#include <string.h>

#include "onestep-model-catalog.h"
#include "onestep-modelstore-error.h"

static gboolean
is_lower_hex (const char *text,
              gsize       length)
{
  if (strlen (text) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isdigit (text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
      return FALSE;
  return TRUE;
}

static const OnestepCatalogFile *
find_file (OnestepCatalogModel *model,
           const char          *repository,
           const char          *path)
{
  GPtrArray *files = onestep_catalog_model_get_files (model);

  for (guint i = 0; i < files->len; i++)
    {
      const OnestepCatalogFile *file = g_ptr_array_index (files, i);

      if (g_str_equal (file->repository, repository) && g_str_equal (file->path, path))
        return file;
    }
  return NULL;
}

static void
test_default_catalogue (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepModelCatalog) catalog = onestep_model_catalog_new_default (&error);
  const char *expected[] = { "svd", "svd-xt", "svd-xt-1-1", "animatelcm-svd-xt", "dinov2-small" };
  const char *diffusers_files[] = {
    "model_index.json", "feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json", "image_encoder/config.json", "unet/config.json",
    "vae/config.json", "image_encoder/model.fp16.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
  };

  g_assert_no_error (error);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (catalog)), ==, G_N_ELEMENTS (expected));

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      OnestepCatalogModel *model = onestep_model_catalog_lookup (catalog, expected[i]);
      GPtrArray *files;
      g_autoptr(GHashTable) local_paths = g_hash_table_new (g_str_hash, g_str_equal);

      g_assert_nonnull (model);
      files = onestep_catalog_model_get_files (model);
      g_assert_cmpuint (files->len, >, 0);
      g_assert_cmpstr (onestep_catalog_model_get_licence (model), !=, "");
      for (guint j = 0; j < files->len; j++)
        {
          const OnestepCatalogFile *file = g_ptr_array_index (files, j);

          g_assert_cmpuint (file->size, >, 0);
          g_assert_true (file->sha256 == NULL || is_lower_hex (file->sha256, 64));
          /* Two files never land on the same local path. */
          g_assert_false (g_hash_table_contains (local_paths, file->local_path));
          g_hash_table_add (local_paths, file->local_path);
          /* fp16 weights go under the names every diffusers loader looks for first. */
          g_assert_null (strstr (file->local_path, ".fp16."));
        }
    }

  /* Every Stability model is a complete diffusers fp16 folder. */
  for (guint i = 0; i < 3; i++)
    {
      OnestepCatalogModel *model = onestep_model_catalog_lookup (catalog, expected[i]);

      g_assert_null (onestep_catalog_model_get_unet_file (model));
      for (guint j = 0; j < G_N_ELEMENTS (diffusers_files); j++)
        g_assert_nonnull (find_file (model, onestep_catalog_model_get_repository (model),
                                     diffusers_files[j]));
    }

  g_assert_false (onestep_catalog_model_get_gated (onestep_model_catalog_lookup (catalog, "svd")));
  g_assert_false (onestep_catalog_model_get_gated (onestep_model_catalog_lookup (catalog, "svd-xt")));
  g_assert_true (onestep_catalog_model_get_gated (onestep_model_catalog_lookup (catalog, "svd-xt-1-1")));
}

static void
test_animatelcm_uses_xt_components (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepModelCatalog) catalog = onestep_model_catalog_new_default (&error);
  OnestepCatalogModel *alcm = onestep_model_catalog_lookup (catalog, "animatelcm-svd-xt");
  OnestepCatalogModel *xt = onestep_model_catalog_lookup (catalog, "svd-xt");
  GPtrArray *files = onestep_catalog_model_get_files (alcm);
  const OnestepCatalogFile *unet;
  gboolean has_vae = FALSE, has_clip = FALSE;

  g_assert_no_error (error);
  g_assert_cmpstr (onestep_catalog_model_get_repository (alcm), ==, "wangfuyun/AnimateLCM-SVD-xt");
  g_assert_cmpstr (onestep_catalog_model_get_base_id (alcm), ==, "svd-xt");

  unet = find_file (alcm, "wangfuyun/AnimateLCM-SVD-xt", "AnimateLCM-SVD-xt.safetensors");
  g_assert_nonnull (unet);
  g_assert_cmpuint (unet->size, ==, G_GUINT64_CONSTANT (6098682464));
  g_assert_cmpstr (unet->sha256, ==, "6ca55e35f29437e8a65e8a1a9ce75262d5bab3d4fe137bdc3f3a94512c54b377");
  g_assert_cmpstr (onestep_catalog_model_get_unet_file (alcm), ==, unet->local_path);

  for (guint i = 0; i < files->len; i++)
    {
      const OnestepCatalogFile *file = g_ptr_array_index (files, i);
      const OnestepCatalogFile *from_xt;

      if (file == unet)
        continue;
      /* Everything else is the xt base's own file, hash and revision included. */
      from_xt = find_file (xt, file->repository, file->path);
      g_assert_nonnull (from_xt);
      g_assert_cmpstr (file->revision, ==, from_xt->revision);
      g_assert_cmpstr (file->sha256, ==, from_xt->sha256);
      g_assert_cmpstr (file->local_path, ==, from_xt->local_path);
      /* The xt UNet weights are replaced, so they are not fetched. */
      g_assert_cmpstr (file->path, !=, "unet/diffusion_pytorch_model.fp16.safetensors");
      has_vae |= g_str_has_prefix (file->path, "vae/") && g_str_has_suffix (file->path, ".safetensors");
      has_clip |= g_str_has_prefix (file->path, "image_encoder/") && g_str_has_suffix (file->path, ".safetensors");
    }
  g_assert_true (has_vae);
  g_assert_true (has_clip);
}

/* DINOv2 for OSV's discriminator: a feature network, not offered for generating;
 * its files are checked against the hub's ETags, as no sha256 is listed. */
static void
test_dinov2_feature_network (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepModelCatalog) catalog = onestep_model_catalog_new_default (&error);
  OnestepCatalogModel *dinov2;
  guint n;

  g_assert_no_error (error);
  dinov2 = onestep_model_catalog_lookup (catalog, "dinov2-small");
  g_assert_nonnull (dinov2);
  g_assert_cmpint (onestep_catalog_model_get_kind (dinov2), ==, ONESTEP_CATALOG_KIND_FEATURE_NETWORK);
  g_assert_cmpstr (onestep_catalog_kind_to_string (onestep_catalog_model_get_kind (dinov2)), ==,
                   "feature-network");
  g_assert_cmpstr (onestep_catalog_model_get_repository (dinov2), ==, "facebook/dinov2-small");
  g_assert_cmpstr (onestep_catalog_model_get_licence (dinov2), ==, "apache-2.0");
  g_assert_false (onestep_catalog_model_get_gated (dinov2));
  g_assert_null (onestep_catalog_model_get_base_id (dinov2));
  g_assert_null (onestep_catalog_model_get_unet_file (dinov2));
  g_assert_nonnull (find_file (dinov2, "facebook/dinov2-small", "config.json"));
  g_assert_nonnull (find_file (dinov2, "facebook/dinov2-small", "model.safetensors"));
  g_assert_cmpuint (onestep_catalog_model_get_total_size (dinov2), >, 80 * 1000 * 1000);

  /* Every other entry is a video model, by default. */
  n = g_list_model_get_n_items (G_LIST_MODEL (catalog));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(OnestepCatalogModel) model = g_list_model_get_item (G_LIST_MODEL (catalog), i);

      if (model != dinov2)
        g_assert_cmpint (onestep_catalog_model_get_kind (model), ==, ONESTEP_CATALOG_KIND_IMAGE_TO_VIDEO);
    }
}

static void
assert_refused (const char *json,
                const char *message_part)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepModelCatalog) catalog = onestep_model_catalog_new_from_data (json, -1, &error);

  g_assert_null (catalog);
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_CATALOGUE);
  if (strstr (error->message, message_part) == NULL)
    g_error ("expected \"%s\" in: %s", message_part, error->message);
}

#define ENTRY(id, files) "{\"id\": \"" id "\", \"name\": \"n\", \"repository\": \"o/r\", " \
                         "\"revision\": \"main\", \"licence\": \"l\", \"files\": [" files "]}"

static void
test_bad_catalogues (void)
{
  assert_refused ("{\"models\": [", "not valid JSON");
  assert_refused ("[]", "\"models\" array");
  assert_refused ("{\"models\": [" ENTRY ("a", "") "]}", "a: \"files\"");
  assert_refused ("{\"models\": [" ENTRY ("escape", "{\"path\": \"../x\", \"size\": 1}") "]}",
                  "escape, file ../x");
  assert_refused ("{\"models\": [" ENTRY ("abs", "{\"path\": \"/etc/passwd\", \"size\": 1}") "]}",
                  "stay inside");
  assert_refused ("{\"models\": [" ENTRY ("hash", "{\"path\": \"x\", \"size\": 1, \"sha256\": \"ABC\"}") "]}",
                  "hash, file x: \"sha256\"");
  assert_refused ("{\"models\": [" ENTRY ("empty", "{\"path\": \"x\", \"size\": 0}") "]}",
                  "\"size\"");
  assert_refused ("{\"models\": [" ENTRY ("twice", "{\"path\": \"x\", \"size\": 1}") ","
                  ENTRY ("twice", "{\"path\": \"x\", \"size\": 1}") "]}", "twice twice");
  assert_refused ("{\"models\": [{\"id\": \"u\", \"name\": \"n\", \"repository\": \"o/r\", "
                  "\"revision\": \"main\", \"licence\": \"l\", \"base\": \"nowhere\", "
                  "\"base_components\": [\"x\"], \"files\": [{\"path\": \"y\", \"size\": 1}]}]}",
                  "u: \"base\"");
  assert_refused ("{\"models\": [{\"id\": \"k\", \"name\": \"n\", \"repository\": \"o/r\", "
                  "\"revision\": \"main\", \"licence\": \"l\", \"kind\": \"text-to-video\", "
                  "\"files\": [{\"path\": \"y\", \"size\": 1}]}]}",
                  "k: \"kind\"");
  assert_refused ("{\"models\": [{\"id\": \"f\", \"name\": \"n\", \"repository\": \"o/r\", "
                  "\"revision\": \"main\", \"licence\": \"l\", \"kind\": \"feature-network\", "
                  "\"unet_file\": \"y\", \"files\": [{\"path\": \"y\", \"size\": 1}]}]}",
                  "f: a feature-network");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/modelstore/catalog/default", test_default_catalogue);
  g_test_add_func ("/modelstore/catalog/animatelcm-base", test_animatelcm_uses_xt_components);
  g_test_add_func ("/modelstore/catalog/dinov2", test_dinov2_feature_network);
  g_test_add_func ("/modelstore/catalog/refused", test_bad_catalogues);

  return g_test_run ();
}
