/* onestep-export-dialog.h: choosing a format and writing a clip to disk.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-result.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_EXPORT_DIALOG (onestep_export_dialog_get_type ())

G_DECLARE_FINAL_TYPE (OnestepExportDialog, onestep_export_dialog, ONESTEP, EXPORT_DIALOG, AdwWindow)

OnestepExportDialog *onestep_export_dialog_new    (GtkWindow           *parent,
                                                   OnestepResult       *result);
void                 onestep_export_dialog_export (OnestepExportDialog *self);
const char          *onestep_export_dialog_get_default_folder (void);

G_END_DECLS
