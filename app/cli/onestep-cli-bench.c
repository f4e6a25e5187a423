/* onestep-cli-bench.c: `onestep-cli bench`, this machine's GEMM rate and the
 * UNet forward rate on a mid-size synthetic SVD-shaped model. */
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "backend.h"
#include "cpu_bench.h"
#include "onestep-cli.h"
#include "philox.h"
#include "synthetic-unet.h"
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
  SyntheticUnet synthetic = { 0 };
  os_weight_set *ws = NULL;
  os_unet *unet = NULL;
  size_t n_in = (size_t) B * F * cfg->in_channels * h * w;
  size_t n_out = (size_t) B * F * cfg->out_channels * h * w;
  size_t n_ctx = (size_t) B * cfg->cross_attention_dim;
  g_autofree float *host = g_new (float, MAX (n_in, n_ctx));
  float *sample = NULL, *context = NULL, *out = NULL;
  float ids[6] = { 6, 127, 0.02f, 6, 127, 0.02f };
  double best = -1.0;

  if (!synthetic_unet_build (cfg, 1, &synthetic))
    {
      g_strlcpy (error->message, "out of memory for the synthetic weights", sizeof error->message);
      return -1.0;
    }
  ws = os_weight_set_new ("unet", "synthetic bench model", be);
  for (int i = 0; i < synthetic.n_tensors; i++)
    if (os_weight_set_add (ws, synthetic.tensors[i].name, &synthetic.tensors[i], error) != ONESTEP_OK)
      goto out;
  unet = os_unet_bind (cfg, ws);
  if (os_weights_finish (ws, error) != ONESTEP_OK || unet == NULL)
    goto out;

  sample = be->ops->alloc (be, n_in * sizeof (float));
  context = be->ops->alloc (be, n_ctx * sizeof (float));
  out = be->ops->alloc (be, n_out * sizeof (float));
  if (!sample || !context || !out)
    {
      g_strlcpy (error->message, "out of memory for the UNet activations", sizeof error->message);
      goto out;
    }
  os_philox_normal (2, 0, 0, host, n_in);
  be->ops->upload (be, sample, host, n_in * sizeof (float));
  os_philox_normal (2, 1, 0, host, n_ctx);
  be->ops->upload (be, context, host, n_ctx * sizeof (float));

  for (int run = 0; run < 3; run++)
    {
      gint64 t0 = g_get_monotonic_time ();
      if (os_unet_forward (unet, be, sample, 1.0f, context, ids, B, F, h, w, out, error) != ONESTEP_OK ||
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
  if (sample) be->ops->free (be, sample);
  if (context) be->ops->free (be, context);
  if (out) be->ops->free (be, out);
  if (unet) os_unet_free (unet);
  if (ws) os_weight_set_free (ws);
  synthetic_unet_clear (&synthetic);
  return best;
}

int
onestep_cli_bench (int    argc,
                   char **argv)
{
  g_autofree char *device_name = NULL;
  gboolean json = FALSE;
  int threads = 0;
  GOptionEntry entries[] = {
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_name, "cpu (default) or cuda", "D" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a one-line JSON summary on stdout", NULL },
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
