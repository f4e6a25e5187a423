/* main.c: the onestep application.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "onestep-application.h"
#include "onestep-engine.h"

/* GSettings aborts on a schema it cannot find; say how to run Onestep instead. */
static gboolean
schema_installed (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  if (source != NULL)
    schema = g_settings_schema_source_lookup (source, SCHEMA_ID, TRUE);

  return schema != NULL;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(OnestepApplication) app = NULL;
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_set_application_name (_("Onestep"));
  if (!schema_installed ())
    {
      g_printerr (_("Onestep’s settings schema %s is not installed. Run Onestep from its build "
                    "folder with “meson devenv -C _build onestep”, or install it with "
                    "“meson install -C _build”.\n"), SCHEMA_ID);
      return 1;
    }

  app = onestep_application_new ();

  status = g_application_run (G_APPLICATION (app), argc, argv);
  /* The windows are gone; the engine stops at its next abort check. */
  g_clear_object (&app);
  onestep_engine_wait_for_workers ();
  return status;
}
