/* onestep-cli-check-golden.c: `onestep-cli check-golden`, the engine against
 * recorded reference tensors (golden.md). The check itself is engine/golden,
 * shared with the GPU test; this front end parses the options and gives it the
 * case's input.png, fitted to each run's size. */
#include <stdio.h>

#include "error.h"
#include "golden.h"
#include "golden_osv.h"
#include "golden_train.h"
#include "onestep-cli.h"

typedef struct {
  GdkPixbuf *image;  /* the case's input.png */
  GdkPixbuf *fitted; /* at the size of the run being checked */
} InputImage;

static onestep_status
fit_input_image (int             width,
                 int             height,
                 onestep_image  *view,
                 void           *user_data,
                 onestep_error  *error)
{
  InputImage *input = user_data;

  g_clear_object (&input->fitted);
  input->fitted = onestep_image_loader_fit (input->image, width, height);
  if (input->fitted == NULL)
    return os_error_set (error, ONESTEP_ERR_OUT_OF_MEMORY,
                         "cannot scale the input image to %dx%d", width, height);
  *view = onestep_cli_image_view (input->fitted);
  return ONESTEP_OK;
}

int
onestep_cli_check_golden (int    argc,
                          char **argv)
{
  g_autofree char *model = NULL, *device_name = NULL, *precision_name = NULL;
  double tolerance = 1e-4;
  gboolean stage_by_stage = FALSE;
  g_auto(GStrv) cases = NULL;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Model folder (default: CASE_DIR/model)", "PATH" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu (default), cuda or auto", "D" },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &precision_name,
      "GPU arithmetic: fp32 (default: exact), tf32, fp16 or bf16", "P" },
    { "tolerance", 0, 0, G_OPTION_ARG_DOUBLE, &tolerance, "Largest relative L2 error (default 1e-4)", "T" },
    { "stage-by-stage", 0, 0, G_OPTION_ARG_NONE, &stage_by_stage,
      "Feed every stage the reference's inputs, so each error is that stage's own", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &cases, NULL, "CASE_DIR" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- compare the engine with a golden case");
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) image_file = NULL;
  onestep_context_params params = onestep_context_default_params ();
  onestep_error engine_error = { 0 };
  InputImage input = { NULL, NULL };
  os_golden_case *golden;
  int status = 1;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (cases == NULL || g_strv_length (cases) != 1)
    {
      onestep_cli_fail ("check-golden needs exactly one CASE_DIR");
      return 2;
    }
  params.device = ONESTEP_DEVICE_CPU;
  params.precision = ONESTEP_PRECISION_FP32;
  if ((device_name != NULL && !onestep_cli_parse_device (device_name, &params.device, &error)) ||
      !onestep_cli_parse_precision (precision_name, &params.precision, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }

  os_golden_kind kind;
  if (os_golden_case_kind (cases[0], &kind, &engine_error) != ONESTEP_OK)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }
  if (kind != OS_GOLDEN_KIND_INFERENCE)
    {
      os_golden_options check = {
        .model_dir = model,
        .params = params,
        .tolerance = tolerance,
        .program = "onestep-cli",
      };
      os_golden_result result = kind == OS_GOLDEN_KIND_TRAINING ? os_golden_train_check (cases[0], &check)
                                                                : os_golden_osv_check (cases[0], &check);
      return result == OS_GOLDEN_PASSED ? 0 : 1;
    }
  golden = os_golden_case_open (cases[0], &engine_error);
  if (golden == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }
  image_file = g_file_new_build_filename (cases[0], "input.png", NULL);
  input.image = onestep_image_loader_load (image_file, NULL, &error);
  if (input.image == NULL)
    onestep_cli_fail ("%s", error->message);
  else
    {
      os_golden_options check = {
        .model_dir = model,
        .params = params,
        .tolerance = tolerance,
        .stage_by_stage = stage_by_stage,
        .image_for = fit_input_image,
        .user_data = &input,
        .program = "onestep-cli",
      };
      status = os_golden_check (golden, &check) == OS_GOLDEN_PASSED ? 0 : 1;
    }
  g_clear_object (&input.fitted);
  g_clear_object (&input.image);
  os_golden_case_free (golden);
  return status;
}
