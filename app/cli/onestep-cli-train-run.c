/* onestep-cli-train-run.c: `onestep-cli train diffusion` (SVD's own
 * denoising objective) and `onestep-cli train osv` (OSV's stage 1 or 2) on a
 * latent cache, into a run folder:
 *   RUN/config.json        the run's settings (a resumed run reads them back)
 *   RUN/log.jsonl          one JSON line per step
 *   RUN/checkpoint/        the whole training state, swapped in atomically
 *   RUN/final/adapter/     the PEFT adapter (generate --lora)
 *   RUN/final/unet.safetensors   the UNet with everything merged (generate --unet)
 * Ctrl+C stops at the next step boundary and saves the checkpoint first. */
#include <errno.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "onestep-cli-train-samples.h"
#include "onestep-cli.h"
#include "onestep_train.h"

static volatile sig_atomic_t interrupted;

static void
on_interrupt (int signum)
{
  interrupted = 1;
}

/* The settings a run keeps in config.json, with their command-line values. */
typedef struct {
  char *model, *data, *device;
  char *lora_targets, *train_targets, *loss;
  int lora_rank, batch, threads, memory_budget_mb;
  double lora_alpha, lr, weight_decay, max_grad_norm, ema, huber_c;
  gint64 seed;
  /* OSV */
  char *objective; /* "diffusion", "osv-lgp" or "osv-acd" */
  char *dinov2, *from;
  int m;
  double lr_d, lambda_adv, guidance_min, guidance_max;
} RunSettings;

static void
run_settings_clear (RunSettings *s)
{
  g_free (s->model);
  g_free (s->data);
  g_free (s->device);
  g_free (s->lora_targets);
  g_free (s->train_targets);
  g_free (s->loss);
  g_free (s->objective);
  g_free (s->dinov2);
  g_free (s->from);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RunSettings, run_settings_clear)

static JsonNode *
settings_to_json (const RunSettings *s)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
#define STRING(key, value) (json_builder_set_member_name (b, key), json_builder_add_string_value (b, (value) ? (value) : ""))
#define INT(key, value) (json_builder_set_member_name (b, key), json_builder_add_int_value (b, value))
#define DOUBLE(key, value) (json_builder_set_member_name (b, key), json_builder_add_double_value (b, value))
  STRING ("model", s->model);
  STRING ("data", s->data);
  STRING ("device", s->device);
  STRING ("lora_targets", s->lora_targets);
  STRING ("train_targets", s->train_targets);
  STRING ("loss", s->loss);
  STRING ("objective", s->objective);
  STRING ("dinov2", s->dinov2);
  STRING ("from", s->from);
  INT ("m", s->m);
  DOUBLE ("lr_d", s->lr_d);
  DOUBLE ("lambda_adv", s->lambda_adv);
  DOUBLE ("guidance_min", s->guidance_min);
  DOUBLE ("guidance_max", s->guidance_max);
  INT ("lora_rank", s->lora_rank);
  DOUBLE ("lora_alpha", s->lora_alpha);
  INT ("batch", s->batch);
  INT ("threads", s->threads);
  INT ("memory_budget_mb", s->memory_budget_mb);
  DOUBLE ("lr", s->lr);
  DOUBLE ("weight_decay", s->weight_decay);
  DOUBLE ("max_grad_norm", s->max_grad_norm);
  DOUBLE ("ema", s->ema);
  DOUBLE ("huber_c", s->huber_c);
  INT ("seed", s->seed);
#undef STRING
#undef INT
#undef DOUBLE
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static gboolean
settings_from_json (RunSettings *s,
                    const char  *path,
                    GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, path, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: not a run's settings", path);
      return FALSE;
    }
  JsonObject *o = json_node_get_object (root);
  const char *required[] = { "model", "data", "lora_rank", "lr", "seed", "batch" };
  for (size_t i = 0; i < G_N_ELEMENTS (required); i++)
    if (!json_object_has_member (o, required[i]))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: '%s' is missing", path,
                     required[i]);
        return FALSE;
      }
