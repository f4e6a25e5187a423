/* onestep-cli-check-golden.c: `onestep-cli check-golden`, the engine against
 * recorded reference tensors (golden.md): every run with the recorded noise,
 * every recorded tensor compared where the engine computes it. */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>

#include "onestep-cli.h"
#include "safetensors.h"

typedef struct {
  char *key;
  int ndim;
  gint64 shape[OS_MAX_DIMS];
  float *reference;
  size_t n;
  gboolean produced, shape_ok;
  double rel_err, max_abs;
} GoldenTensor;

typedef struct {
  GHashTable *tensors; /* key -> GoldenTensor */
  const char *run;
} TapState;

static void
golden_tensor_free (gpointer data)
{
  GoldenTensor *t = data;
  g_free (t->key);
  g_free (t->reference);
  g_free (t);
}

static float *
load_f32 (const os_safetensors  *st,
          const char            *name,
          size_t                *n_out,
          GError               **error)
{
  const os_st_tensor *t = os_safetensors_find (st, name);
  size_t n;
  float *data;

  if (t == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "%s: tensor %s is missing", st->path, name);
      return NULL;
    }
  n = (size_t) os_shape_numel (t->ndim, t->shape);
  data = g_new (float, MAX (n, 1));
  os_dtype_to_f32 (data, t->data, t->dtype, n);
  *n_out = n;
  return data;
}

static void
compare (const char    *name,
         const float   *data,
         int            ndim,
         const int64_t *shape,
         void          *user_data)
{
  TapState *state = user_data;
  g_autofree char *key = g_strdup_printf ("%s.%s", state->run, name);
  GoldenTensor *t = g_hash_table_lookup (state->tensors, key);
  double diff2 = 0.0, ref2 = 0.0, max_abs = 0.0;

  if (t == NULL)
    return;
  t->produced = TRUE;
  t->shape_ok = ndim == t->ndim;
  for (int i = 0; t->shape_ok && i < ndim; i++)
    t->shape_ok = shape[i] == t->shape[i];
  if (!t->shape_ok)
    return;
  for (size_t i = 0; i < t->n; i++)
    {
      double d = (double) data[i] - t->reference[i];
      diff2 += d * d;
      ref2 += (double) t->reference[i] * t->reference[i];
      max_abs = MAX (max_abs, fabs (d));
    }
  /* An all-zero reference is compared absolutely. */
  t->rel_err = ref2 > 0.0 ? sqrt (diff2 / ref2) : sqrt (diff2);
  t->max_abs = max_abs;
  if (isnan (t->rel_err))
    t->rel_err = INFINITY;
}

static int
member_int (JsonObject *run,
            JsonObject *top,
            const char *name)
{
  return json_object_has_member (run, name) ? (int) json_object_get_int_member (run, name)
                                            : (int) json_object_get_int_member (top, name);
}

static double
member_double (JsonObject *run,
               JsonObject *top,
               const char *name)
{
  return json_object_has_member (run, name) ? json_object_get_double_member (run, name)
                                            : json_object_get_double_member (top, name);
}

/* Registers the recorded tensors of one run; false when one is missing from the file. */
static gboolean
load_run_tensors (JsonObject            *keys,
                  const char            *run,
                  const os_safetensors  *st,
                  GHashTable            *tensors,
                  GPtrArray             *order,
                  GError               **error)
{
  g_autoptr(GList) members = json_object_get_members (keys);
  g_autofree char *prefix = g_strdup_printf ("%s.", run);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *key = l->data;
      JsonArray *shape = json_object_get_array_member (keys, key);
      GoldenTensor *t;

      if (!g_str_has_prefix (key, prefix))
        continue;
      t = g_new0 (GoldenTensor, 1);
      t->key = g_strdup (key);
      t->ndim = MIN ((int) json_array_get_length (shape), OS_MAX_DIMS);
      for (int i = 0; i < t->ndim; i++)
        t->shape[i] = json_array_get_int_element (shape, i);
      t->reference = load_f32 (st, key, &t->n, error);
      if (t->reference == NULL || (gint64) t->n != os_shape_numel (t->ndim, t->shape))
        {
          if (t->reference != NULL)
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                         "%s: tensor %s does not have the shape golden.json gives", st->path, key);
          golden_tensor_free (t);
          return FALSE;
        }
      g_hash_table_insert (tensors, t->key, t);
      g_ptr_array_add (order, t);
    }
  return TRUE;
}

static gboolean
run_case (onestep_context      *ctx,
          GdkPixbuf            *image,
          JsonObject           *top,
          JsonObject           *run,
          const os_safetensors *st,
          GHashTable           *tensors,
          GError              **error)
{
  const char *name = json_object_get_string_member (run, "name");
  g_autofree char *aug_key = g_strdup_printf ("%s.noise.image_aug", name);
  g_autofree char *lat_key = g_strdup_printf ("%s.noise.latents", name);
  g_autofree float *noise_aug = NULL, *noise_latents = NULL;
  g_autoptr(GdkPixbuf) fitted = NULL;
  onestep_request request = onestep_request_default ();
  onestep_error engine_error = { 0 };
  onestep_image view;
  onestep_clip *clip;
  TapState state = { tensors, name };
  size_t n;

  noise_aug = load_f32 (st, aug_key, &n, error);
  noise_latents = noise_aug ? load_f32 (st, lat_key, &n, error) : NULL;
  if (noise_latents == NULL)
    return FALSE;

  request.width = member_int (run, top, "width");
  request.height = member_int (run, top, "height");
  request.frames = member_int (run, top, "num_frames");
  request.fps = member_int (run, top, "fps");
  request.motion_bucket_id = member_int (run, top, "motion_bucket_id");
  request.noise_aug_strength = (float) member_double (run, top, "noise_aug_strength");
  request.steps = (int) json_object_get_int_member (run, "num_inference_steps");
  request.min_guidance = (float) json_object_get_double_member (run, "min_guidance_scale");
  request.max_guidance = (float) json_object_get_double_member (run, "max_guidance_scale");
  if (json_object_has_member (run, "decode_chunk_size"))
    request.decode_chunk_size = (int) json_object_get_int_member (run, "decode_chunk_size");
  request.sampler = ONESTEP_SAMPLER_EULER;
  request.noise_image_aug = noise_aug;
  request.noise_latents = noise_latents;
  request.tap = compare;
  request.user_data = &state;

  fitted = onestep_cli_fit_image (image, request.width, request.height);
  view = onestep_cli_image_view (fitted);
  clip = onestep_generate (ctx, &view, &request, &engine_error);
  if (clip == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "run %s: %s", name,
                   engine_error.message);
      return FALSE;
    }
  onestep_clip_free (clip);
  return TRUE;
}

