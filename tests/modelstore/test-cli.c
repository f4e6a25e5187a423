/* test-cli.c: `onestep-cli models ...` against a loopback hub, each run in a
 * subprocess so its output and exit status can be checked. */
#include <stdlib.h>

#include "loopback-hub.h"
#include "modelstore-cli.h"
#include "scratch-dir.h"

#define REPO "test/cli-svd"
#define GATED_REPO "test/cli-gated"
#define DINOV2_REPO "test/cli-dinov2"
#define WEIGHTS_PATH "unet/diffusion_pytorch_model.fp16.safetensors"
#define TOKEN "hf_cli_token"

/* Runs the CLI in this (sub)process with a loopback hub serving a tiny model,
 * a gated one and a feature network; extra_args follow the common options. */
static int
run_cli (const char *const *extra_args)
{
  const char *dir = g_getenv ("MODELSTORE_CLI_DIR");
  g_autoptr(GBytes) weights = g_bytes_new_static ("0123456789abcdef0123456789abcdef", 32);
  g_autoptr(GBytes) config = g_bytes_new_static ("{}\n", 3);
  g_autoptr(GBytes) dinov2_weights = g_bytes_new_static ("fedcba9876543210", 16);
  g_autofree char *catalogue_path = g_build_filename (dir, "catalogue.json", NULL);
  g_autofree char *models_dir = g_build_filename (dir, "models", NULL);
  g_autofree char *catalogue = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  LoopbackHub *hub = loopback_hub_new ();
  int status;

  loopback_hub_add_file (hub, REPO, "model_index.json", config, FALSE);
  loopback_hub_add_file (hub, REPO, WEIGHTS_PATH, weights, TRUE);
  loopback_hub_add_file (hub, GATED_REPO, WEIGHTS_PATH, weights, TRUE);
  loopback_hub_set_gated (hub, GATED_REPO, TOKEN);
  loopback_hub_add_file (hub, DINOV2_REPO, "config.json", config, FALSE);
  loopback_hub_add_file (hub, DINOV2_REPO, "model.safetensors", dinov2_weights, TRUE);
  catalogue = g_strdup_printf (
    "{\"models\": ["
    " {\"id\": \"tiny\", \"name\": \"Tiny\", \"repository\": \"" REPO "\", \"revision\": \"main\","
    "  \"licence\": \"test-licence\", \"files\": [{\"path\": \"model_index.json\", \"size\": 3},"
    "  {\"path\": \"" WEIGHTS_PATH "\", \"size\": 32}]},"
    " {\"id\": \"locked\", \"name\": \"Locked\", \"repository\": \"" GATED_REPO "\", \"revision\": \"main\","
    "  \"licence\": \"test-licence\", \"gated\": true, \"files\": [{\"path\": \"" WEIGHTS_PATH "\", \"size\": 32}]},"
    " {\"id\": \"dinov2-small\", \"name\": \"DINOv2\", \"kind\": \"feature-network\", \"repository\": \"" DINOV2_REPO "\","
    "  \"revision\": \"main\", \"licence\": \"apache-2.0\", \"files\": [{\"path\": \"config.json\", \"size\": 548},"
    "  {\"path\": \"model.safetensors\", \"size\": 88279664}]}"
    "]}");
  g_assert_true (g_file_set_contents (catalogue_path, catalogue, -1, NULL));

  g_ptr_array_add (argv, "models");
  g_ptr_array_add (argv, "--models-dir");
  g_ptr_array_add (argv, models_dir);
  g_ptr_array_add (argv, "--catalogue");
  g_ptr_array_add (argv, catalogue_path);
  g_ptr_array_add (argv, "--hub-url");
  g_ptr_array_add (argv, (char *) loopback_hub_get_url (hub));
  for (guint i = 0; extra_args[i]; i++)
    g_ptr_array_add (argv, (char *) extra_args[i]);
  g_ptr_array_add (argv, NULL);

  status = onestep_modelstore_cli_run (argv->len - 1, (char **) argv->pdata);
  loopback_hub_free (hub);
  return status;
}

/* Defines the body of a child test; run directly (not as a subprocess) it skips. */
#define CLI_TEST(func_name, ...) \
  static void func_name##_child (void) { \
    const char *args[] = { __VA_ARGS__, NULL }; \
    if (!g_test_subprocess ()) { g_test_skip ("runs only as a subprocess"); return; } \
    exit (run_cli (args)); \
  }

