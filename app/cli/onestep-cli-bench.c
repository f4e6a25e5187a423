/* onestep-cli-bench.c: `onestep-cli bench`, this machine's GEMM rate and the
 * UNet forward rate on a mid-size synthetic SVD-shaped model. */
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cpu_bench.h"
#include "onestep-cli.h"
#include "philox.h"
#include "synthetic-unet.h"
#include "train_optim.h"
#include "unet_graph.h"
#include "unet.h"

#define SGEMM_SIZE 2048

/* A mid-size model: SVD's layout (three attention levels and one plain level,
 * per-level heads, 64-channel heads) at a quarter of its width. */
static os_unet_config
bench_unet_config (void)
{
  os_unet_config cfg = {
    .in_channels = 8, .out_channels = 4, .num_frames = 4, .n_levels = 4,
    .block_out_channels = { 80, 160, 320, 320 },
    .num_attention_heads = { 1, 2, 5, 5 },
    .transformer_layers_per_block = { 1, 1, 1, 1 },
    .down_has_attention = { true, true, true, false },
    .up_has_attention = { false, true, true, true },
    .layers_per_block = 2,
    .cross_attention_dim = 256,
    .addition_time_embed_dim = 64,
    .projection_class_embeddings_input_dim = 192,
    .sample_size = 32,
  };
  return cfg;
}

