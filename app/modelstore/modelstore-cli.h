/* modelstore-cli.h: `onestep-cli models list|download NAME|import PATH`. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* argv[0] is the command's own name ("models"), argv[1] the action. Prints to
 * stdout/stderr; returns the process exit status (0 ok, 1 failed, 2 usage). */
int onestep_modelstore_cli_run (int    argc,
                                char **argv);

G_END_DECLS
