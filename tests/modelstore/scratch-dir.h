/* scratch-dir.h: temporary folders for the model store tests. */
#pragma once

#include <glib.h>

/* Deletes a file or a folder with everything in it. */
void scratch_dir_remove (const char *path);
