/* onestep-model-manager.c
 *
 * Lists the catalogue's video models (feature networks such as DINOv2 are for
 * training, downloaded with onestep-cli), each with what it is, its size,
 * licence and access, and its download: a button, then progress with speed and a Cancel
 * button, then Use once installed. The downloader keeps a stopped download's
 * bytes, so Download turns into Resume, also after a restart, and it checks
 * free disk space and every file's checksum itself; its errors are shown in
 * words on the model's row. A gated model that the hub refuses asks for a
 * Hugging Face token, which goes to the token provider (the keyring in the
 * app) before the download is tried again. Above the catalogue are the
 * installed video models, with Use and Remove, and the import of a folder or file,
 * which the engine validates.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-model-importer.h"
#include "onestep-model-manager.h"
#include "onestep-modelstore-error.h"

typedef struct
{
  OnestepModelManager *self;
  OnestepCatalogModel *model;
  AdwActionRow        *row;
  /* "download", "progress" or "installed" */
  GtkStack            *actions;
  GtkButton           *download_button;
  GtkProgressBar      *progress_bar;
  /* The running download, or NULL. */
  GCancellable        *cancellable;
  char                *status;
  /* Bytes done at speed_time, for the speed shown. */
  gint64               speed_time;
  guint64              speed_bytes;
  double               speed;
} CatalogueRow;

struct _OnestepModelManager
{
  AdwPreferencesWindow    parent_instance;

  AdwPreferencesGroup    *installed_group;
  AdwPreferencesGroup    *catalogue_group;

  OnestepModelCatalog    *catalog;
  OnestepModelIndex      *index;
  OnestepModelDownloader *downloader;
  OnestepTokenProvider   *tokens;
  OnestepModelImporter   *importer;
  /* Cancelled when the window goes: imports and storing a token. */
  GCancellable           *cancellable;
  /* catalogue id -> CatalogueRow */
  GHashTable             *rows;
  /* The rows of the installed group, replaced on each refresh. */
  GPtrArray              *installed_rows;
  gboolean                importing;
};

enum {
  MODEL_CHOSEN,
  MODELS_CHANGED,
  N_SIGNALS
};

G_DEFINE_FINAL_TYPE (OnestepModelManager, onestep_model_manager, ADW_TYPE_PREFERENCES_WINDOW)

static guint signals[N_SIGNALS];

static void start_download (CatalogueRow *row);

static void
catalogue_row_free (CatalogueRow *row)
{
  g_clear_object (&row->model);
  g_clear_object (&row->cancellable);
  g_free (row->status);
  g_free (row);
}

static gboolean
onestep_model_manager_is_closed (OnestepModelManager *self)
{
  return g_cancellable_is_cancelled (self->cancellable);
}

static char *
describe_catalogue_model (OnestepCatalogModel *model)
{
  g_autofree char *size = g_format_size (onestep_catalog_model_get_total_size (model));
  const char *what;
  const char *access;

  if (onestep_catalog_model_get_base_id (model) != NULL)
    what = _("A consistency-distilled UNet with its base model’s other parts: sharp clips in "
             "a few steps with the consistency sampler");
  else
    what = _("Stable Video Diffusion: the Euler sampler, about 25 steps for full quality");

  if (onestep_catalog_model_get_gated (model))
    access = _("gated: needs a Hugging Face token");
  else
    access = _("free to download");

  /* Translators: what the model is, then "<size> · licence <name> · <access>" */
  return g_strdup_printf (_("%s\n%s · licence %s · %s"), what, size,
                          onestep_catalog_model_get_licence (model), access);
}

