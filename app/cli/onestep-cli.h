/* onestep-cli.h: the subcommands of onestep-cli and the helpers they share. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>

#include "onestep-image-loader.h"
#include "onestep.h"

G_BEGIN_DECLS

/* A subcommand: its name, its entry point and a line for the usage text. */
typedef struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} OnestepCliCommand;

/* Runs the subcommand argv[1] names, with argv[1..]. --help prints the usage
 * ("Usage: PROGRAM WORD [OPTIONS]" and the table) on stdout; no or an unknown
 * subcommand prints it on stderr and returns 2. word is "COMMAND" or "ACTION". */
int onestep_cli_dispatch (const OnestepCliCommand *commands,
                          size_t                   n_commands,
                          const char              *program,
                          const char              *word,
                          int                      argc,
                          char                   **argv);

/* Each subcommand parses its own arguments (argv[0] is the subcommand name)
 * and returns the process exit status. */
int onestep_cli_generate (int argc, char **argv);
int onestep_cli_check_golden (int argc, char **argv);
int onestep_cli_info (int argc, char **argv);
int onestep_cli_bench (int argc, char **argv);
/* `train ACTION`: dispatches to the actions below. */
int onestep_cli_train (int argc, char **argv);
int onestep_cli_train_prepare (int argc, char **argv);
int onestep_cli_train_diffusion (int argc, char **argv);
int onestep_cli_train_osv (int argc, char **argv);

/* The model options of generate and info (--unet, --lora, --frames-hint). */
typedef struct {
  char *unet_file;
  char **lora_args;    /* FILE[:SCALE] as given */
  int frames_hint;
  char **lora_files;   /* parsed by apply */
  float *lora_scales;
} OnestepCliModelOptions;

GOptionGroup *onestep_cli_model_option_group (OnestepCliModelOptions *options);
/* Parses the LoRA arguments and points params at the options (keep them alive). */
gboolean onestep_cli_model_options_apply (OnestepCliModelOptions  *options,
                                          onestep_context_params  *params,
                                          GError                 **error);
void onestep_cli_model_options_clear (OnestepCliModelOptions *options);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OnestepCliModelOptions, onestep_cli_model_options_clear)

/* Prints "onestep-cli: MESSAGE" on stderr. */
void onestep_cli_fail (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* Parses "cpu", "cuda" or "auto". */
gboolean onestep_cli_parse_device (const char *name, onestep_device *device, GError **error);
/* NULL leaves *precision as it is. */
gboolean onestep_cli_parse_precision (const char *name, onestep_precision *precision, GError **error);

/* The engine's view of a pixbuf (valid while the pixbuf lives). */
onestep_image onestep_cli_image_view (GdkPixbuf *image);

G_END_DECLS
