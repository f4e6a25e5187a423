/* onestep-application.c
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "onestep-application.h"
#include "onestep-preferences-window.h"
#include "onestep-window.h"

struct _OnestepApplication
{
  AdwApplication  parent_instance;

  OnestepEngine  *engine;
};

G_DEFINE_FINAL_TYPE (OnestepApplication, onestep_application, ADW_TYPE_APPLICATION)

static const struct {
  const char *action;
  const char *accels[3];
} accelerators[] = {
  { "app.quit", { "<Control>q", NULL } },
  { "app.preferences", { "<Control>comma", NULL } },
  { "win.open", { "<Control>o", NULL } },
  { "win.paste", { "<Control>v", NULL } },
  { "win.export", { "<Control>e", NULL } },
  { "win.play-pause", { "space", NULL } },
  { "win.generate", { "<Control>Return", "<Control>KP_Enter", NULL } },
  { "win.compare", { "<Control>k", NULL } },
  { "window.close", { "<Control>w", NULL } },
};

static void
onestep_application_activate (GApplication *application)
{
  OnestepApplication *self = ONESTEP_APPLICATION (application);
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (window == NULL)
    {
      window = GTK_WINDOW (onestep_window_new (GTK_APPLICATION (self), self->engine));
      onestep_window_restore_last_clip (ONESTEP_WINDOW (window));
    }

  gtk_window_present (window);
}

static void
onestep_application_open (GApplication  *application,
                          GFile        **files,
                          int            n_files,
                          const char    *hint)
{
  onestep_application_activate (application);
  onestep_window_open_file (ONESTEP_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (application))),
                            files[0]);
}

static void
quit_action (GSimpleAction *action,
             GVariant      *parameter,
             gpointer       user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

static void
preferences_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (user_data));

  gtk_window_present (GTK_WINDOW (onestep_preferences_window_new (parent)));
}

static void
about_action (GSimpleAction *action,
              GVariant      *parameter,
              gpointer       user_data)
{
  static const char *developers[] = { "The Onestep developers", NULL };
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (user_data));
  GtkWidget *about;

  about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                        "transient-for", parent,
                        "application-icon", APP_ID,
                        "application-name", _("Onestep"),
                        "developer-name", _("The Onestep developers"),
                        "version", PACKAGE_VERSION,
                        "comments", _("Turn a still image into a short video in one step, then refine it"),
                        "website", "https://github.com/onestep/onestep",
                        "issue-url", "https://github.com/onestep/onestep/issues",
                        "license-type", GTK_LICENSE_GPL_3_0,
                        "developers", developers,
                        /* Translators: your name, to be credited in the About window */
                        "translator-credits", _("translator-credits"),
                        NULL);
  adw_about_window_add_legal_section (ADW_ABOUT_WINDOW (about), _("Stable Video Diffusion"),
                                      NULL, GTK_LICENSE_CUSTOM,
                                      _("Models are distributed under their own licenses; check the model card of the model you use."));
  gtk_window_present (GTK_WINDOW (about));
}

static const GActionEntry app_actions[] = {
  { "quit", quit_action, NULL, NULL, NULL, { 0 } },
  { "preferences", preferences_action, NULL, NULL, NULL, { 0 } },
  { "about", about_action, NULL, NULL, NULL, { 0 } },
};

static void
onestep_application_startup (GApplication *application)
{
  OnestepApplication *self = ONESTEP_APPLICATION (application);

  G_APPLICATION_CLASS (onestep_application_parent_class)->startup (application);

  g_action_map_add_action_entries (G_ACTION_MAP (self), app_actions, G_N_ELEMENTS (app_actions), self);
  for (guint i = 0; i < G_N_ELEMENTS (accelerators); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (self), accelerators[i].action,
                                           accelerators[i].accels);

  self->engine = onestep_engine_new ();
}

static void
onestep_application_shutdown (GApplication *application)
{
  OnestepApplication *self = ONESTEP_APPLICATION (application);

  /* Stop the worker before the windows and the engine go away. */
  if (self->engine != NULL)
    onestep_engine_shutdown (self->engine);

  G_APPLICATION_CLASS (onestep_application_parent_class)->shutdown (application);

  g_clear_object (&self->engine);
}

static void
onestep_application_class_init (OnestepApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->activate = onestep_application_activate;
  app_class->open = onestep_application_open;
  app_class->startup = onestep_application_startup;
  app_class->shutdown = onestep_application_shutdown;
}

static void
onestep_application_init (OnestepApplication *self)
{
}

OnestepApplication *
onestep_application_new (void)
{
  return g_object_new (ONESTEP_TYPE_APPLICATION,
                       "application-id", APP_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", RESOURCE_BASE_PATH,
                       NULL);
}

OnestepEngine *
onestep_application_get_engine (OnestepApplication *self)
{
  g_return_val_if_fail (ONESTEP_IS_APPLICATION (self), NULL);
  return self->engine;
}
