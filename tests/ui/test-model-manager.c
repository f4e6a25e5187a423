/* test-model-manager.c: the model manager window against a loopback hub.
 *
 * It downloads a model with progress, stops and resumes it, gives the token a
 * gated model asks for through the token dialog, and sees a damaged download,
 * a full disk and a folder that is no model described in words; then it
 * imports the tiny test model and removes it. Window snapshots are saved as
 * PNG screenshots along the way.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include "loopback-hub.h"
#include "onestep-memory-token-provider.h"
#include "onestep-model-manager.h"
#include "scratch-dir.h"
#include "ui-test-util.h"

#define REPO "test/tiny-svd"
#define GATED_REPO "test/gated-svd"
#define DAMAGED_REPO "test/damaged-svd"
#define CONFIG_PATH "model_index.json"
#define WEIGHTS_PATH "unet/diffusion_pytorch_model.fp16.safetensors"
#define WEIGHTS_SIZE (300 * 1024)
#define CUT_AT (100 * 1024)
#define TOKEN "hf_loopback_token"

static LoopbackHub *hub;
static char *models_dir;
static OnestepModelIndex *model_index;
static OnestepTokenProvider *tokens;
static OnestepModelManager *manager;
static guint64 free_space = G_MAXUINT64;
static guint models_changed;

/* Two painted frames before the photo: the first after mapping can still
 * lack the list's rows. */
static void
save_screenshot (GtkWidget  *widget,
                 const char *name)
{
  ui_test_wait_for_paint (widget);
  ui_test_wait_for_paint (widget);
  ui_test_save_screenshot (widget, name);
}

static gboolean
status_contains (gpointer data)
{
  const char **id_and_text = data;
  const char *status = onestep_model_manager_get_status (manager, id_and_text[0]);

  return status != NULL && strstr (status, id_and_text[1]) != NULL;
}

static void
wait_for_status (const char *id,
                 const char *text)
{
  const char *id_and_text[] = { id, text };

  if (!ui_test_wait_until (status_contains, id_and_text))
    g_error ("%s: status “%s” never contained “%s”", id,
             onestep_model_manager_get_status (manager, id), text);
  g_test_message ("%s: %s", id, onestep_model_manager_get_status (manager, id));
}

static gboolean
download_ended (gpointer id)
{
  return !onestep_model_manager_get_downloading (manager, id);
}

static gboolean
installed (const char *id)
{
  g_autoptr(OnestepInstalledModel) model = onestep_model_index_lookup (model_index, id);

  return model != NULL;
}

/* Whether a preferences row under widget has the title. */
static gboolean
has_row_titled (GtkWidget  *widget,
                const char *title)
{
  if (ADW_IS_PREFERENCES_ROW (widget) &&
      g_strcmp0 (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (widget)), title) == 0)
    return TRUE;
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child;
       child = gtk_widget_get_next_sibling (child))
    if (has_row_titled (child, title))
      return TRUE;
  return FALSE;
}

/* The feature network (DINOv2) is installed and in the catalogue, but it is
 * not a video model: neither list offers it to Use. */
static void
test_catalogue (void)
{
  save_screenshot (GTK_WIDGET (manager), "model-manager.png");
  g_assert_null (onestep_model_manager_get_status (manager, "tiny"));
  g_assert_false (installed ("tiny"));
  g_assert_true (has_row_titled (GTK_WIDGET (manager), "Tiny SVD"));
  g_assert_true (installed ("dinov2"));
  g_assert_false (has_row_titled (GTK_WIDGET (manager), "DINOv2"));
}

/* Progress with its figures, a stop that keeps the bytes, and a resume from
 * there to the installed model. */
static void
test_download (void)
{
  guint changed = models_changed;

  loopback_hub_stall_next_transfer (hub, CUT_AT);
  onestep_model_manager_download (manager, "tiny");
  g_assert_true (onestep_model_manager_get_downloading (manager, "tiny"));
  /* g_format_size puts a no-break space before the unit. */
  wait_for_status ("tiny", "102.4\u00a0kB of 307.2\u00a0kB");
  save_screenshot (GTK_WIDGET (manager), "model-manager-progress.png");

  onestep_model_manager_cancel_download (manager, "tiny");
  g_assert_true (ui_test_wait_until (download_ended, "tiny"));
  wait_for_status ("tiny", "Resume");
  g_assert_false (installed ("tiny"));

  onestep_model_manager_download (manager, "tiny");
  g_assert_true (ui_test_wait_until (download_ended, "tiny"));
  wait_for_status ("tiny", "Installed");
  g_assert_cmpint (loopback_hub_get_last_range_start (hub), ==, CUT_AT);
  g_assert_true (installed ("tiny"));
  g_assert_cmpuint (models_changed, ==, changed + 1);
  save_screenshot (GTK_WIDGET (manager), "model-manager-installed.png");
}

