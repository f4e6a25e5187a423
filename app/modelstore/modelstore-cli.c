/* modelstore-cli.c */
#include <glib-unix.h>
#include <signal.h>

#include "modelstore-cli.h"
#include "onestep-memory-token-provider.h"
#include "onestep-model-catalog.h"
#include "onestep-model-downloader.h"
#include "onestep-model-importer.h"
#include "onestep-model-index.h"
#include "onestep-modelstore-error.h"
#include "onestep-secret-token-provider.h"

#define EXIT_USAGE 2

typedef struct {
  char         *models_dir;
  char         *hub_url;
  char         *catalogue_file;
  char         *token;
  gboolean      save_token;
  char         *base;
  gboolean      lora;
  char         *id;
  char         *name;

  GMainLoop    *loop;
  GCancellable *cancellable;
  GAsyncResult *result;
  int           last_percent;
} CliState;

static void
cli_state_clear (CliState *state)
{
  g_free (state->models_dir);
  g_free (state->hub_url);
  g_free (state->catalogue_file);
  g_free (state->token);
  g_free (state->base);
  g_free (state->id);
  g_free (state->name);
  g_clear_pointer (&state->loop, g_main_loop_unref);
  g_clear_object (&state->cancellable);
  g_clear_object (&state->result);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CliState, cli_state_clear)

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CliState *state = user_data;

  state->result = g_object_ref (result);
  g_main_loop_quit (state->loop);
}

/* Runs the main loop until the operation started with store_result ends. */
static GAsyncResult *
wait_for_result (CliState *state)
{
  state->loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (state->loop);
  return state->result;
}

static gboolean
on_interrupt (gpointer user_data)
{
  CliState *state = user_data;

  g_printerr ("\nStopping...\n");
  g_cancellable_cancel (state->cancellable);
  return G_SOURCE_CONTINUE;
}

static OnestepModelCatalog *
load_catalogue (CliState  *state,
                GError   **error)
{
  g_autofree char *json = NULL;
  gsize length;

  if (state->catalogue_file == NULL)
    return onestep_model_catalog_new_default (error);
  if (!g_file_get_contents (state->catalogue_file, &json, &length, error))
    return NULL;
  return onestep_model_catalog_new_from_data (json, length, error);
}

static OnestepTokenProvider *
token_provider (CliState  *state,
                GError   **error)
{
  const char *env_token = g_getenv ("HF_TOKEN");
  g_autoptr(OnestepTokenProvider) keyring = NULL;

  if (state->token == NULL)
    {
      if (env_token != NULL && env_token[0] != '\0')
        return onestep_memory_token_provider_new (env_token);
      return onestep_secret_token_provider_new ();
    }
  if (state->save_token)
    {
      keyring = onestep_secret_token_provider_new ();
      if (!onestep_token_provider_store_token (keyring, state->token, NULL, error))
        return NULL;
      g_print ("The access token is saved in the keyring.\n");
    }
  return onestep_memory_token_provider_new (state->token);
}