/* The row's description, its status below, and the actions that fit. */
static void
catalogue_row_update (CatalogueRow *row)
{
  OnestepModelManager *self = row->self;
  g_autoptr(OnestepInstalledModel) installed =
    onestep_model_index_lookup (self->index, onestep_catalog_model_get_id (row->model));
  g_autofree char *description = describe_catalogue_model (row->model);
  g_autofree char *subtitle = NULL;
  gboolean partial = onestep_model_downloader_has_partial (self->downloader, row->model);

  if (row->cancellable != NULL)
    gtk_stack_set_visible_child_name (row->actions, "progress");
  else if (installed != NULL)
    gtk_stack_set_visible_child_name (row->actions, "installed");
  else
    gtk_stack_set_visible_child_name (row->actions, "download");

  gtk_button_set_label (row->download_button, partial ? _("_Resume") : _("_Download"));
  if (row->cancellable == NULL && installed == NULL && partial && row->status == NULL)
    row->status = g_strdup (_("Partly downloaded: Resume goes on where it stopped"));

  subtitle = row->status != NULL ? g_strconcat (description, "\n", row->status, NULL)
                                 : g_steal_pointer (&description);
  adw_action_row_set_subtitle (row->row, subtitle);
}

static void
catalogue_row_set_status (CatalogueRow *row,
                          const char   *status)
{
  g_free (row->status);
  row->status = g_strdup (status);
  catalogue_row_update (row);
}

static const char *
describe_download_error (const GError *error)
{
  if (error->domain == ONESTEP_MODELSTORE_ERROR)
    {
      switch ((OnestepModelstoreError)error->code)
        {
        case ONESTEP_MODELSTORE_ERROR_NO_SPACE:
          return _("Not enough free disk space for this model. Free some space, or choose "
                   "another models folder in the preferences.");
        case ONESTEP_MODELSTORE_ERROR_CHECKSUM:
          return _("The downloaded data is damaged: its checksum does not match the model’s. "
                   "The damaged file was removed; try again.");
        case ONESTEP_MODELSTORE_ERROR_NETWORK:
        case ONESTEP_MODELSTORE_ERROR_INTERRUPTED:
          return _("The connection to the hub broke off. Resume goes on where it stopped.");
        case ONESTEP_MODELSTORE_ERROR_GATED:
          return _("The hub refused the download: accept the licence on the model page and "
                   "check the Hugging Face token.");
        case ONESTEP_MODELSTORE_ERROR_NOT_FOUND:
        case ONESTEP_MODELSTORE_ERROR_HTTP:
          return _("The hub does not offer this model as listed. Try again later.");
        default:
          break;
        }
    }

  return _("The download failed.");
}

static void
on_token_stored (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  CatalogueRow *row = user_data;
  g_autoptr(OnestepModelManager) self = row->self;
  g_autoptr(GError) error = NULL;

  if (!onestep_token_provider_store_token_finish (ONESTEP_TOKEN_PROVIDER (object), result, &error))
    {
      if (!onestep_model_manager_is_closed (self))
        {
          g_autofree char *status = g_strdup_printf (_("The token could not be kept: %s"),
                                                     error->message);

          catalogue_row_set_status (row, status);
        }
      return;
    }

  if (!onestep_model_manager_is_closed (self))
    start_download (row);
}

static void
on_token_response (AdwMessageDialog *dialog,
                   const char       *response,
                   CatalogueRow     *row)
{
  GtkEditable *entry = GTK_EDITABLE (adw_message_dialog_get_extra_child (dialog));
  g_autofree char *token = g_strstrip (g_strdup (gtk_editable_get_text (entry)));

  if (g_str_equal (response, "save") && token[0] != '\0')
    {
      catalogue_row_set_status (row, _("Keeping the token…"));
      onestep_token_provider_store_token_async (row->self->tokens, token, row->self->cancellable,
                                                on_token_stored, row);
      g_object_ref (row->self);
    }
  else
    catalogue_row_set_status (row, _("This model needs a Hugging Face token to download."));
}

