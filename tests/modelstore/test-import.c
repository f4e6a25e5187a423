/* test-import.c: imports are opened by the engine before they enter the index. */
#include <string.h>

#include <glib/gstdio.h>

#include "onestep-model-importer.h"
#include "onestep-modelstore-error.h"
#include "scratch-dir.h"

typedef struct {
  char                 *models_dir;
  char                 *scratch_dir;
  OnestepModelIndex    *index;
  OnestepModelImporter *importer;
} Fixture;

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->models_dir = g_dir_make_tmp ("onestep-import-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->scratch_dir = g_dir_make_tmp ("onestep-import-src-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->index = onestep_model_index_new (fixture->models_dir, &error);
  g_assert_no_error (error);
  fixture->importer = onestep_model_importer_new (fixture->index);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_clear_object (&fixture->importer);
  g_clear_object (&fixture->index);
  scratch_dir_remove (fixture->models_dir);
  scratch_dir_remove (fixture->scratch_dir);
  g_free (fixture->models_dir);
  g_free (fixture->scratch_dir);
}

static void
on_imported (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static OnestepInstalledModel *
import (Fixture               *fixture,
        const char            *path,
        OnestepInstalledKind   kind,
        const char            *base,
        const char            *id,
        GError               **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  onestep_model_importer_import_async (fixture->importer, path, kind, base, id, NULL, NULL,
                                       on_imported, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return onestep_model_importer_import_finish (fixture->importer, result, error);
}

static void
assert_not_indexed (Fixture    *fixture,
                    const char *id)
{
  g_autoptr(OnestepInstalledModel) entry = onestep_model_index_lookup (fixture->index, id);

  g_assert_null (entry);
}

/* Importing path fails with the modelstore error code, with fragment (when
 * given) in the message, and id stays out of the index. */
static void
assert_import_refused (Fixture              *fixture,
                       const char           *path,
                       OnestepInstalledKind  kind,
                       const char           *base,
                       const char           *id,
                       gint                  code,
                       const char           *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = import (fixture, path, kind, base, id, &error);

  g_assert_error (error, ONESTEP_MODELSTORE_ERROR, code);
  if (fragment != NULL)
    g_assert_nonnull (strstr (error->message, fragment));
  assert_not_indexed (fixture, id);
}

static void
test_diffusers_folder (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autoptr(OnestepInstalledModel) entry = NULL;

  g_assert_cmpint (onestep_model_importer_guess_kind (TINY_MODEL_DIR, NULL), ==,
                   ONESTEP_INSTALLED_KIND_DIFFUSERS);
  installed = import (fixture, TINY_MODEL_DIR, ONESTEP_INSTALLED_KIND_DIFFUSERS, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (onestep_installed_model_get_id (installed), ==, "model");
  g_assert_cmpint (onestep_installed_model_get_source (installed), ==, ONESTEP_INSTALLED_SOURCE_IMPORT);
  g_assert_true (g_path_is_absolute (onestep_installed_model_get_path (installed)));

  entry = onestep_model_index_lookup (fixture->index, "model");
  g_assert_nonnull (entry);

  /* A second import of another model with the same name gets its own id. */
  g_clear_object (&installed);
  installed = import (fixture, TINY_MODEL_DIR, ONESTEP_INSTALLED_KIND_DIFFUSERS, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (onestep_installed_model_get_id (installed), ==, "model-2");
}

static void
test_unet_with_base (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) base = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autofree char *unet = g_build_filename (TINY_MODEL_DIR, "unet",
                                            "diffusion_pytorch_model.safetensors", NULL);

  base = import (fixture, TINY_MODEL_DIR, ONESTEP_INSTALLED_KIND_DIFFUSERS, NULL, "tiny", &error);
  g_assert_no_error (error);

  g_assert_cmpint (onestep_model_importer_guess_kind (unet, "tiny"), ==, ONESTEP_INSTALLED_KIND_UNET);
  installed = import (fixture, unet, ONESTEP_INSTALLED_KIND_UNET, "tiny", "tiny-lcm", &error);
  g_assert_no_error (error);
  g_assert_cmpint (onestep_installed_model_get_kind (installed), ==, ONESTEP_INSTALLED_KIND_UNET);
  g_assert_cmpstr (onestep_installed_model_get_path (installed), ==, onestep_installed_model_get_path (base));
  g_assert_cmpstr (onestep_installed_model_get_base (installed), ==, "tiny");
  g_assert_true (g_str_has_suffix (onestep_installed_model_get_unet_file (installed),
                                   "unet/diffusion_pytorch_model.safetensors"));

  /* Without a base, a UNet-only file is refused. */
  assert_import_refused (fixture, unet, ONESTEP_INSTALLED_KIND_UNET, NULL, "orphan",
                         ONESTEP_MODELSTORE_ERROR_INVALID_MODEL, "base model");
  assert_import_refused (fixture, unet, ONESTEP_INSTALLED_KIND_UNET, "no-such-model", "orphan",
                         ONESTEP_MODELSTORE_ERROR_UNKNOWN_MODEL, NULL);
}

static void
test_refused (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OnestepInstalledModel) installed = NULL;
  g_autofree char *not_a_model = g_build_filename (fixture->scratch_dir, "notes.safetensors", NULL);
  g_autofree char *lora = g_build_filename (fixture->scratch_dir, "style.safetensors", NULL);

  /* A folder without model_index.json. */
  assert_import_refused (fixture, fixture->scratch_dir, ONESTEP_INSTALLED_KIND_DIFFUSERS, NULL,
                         "empty", ONESTEP_MODELSTORE_ERROR_INVALID_MODEL, fixture->scratch_dir);

  g_file_set_contents (not_a_model, "this is not a safetensors file", -1, &error);
  g_assert_no_error (error);
  assert_import_refused (fixture, not_a_model, ONESTEP_INSTALLED_KIND_SINGLE_FILE, NULL, "notes",
                         ONESTEP_MODELSTORE_ERROR_INVALID_MODEL, "notes.safetensors");

  g_file_set_contents (lora, "not a LoRA either", -1, &error);
  g_assert_no_error (error);
  assert_import_refused (fixture, lora, ONESTEP_INSTALLED_KIND_LORA, TINY_MODEL_DIR, "style",
                         ONESTEP_MODELSTORE_ERROR_INVALID_MODEL, "style.safetensors");

  installed = import (fixture, "/nonexistent/model", ONESTEP_INSTALLED_KIND_DIFFUSERS, NULL, NULL, &error);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) g_test_add ("/modelstore/import/" name, Fixture, NULL, \
                                    fixture_set_up, func, fixture_tear_down)
  ADD ("diffusers-folder", test_diffusers_folder);
  ADD ("unet-with-base", test_unet_with_base);
  ADD ("refused", test_refused);
#undef ADD

  return g_test_run ();
}