/* GFLOP/s of an n x n x n product through the backend's own gemm. */
static double
backend_gemm_gflops (os_backend *be,
                     int         n)
{
  size_t bytes = (size_t) n * n * sizeof (float);
  float *a = be->ops->alloc (be, bytes), *b = be->ops->alloc (be, bytes), *c = be->ops->alloc (be, bytes);
  double best = 0.0;

  if (a && b && c)
    {
      be->ops->fill (be, a, 0.5f, (size_t) n * n);
      be->ops->fill (be, b, 0.25f, (size_t) n * n);
      for (int run = 0; run < 4; run++)
        {
          gint64 t0 = g_get_monotonic_time ();
          be->ops->gemm (be, false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
          be->ops->sync (be, NULL);
          double seconds = (g_get_monotonic_time () - t0) / 1e6;
          if (run > 0)
            best = MAX (best, 2.0 * n * n * (double) n / seconds / 1e9);
        }
    }
  if (a) be->ops->free (be, a);
  if (b) be->ops->free (be, b);
  if (c) be->ops->free (be, c);
  return best;
}

/* An SVD-shaped model for the training step: widths 128/256/512/512 (241 M
 * parameters with the bench model's 256-wide context). */
static os_unet_config
train_unet_config (void)
{
  os_unet_config cfg = bench_unet_config ();
  const int widths[4] = { 128, 256, 512, 512 }, heads[4] = { 2, 4, 8, 8 };
  for (int l = 0; l < 4; l++)
    {
      cfg.block_out_channels[l] = widths[l];
      cfg.num_attention_heads[l] = heads[l];
    }
  return cfg;
}

/* A synthetic model bound on a backend. */
typedef struct {
  SyntheticUnet synthetic;
  os_weight_set *ws;
  os_unet *unet;
} BenchModel;

static void
bench_model_clear (BenchModel *m)
{
  if (m->unet) os_unet_free (m->unet);
  if (m->ws) os_weight_set_free (m->ws);
  synthetic_unet_clear (&m->synthetic);
}

static gboolean
bench_model_build (os_backend           *be,
                   const os_unet_config *cfg,
                   BenchModel           *m,
                   onestep_error        *error)
{
  if (!synthetic_unet_build (cfg, 1, &m->synthetic))
    {
      g_strlcpy (error->message, "out of memory for the synthetic weights", sizeof error->message);
      return FALSE;
    }
  m->ws = os_weight_set_new ("unet", "synthetic bench model", be);
  for (int i = 0; i < m->synthetic.n_tensors; i++)
    if (os_weight_set_add (m->ws, m->synthetic.tensors[i].name, &m->synthetic.tensors[i], error) != ONESTEP_OK)
      return FALSE;
  m->unet = os_unet_bind (cfg, m->ws);
  return os_weights_finish (m->ws, error) == ONESTEP_OK && m->unet != NULL;
}

/* Random inputs of a UNet call in backend memory. */
typedef struct {
  float *sample, *context;
  float ids[6];
} BenchInputs;

static gboolean
bench_inputs_new (os_backend           *be,
                  const os_unet_config *cfg,
                  size_t                n_in,
                  size_t                n_ctx,
                  BenchInputs          *in,
                  onestep_error        *error)
{
  g_autofree float *host = g_new (float, MAX (n_in, n_ctx));
  const float ids[6] = { 6, 127, 0.02f, 6, 127, 0.02f };
  memcpy (in->ids, ids, sizeof ids);
  in->sample = be->ops->alloc (be, n_in * sizeof (float));
  in->context = be->ops->alloc (be, n_ctx * sizeof (float));
  if (!in->sample || !in->context)
    {
      g_strlcpy (error->message, "out of memory for the UNet inputs", sizeof error->message);
      return FALSE;
    }
  os_philox_normal (2, 0, 0, host, n_in);
  be->ops->upload (be, in->sample, host, n_in * sizeof (float));
  os_philox_normal (2, 1, 0, host, n_ctx);
  be->ops->upload (be, in->context, host, n_ctx * sizeof (float));
  return TRUE;
}

static void
bench_inputs_clear (os_backend  *be,
                    BenchInputs *in)
{
  if (in->sample) be->ops->free (be, in->sample);
  if (in->context) be->ops->free (be, in->context);
}

/* Best seconds of a few UNet forwards after a warm-up; negative on error. */
static double
time_unet (os_backend           *be,
           const os_unet_config *cfg,
           int                   B,
           int                   F,
           int                   h,
           int                   w,
           onestep_error        *error)
{
  BenchModel m = { 0 };
  BenchInputs in = { 0 };
  size_t n_out = (size_t) B * F * cfg->out_channels * h * w;
  float *out = NULL;
  double best = -1.0;

  if (!bench_model_build (be, cfg, &m, error) ||
      !bench_inputs_new (be, cfg, (size_t) B * F * cfg->in_channels * h * w,
                         (size_t) B * cfg->cross_attention_dim, &in, error))
    goto out;
  out = be->ops->alloc (be, n_out * sizeof (float));
  if (!out)
    {
      g_strlcpy (error->message, "out of memory for the UNet activations", sizeof error->message);
      goto out;
    }
  for (int run = 0; run < 3; run++)
    {
      gint64 t0 = g_get_monotonic_time ();
      if (os_unet_forward (m.unet, be, in.sample, 1.0f, in.context, in.ids, B, F, h, w, out, error) != ONESTEP_OK ||
          be->ops->sync (be, error) != ONESTEP_OK)
        {
          best = -1.0;
          goto out;
        }
      double seconds = (g_get_monotonic_time () - t0) / 1e6;
      if (run > 0 && (best < 0 || seconds < best))
        best = seconds;
    }

out:
  if (out) be->ops->free (be, out);
  bench_inputs_clear (be, &in);
  bench_model_clear (&m);
  return best;
}

/* Best seconds of a few LoRA training steps (rank 8 on the self-attention
 * projections: forward, backward of a squared loss, AdamW) after a warm-up;
 * negative on error. *params gets the model's parameter count. */
static double
time_train_step (os_backend           *be,
                 const os_unet_config *cfg,
                 int                   F,
                 int                   h,
                 int                   w,
                 int64_t              *params,
                 onestep_error        *error)
{
  static const char *const targets[] = { "*attn1.to_q", "*attn1.to_k", "*attn1.to_v", "*attn1.to_out.0" };
  os_train_spec spec = { .rank = 8, .alpha = 8.0f, .lora_targets = targets, .n_lora_targets = 4 };
  os_adam_config adam = { 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f };
  BenchModel m = { 0 };
  BenchInputs in = { 0 };
  os_train_params *train = NULL;
  os_tape *tape = os_tape_new (be);
  size_t n_out = (size_t) F * cfg->out_channels * h * w;
  float *dout = NULL, timestep = 0.25f;
  double best = -1.0;

  if (!bench_model_build (be, cfg, &m, error) ||
      !bench_inputs_new (be, cfg, (size_t) F * cfg->in_channels * h * w,
                         (size_t) cfg->cross_attention_dim, &in, error) ||
      !(train = os_train_params_new (m.ws, &spec, error)))
    goto out;
  *params = m.synthetic.n_params;
  dout = be->ops->alloc (be, n_out * sizeof (float));
  if (!dout || !tape)
    {
      g_strlcpy (error->message, "out of memory for the training step", sizeof error->message);
      goto out;
    }
  be->ops->fill (be, dout, 1e-3f, n_out);
  for (int run = 0; run < 3; run++)
    {
      gint64 t0 = g_get_monotonic_time ();
      os_unet_graph_input gin = {
        .sample = os_tape_leaf (tape, in.sample, (size_t) F * cfg->in_channels * h * w, NULL),
        .timesteps = &timestep,
        .context = os_tape_leaf (tape, in.context, (size_t) cfg->cross_attention_dim, NULL),
        .added_time_ids = in.ids,
        .B = 1, .F = F, .h = h, .w = w,
      };
      os_train_params_zero_grad (train);
      os_tv out = os_unet_graph_forward (m.unet, train, tape, &gin);
      if (os_tape_backward (tape, out, dout, error) != ONESTEP_OK)
        goto out;
      os_tape_reset (tape);
      os_train_adam_step (train, &adam, run + 1);
      if (be->ops->sync (be, error) != ONESTEP_OK)
        goto out;
      double seconds = (g_get_monotonic_time () - t0) / 1e6;
      if (run > 0 && (best < 0 || seconds < best))
        best = seconds;
    }

out:
  if (dout) be->ops->free (be, dout);
  os_tape_free (tape);
  os_train_params_free (train);
  bench_inputs_clear (be, &in);
  bench_model_clear (&m);
  return best;
}

int
onestep_cli_bench (int    argc,
                   char **argv)
{
  g_autofree char *device_name = NULL;
  gboolean json = FALSE, train = FALSE;
  int threads = 0;
  GOptionEntry entries[] = {
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu (default) or cuda", "D" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a one-line JSON summary on stdout", NULL },
    { "train", 0, 0, G_OPTION_ARG_NONE, &train, "Time a LoRA training step (rank 8, self-attention) and the forward of a 236 M-parameter SVD-shaped UNet instead", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- measure FLOP/s on this machine");
  g_autoptr(GError) error = NULL;
  onestep_device device = ONESTEP_DEVICE_CPU;
  onestep_error engine_error = { 0 };
  os_unet_config cfg = bench_unet_config ();
  const int B = 1, F = cfg.num_frames, h = 32, w = 48;
  double sgemm_gflops, unet_seconds, unet_flops, unet_gflops;
  os_backend *be;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (device_name != NULL && !onestep_cli_parse_device (device_name, &device, &error))
    {
      onestep_cli_fail ("%s", error->message);
      return 2;
    }
  if (device == ONESTEP_DEVICE_AUTO)
    device = ONESTEP_DEVICE_CPU;

  be = device == ONESTEP_DEVICE_CUDA ? os_backend_cuda_new (ONESTEP_PRECISION_AUTO, &engine_error)
                                     : os_backend_cpu_new (threads, &engine_error);
  if (be == NULL)
    {
      onestep_cli_fail ("%s", engine_error.message);
      return 1;
    }

  if (train)
    {
      os_unet_config train_cfg = train_unet_config ();
      int64_t params = 0;
      double forward = time_unet (be, &train_cfg, B, F, h, w, &engine_error);
      double step = forward > 0.0 ? time_train_step (be, &train_cfg, F, h, w, &params, &engine_error) : -1.0;
      size_t peak = be->peak_bytes;
      be->ops->destroy (be);
      if (step <= 0.0)
        {
          onestep_cli_fail ("bench failed: %s", engine_error.message);
          return 1;
        }
      if (json)
        printf ("{\"device\":\"%s\",\"unet_params\":%" G_GINT64_FORMAT ",\"forward_seconds\":%.4f,"
                "\"train_step_seconds\":%.4f,\"peak_bytes\":%zu,\"frames\":%d,\"latent\":\"%dx%d\"}\n",
                device == ONESTEP_DEVICE_CUDA ? "cuda" : "cpu", (gint64) params, forward, step, peak, F, w, h);
      else
        printf ("UNet of %.0f M parameters, %d frames of %dx%d latents: forward %.3f s, LoRA training step "
                "(forward, backward, AdamW) %.3f s, peak %.0f MB\n",
                params / 1e6, F, w, h, forward, step, peak / 1e6);
      return 0;
    }

  sgemm_gflops = device == ONESTEP_DEVICE_CUDA ? backend_gemm_gflops (be, 8192)
                                               : os_cpu_sgemm_gflops (SGEMM_SIZE, threads);
  unet_seconds = time_unet (be, &cfg, B, F, h, w, &engine_error);
  be->ops->destroy (be);
  if (unet_seconds <= 0.0 || sgemm_gflops <= 0.0)
    {
      onestep_cli_fail ("bench failed: %s", unet_seconds <= 0.0 ? engine_error.message
                                                                : "sgemm could not run");
      return 1;
    }
  unet_flops = synthetic_unet_flops (&cfg, B, F, h, w);
  unet_gflops = unet_flops / unet_seconds / 1e9;

  if (json)
    printf ("{\"device\":\"%s\",\"sgemm_gflops\":%.2f,\"unet_gflops\":%.2f,\"unet_efficiency\":%.4f,"
            "\"unet_gflop_per_forward\":%.3f,\"unet_seconds\":%.4f,\"frames\":%d,\"latent\":\"%dx%d\"}\n",
            device == ONESTEP_DEVICE_CUDA ? "cuda" : "cpu", sgemm_gflops, unet_gflops,
            unet_gflops / sgemm_gflops, unet_flops / 1e9, unet_seconds, F, w, h);
  else
    {
      printf ("sgemm: %.1f GFLOP/s (%dx%dx%d)\n", sgemm_gflops,
              device == ONESTEP_DEVICE_CUDA ? 8192 : SGEMM_SIZE,
              device == ONESTEP_DEVICE_CUDA ? 8192 : SGEMM_SIZE,
              device == ONESTEP_DEVICE_CUDA ? 8192 : SGEMM_SIZE);
      printf ("unet: %.1f GFLOP/s (%.2f GFLOP per forward, %d frames of %dx%d latents, %.3f s)\n",
              unet_gflops, unet_flops / 1e9, F, w, h, unet_seconds);
      printf ("unet_efficiency: %.1f%%\n", 100.0 * unet_gflops / sgemm_gflops);
    }
  return 0;
}