#define STRING(field) (g_free (s->field), s->field = g_strdup (json_object_get_string_member_with_default (o, #field, "")))
  STRING (model);
  STRING (data);
  STRING (device);
  STRING (lora_targets);
  STRING (train_targets);
  STRING (loss);
  STRING (objective);
  STRING (dinov2);
  STRING (from);
#undef STRING
  s->m = json_object_get_int_member_with_default (o, "m", 5);
  s->lr_d = json_object_get_double_member_with_default (o, "lr_d", 1e-5);
  s->lambda_adv = json_object_get_double_member_with_default (o, "lambda_adv", 0.1);
  s->guidance_min = json_object_get_double_member_with_default (o, "guidance_min", 1.0);
  s->guidance_max = json_object_get_double_member_with_default (o, "guidance_max", 3.0);
  s->lora_rank = json_object_get_int_member (o, "lora_rank");
  s->lora_alpha = json_object_get_double_member_with_default (o, "lora_alpha", s->lora_rank);
  s->batch = json_object_get_int_member (o, "batch");
  s->threads = json_object_get_int_member_with_default (o, "threads", 0);
  s->memory_budget_mb = json_object_get_int_member_with_default (o, "memory_budget_mb", 0);
  s->lr = json_object_get_double_member (o, "lr");
  s->weight_decay = json_object_get_double_member_with_default (o, "weight_decay", 0.0);
  s->max_grad_norm = json_object_get_double_member_with_default (o, "max_grad_norm", 0.0);
  s->ema = json_object_get_double_member_with_default (o, "ema", 0.0);
  s->huber_c = json_object_get_double_member_with_default (o, "huber_c", 0.001);
  s->seed = json_object_get_int_member (o, "seed");
  return TRUE;
}

/* Writes a JSON document to path atomically. */
static gboolean
write_json (const char *path,
            JsonNode   *root,
            GError    **error)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  g_autofree char *text = json_generator_to_data (generator, NULL);
  return g_file_set_contents (path, text, -1, error);
}

/* Keeps the log's lines up to `step` (a resumed run repeats what came after). */
static gboolean
truncate_log (const char *path,
              gint64      step,
              GError    **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GString) kept = g_string_new (NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i] != NULL; i++)
    {
      gint64 line_step = 0;
      if (*lines[i] == '\0' || sscanf (lines[i], "{\"step\":%" G_GINT64_FORMAT, &line_step) != 1 ||
          line_step > step)
        continue;
      g_string_append_printf (kept, "%s\n", lines[i]);
    }
  return g_file_set_contents (path, kept->str, kept->len, error);
}

static char **
split_globs (const char *list)
{
  if (list == NULL || *list == '\0')
    return g_new0 (char *, 1);
  return g_strsplit (list, ",", -1);
}

/* Samples as the run's student is meant to be used: one Time Travel step
 * for OSV, the model's default sampler for the denoising objective. */
static gboolean
write_samples (onestep_trainer              *trainer,
               const char                   *run_dir,
               const RunSettings            *s,
               const onestep_context_params *context,
               char                        **images,
               gboolean                      osv)
{
  g_autoptr(GError) error = NULL;
  if (onestep_cli_train_write_samples (trainer, run_dir, s->model, context, images,
                                       osv ? ONESTEP_SAMPLER_TTS : ONESTEP_SAMPLER_AUTO,
                                       osv ? 1 : 0, &error))
    return TRUE;
  onestep_cli_fail ("cannot write the sample clips: %s", error->message);
  return FALSE;
}

static gboolean
save_checkpoint (onestep_trainer *trainer,
                 const char      *path)
{
  onestep_error error = { 0 };
  if (onestep_trainer_save (trainer, path, &error) == ONESTEP_OK)
    return TRUE;
  onestep_cli_fail ("cannot save the checkpoint (the previous one is intact): %s", error.message);
  return FALSE;
}

static void
print_step (const onestep_train_stats *stats,
            gint64                     iterations,
            gboolean                   tty,
            gboolean                   osv)
{
  double remaining = stats->seconds * (double) (iterations - stats->step);
  g_autofree char *players = osv ? g_strdup_printf ("  D %.4f  adv %.4f  cons %.5f", stats->loss_d,
                                                    stats->adv_g, stats->consistency)
                                 : g_strdup ("");
  fprintf (stderr, "%sstep %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "  loss %.5f%s  grad norm %.4f  %.2f s/step  %.0f MB  %d:%02d left%s",
           tty ? "\r" : "", (gint64) stats->step, iterations, stats->loss, players,
           stats->grad_norm, stats->seconds, stats->peak_bytes / 1e6, (int) (remaining / 60),
           (int) remaining % 60, tty ? "" : "\n");
}