static GtkWindow *
find_token_dialog (void)
{
  g_autoptr(GList) toplevels = gtk_window_list_toplevels ();

  for (GList *l = toplevels; l; l = l->next)
    if (ADW_IS_MESSAGE_DIALOG (l->data) && gtk_widget_get_visible (l->data))
      return l->data;
  return NULL;
}

static gboolean
token_dialog_shown (gpointer data)
{
  return find_token_dialog () != NULL;
}

/* The hub refuses the gated model; the dialog takes the token, which is kept
 * with the token provider, and the download goes through. */
static void
test_gated (void)
{
  g_autofree char *stored = NULL;
  GtkWindow *dialog;

  onestep_model_manager_download (manager, "gated");
  g_assert_true (ui_test_wait_until (token_dialog_shown, NULL));
  dialog = find_token_dialog ();
  wait_for_status ("gated", "accept the licence");
  save_screenshot (GTK_WIDGET (dialog), "model-manager-token.png");

  gtk_editable_set_text (GTK_EDITABLE (adw_message_dialog_get_extra_child (ADW_MESSAGE_DIALOG (dialog))),
                         TOKEN);
  adw_message_dialog_response (ADW_MESSAGE_DIALOG (dialog), "save");
  wait_for_status ("gated", "Installed");
  stored = onestep_token_provider_lookup_token (tokens, NULL, NULL);
  g_assert_cmpstr (stored, ==, TOKEN);
  g_assert_true (installed ("gated"));
}

static void
test_damaged (void)
{
  loopback_hub_corrupt_file (hub, DAMAGED_REPO, WEIGHTS_PATH);
  onestep_model_manager_download (manager, "damaged");
  wait_for_status ("damaged", "checksum does not match");
  g_assert_false (installed ("damaged"));
  save_screenshot (GTK_WIDGET (manager), "model-manager-damaged.png");
}

static void
test_no_space (void)
{
  free_space = 1024;
  onestep_model_manager_download (manager, "damaged");
  wait_for_status ("damaged", "Not enough free disk space");
  free_space = G_MAXUINT64;
}

static gboolean
import_ended (gpointer data)
{
  return !onestep_model_manager_get_importing (manager);
}

/* A folder that is no model is refused in words; the tiny model is added,
 * then removed from the list. */
static void
test_import (void)
{
  g_autofree char *tiny_model = g_strdup (g_getenv ("ONESTEP_TEST_MODEL"));
  g_autofree char *not_a_model = g_path_get_dirname (tiny_model);
  guint changed = models_changed;

  onestep_model_manager_import (manager, not_a_model);
  g_assert_true (ui_test_wait_until (import_ended, NULL));
  g_test_message ("%s", onestep_model_manager_get_import_status (manager));
  g_assert_nonnull (strstr (onestep_model_manager_get_import_status (manager),
                            "not a model Onestep can use"));
  g_assert_cmpuint (models_changed, ==, changed);

  onestep_model_manager_import (manager, tiny_model);
  g_assert_true (ui_test_wait_until (import_ended, NULL));
  g_test_message ("%s", onestep_model_manager_get_import_status (manager));
  g_assert_nonnull (strstr (onestep_model_manager_get_import_status (manager), "Added"));
  g_assert_true (installed ("model"));
  g_assert_cmpuint (models_changed, ==, changed + 1);
  save_screenshot (GTK_WIDGET (manager), "model-manager-imported.png");
}

static gboolean
report_free_space (const char  *directory,
                   guint64     *free_bytes,
                   gpointer     user_data,
                   GError     **error)
{
  *free_bytes = free_space;
  return TRUE;
}

static void
on_models_changed (OnestepModelManager *self)
{
  models_changed++;
}

/* The damaged model's weights differ from the others', as the hub finds LFS
 * files by their hash. */
static char *
test_catalogue_json (GBytes *config,
                     GBytes *weights,
                     GBytes *damaged_weights)
{
  g_autofree char *sha = loopback_hub_sha256 (weights);
  g_autofree char *damaged_sha = loopback_hub_sha256 (damaged_weights);

  return g_strdup_printf (
    "{\"models\": ["
    " {\"id\": \"tiny\", \"name\": \"Tiny SVD\", \"repository\": \"" REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\", \"gated\": false,"
    "  \"files\": [{\"path\": \"" CONFIG_PATH "\", \"size\": %" G_GSIZE_FORMAT "},"
    "             {\"path\": \"" WEIGHTS_PATH "\", \"size\": %d, \"sha256\": \"%s\"}]},"
    " {\"id\": \"gated\", \"name\": \"Gated SVD\", \"repository\": \"" GATED_REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\", \"gated\": true,"
    "  \"files\": [{\"path\": \"" WEIGHTS_PATH "\", \"size\": %d}]},"
    " {\"id\": \"damaged\", \"name\": \"Damaged SVD\", \"repository\": \"" DAMAGED_REPO "\","
    "  \"revision\": \"main\", \"licence\": \"test\", \"gated\": false,"
    "  \"files\": [{\"path\": \"" WEIGHTS_PATH "\", \"size\": %d, \"sha256\": \"%s\"}]},"
    " {\"id\": \"dinov2\", \"name\": \"DINOv2\", \"kind\": \"feature-network\","
    "  \"repository\": \"test/dinov2\", \"revision\": \"main\", \"licence\": \"test\","
    "  \"files\": [{\"path\": \"model.safetensors\", \"size\": 100}]}"
    "]}",
    g_bytes_get_size (config), WEIGHTS_SIZE, sha, WEIGHTS_SIZE, WEIGHTS_SIZE, damaged_sha);
}