static int
run_list (OnestepModelCatalog     *catalog,
          OnestepModelIndex       *index,
          OnestepModelDownloader  *downloader)
{
  g_autoptr(GPtrArray) installed = onestep_model_index_dup_models (index);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (catalog));

  g_print ("Models to download from %s:\n", onestep_model_downloader_get_base_url (downloader));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(OnestepCatalogModel) model = g_list_model_get_item (G_LIST_MODEL (catalog), i);
      g_autoptr(OnestepInstalledModel) entry = onestep_model_index_lookup (index, onestep_catalog_model_get_id (model));
      g_autofree char *size = g_format_size (onestep_catalog_model_get_total_size (model));
      g_autofree char *page = onestep_catalog_model_dup_page_url (model, onestep_model_downloader_get_base_url (downloader));
      const char *status = entry != NULL ? "installed"
                           : onestep_model_downloader_has_partial (downloader, model) ? "partly downloaded"
                           : "not installed";

      g_print ("  %-20s %s\n", onestep_catalog_model_get_id (model), onestep_catalog_model_get_name (model));
      g_print ("  %-20s %s, %s, %s, licence %s%s\n", "",
               onestep_catalog_kind_to_string (onestep_catalog_model_get_kind (model)), size, status,
               onestep_catalog_model_get_licence (model),
               onestep_catalog_model_get_gated (model) ? ", gated" : "");
      if (onestep_catalog_model_get_gated (model) && entry == NULL)
        g_print ("  %-20s accept the licence on %s and pass --token (once, with --save-token)\n",
                 "", page);
    }

  g_print ("\nInstalled models in %s:\n", onestep_model_index_get_models_dir (index));
  if (installed->len == 0)
    g_print ("  (none)\n");
  for (guint i = 0; i < installed->len; i++)
    {
      OnestepInstalledModel *model = g_ptr_array_index (installed, i);

      g_print ("  %-20s %s (%s, %s)\n", onestep_installed_model_get_id (model),
               onestep_installed_model_get_name (model),
               onestep_installed_kind_to_string (onestep_installed_model_get_kind (model)),
               onestep_installed_model_get_source (model) == ONESTEP_INSTALLED_SOURCE_DOWNLOAD
                 ? "downloaded" : "imported");
      g_print ("  %-20s %s\n", "", onestep_installed_model_get_path (model));
      if (onestep_installed_model_get_unet_file (model) != NULL)
        g_print ("  %-20s UNet: %s\n", "", onestep_installed_model_get_unet_file (model));
    }
  return EXIT_SUCCESS;
}

static void
on_progress (OnestepModelDownloader *downloader,
             OnestepCatalogModel    *model,
             guint64                 done,
             guint64                 total,
             CliState               *state)
{
  int percent = total > 0 ? (int) (done * 100 / total) : 0;

  if (percent == state->last_percent)
    return;
  state->last_percent = percent;
  {
    g_autofree char *done_text = g_format_size (done);
    g_autofree char *total_text = g_format_size (total);

    g_printerr ("\r%s: %3d%% (%s of %s)", onestep_catalog_model_get_id (model), percent,
                done_text, total_text);
  }
}

static int
run_download (CliState               *state,
              OnestepModelCatalog    *catalog,
              OnestepModelDownloader *downloader,
              const char             *name)
{
  OnestepCatalogModel *model = onestep_model_catalog_lookup (catalog, name);
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(GError) error = NULL;
  guint sigint;

  if (model == NULL)
    {
      g_printerr ("No model named %s in the catalogue; `models list` shows them.\n", name);
      return EXIT_FAILURE;
    }

  state->last_percent = -1;
  g_signal_connect (downloader, "progress", G_CALLBACK (on_progress), state);
  sigint = g_unix_signal_add (SIGINT, on_interrupt, state);
  onestep_model_downloader_download_async (downloader, model, state->cancellable,
                                           store_result, state);
  installed = onestep_model_downloader_download_finish (downloader, wait_for_result (state), &error);
  g_source_remove (sigint);
  if (state->last_percent >= 0)
    g_printerr ("\n");

  if (installed == NULL)
    {
      g_printerr ("%s\n", error->message);
      return EXIT_FAILURE;
    }
  g_print ("%s is installed in %s\n", onestep_installed_model_get_id (installed),
           onestep_installed_model_get_path (installed));
  /* A feature network is not for generating: say where it goes instead. */
  if (onestep_installed_model_get_kind (installed) == ONESTEP_INSTALLED_KIND_FEATURE_NETWORK)
    {
      g_print ("It is a feature network for training, not a model to generate with.\n");
      if (g_str_has_prefix (onestep_installed_model_get_id (installed), "dinov2"))
        g_print ("Pass it to OSV training: onestep-cli train osv --dinov2 %s\n",
                 onestep_installed_model_get_path (installed));
    }
  return EXIT_SUCCESS;
}

static int
run_import (CliState          *state,
            OnestepModelIndex *index,
            const char        *path)
{
  g_autoptr(OnestepModelImporter) importer = onestep_model_importer_new (index);
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(GError) error = NULL;
  OnestepInstalledKind kind = state->lora ? ONESTEP_INSTALLED_KIND_LORA
                                          : onestep_model_importer_guess_kind (path, state->base);

  g_print ("Checking %s as a %s model...\n", path, onestep_installed_kind_to_string (kind));
  onestep_model_importer_import_async (importer, path, kind, state->base, state->id, state->name,
                                       state->cancellable, store_result, state);
  installed = onestep_model_importer_import_finish (importer, wait_for_result (state), &error);
  if (installed == NULL)
    {
      g_printerr ("%s\n", error->message);
      return EXIT_FAILURE;
    }
  g_print ("Added %s (%s)\n", onestep_installed_model_get_id (installed),
           onestep_installed_model_get_path (installed));
  return EXIT_SUCCESS;
}