static gboolean
append_log (FILE                      *log,
            const onestep_train_stats *stats,
            gboolean                   osv)
{
  g_autofree char *players = osv ? g_strdup_printf (",\"loss_d\":%.9g,\"adv_g\":%.9g,\"consistency\":%.9g,\"grad_norm_d\":%.9g,\"grid_index\":%d",
                                                    stats->loss_d, stats->adv_g, stats->consistency,
                                                    stats->grad_norm_d, stats->grid_index)
                                 : g_strdup ("");
  return fprintf (log, "{\"step\":%" G_GINT64_FORMAT ",\"loss\":%.9g,\"grad_norm\":%.9g,\"lr\":%.9g,\"seconds\":%.4f,\"peak_bytes\":%zu%s}\n",
                  (gint64) stats->step, stats->loss, stats->grad_norm, stats->lr,
                  stats->seconds, stats->peak_bytes, players) > 0 &&
         fflush (log) == 0;
}

/* "MIN,MAX" into two numbers. */
static gboolean
parse_guidance (const char *text,
                double     *min,
                double     *max)
{
  return text == NULL || (sscanf (text, "%lf,%lf", min, max) == 2 && *min > 0 && *max >= *min);
}

static int
run_training (int      argc,
              char   **argv,
              gboolean osv)
{
  g_auto(RunSettings) s = {
    .lora_rank = 8, .lora_alpha = -1.0, .batch = 1, .lr = osv ? 5e-6 : 1e-4,
    .weight_decay = osv ? 0.0 : 0.01, .max_grad_norm = 1.0, .ema = osv ? 0.95 : 0.999,
    .huber_c = 0.001, .m = 5, .lr_d = 1e-5, .lambda_adv = 0.1, .guidance_min = 1.0,
    .guidance_max = 3.0,
  };
  int stage = 0;
  g_autofree char *guidance = NULL;
  g_autofree char *out = NULL;
  /* Set only at the end; declared here because the error paths jump past. */
  g_autofree char *final_dir = NULL, *adapter_dir = NULL, *unet_path = NULL;
  gint64 iterations = 1000, save_every = 100, sample_every = 0;
  g_auto(GStrv) sample_images = NULL;
  gboolean resume = FALSE, export_ema = FALSE;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &s.model, "The base model", "PATH" },
    { "data", 0, 0, G_OPTION_ARG_FILENAME, &s.data, "The latent cache (train prepare)", "CACHE" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "The run folder", "RUN" },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume, "Continue RUN from its checkpoint with its settings", NULL },
    { "iterations", 0, 0, G_OPTION_ARG_INT64, &iterations, "Steps in all (default 1000)", "N" },
    { "lora-rank", 0, 0, G_OPTION_ARG_INT, &s.lora_rank, "LoRA rank (default 8)", "R" },
    { "lora-alpha", 0, 0, G_OPTION_ARG_DOUBLE, &s.lora_alpha, "LoRA alpha (default: the rank)", "A" },
    { "lora-targets", 0, 0, G_OPTION_ARG_STRING, &s.lora_targets, "Comma-separated globs of Linear modules (default: the self-attention projections; empty: no LoRA)", "GLOBS" },
    { "train", 0, 0, G_OPTION_ARG_STRING, &s.train_targets, "Comma-separated globs of tensors trained in full", "GLOBS" },
    { "loss", 0, 0, G_OPTION_ARG_STRING, &s.loss, "mse (default, SVD's weighting) or huber", "L" },
    { "huber-c", 0, 0, G_OPTION_ARG_DOUBLE, &s.huber_c, "The pseudo-Huber c (default 0.001)", "C" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &s.lr, "Learning rate (default 1e-4)", "LR" },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &s.weight_decay, "AdamW's weight decay (default 0.01)", "WD" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &s.batch, "Clips per step (default 1)", "B" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &s.seed, "Seed of every random draw (default 0)", "S" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &s.device, "cpu, cuda or auto (default)", "D" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &s.threads, "CPU threads (default: all cores)", "N" },
    { "max-grad-norm", 0, 0, G_OPTION_ARG_DOUBLE, &s.max_grad_norm, "Clip gradients to this global norm (default 1; 0: never)", "N" },
    { "ema", 0, 0, G_OPTION_ARG_DOUBLE, &s.ema, "EMA decay (default 0.999)", "MU" },
    { "memory-budget", 0, 0, G_OPTION_ARG_INT, &s.memory_budget_mb, "Recompute UNet blocks in the backward once the device holds this many MB (default 0: keep every activation)", "MB" },
    { "save-every", 0, 0, G_OPTION_ARG_INT64, &save_every, "Checkpoint every N steps (default 100)", "N" },
    { "export-ema", 0, 0, G_OPTION_ARG_NONE, &export_ema, "Export the EMA instead of the trained values", NULL },
    { "sample-every", 0, 0, G_OPTION_ARG_INT64, &sample_every, "Write sample clips every N steps and at the end (default 0: never)", "N" },
    { "sample-image", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &sample_images, "A validation image to sample from (repeatable)", "IMAGE" },
    { NULL }
  };
  GOptionEntry osv_entries[] = {
    { "stage", 0, 0, G_OPTION_ARG_INT, &stage, "1: latent GAN pretraining (adapters only), 2: adversarial consistency distillation", "1|2" },
    { "dinov2", 0, 0, G_OPTION_ARG_FILENAME, &s.dinov2, "The DINOv2 model folder of the discriminator (models download dinov2-small)", "PATH" },
    { "from", 0, 0, G_OPTION_ARG_FILENAME, &s.from, "Stage 2: start from this stage-1 run's adapters and discriminator", "RUN1" },
    { "lr-g", 0, 0, G_OPTION_ARG_DOUBLE, &s.lr, "The student's learning rate (default 5e-6)", "LR" },
    { "lr-d", 0, 0, G_OPTION_ARG_DOUBLE, &s.lr_d, "The discriminator's learning rate (default 1e-5)", "LR" },
    { "m", 0, 0, G_OPTION_ARG_INT, &s.m, "Stage 2: the teacher's Euler steps on the 100-point grid (default 5)", "M" },
    { "guidance", 0, 0, G_OPTION_ARG_STRING, &guidance, "Stage 2: the teacher's frame-wise guidance (default 1,3)", "MIN,MAX" },
    { "lambda-adv", 0, 0, G_OPTION_ARG_DOUBLE, &s.lambda_adv, "Weight of the adversarial term (default 0.1)", "L" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new (
    osv ? "- OSV's two-stage training of a one-step student (LoRA and chosen tensors)"
        : "- train LoRA adapters (and chosen tensors) with SVD's denoising objective");
  g_autoptr(GError) error = NULL;
  onestep_error engine_error = { 0 };
  const char *command = osv ? "train osv" : "train diffusion";

  g_option_context_add_main_entries (options, entries, NULL);
  if (osv)
    g_option_context_add_main_entries (options, osv_entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (out == NULL)
    {
      onestep_cli_fail ("%s needs --out RUN", command);
      return 2;
    }
  if (!parse_guidance (guidance, &s.guidance_min, &s.guidance_max))
    {
      onestep_cli_fail ("--guidance %s: give MIN,MAX with 0 < MIN <= MAX", guidance);
      return 2;
    }
  g_autofree char *config_path = g_build_filename (out, "config.json", NULL);
  g_autofree char *log_path = g_build_filename (out, "log.jsonl", NULL);
  g_autofree char *checkpoint_path = g_build_filename (out, "checkpoint", NULL);
  if (resume)
    {
      if (!settings_from_json (&s, config_path, &error))
        {
          onestep_cli_fail ("cannot resume %s: %s", out, error->message);
          return 1;
        }
    }
  else
    {
      if (s.model == NULL || s.data == NULL)
        {
          onestep_cli_fail ("%s needs --model BASE and --data CACHE", command);
          return 2;
        }
      if (osv && ((stage != 1 && stage != 2) || s.dinov2 == NULL || (stage == 1 && s.from != NULL)))
        {
          onestep_cli_fail ("train osv needs --stage 1 or 2 and --dinov2 PATH (--from RUN1 is for stage 2)");
          return 2;
        }
      s.objective = g_strdup (!osv ? "diffusion" : stage == 1 ? "osv-lgp" : "osv-acd");
      if (g_file_test (out, G_FILE_TEST_EXISTS))
        {
          onestep_cli_fail ("%s already exists: give a new run folder, or --resume to continue it", out);
          return 1;
        }
      if (s.lora_targets == NULL)
        s.lora_targets = g_strdup ("*attn1.to_q,*attn1.to_k,*attn1.to_v,*attn1.to_out.0");
      if (s.lora_alpha < 0)
        s.lora_alpha = s.lora_rank;
      if (s.loss == NULL)
        s.loss = g_strdup (osv ? "huber" : "mse");
      if (s.device == NULL)
        s.device = g_strdup ("auto");
    }
  if (!g_str_equal (s.loss, "mse") && !g_str_equal (s.loss, "huber"))
    {
      onestep_cli_fail ("--loss %s: use mse or huber", s.loss);
      return 2;
    }
  if (iterations < 1 || save_every < 1 || sample_every < 0)
    {
      onestep_cli_fail ("--iterations and --save-every must be at least 1, --sample-every not negative");
      return 2;
    }
  if (sample_every > 0 && sample_images == NULL)
    {
      onestep_cli_fail ("--sample-every needs at least one --sample-image");
      return 2;
    }
  if (!g_file_test (s.data, G_FILE_TEST_IS_DIR))
    {
      onestep_cli_fail ("%s: no such cache folder (make one with onestep-cli train prepare)", s.data);
      return 1;
    }

  g_auto(GStrv) lora_globs = split_globs (s.lora_targets);
  g_auto(GStrv) train_globs = split_globs (s.train_targets);
  onestep_train_params params = onestep_train_default_params ();
  params.model_path = s.model;
  params.cache_dir = s.data;
  params.context.n_threads = s.threads;
  if (!onestep_cli_parse_device (s.device, &params.context.device, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  params.context.precision = ONESTEP_PRECISION_FP32;
  params.lora_rank = s.lora_rank;
  params.lora_alpha = (float) s.lora_alpha;
  params.lora_targets = (const char *const *) lora_globs;
  params.n_lora_targets = g_strv_length (lora_globs);
  params.train_targets = (const char *const *) train_globs;
  params.n_train_targets = g_strv_length (train_globs);
  params.loss = g_str_equal (s.loss, "huber") ? ONESTEP_LOSS_PSEUDO_HUBER : ONESTEP_LOSS_MSE;
  params.huber_c = (float) s.huber_c;
  params.lr = (float) s.lr;
  params.weight_decay = (float) s.weight_decay;
  params.max_grad_norm = (float) s.max_grad_norm;
  params.ema_decay = (float) s.ema;
  params.batch = s.batch;
  params.seed = (uint64_t) s.seed;
  params.checkpoint_budget = (size_t) MAX (s.memory_budget_mb, 0) << 20;
  g_autofree char *init_from = s.from && *s.from ? g_build_filename (s.from, "checkpoint", NULL) : NULL;
  params.objective = g_strcmp0 (s.objective, "osv-lgp") == 0   ? ONESTEP_OBJECTIVE_OSV_LGP
                     : g_strcmp0 (s.objective, "osv-acd") == 0 ? ONESTEP_OBJECTIVE_OSV_ACD
                                                               : ONESTEP_OBJECTIVE_DIFFUSION;
  params.dinov2_path = s.dinov2 && *s.dinov2 ? s.dinov2 : NULL;
  params.teacher_steps = s.m;
  params.lr_d = (float) s.lr_d;
  params.lambda_adv = (float) s.lambda_adv;
  params.guidance_min = (float) s.guidance_min;
  params.guidance_max = (float) s.guidance_max;
  /* A resumed stage 2 continues from its own checkpoint, not from stage 1's. */
  params.init_from = resume ? NULL : init_from;

  onestep_trainer *trainer = onestep_trainer_new (&params, &engine_error);
  if (trainer == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }
  int status = 1;
  FILE *log = NULL;
  if (resume)
    {
      if (onestep_trainer_load (trainer, checkpoint_path, &engine_error) != ONESTEP_OK)
        {
          onestep_cli_fail ("cannot resume %s: %s", out, engine_error.message);
          goto done;
        }
      if (!truncate_log (log_path, onestep_trainer_step_count (trainer), &error))
        {
          onestep_cli_fail ("%s", error->message);
          goto done;
        }
    }
  else
    {
      g_autoptr(JsonNode) config = settings_to_json (&s);
      if (g_mkdir_with_parents (out, 0755) != 0)
        {
          onestep_cli_fail ("cannot create %s: %s", out, g_strerror (errno));
          goto done;
        }
      if (!write_json (config_path, config, &error))
        {
          onestep_cli_fail ("%s", error->message);
          goto done;
        }
    }
  log = fopen (log_path, "a");
  if (log == NULL)
    {
      onestep_cli_fail ("cannot write %s: %s", log_path, g_strerror (errno));
      goto done;
    }
  fprintf (stderr, "training on %s: %s\n", onestep_trainer_model_info (trainer)->device_name,
           onestep_trainer_describe (trainer));
  if (onestep_trainer_step_count (trainer) > 0)
    fprintf (stderr, "resuming at step %" G_GINT64_FORMAT "\n",
             (gint64) onestep_trainer_step_count (trainer));

  gboolean tty = isatty (STDERR_FILENO);
  signal (SIGINT, on_interrupt);
  while (onestep_trainer_step_count (trainer) < iterations && !interrupted)
    {
      onestep_train_stats stats;
      if (onestep_trainer_step (trainer, &stats, &engine_error) != ONESTEP_OK)
        {
          onestep_cli_fail ("%s", engine_error.message);
          goto done;
        }
      print_step (&stats, iterations, tty, osv);
      if (!append_log (log, &stats, osv))
        {
          onestep_cli_fail ("cannot write %s: %s", log_path, g_strerror (errno));
          goto done;
        }
      if (stats.step % save_every == 0 && stats.step < iterations &&
          !save_checkpoint (trainer, checkpoint_path))
        goto done;
      if (sample_every > 0 && (stats.step % sample_every == 0 || stats.step == iterations) &&
          !write_samples (trainer, out, &s, &params.context, sample_images, osv))
        goto done;
    }
  if (tty)
    fputc ('\n', stderr);
  if (!save_checkpoint (trainer, checkpoint_path))
    goto done;
  if (interrupted)
    {
      fprintf (stderr, "stopped at step %" G_GINT64_FORMAT "; continue with: onestep-cli train diffusion --out %s --resume\n",
               (gint64) onestep_trainer_step_count (trainer), out);
      status = 130;
      goto done;
    }
  final_dir = g_build_filename (out, "final", NULL);
  adapter_dir = g_build_filename (final_dir, "adapter", NULL);
  unet_path = g_build_filename (final_dir, "unet.safetensors", NULL);
  if (g_mkdir_with_parents (final_dir, 0755) != 0 ||
      onestep_trainer_export (trainer, adapter_dir, unet_path, export_ema, &engine_error) != ONESTEP_OK)
    {
      onestep_cli_fail ("cannot export to %s: %s", final_dir,
                        engine_error.code ? engine_error.message : g_strerror (errno));
      goto done;
    }
  printf ("%s: %" G_GINT64_FORMAT " steps; adapter %s, UNet %s\n", out,
          (gint64) onestep_trainer_step_count (trainer), adapter_dir, unet_path);
  status = 0;
done:
  signal (SIGINT, SIG_DFL);
  if (log != NULL)
    fclose (log);
  onestep_trainer_free (trainer);
  return status;
}

int
onestep_cli_train_diffusion (int    argc,
                             char **argv)
{
  return run_training (argc, argv, FALSE);
}

int
onestep_cli_train_osv (int    argc,
                       char **argv)
{
  return run_training (argc, argv, TRUE);
}
