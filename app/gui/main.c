/* main.c: the onestep application.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "onestep-application.h"
#include "onestep-engine.h"

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
  app = onestep_application_new ();

  status = g_application_run (G_APPLICATION (app), argc, argv);
  /* The windows are gone; the engine stops at its next abort check. */
  g_clear_object (&app);
  onestep_engine_wait_for_workers ();
  return status;
}