static void
trap (const char *child_path)
{
  g_test_trap_subprocess (child_path, 0, G_TEST_SUBPROCESS_DEFAULT);
}

CLI_TEST (list, "list")
CLI_TEST (download_tiny, "download", "tiny")
CLI_TEST (download_locked, "download", "locked")
CLI_TEST (download_dinov2, "download", "dinov2-small")
CLI_TEST (download_locked_token, "--token", TOKEN, "download", "locked")
CLI_TEST (download_unknown, "download", "nothing")
CLI_TEST (import_tiny, "--id", "tiny-import", "import", TINY_MODEL_DIR)
CLI_TEST (no_action, NULL)
CLI_TEST (download_without_name, "download")

static void
test_list_then_download (void)
{
  trap ("/modelstore/cli/child/list");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*tiny*Tiny*not installed, licence test-licence*");
  g_test_trap_assert_stdout ("*locked*gated*accept the licence on http://127.0.0.1:*/" GATED_REPO "*");
  g_test_trap_assert_stdout ("*Installed models in*(none)*");

  trap ("/modelstore/cli/child/download_tiny");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*tiny is installed in*/models/tiny*");
  g_test_trap_assert_stderr ("*100%*");

  trap ("/modelstore/cli/child/list");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*tiny*installed, licence*tiny*Tiny (diffusers, downloaded)*");
}

/* DINOv2 is listed with its kind, and its download says where training takes it. */
static void
test_feature_network (void)
{
  trap ("/modelstore/cli/child/list");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*tiny*Tiny*image-to-video, *");
  /* g_format_size's no-break space turns into "?" in the C locale. */
  g_test_trap_assert_stdout ("*dinov2-small*DINOv2*feature-network, 88.3*MB, *licence apache-2.0*");

  trap ("/modelstore/cli/child/download_dinov2");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*dinov2-small is installed in*/models/dinov2-small*"
                             "train osv --dinov2 */models/dinov2-small\n*");

  trap ("/modelstore/cli/child/list");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*dinov2-small*DINOv2 (feature-network, downloaded)*");
}

static void
test_gated (void)
{
  trap ("/modelstore/cli/child/download_locked");
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*HTTP 401*licence on the model page*");

  trap ("/modelstore/cli/child/download_locked_token");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*locked is installed*");
}

static void
test_import (void)
{
  trap ("/modelstore/cli/child/import_tiny");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*Checking*as a diffusers model*Added tiny-import*");
}

static void
test_usage (void)
{
  trap ("/modelstore/cli/child/no_action");
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*list | download NAME | import PATH*");

  trap ("/modelstore/cli/child/download_without_name");
  g_test_trap_assert_failed ();

  trap ("/modelstore/cli/child/download_unknown");
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*No model named nothing*");
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *dir = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  /* The children share one scratch folder, so a download is seen by the next list.
   * A wrong HF_TOKEN keeps the CLI away from the keyring; the loopback hub
   * ignores tokens for ungated repositories. */
  if (!g_test_subprocess ())
    {
      dir = g_dir_make_tmp ("onestep-cli-XXXXXX", NULL);
      g_setenv ("MODELSTORE_CLI_DIR", dir, TRUE);
      g_setenv ("HF_TOKEN", "hf_not_the_right_one", TRUE);
    }

  g_test_add_func ("/modelstore/cli/list-then-download", test_list_then_download);
  g_test_add_func ("/modelstore/cli/feature-network", test_feature_network);
  g_test_add_func ("/modelstore/cli/gated", test_gated);
  g_test_add_func ("/modelstore/cli/import", test_import);
  g_test_add_func ("/modelstore/cli/usage", test_usage);
  g_test_add_func ("/modelstore/cli/child/list", list_child);
  g_test_add_func ("/modelstore/cli/child/download_tiny", download_tiny_child);
  g_test_add_func ("/modelstore/cli/child/download_locked", download_locked_child);
  g_test_add_func ("/modelstore/cli/child/download_dinov2", download_dinov2_child);
  g_test_add_func ("/modelstore/cli/child/download_locked_token", download_locked_token_child);
  g_test_add_func ("/modelstore/cli/child/download_unknown", download_unknown_child);
  g_test_add_func ("/modelstore/cli/child/import_tiny", import_tiny_child);
  g_test_add_func ("/modelstore/cli/child/no_action", no_action_child);
  g_test_add_func ("/modelstore/cli/child/download_without_name", download_without_name_child);

  status = g_test_run ();
  if (dir != NULL)
    scratch_dir_remove (dir);
  return status;
}
