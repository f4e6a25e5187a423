/* onestep-installed-model.h: one model in the user's models folder index,
 * downloaded or imported. Paths are absolute. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum {
  ONESTEP_INSTALLED_KIND_DIFFUSERS,   /* a diffusers folder (maybe with a replacement UNet) */
  ONESTEP_INSTALLED_KIND_SINGLE_FILE, /* one checkpoint file holding every component */
  ONESTEP_INSTALLED_KIND_UNET,        /* a UNet file (AnimateLCM) used with a base model */
  ONESTEP_INSTALLED_KIND_LORA,        /* a LoRA merged into a base model at load */
  ONESTEP_INSTALLED_KIND_FEATURE_NETWORK, /* not a video model: a network training uses
                                           * (DINOv2 for OSV), never offered for generating */
} OnestepInstalledKind;

typedef enum {
  ONESTEP_INSTALLED_SOURCE_DOWNLOAD,
  ONESTEP_INSTALLED_SOURCE_IMPORT,
} OnestepInstalledSource;

#define ONESTEP_TYPE_INSTALLED_MODEL (onestep_installed_model_get_type ())

G_DECLARE_FINAL_TYPE (OnestepInstalledModel, onestep_installed_model, ONESTEP, INSTALLED_MODEL, GObject)

/* path: what onestep_context_new() opens: the folder or checkpoint, for UNET
 * the base model, for LORA the LoRA file itself.
 * unet_file: (nullable) the replacement UNet file (UNET, or a DIFFUSERS download
 * such as AnimateLCM). base: (nullable) for UNET and LORA, the base it was checked
 * with: an index id or a path. */
OnestepInstalledModel  *onestep_installed_model_new             (const char             *id,
                                                                 const char             *name,
                                                                 OnestepInstalledKind    kind,
                                                                 OnestepInstalledSource  source,
                                                                 const char             *path,
                                                                 const char             *unet_file,
                                                                 const char             *base);
const char             *onestep_installed_model_get_id          (OnestepInstalledModel  *self);
const char             *onestep_installed_model_get_name        (OnestepInstalledModel  *self);
OnestepInstalledKind    onestep_installed_model_get_kind        (OnestepInstalledModel  *self);
OnestepInstalledSource  onestep_installed_model_get_source      (OnestepInstalledModel  *self);
const char             *onestep_installed_model_get_path        (OnestepInstalledModel  *self);
const char             *onestep_installed_model_get_unet_file   (OnestepInstalledModel  *self);
const char             *onestep_installed_model_get_base        (OnestepInstalledModel  *self);

const char             *onestep_installed_kind_to_string        (OnestepInstalledKind    kind);
gboolean                onestep_installed_kind_from_string      (const char             *text,
                                                                 OnestepInstalledKind   *kind);
/* Whether the kind is an image-to-video model (LoRAs included, which need a
 * base model), as opposed to a feature network. */
gboolean                onestep_installed_kind_is_image_to_video (OnestepInstalledKind   kind);

G_END_DECLS
