/* onestep-main-context.h: handing work from a worker thread to a main context.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Runs func (data) once, later, on the thread that iterates context, then
 * destroy (data). Unlike g_main_context_invoke(), never runs it at once on the
 * calling thread: a worker thread without a thread-default context would
 * otherwise run it itself whenever it could acquire the global default one. */
void onestep_main_context_post (GMainContext   *context,
                                const char     *name,
                                GSourceFunc     func,
                                gpointer        data,
                                GDestroyNotify  destroy);

G_END_DECLS
