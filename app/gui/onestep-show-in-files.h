/* onestep-show-in-files.h: opening the folder of a file with the file selected.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

void     onestep_show_in_files_async  (GtkWindow            *parent,
                                       GFile                *file,
                                       GCancellable         *cancellable,
                                       GAsyncReadyCallback   callback,
                                       gpointer              user_data);
gboolean onestep_show_in_files_finish (GAsyncResult         *result,
                                       GError              **error);

G_END_DECLS