/* The hub refused a gated model: asks for a token to keep and try again with. */
static void
ask_for_token (CatalogueRow *row)
{
  OnestepModelManager *self = row->self;
  g_autofree char *page = onestep_catalog_model_dup_page_url (
    row->model, onestep_model_downloader_get_base_url (self->downloader));
  g_autofree char *body = NULL;
  GtkWidget *dialog;
  GtkWidget *entry;

  body = g_strdup_printf (_("“%s” is gated. Log in to Hugging Face, accept the model’s licence "
                            "on %s, create an access token in your account’s settings and paste "
                            "it here. It is kept in your keyring."),
                          onestep_catalog_model_get_name (row->model), page);
  dialog = adw_message_dialog_new (GTK_WINDOW (self), _("Hugging Face Token"), body);
  /* Not a GtkPasswordEntry: GTK 4.8's notifies one already finalized when
   * the dialog goes with its parent window. */
  entry = gtk_entry_new ();
  gtk_entry_set_visibility (GTK_ENTRY (entry), FALSE);
  gtk_entry_set_input_purpose (GTK_ENTRY (entry), GTK_INPUT_PURPOSE_PASSWORD);
  gtk_accessible_update_property (GTK_ACCESSIBLE (entry), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Hugging Face access token"), -1);
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), entry);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "save", _("_Keep and Download"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "save",
                                              ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "save");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_signal_connect (dialog, "response", G_CALLBACK (on_token_response), row);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void refresh_installed (OnestepModelManager *self);