int
main (int   argc,
      char *argv[])
{
  const char *config_text = "{\"_class_name\": \"StableVideoDiffusionPipeline\"}\n";
  g_autoptr(GBytes) config = g_bytes_new_static (config_text, strlen (config_text));
  g_autoptr(GBytes) weights = NULL;
  g_autoptr(GBytes) damaged_weights = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (20241126);
  g_autoptr(OnestepModelCatalog) catalog = NULL;
  g_autoptr(OnestepModelDownloader) downloader = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *catalogue = NULL;
  g_autofree char *dinov2_dir = NULL;
  g_autoptr(OnestepInstalledModel) dinov2 = NULL;
  guint8 *data;
  int status;

  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("DISPLAY") == NULL && g_getenv ("WAYLAND_DISPLAY") == NULL)
    {
      g_test_skip ("no display: run under xvfb-run");
      return 77;
    }
  adw_init ();

  data = g_malloc (WEIGHTS_SIZE);
  for (gsize i = 0; i < WEIGHTS_SIZE; i++)
    data[i] = (guint8)g_rand_int_range (rand, 0, 256);
  weights = g_bytes_new (data, WEIGHTS_SIZE);
  data[0] ^= 0xff;
  damaged_weights = g_bytes_new_take (data, WEIGHTS_SIZE);

  hub = loopback_hub_new ();
  loopback_hub_add_file (hub, REPO, CONFIG_PATH, config, FALSE);
  loopback_hub_add_file (hub, REPO, WEIGHTS_PATH, weights, TRUE);
  loopback_hub_add_file (hub, GATED_REPO, WEIGHTS_PATH, weights, TRUE);
  loopback_hub_set_gated (hub, GATED_REPO, TOKEN);
  loopback_hub_add_file (hub, DAMAGED_REPO, WEIGHTS_PATH, damaged_weights, TRUE);

  catalogue = test_catalogue_json (config, weights, damaged_weights);
  catalog = onestep_model_catalog_new_from_data (catalogue, -1, &error);
  g_assert_no_error (error);
  models_dir = g_dir_make_tmp ("onestep-models-XXXXXX", &error);
  g_assert_no_error (error);
  model_index = onestep_model_index_new (models_dir, &error);
  g_assert_no_error (error);
  dinov2_dir = g_build_filename (models_dir, "dinov2", NULL);
  dinov2 = onestep_installed_model_new ("dinov2", "DINOv2", ONESTEP_INSTALLED_KIND_FEATURE_NETWORK,
                                        ONESTEP_INSTALLED_SOURCE_DOWNLOAD, dinov2_dir, NULL, NULL);
  g_assert_true (onestep_model_index_add (model_index, dinov2, &error));
  tokens = onestep_memory_token_provider_new (NULL);
  downloader = onestep_model_downloader_new (model_index, tokens);
  onestep_model_downloader_set_base_url (downloader, loopback_hub_get_url (hub));
  onestep_model_downloader_set_free_space_func (downloader, report_free_space, NULL, NULL);

  manager = onestep_model_manager_new (NULL, catalog, model_index, downloader, tokens);
  g_signal_connect (manager, "models-changed", G_CALLBACK (on_models_changed), NULL);
  gtk_window_present (GTK_WINDOW (manager));

  g_test_add_func ("/model-manager/catalogue", test_catalogue);
  g_test_add_func ("/model-manager/download", test_download);
  g_test_add_func ("/model-manager/gated", test_gated);
  g_test_add_func ("/model-manager/damaged", test_damaged);
  g_test_add_func ("/model-manager/no-space", test_no_space);
  g_test_add_func ("/model-manager/import", test_import);
  status = g_test_run ();

  gtk_window_destroy (GTK_WINDOW (manager));
  g_clear_object (&model_index);
  g_clear_object (&tokens);
  loopback_hub_free (hub);
  scratch_dir_remove (models_dir);
  g_free (models_dir);

  return status;
}
