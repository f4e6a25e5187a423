/* test-downloader.c: OnestepModelDownloader against a loopback hub. */
#include <glib/gstdio.h>

#include "loopback-hub.h"
#include "scratch-dir.h"
#include "onestep-memory-token-provider.h"
#include "onestep-model-catalog.h"
#include "onestep-model-downloader.h"
#include "onestep-modelstore-error.h"

#define REPO "test/tiny-svd"
#define GATED_REPO "test/gated-svd"
#define CONFIG_PATH "model_index.json"
#define WEIGHTS_PATH "unet/diffusion_pytorch_model.fp16.safetensors"
#define WEIGHTS_LOCAL "unet/diffusion_pytorch_model.safetensors"
#define WEIGHTS_SIZE (300 * 1024)
#define CUT_AT (100 * 1024)
#define TOKEN "hf_loopback_token"
#define DINOV2_REPO "test/dinov2-small"

typedef struct {
  LoopbackHub            *hub;
  char                   *models_dir;
  GBytes                 *config;
  GBytes                 *weights;
  GBytes                 *dinov2_weights; /* other bytes: the loopback CDN serves by sha256 */
  OnestepModelCatalog    *catalog;
  OnestepModelIndex      *index;
  OnestepModelDownloader *downloader;
  /* progress as last reported */
  guint64                 progress_done;
  guint64                 progress_total;
  guint                   progress_count;
  guint64                 cancel_at;  /* cancel once this many bytes are done; 0: never */
  GCancellable           *cancellable;
} Fixture;

static GBytes *
generated_weights (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20241126);
  guint8 *data = g_malloc (WEIGHTS_SIZE);

  for (gsize i = 0; i < WEIGHTS_SIZE; i++)
    data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  return g_bytes_new_take (data, WEIGHTS_SIZE);
}

/* The catalogue names the weights' sha256 for REPO; the gated model leaves it
 * out so the hub's X-Linked-Etag is used, and adds a file the hub lacks when
 * missing_file is set. */
static char *
test_catalogue (Fixture *fixture)
{
  g_autofree char *sha = loopback_hub_sha256 (fixture->weights);

  return g_strdup_printf (
    "{\"models\": ["
    " {\"id\": \"tiny\", \"name\": \"Tiny SVD\", \"repository\": \"" REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\", \"gated\": false,"
    "  \"files\": [{\"path\": \"" CONFIG_PATH "\", \"size\": %" G_GSIZE_FORMAT "},"
    "             {\"path\": \"" WEIGHTS_PATH "\", \"save_as\": \"" WEIGHTS_LOCAL "\","
    "              \"size\": %d, \"sha256\": \"%s\"}]},"
    " {\"id\": \"gated\", \"name\": \"Gated SVD\", \"repository\": \"" GATED_REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\", \"gated\": true,"
    "  \"files\": [{\"path\": \"" WEIGHTS_PATH "\", \"size\": %d}]},"
    " {\"id\": \"missing\", \"name\": \"Missing\", \"repository\": \"" REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\","
    "  \"files\": [{\"path\": \"vae/none.safetensors\", \"size\": 10}]},"
    " {\"id\": \"stale\", \"name\": \"Stale\", \"repository\": \"" REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\","
    "  \"files\": [{\"path\": \"" WEIGHTS_PATH "\", \"size\": %d,"
    "              \"sha256\": \"%064d\"}]},"
    " {\"id\": \"dinov2\", \"name\": \"DINOv2\", \"kind\": \"feature-network\","
    "  \"repository\": \"" DINOV2_REPO "\", \"revision\": \"main\", \"licence\": \"test\","
    "  \"files\": [{\"path\": \"config.json\", \"size\": 548},"
    "             {\"path\": \"model.safetensors\", \"size\": 1000}]}"
    "]}",
    g_bytes_get_size (fixture->config), WEIGHTS_SIZE, sha, WEIGHTS_SIZE, WEIGHTS_SIZE, 0);
}

static void
on_progress (OnestepModelDownloader *downloader,
             OnestepCatalogModel    *model,
             guint64                 done,
             guint64                 total,
             Fixture                *fixture)
{
  g_assert_cmpuint (done, <=, total);
  fixture->progress_done = done;
  fixture->progress_total = total;
  fixture->progress_count++;
  if (fixture->cancel_at > 0 && done >= fixture->cancel_at)
    g_cancellable_cancel (fixture->cancellable);
}

