/* onestep-application.h
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <adwaita.h>

#include "onestep-engine.h"

G_BEGIN_DECLS

#define ONESTEP_TYPE_APPLICATION (onestep_application_get_type ())

G_DECLARE_FINAL_TYPE (OnestepApplication, onestep_application, ONESTEP, APPLICATION, AdwApplication)

OnestepApplication *onestep_application_new        (void);
OnestepEngine      *onestep_application_get_engine (OnestepApplication *self);

G_END_DECLS