static int
report (const char *case_name,
        GPtrArray  *order,
        double      tolerance)
{
  const GoldenTensor *worst = NULL;
  int failures = 0;

  printf ("%-36s %12s %12s  %s\n", "tensor", "rel err", "max abs", "result");
  for (guint i = 0; i < order->len; i++)
    {
      const GoldenTensor *t = g_ptr_array_index (order, i);
      const char *verdict = "ok";

      if (!t->produced)
        verdict = "FAIL (never produced)";
      else if (!t->shape_ok)
        verdict = "FAIL (shape differs)";
      else if (!(t->rel_err <= tolerance))
        verdict = "FAIL";
      if (verdict[0] == 'F')
        failures++;
      if (t->produced && t->shape_ok)
        {
          printf ("%-36s %12.3e %12.3e  %s\n", t->key, t->rel_err, t->max_abs, verdict);
          if (worst == NULL || t->rel_err > worst->rel_err)
            worst = t;
        }
      else
        printf ("%-36s %12s %12s  %s\n", t->key, "-", "-", verdict);
    }
  printf ("golden %s: %u tensors, worst rel err %.3e (%s)\n", case_name, order->len,
          worst ? worst->rel_err : 0.0, worst ? worst->key : "none");
  return failures == 0 && order->len > 0 ? 0 : 1;
}

int
onestep_cli_check_golden (int    argc,
                          char **argv)
{
  g_autofree char *model = NULL, *device_name = NULL, *precision_name = NULL;
  double tolerance = 1e-4;
  g_auto(GStrv) cases = NULL;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Model folder (default: CASE_DIR/model)", "PATH" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu (default), cuda or auto", "D" },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &precision_name,
      "GPU arithmetic: fp32 (default: exact), tf32, fp16 or bf16", "P" },
    { "tolerance", 0, 0, G_OPTION_ARG_DOUBLE, &tolerance, "Largest relative L2 error (default 1e-4)", "T" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &cases, NULL, "CASE_DIR" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- compare the engine with a golden case");
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GHashTable) tensors = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                          golden_tensor_free);
  g_autoptr(GPtrArray) order = g_ptr_array_new ();
  g_autoptr(GdkPixbuf) image = NULL;
  g_autofree char *json_path = NULL, *st_path = NULL, *image_path = NULL, *case_name = NULL;
  onestep_context_params params = onestep_context_default_params ();
  onestep_error engine_error = { 0 };
  os_safetensors *st = NULL;
  onestep_context *ctx = NULL;
  JsonObject *top;
  JsonArray *runs;
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

  json_path = g_build_filename (cases[0], "golden.json", NULL);
  st_path = g_build_filename (cases[0], "golden.safetensors", NULL);
  image_path = g_build_filename (cases[0], "input.png", NULL);
  case_name = g_path_get_basename (cases[0]);
  if (model == NULL)
    model = g_build_filename (cases[0], "model", NULL);

  if (!json_parser_load_from_file (parser, json_path, &error))
    {
      onestep_cli_fail ("%s: %s", json_path, error->message);
      return 1;
    }
  top = json_node_get_object (json_parser_get_root (parser));
  if (top == NULL || !json_object_has_member (top, "runs") || !json_object_has_member (top, "keys"))
    {
      onestep_cli_fail ("%s: expected an object with runs and keys", json_path);
      return 1;
    }
  runs = json_object_get_array_member (top, "runs");

  st = os_safetensors_open (st_path, &engine_error);
  if (st == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }
  image = onestep_cli_load_image (image_path, &error);
  if (image == NULL)
    {
      onestep_cli_fail ("%s", error->message);
      goto out;
    }
  ctx = onestep_context_new (model, &params, &engine_error);
  if (ctx == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      goto out;
    }
  printf ("case %s: model %s on %s\n", case_name, model,
           onestep_context_get_info (ctx)->device_name);

  for (guint i = 0; i < json_array_get_length (runs); i++)
    {
      JsonObject *run = json_array_get_object_element (runs, i);

      if (!load_run_tensors (json_object_get_object_member (top, "keys"),
                             json_object_get_string_member (run, "name"), st, tensors, order,
                             &error) ||
          !run_case (ctx, image, top, run, st, tensors, &error))
        {
          onestep_cli_fail ("%s", error->message);
          g_clear_error (&error);
        }
    }
  status = report (case_name, order, tolerance);

out:
  onestep_context_free (ctx);
  os_safetensors_close (st);
  return status;
}