static void
on_download_done (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  CatalogueRow *row = user_data;
  g_autoptr(OnestepModelManager) self = row->self;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(GError) error = NULL;

  installed = onestep_model_downloader_download_finish (ONESTEP_MODEL_DOWNLOADER (object), result,
                                                        &error);
  g_clear_object (&row->cancellable);
  if (onestep_model_manager_is_closed (self))
    return;

  if (installed != NULL)
    {
      catalogue_row_set_status (row, _("Installed"));
      refresh_installed (self);
      g_signal_emit (self, signals[MODELS_CHANGED], 0);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    catalogue_row_set_status (row, _("Stopped: Resume goes on where it stopped"));
  else if (g_error_matches (error, ONESTEP_MODELSTORE_ERROR, ONESTEP_MODELSTORE_ERROR_GATED))
    {
      catalogue_row_set_status (row, describe_download_error (error));
      ask_for_token (row);
    }
  else
    {
      catalogue_row_set_status (row, describe_download_error (error));
      gtk_widget_set_tooltip_text (GTK_WIDGET (row->row), error->message);
    }
}

static void
start_download (CatalogueRow *row)
{
  if (row->cancellable != NULL)
    return;

  row->cancellable = g_cancellable_new ();
  row->speed_time = 0;
  row->speed = 0;
  gtk_progress_bar_set_fraction (row->progress_bar, 0);
  gtk_widget_set_tooltip_text (GTK_WIDGET (row->row), NULL);
  catalogue_row_set_status (row, _("Starting…"));
  onestep_model_downloader_download_async (row->self->downloader, row->model, row->cancellable,
                                           on_download_done, row);
  g_object_ref (row->self);
}

static void
on_progress (OnestepModelManager    *self,
             OnestepCatalogModel    *model,
             guint64                 done,
             guint64                 total)
{
  CatalogueRow *row = g_hash_table_lookup (self->rows, onestep_catalog_model_get_id (model));
  gint64 now = g_get_monotonic_time ();
  g_autofree char *done_text = NULL;
  g_autofree char *total_text = NULL;
  g_autofree char *status = NULL;

  if (row == NULL || row->cancellable == NULL)
    return;

  /* The speed over the last half second or more. */
  if (row->speed_time == 0 || done < row->speed_bytes)
    {
      row->speed_time = now;
      row->speed_bytes = done;
    }
  else if (now - row->speed_time >= G_USEC_PER_SEC / 2)
    {
      row->speed = (double)(done - row->speed_bytes) * G_USEC_PER_SEC / (now - row->speed_time);
      row->speed_time = now;
      row->speed_bytes = done;
    }

  gtk_progress_bar_set_fraction (row->progress_bar, total > 0 ? (double)done / total : 0);
  done_text = g_format_size (done);
  total_text = g_format_size (total);
  if (row->speed > 0)
    {
      g_autofree char *speed_text = g_format_size ((guint64)row->speed);

      /* Translators: download progress, e.g. "1.2 GB of 3.1 GB · 25.0 MB/s" */
      status = g_strdup_printf (_("%s of %s · %s/s"), done_text, total_text, speed_text);
    }
  else
    /* Translators: download progress, e.g. "1.2 GB of 3.1 GB" */
    status = g_strdup_printf (_("%s of %s"), done_text, total_text);
  catalogue_row_set_status (row, status);
}

static CatalogueRow *
lookup_row (OnestepModelManager *self,
            const char          *id)
{
  CatalogueRow *row = g_hash_table_lookup (self->rows, id);

  if (row == NULL)
    g_critical ("No model %s in the catalogue", id);
  return row;
}

/* What the row's Download (or Resume) button does. */
void
onestep_model_manager_download (OnestepModelManager *self,
                                const char          *id)
{
  CatalogueRow *row;

  g_return_if_fail (ONESTEP_IS_MODEL_MANAGER (self));

  if ((row = lookup_row (self, id)) != NULL)
    start_download (row);
}

/* What the row's Cancel button does: the bytes so far stay for Resume. */
void
onestep_model_manager_cancel_download (OnestepModelManager *self,
                                       const char          *id)
{
  CatalogueRow *row;

  g_return_if_fail (ONESTEP_IS_MODEL_MANAGER (self));

  if ((row = lookup_row (self, id)) != NULL && row->cancellable != NULL)
    g_cancellable_cancel (row->cancellable);
}

gboolean
onestep_model_manager_get_downloading (OnestepModelManager *self,
                                       const char          *id)
{
  CatalogueRow *row;

  g_return_val_if_fail (ONESTEP_IS_MODEL_MANAGER (self), FALSE);

  row = lookup_row (self, id);
  return row != NULL && row->cancellable != NULL;
}

/* The status line under the model's description, as shown; NULL when none. */
const char *
onestep_model_manager_get_status (OnestepModelManager *self,
                                  const char          *id)
{
  CatalogueRow *row;

  g_return_val_if_fail (ONESTEP_IS_MODEL_MANAGER (self), NULL);

  row = lookup_row (self, id);
  return row != NULL ? row->status : NULL;
}

static void
on_download_clicked (GtkButton *button,
                     CatalogueRow *row)
{
  start_download (row);
}

static void
on_cancel_clicked (GtkButton    *button,
                   CatalogueRow *row)
{
  onestep_model_manager_cancel_download (row->self, onestep_catalog_model_get_id (row->model));
}

static void
on_use_clicked (GtkButton           *button,
                OnestepModelManager *self)
{
  OnestepInstalledModel *model = g_object_get_data (G_OBJECT (button), "installed-model");

  g_signal_emit (self, signals[MODEL_CHOSEN], 0, model);
  gtk_window_close (GTK_WINDOW (self));
}

static void
on_use_catalogue_model_clicked (GtkButton    *button,
                                CatalogueRow *row)
{
  g_autoptr(OnestepInstalledModel) installed =
    onestep_model_index_lookup (row->self->index, onestep_catalog_model_get_id (row->model));

  if (installed == NULL)
    return;
  g_signal_emit (row->self, signals[MODEL_CHOSEN], 0, installed);
  gtk_window_close (GTK_WINDOW (row->self));
}

static GtkWidget *
new_use_button (void)
{
  GtkWidget *button = gtk_button_new_with_mnemonic (_("_Use"));

  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (button, "suggested-action");
  return button;
}

static void
add_catalogue_row (OnestepModelManager *self,
                   OnestepCatalogModel *model)
{
  CatalogueRow *row = g_new0 (CatalogueRow, 1);
  GtkWidget *progress_box;
  GtkWidget *cancel;
  GtkWidget *use;

  row->self = self;
  row->model = g_object_ref (model);
  row->row = ADW_ACTION_ROW (adw_action_row_new ());
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row->row),
                                 onestep_catalog_model_get_name (model));
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row->row), FALSE);
  adw_action_row_set_subtitle_lines (row->row, 4);

  row->actions = GTK_STACK (gtk_stack_new ());
  gtk_stack_set_hhomogeneous (row->actions, FALSE);
  gtk_widget_set_valign (GTK_WIDGET (row->actions), GTK_ALIGN_CENTER);

  row->download_button = GTK_BUTTON (gtk_button_new_with_mnemonic (_("_Download")));
  g_signal_connect (row->download_button, "clicked", G_CALLBACK (on_download_clicked), row);
  gtk_stack_add_named (row->actions, GTK_WIDGET (row->download_button), "download");

  progress_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  row->progress_bar = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  gtk_widget_set_size_request (GTK_WIDGET (row->progress_bar), 120, -1);
  gtk_widget_set_valign (GTK_WIDGET (row->progress_bar), GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (progress_box), GTK_WIDGET (row->progress_bar));
  cancel = gtk_button_new_from_icon_name ("process-stop-symbolic");
  gtk_widget_set_tooltip_text (cancel, _("Stop the Download"));
  gtk_widget_add_css_class (cancel, "flat");
  g_signal_connect (cancel, "clicked", G_CALLBACK (on_cancel_clicked), row);
  gtk_box_append (GTK_BOX (progress_box), cancel);
  gtk_stack_add_named (row->actions, progress_box, "progress");

  use = new_use_button ();
  g_signal_connect (use, "clicked", G_CALLBACK (on_use_catalogue_model_clicked), row);
  gtk_stack_add_named (row->actions, use, "installed");

  adw_action_row_add_suffix (row->row, GTK_WIDGET (row->actions));
  adw_preferences_group_add (self->catalogue_group, GTK_WIDGET (row->row));
  g_hash_table_insert (self->rows, g_strdup (onestep_catalog_model_get_id (model)), row);
  catalogue_row_update (row);
}

