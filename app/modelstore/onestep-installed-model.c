/* onestep-installed-model.c */
#include "onestep-installed-model.h"

struct _OnestepInstalledModel
{
  GObject                parent_instance;
  char                  *id;
  char                  *name;
  OnestepInstalledKind   kind;
  OnestepInstalledSource source;
  char                  *path;
  char                  *unet_file;
  char                  *base;
};

G_DEFINE_FINAL_TYPE (OnestepInstalledModel, onestep_installed_model, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_NAME,
  PROP_PATH,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *const kind_names[] = {
  [ONESTEP_INSTALLED_KIND_DIFFUSERS] = "diffusers",
  [ONESTEP_INSTALLED_KIND_SINGLE_FILE] = "single-file",
  [ONESTEP_INSTALLED_KIND_UNET] = "unet",
  [ONESTEP_INSTALLED_KIND_LORA] = "lora",
  [ONESTEP_INSTALLED_KIND_FEATURE_NETWORK] = "feature-network",
};

const char *
onestep_installed_kind_to_string (OnestepInstalledKind kind)
{
  g_return_val_if_fail (kind < G_N_ELEMENTS (kind_names), NULL);
  return kind_names[kind];
}

gboolean
onestep_installed_kind_from_string (const char           *text,
                                    OnestepInstalledKind *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS (kind_names); i++)
    if (g_strcmp0 (text, kind_names[i]) == 0)
      {
        *kind = i;
        return TRUE;
      }
  return FALSE;
}

gboolean
onestep_installed_kind_is_image_to_video (OnestepInstalledKind kind)
{
  return kind != ONESTEP_INSTALLED_KIND_FEATURE_NETWORK;
}

static void
onestep_installed_model_finalize (GObject *object)
{
  OnestepInstalledModel *self = (OnestepInstalledModel *) object;

  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->path, g_free);
  g_clear_pointer (&self->unet_file, g_free);
  g_clear_pointer (&self->base, g_free);

  G_OBJECT_CLASS (onestep_installed_model_parent_class)->finalize (object);
}

static void
onestep_installed_model_get_property (GObject    *object,
                                      guint       prop_id,
                                      GValue     *value,
                                      GParamSpec *pspec)
{
  OnestepInstalledModel *self = ONESTEP_INSTALLED_MODEL (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
onestep_installed_model_class_init (OnestepInstalledModelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = onestep_installed_model_finalize;
  object_class->get_property = onestep_installed_model_get_property;

  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
onestep_installed_model_init (OnestepInstalledModel *self)
{
}

OnestepInstalledModel *
onestep_installed_model_new (const char             *id,
                             const char             *name,
                             OnestepInstalledKind    kind,
                             OnestepInstalledSource  source,
                             const char             *path,
                             const char             *unet_file,
                             const char             *base)
{
  OnestepInstalledModel *self;

  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (path != NULL, NULL);

  self = g_object_new (ONESTEP_TYPE_INSTALLED_MODEL, NULL);
  self->id = g_strdup (id);
  self->name = g_strdup (name ? name : id);
  self->kind = kind;
  self->source = source;
  self->path = g_strdup (path);
  self->unet_file = g_strdup (unet_file);
  self->base = g_strdup (base);
  return self;
}

const char *
onestep_installed_model_get_id (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), NULL);
  return self->id;
}

const char *
onestep_installed_model_get_name (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), NULL);
  return self->name;
}

OnestepInstalledKind
onestep_installed_model_get_kind (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), 0);
  return self->kind;
}

OnestepInstalledSource
onestep_installed_model_get_source (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), 0);
  return self->source;
}

const char *
onestep_installed_model_get_path (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), NULL);
  return self->path;
}

const char *
onestep_installed_model_get_unet_file (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), NULL);
  return self->unet_file;
}

const char *
onestep_installed_model_get_base (OnestepInstalledModel *self)
{
  g_return_val_if_fail (ONESTEP_IS_INSTALLED_MODEL (self), NULL);
  return self->base;
}