/* A downloader that fetches from the fixture's hub, with the given tokens. */
static OnestepModelDownloader *
hub_downloader (Fixture              *fixture,
                OnestepTokenProvider *tokens)
{
  OnestepModelDownloader *downloader = onestep_model_downloader_new (fixture->index, tokens);

  onestep_model_downloader_set_base_url (downloader, loopback_hub_get_url (fixture->hub));
  return downloader;
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *catalogue = NULL;
  const char *config_text = "{\"_class_name\": \"StableVideoDiffusionPipeline\"}\n";

  fixture->hub = loopback_hub_new ();
  fixture->config = g_bytes_new_static (config_text, strlen (config_text));
  fixture->weights = generated_weights ();
  loopback_hub_add_file (fixture->hub, REPO, CONFIG_PATH, fixture->config, FALSE);
  loopback_hub_add_file (fixture->hub, REPO, WEIGHTS_PATH, fixture->weights, TRUE);
  loopback_hub_add_file (fixture->hub, GATED_REPO, WEIGHTS_PATH, fixture->weights, TRUE);
  loopback_hub_set_gated (fixture->hub, GATED_REPO, TOKEN);
  loopback_hub_add_file (fixture->hub, DINOV2_REPO, "config.json", fixture->config, FALSE);
  fixture->dinov2_weights = g_bytes_new_from_bytes (fixture->weights, 1, WEIGHTS_SIZE - 1);
  loopback_hub_add_file (fixture->hub, DINOV2_REPO, "model.safetensors", fixture->dinov2_weights, TRUE);

  catalogue = test_catalogue (fixture);
  fixture->catalog = onestep_model_catalog_new_from_data (catalogue, -1, &error);
  g_assert_no_error (error);

  fixture->models_dir = g_dir_make_tmp ("onestep-models-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->index = onestep_model_index_new (fixture->models_dir, &error);
  g_assert_no_error (error);
  fixture->downloader = hub_downloader (fixture, NULL);
  g_signal_connect (fixture->downloader, "progress", G_CALLBACK (on_progress), fixture);
  fixture->cancellable = g_cancellable_new ();
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_clear_object (&fixture->downloader);
  g_clear_object (&fixture->index);
  g_clear_object (&fixture->catalog);
  g_clear_object (&fixture->cancellable);
  scratch_dir_remove (fixture->models_dir);
  g_free (fixture->models_dir);
  g_bytes_unref (fixture->config);
  g_bytes_unref (fixture->weights);
  g_bytes_unref (fixture->dinov2_weights);
  loopback_hub_free (fixture->hub);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Runs a download to completion on the test's main context (where the
 * loopback hub also runs). */
static OnestepInstalledModel *
download (Fixture     *fixture,
          const char  *id,
          GError     **error)
{
  OnestepCatalogModel *model = onestep_model_catalog_lookup (fixture->catalog, id);
  g_autoptr(GAsyncResult) result = NULL;

  g_assert_nonnull (model);
  onestep_model_downloader_download_async (fixture->downloader, model, fixture->cancellable,
                                           store_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return onestep_model_downloader_download_finish (fixture->downloader, result, error);
}

static char *
model_file (Fixture    *fixture,
            const char *id,
            const char *local_path)
{
  return g_build_filename (fixture->models_dir, id, local_path, NULL);
}

static void
assert_file_content (const char *path,
                     GBytes     *expected)
{
  g_autofree char *contents = NULL;
  gsize length;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (path, &contents, &length, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (contents, length, g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
}

static guint64
file_size (const char *path)
{
  GStatBuf buf;

  if (g_stat (path, &buf) != 0)
    return 0;
  return buf.st_size;
}

static void
assert_model_absent (Fixture    *fixture,
                     const char *id)
{
  g_autofree char *weights = model_file (fixture, id, WEIGHTS_LOCAL);
  g_autofree char *weights_hub_name = model_file (fixture, id, WEIGHTS_PATH);
  g_autoptr(OnestepInstalledModel) entry = onestep_model_index_lookup (fixture->index, id);

  g_assert_false (g_file_test (weights, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (weights_hub_name, G_FILE_TEST_EXISTS));
  g_assert_null (entry);
}

/* Downloading id fails with domain and code, with fragment (when given) in
 * the message, and leaves no weights and no index entry behind. */
static void
assert_download_fails (Fixture    *fixture,
                       const char *id,
                       GQuark      domain,
                       gint        code,
                       const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = download (fixture, id, &error);

  g_assert_error (error, domain, code);
  if (fragment != NULL)
    g_assert_true (strstr (error->message, fragment) != NULL);
  g_assert_null (installed);
  assert_model_absent (fixture, id);
}

static void
test_full_download (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(OnestepInstalledModel) entry = NULL;
  g_autofree char *weights = model_file (fixture, "tiny", WEIGHTS_LOCAL);
  g_autofree char *partial = g_strconcat (weights, ".incomplete", NULL);
  g_autofree char *config = model_file (fixture, "tiny", CONFIG_PATH);
  g_autofree char *model_dir = g_build_filename (fixture->models_dir, "tiny", NULL);
  guint64 total = g_bytes_get_size (fixture->config) + WEIGHTS_SIZE;

  installed = download (fixture, "tiny", &error);
  g_assert_no_error (error);
  g_assert_nonnull (installed);

  assert_file_content (weights, fixture->weights);
  assert_file_content (config, fixture->config);
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));

  g_assert_cmpstr (onestep_installed_model_get_path (installed), ==, model_dir);
  g_assert_cmpint (onestep_installed_model_get_source (installed), ==, ONESTEP_INSTALLED_SOURCE_DOWNLOAD);
  entry = onestep_model_index_lookup (fixture->index, "tiny");
  g_assert_nonnull (entry);

  g_assert_cmpuint (fixture->progress_count, >, 0);
  g_assert_cmpuint (fixture->progress_total, ==, total);
  g_assert_cmpuint (fixture->progress_done, ==, total);

  /* A second run finds everything in place and fetches nothing. */
  g_clear_object (&installed);
  loopback_hub_corrupt_file (fixture->hub, REPO, WEIGHTS_PATH);
  installed = download (fixture, "tiny", &error);
  g_assert_no_error (error);
  assert_file_content (weights, fixture->weights);
}

static void
test_resume (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autofree char *weights = model_file (fixture, "tiny", WEIGHTS_LOCAL);
  g_autofree char *partial = g_strconcat (weights, ".incomplete", NULL);

  loopback_hub_break_next_transfer (fixture->hub, CUT_AT);
  assert_download_fails (fixture, "tiny", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_INTERRUPTED, "resume");
  g_assert_cmpuint (file_size (partial), ==, CUT_AT);

  installed = download (fixture, "tiny", &error);
  g_assert_no_error (error);
  g_assert_cmpint (loopback_hub_get_last_range_start (fixture->hub), ==, CUT_AT);
  assert_file_content (weights, fixture->weights);
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

static void
test_cancel (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *weights = model_file (fixture, "tiny", WEIGHTS_LOCAL);
  g_autofree char *partial = g_strconcat (weights, ".incomplete", NULL);
  OnestepCatalogModel *model = onestep_model_catalog_lookup (fixture->catalog, "tiny");

  /* The hub sends CUT_AT bytes and then nothing: the download can only end
   * through the cancel issued once those bytes are reported. */
  loopback_hub_stall_next_transfer (fixture->hub, CUT_AT);
  fixture->cancel_at = g_bytes_get_size (fixture->config) + CUT_AT;
  assert_download_fails (fixture, "tiny", G_IO_ERROR, G_IO_ERROR_CANCELLED, NULL);
  /* Cancelling is pausing: the partial file stays for resuming. */
  g_assert_cmpuint (file_size (partial), ==, CUT_AT);
  g_assert_true (onestep_model_downloader_has_partial (fixture->downloader, model));

  /* Cancel for good: the partial file goes too. */
  g_assert_true (onestep_model_downloader_discard_partial (fixture->downloader, model, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
  g_assert_false (onestep_model_downloader_has_partial (fixture->downloader, model));
}

static void
test_pause_then_resume (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autofree char *weights = model_file (fixture, "tiny", WEIGHTS_LOCAL);

  loopback_hub_stall_next_transfer (fixture->hub, CUT_AT);
  fixture->cancel_at = g_bytes_get_size (fixture->config) + CUT_AT;
  installed = download (fixture, "tiny", &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  fixture->cancel_at = 0;
  g_object_unref (fixture->cancellable);
  fixture->cancellable = g_cancellable_new ();
  installed = download (fixture, "tiny", &error);
  g_assert_no_error (error);
  g_assert_cmpint (loopback_hub_get_last_range_start (fixture->hub), ==, CUT_AT);
  assert_file_content (weights, fixture->weights);
}

static void
test_hash_mismatch (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autofree char *weights = model_file (fixture, "tiny", WEIGHTS_LOCAL);
  g_autofree char *partial = g_strconcat (weights, ".incomplete", NULL);

  loopback_hub_corrupt_file (fixture->hub, REPO, WEIGHTS_PATH);
  assert_download_fails (fixture, "tiny", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_CHECKSUM, "corrupt");
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

/* A plain git file is checked against the git blob sha1 in its ETag. */
static void
test_hash_mismatch_git_file (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autofree char *config = model_file (fixture, "tiny", CONFIG_PATH);
  g_autofree char *partial = g_strconcat (config, ".incomplete", NULL);

  loopback_hub_corrupt_file (fixture->hub, REPO, CONFIG_PATH);
  assert_download_fails (fixture, "tiny", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_CHECKSUM, CONFIG_PATH);
  g_assert_false (g_file_test (config, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

/* When the hub's LFS hash differs from the catalogue's, nothing is fetched. */
static void
test_catalogue_hash_differs (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autofree char *partial = model_file (fixture, "stale", WEIGHTS_PATH ".incomplete");

  assert_download_fails (fixture, "stale", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_CHECKSUM, "than the catalogue lists");
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

static void
test_one_download_per_model (Fixture       *fixture,
                             gconstpointer  data)
{
  OnestepCatalogModel *model = onestep_model_catalog_lookup (fixture->catalog, "tiny");
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *weights = model_file (fixture, "tiny", WEIGHTS_LOCAL);

  onestep_model_downloader_download_async (fixture->downloader, model, NULL, store_result, &first);
  onestep_model_downloader_download_async (fixture->downloader, model, NULL, store_result, &second);
  while (first == NULL || second == NULL)
    g_main_context_iteration (NULL, TRUE);

  installed = onestep_model_downloader_download_finish (fixture->downloader, second, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_assert_null (installed);
  g_clear_error (&error);
  installed = onestep_model_downloader_download_finish (fixture->downloader, first, &error);
  g_assert_no_error (error);
  assert_file_content (weights, fixture->weights);
}

static void
test_gated (Fixture       *fixture,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(OnestepTokenProvider) wrong = onestep_memory_token_provider_new ("hf_wrong");
  g_autoptr(OnestepTokenProvider) right = onestep_memory_token_provider_new (TOKEN);
  g_autofree char *weights = model_file (fixture, "gated", WEIGHTS_PATH);

  installed = download (fixture, "gated", &error);
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_GATED);
  g_assert_true (strstr (error->message, "accept the licence") != NULL ||
                 strstr (error->message, "Accept the licence") != NULL);
  g_assert_true (strstr (error->message, "token") != NULL);
  g_assert_true (strstr (error->message, GATED_REPO) != NULL);
  assert_model_absent (fixture, "gated");
  g_clear_error (&error);

  g_clear_object (&fixture->downloader);
  fixture->downloader = hub_downloader (fixture, wrong);
  installed = download (fixture, "gated", &error);
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_GATED);
  g_assert_true (strstr (error->message, "even with the access token") != NULL);
  g_clear_error (&error);

  g_clear_object (&fixture->downloader);
  fixture->downloader = hub_downloader (fixture, right);
  installed = download (fixture, "gated", &error);
  g_assert_no_error (error);
  g_assert_nonnull (installed);
  assert_file_content (weights, fixture->weights);
}

static void
test_not_found (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;

  installed = download (fixture, "missing", &error);
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_NOT_FOUND);
  g_assert_true (strstr (error->message, "404") != NULL);
  g_assert_true (strstr (error->message, "vae/none.safetensors") != NULL);
  g_assert_null (installed);
}

/* A feature network downloads like a video model (the catalogue's sizes are
 * estimates, files without sha256 checked against the hub's ETags) and is
 * indexed as a feature network, so the app does not offer it for generating. */
static void
test_feature_network (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(OnestepInstalledModel) entry = NULL;
  g_autoptr(OnestepModelIndex) reloaded = NULL;
  g_autoptr(GPtrArray) offered = NULL;
  g_autofree char *weights = model_file (fixture, "dinov2", "model.safetensors");
  g_autofree char *config = model_file (fixture, "dinov2", "config.json");
  g_autofree char *model_dir = g_build_filename (fixture->models_dir, "dinov2", NULL);
  guint64 total = g_bytes_get_size (fixture->config) + g_bytes_get_size (fixture->dinov2_weights);

  /* Broken off part way, it resumes where it stopped. */
  loopback_hub_break_next_transfer (fixture->hub, CUT_AT);
  installed = download (fixture, "dinov2", &error);
  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_INTERRUPTED);
  g_clear_error (&error);
  installed = download (fixture, "dinov2", &error);
  g_assert_no_error (error);
  g_assert_cmpint (loopback_hub_get_last_range_start (fixture->hub), ==, CUT_AT);
  assert_file_content (weights, fixture->dinov2_weights);
  assert_file_content (config, fixture->config);
  /* The hub's sizes win over the catalogue's estimates. */
  g_assert_cmpuint (fixture->progress_total, ==, total);

  g_assert_cmpstr (onestep_installed_model_get_path (installed), ==, model_dir);
  g_assert_cmpint (onestep_installed_model_get_kind (installed), ==, ONESTEP_INSTALLED_KIND_FEATURE_NETWORK);
  reloaded = onestep_model_index_new (fixture->models_dir, &error);
  g_assert_no_error (error);
  entry = onestep_model_index_lookup (reloaded, "dinov2");
  g_assert_nonnull (entry);
  g_assert_cmpint (onestep_installed_model_get_kind (entry), ==, ONESTEP_INSTALLED_KIND_FEATURE_NETWORK);
  offered = onestep_model_index_dup_image_to_video_models (reloaded);
  g_assert_cmpuint (offered->len, ==, 0);
}

/* No sha256 in the catalogue: corrupt bytes are refused against the LFS
 * sha256 in the hub's ETag. */
static void
test_feature_network_checksum (Fixture       *fixture,
                               gconstpointer  data)
{
  g_autofree char *weights = model_file (fixture, "dinov2", "model.safetensors");
  g_autoptr(OnestepInstalledModel) entry = NULL;

  loopback_hub_corrupt_file (fixture->hub, DINOV2_REPO, "model.safetensors");
  assert_download_fails (fixture, "dinov2", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_CHECKSUM, "corrupt");
  g_assert_false (g_file_test (weights, G_FILE_TEST_EXISTS));
  entry = onestep_model_index_lookup (fixture->index, "dinov2");
  g_assert_null (entry);
}

static gboolean
tiny_disk (const char  *directory,
           guint64     *free_bytes,
           gpointer     user_data,
           GError     **error)
{
  *free_bytes = 4096;
  return TRUE;
}

static void
test_disk_full (Fixture       *fixture,
                gconstpointer  data)
{
  g_autofree char *config = model_file (fixture, "tiny", CONFIG_PATH);
  g_autofree char *partial = model_file (fixture, "tiny", WEIGHTS_LOCAL ".incomplete");

  onestep_model_downloader_set_free_space_func (fixture->downloader, tiny_disk, NULL, NULL);
  assert_download_fails (fixture, "tiny", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_NO_SPACE, "Not enough disk space");
  /* Checked before anything is written. */
  g_assert_false (g_file_test (config, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

static void
test_network_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autofree char *url = g_strdup (loopback_hub_get_url (fixture->hub));

  /* Nothing listens on the port once the hub is gone. */
  loopback_hub_free (fixture->hub);
  fixture->hub = loopback_hub_new ();
  onestep_model_downloader_set_base_url (fixture->downloader, url);
  assert_download_fails (fixture, "tiny", ONESTEP_MODELSTORE_ERROR,
                         ONESTEP_MODELSTORE_ERROR_NETWORK, "Could not reach");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) g_test_add ("/modelstore/downloader/" name, Fixture, NULL, \
                                    fixture_set_up, func, fixture_tear_down)
  ADD ("full", test_full_download);
  ADD ("resume", test_resume);
  ADD ("cancel", test_cancel);
  ADD ("pause-then-resume", test_pause_then_resume);
  ADD ("hash-mismatch", test_hash_mismatch);
  ADD ("hash-mismatch-git-file", test_hash_mismatch_git_file);
  ADD ("catalogue-hash-differs", test_catalogue_hash_differs);
  ADD ("one-download-per-model", test_one_download_per_model);
  ADD ("gated", test_gated);
  ADD ("not-found", test_not_found);
  ADD ("feature-network", test_feature_network);
  ADD ("feature-network-checksum", test_feature_network_checksum);
  ADD ("disk-full", test_disk_full);
  ADD ("network-down", test_network_down);
#undef ADD

  return g_test_run ();
}