static const char *
describe_installed_kind (OnestepInstalledKind kind)
{
  switch (kind)
    {
    case ONESTEP_INSTALLED_KIND_SINGLE_FILE:
      return _("Checkpoint file");
    case ONESTEP_INSTALLED_KIND_UNET:
      return _("UNet file, used with its base model");
    case ONESTEP_INSTALLED_KIND_LORA:
      return _("LoRA, merged into a base model");
    case ONESTEP_INSTALLED_KIND_DIFFUSERS:
    default:
      return _("Model folder");
    }
}

static void
on_remove_clicked (GtkButton           *button,
                   OnestepModelManager *self)
{
  OnestepInstalledModel *model = g_object_get_data (G_OBJECT (button), "installed-model");
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;

  if (!onestep_model_index_remove (self->index, onestep_installed_model_get_id (model), &error))
    message = g_strdup_printf (_("“%s” could not be removed: %s"),
                               onestep_installed_model_get_name (model), error->message);
  else
    message = g_strdup_printf (_("Removed “%s” from the list; its files are still in %s"),
                               onestep_installed_model_get_name (model),
                               onestep_installed_model_get_path (model));

  adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self), adw_toast_new (message));
  refresh_installed (self);
  g_signal_emit (self, signals[MODELS_CHANGED], 0);
}

static void
add_installed_row (OnestepModelManager   *self,
                   OnestepInstalledModel *model)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *remove;
  g_autofree char *subtitle = NULL;

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), onestep_installed_model_get_name (model));
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  /* Translators: "<kind> · <downloaded or imported>\n<path>" */
  subtitle = g_strdup_printf (_("%s · %s\n%s"),
                              describe_installed_kind (onestep_installed_model_get_kind (model)),
                              onestep_installed_model_get_source (model) == ONESTEP_INSTALLED_SOURCE_DOWNLOAD
                                ? _("downloaded") : _("imported"),
                              onestep_installed_model_get_path (model));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 3);

  if (onestep_installed_model_get_kind (model) != ONESTEP_INSTALLED_KIND_LORA)
    {
      GtkWidget *use = new_use_button ();

      g_object_set_data_full (G_OBJECT (use), "installed-model", g_object_ref (model),
                              g_object_unref);
      g_signal_connect_object (use, "clicked", G_CALLBACK (on_use_clicked), self, 0);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), use);
    }

  remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
  gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (remove, "flat");
  gtk_widget_set_tooltip_text (remove, _("Remove from the List"));
  g_object_set_data_full (G_OBJECT (remove), "installed-model", g_object_ref (model),
                          g_object_unref);
  g_signal_connect_object (remove, "clicked", G_CALLBACK (on_remove_clicked), self, 0);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), remove);

  adw_preferences_group_add (self->installed_group, row);
  g_ptr_array_add (self->installed_rows, row);
}