int
onestep_modelstore_cli_run (int    argc,
                            char **argv)
{
  g_auto(CliState) state = { 0 };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(OnestepModelCatalog) catalog = NULL;
  g_autoptr(OnestepModelIndex) index = NULL;
  g_autoptr(OnestepTokenProvider) tokens = NULL;
  g_autoptr(OnestepModelDownloader) downloader = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "models-dir", 0, 0, G_OPTION_ARG_FILENAME, &state.models_dir, "Models folder (default: the app's)", "DIR" },
    { "hub-url", 0, 0, G_OPTION_ARG_STRING, &state.hub_url, "Hugging Face hub address (default: $HF_ENDPOINT, then https://huggingface.co)", "URL" },
    { "catalogue", 0, 0, G_OPTION_ARG_FILENAME, &state.catalogue_file, "Use this catalogue instead of the built-in one", "FILE" },
    { "token", 0, 0, G_OPTION_ARG_STRING, &state.token, "Hugging Face access token for gated models (default: $HF_TOKEN, then the keyring)", "TOKEN" },
    { "save-token", 0, 0, G_OPTION_ARG_NONE, &state.save_token, "Remember --token in the keyring", NULL },
    { "base", 0, 0, G_OPTION_ARG_STRING, &state.base, "import: the base model of a UNet or LoRA file (an installed id or a path)", "MODEL" },
    { "lora", 0, 0, G_OPTION_ARG_NONE, &state.lora, "import: the file is a LoRA", NULL },
    { "id", 0, 0, G_OPTION_ARG_STRING, &state.id, "import: id in the index (default: from the file name)", "ID" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &state.name, "import: display name", "NAME" },
    { NULL }
  };

  context = g_option_context_new ("list | download NAME | import PATH");
  g_option_context_set_summary (context, "Lists, downloads and imports the models Onestep uses.");
  g_option_context_add_main_entries (context, entries, NULL);
  args = g_new0 (char *, argc + 1);
  for (int i = 0; i < argc; i++)
    args[i] = g_strdup (argv[i]);
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      g_printerr ("%s\n", error->message);
      return EXIT_USAGE;
    }

  {
    guint n_args = g_strv_length (args);
    const char *action = n_args > 1 ? args[1] : NULL;
    gboolean wants_operand = g_strcmp0 (action, "download") == 0 || g_strcmp0 (action, "import") == 0;

    if (action == NULL || (g_strcmp0 (action, "list") != 0 && !wants_operand) ||
        n_args != (wants_operand ? 3u : 2u))
      {
        g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

        g_printerr ("%s", help);
        return EXIT_USAGE;
      }

    if (state.models_dir == NULL)
      state.models_dir = onestep_model_index_dup_default_dir ();
    state.cancellable = g_cancellable_new ();
    if (!(catalog = load_catalogue (&state, &error)) ||
        !(index = onestep_model_index_new (state.models_dir, &error)) ||
        !(tokens = token_provider (&state, &error)))
      {
        g_printerr ("%s\n", error->message);
        return EXIT_FAILURE;
      }
    downloader = onestep_model_downloader_new (index, tokens);
    /* HF_ENDPOINT is how huggingface_hub users point at a mirror. */
    if (state.hub_url == NULL && g_getenv ("HF_ENDPOINT") != NULL && g_getenv ("HF_ENDPOINT")[0] != '\0')
      state.hub_url = g_strdup (g_getenv ("HF_ENDPOINT"));
    if (state.hub_url != NULL)
      onestep_model_downloader_set_base_url (downloader, state.hub_url);

    if (g_str_equal (action, "list"))
      return run_list (catalog, index, downloader);
    if (g_str_equal (action, "download"))
      return run_download (&state, catalog, downloader, args[2]);
    return run_import (&state, index, args[2]);
  }
}
