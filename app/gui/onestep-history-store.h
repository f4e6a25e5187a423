/* onestep-history-store.h: the history's clips on disk, one folder per entry
 * (entry.json, the frames as PNG, the source image), so that they outlive the
 * session.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gio/gio.h>

#include "onestep-result.h"

G_BEGIN_DECLS

char       *onestep_history_store_dup_default_folder (void);
char       *onestep_history_store_new_entry_name     (void);

void        onestep_history_store_save_async  (const char           *folder,
                                               const char           *entry_name,
                                               OnestepResult        *result,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
gboolean    onestep_history_store_save_finish (GAsyncResult         *result,
                                               GError              **error);

/* One entry on disk: the name of its folder and its clip. */
typedef struct
{
  char          *name;
  OnestepResult *result;
} OnestepHistoryEntry;

void        onestep_history_entry_free        (OnestepHistoryEntry  *entry);

/* Loads the max_entries newest entries, newest first, and, for each entry that
 * could not be read, a sentence saying which and why; removes what an interrupted
 * save left. */
void        onestep_history_store_load_async  (const char           *folder,
                                               guint                 max_entries,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
GPtrArray  *onestep_history_store_load_finish (GAsyncResult         *result,
                                               GPtrArray           **problems,
                                               GError              **error);

void        onestep_history_store_delete_async  (const char         *folder,
                                                 const char         *entry_name,
                                                 GCancellable       *cancellable,
                                                 GAsyncReadyCallback callback,
                                                 gpointer            user_data);
gboolean    onestep_history_store_delete_finish (GAsyncResult       *result,
                                                 GError            **error);

G_END_DECLS