/* Lists the index again, and the catalogue rows' installed state with it. */
static void
refresh_installed (OnestepModelManager *self)
{
  g_autoptr(GPtrArray) models = onestep_model_index_dup_image_to_video_models (self->index);
  GHashTableIter iter;
  gpointer row;

  for (guint i = 0; i < self->installed_rows->len; i++)
    adw_preferences_group_remove (self->installed_group, g_ptr_array_index (self->installed_rows, i));
  g_ptr_array_set_size (self->installed_rows, 0);

  if (models->len == 0)
    {
      GtkWidget *empty = adw_action_row_new ();

      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (empty), _("No models yet"));
      adw_action_row_set_subtitle (ADW_ACTION_ROW (empty),
                                   _("Download one below, or import a model folder or file you "
                                     "already have."));
      adw_preferences_group_add (self->installed_group, empty);
      g_ptr_array_add (self->installed_rows, empty);
    }
  for (guint i = 0; i < models->len; i++)
    add_installed_row (self, g_ptr_array_index (models, i));

  g_hash_table_iter_init (&iter, self->rows);
  while (g_hash_table_iter_next (&iter, NULL, &row))
    catalogue_row_update (row);
}

static void
on_imported (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(OnestepModelManager) self = user_data;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *status = NULL;

  installed = onestep_model_importer_import_finish (ONESTEP_MODEL_IMPORTER (object), result, &error);
  self->importing = FALSE;
  if (onestep_model_manager_is_closed (self))
    return;

  if (installed == NULL)
    status = g_strdup_printf (_("This is not a model Onestep can use: %s"), error->message);
  else
    status = g_strdup_printf (_("Added “%s”."), onestep_installed_model_get_name (installed));
  adw_preferences_group_set_description (self->installed_group, status);

  if (installed != NULL)
    {
      refresh_installed (self);
      g_signal_emit (self, signals[MODELS_CHANGED], 0);
    }
}

/* Adds a model folder or file after the engine has validated it. */
void
onestep_model_manager_import (OnestepModelManager *self,
                              const char          *path)
{
  g_autofree char *name = NULL;
  g_autofree char *status = NULL;

  g_return_if_fail (ONESTEP_IS_MODEL_MANAGER (self));
  g_return_if_fail (path != NULL);

  name = g_path_get_basename (path);
  status = g_strdup_printf (_("Checking “%s”…"), name);
  adw_preferences_group_set_description (self->installed_group, status);
  self->importing = TRUE;
  onestep_model_importer_import_async (self->importer, path,
                                       onestep_model_importer_guess_kind (path, NULL),
                                       NULL, NULL, NULL, self->cancellable, on_imported,
                                       g_object_ref (self));
}

gboolean
onestep_model_manager_get_importing (OnestepModelManager *self)
{
  g_return_val_if_fail (ONESTEP_IS_MODEL_MANAGER (self), FALSE);
  return self->importing;
}

/* What the last import said, as shown above the installed models. */
const char *
onestep_model_manager_get_import_status (OnestepModelManager *self)
{
  g_return_val_if_fail (ONESTEP_IS_MODEL_MANAGER (self), NULL);
  return adw_preferences_group_get_description (self->installed_group);
}

static void
on_import_chosen (GtkNativeDialog     *chooser,
                  int                  response,
                  OnestepModelManager *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser));
      g_autofree char *path = g_file_get_path (file);

      if (path != NULL)
        onestep_model_manager_import (self, path);
    }

  gtk_native_dialog_destroy (chooser);
  g_object_unref (chooser);
}

static void
choose_import (OnestepModelManager  *self,
               const char           *title,
               GtkFileChooserAction  action)
{
  GtkFileChooserNative *chooser;

  chooser = gtk_file_chooser_native_new (title, GTK_WINDOW (self), action, _("_Import"),
                                         _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect_object (chooser, "response", G_CALLBACK (on_import_chosen), self, 0);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
on_import_folder_clicked (OnestepModelManager *self)
{
  choose_import (self, _("Import a Model Folder"), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER);
}

static void
on_import_file_clicked (OnestepModelManager *self)
{
  choose_import (self, _("Import a Model File"), GTK_FILE_CHOOSER_ACTION_OPEN);
}

static void
onestep_model_manager_dispose (GObject *object)
{
  OnestepModelManager *self = ONESTEP_MODEL_MANAGER (object);

  g_cancellable_cancel (self->cancellable);
  if (self->rows != NULL)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->rows);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          CatalogueRow *row = value;

          if (row->cancellable != NULL)
            g_cancellable_cancel (row->cancellable);
        }
    }
  if (self->downloader != NULL)
    g_signal_handlers_disconnect_by_data (self->downloader, self);

  G_OBJECT_CLASS (onestep_model_manager_parent_class)->dispose (object);
}

/* Downloads and imports hold a reference until they end, so the rows they
 * update live until then. */
static void
onestep_model_manager_finalize (GObject *object)
{
  OnestepModelManager *self = ONESTEP_MODEL_MANAGER (object);

  g_clear_pointer (&self->rows, g_hash_table_unref);
  g_clear_pointer (&self->installed_rows, g_ptr_array_unref);
  g_clear_object (&self->catalog);
  g_clear_object (&self->index);
  g_clear_object (&self->downloader);
  g_clear_object (&self->tokens);
  g_clear_object (&self->importer);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (onestep_model_manager_parent_class)->finalize (object);
}

static void
onestep_model_manager_class_init (OnestepModelManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = onestep_model_manager_dispose;
  object_class->finalize = onestep_model_manager_finalize;

  /* The user chose an installed model to work with; the window then closes. */
  signals[MODEL_CHOSEN] = g_signal_new ("model-chosen", G_TYPE_FROM_CLASS (klass),
                                        G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                        1, ONESTEP_TYPE_INSTALLED_MODEL);
  /* A model was downloaded, imported or removed. */
  signals[MODELS_CHANGED] = g_signal_new ("models-changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_template_from_resource (widget_class, RESOURCE_BASE_PATH "/ui/onestep-model-manager.ui");
  gtk_widget_class_bind_template_child (widget_class, OnestepModelManager, installed_group);
  gtk_widget_class_bind_template_child (widget_class, OnestepModelManager, catalogue_group);
  gtk_widget_class_bind_template_callback (widget_class, on_import_folder_clicked);
  gtk_widget_class_bind_template_callback (widget_class, on_import_file_clicked);
}

static void
onestep_model_manager_init (OnestepModelManager *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->cancellable = g_cancellable_new ();
  self->rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)catalogue_row_free);
  self->installed_rows = g_ptr_array_new ();
}

OnestepModelManager *
onestep_model_manager_new (GtkWindow              *parent,
                           OnestepModelCatalog    *catalog,
                           OnestepModelIndex      *index,
                           OnestepModelDownloader *downloader,
                           OnestepTokenProvider   *tokens)
{
  OnestepModelManager *self;
  guint n_models;

  g_return_val_if_fail (ONESTEP_IS_MODEL_CATALOG (catalog), NULL);
  g_return_val_if_fail (ONESTEP_IS_MODEL_INDEX (index), NULL);
  g_return_val_if_fail (ONESTEP_IS_MODEL_DOWNLOADER (downloader), NULL);
  g_return_val_if_fail (ONESTEP_IS_TOKEN_PROVIDER (tokens), NULL);

  self = g_object_new (ONESTEP_TYPE_MODEL_MANAGER, "transient-for", parent, NULL);
  self->catalog = g_object_ref (catalog);
  self->index = g_object_ref (index);
  self->downloader = g_object_ref (downloader);
  self->tokens = g_object_ref (tokens);
  self->importer = onestep_model_importer_new (index);
  g_signal_connect_object (downloader, "progress", G_CALLBACK (on_progress), self,
                           G_CONNECT_SWAPPED);

  n_models = g_list_model_get_n_items (G_LIST_MODEL (catalog));
  for (guint i = 0; i < n_models; i++)
    {
      g_autoptr(OnestepCatalogModel) model = g_list_model_get_item (G_LIST_MODEL (catalog), i);

      /* Feature networks (DINOv2) are for training: `onestep-cli models download`. */
      if (onestep_catalog_model_get_kind (model) == ONESTEP_CATALOG_KIND_IMAGE_TO_VIDEO)
        add_catalogue_row (self, model);
    }
  refresh_installed (self);

  return self;
}
