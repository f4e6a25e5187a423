/* test_synthetic_unet.c: the bench's synthetic UNet has exactly the tensors,
 * with exactly the shapes, that diffusers wrote for tiny-a's UNet, and its
 * FLOP count for SVD-XT matches svd-architecture.md section 11. */
#include <glib.h>
#include <stdio.h>

#include "synthetic-unet.h"

/* SVD-XT at 576x1024, 14 frames, batch 1: 44.7 TFLOP by the reference math. */
static int
check_svd_xt_flops (void)
{
  os_unet_config svd = {
    .in_channels = 8, .out_channels = 4, .num_frames = 14, .n_levels = 4,
    .block_out_channels = { 320, 640, 1280, 1280 },
    .num_attention_heads = { 5, 10, 20, 20 },
    .transformer_layers_per_block = { 1, 1, 1, 1 },
    .down_has_attention = { true, true, true, false },
    .up_has_attention = { false, true, true, true },
    .layers_per_block = 2, .cross_attention_dim = 1024,
    .addition_time_embed_dim = 256, .projection_class_embeddings_input_dim = 768,
  };
  double tflop = synthetic_unet_flops (&svd, 1, 14, 72, 128) / 1e12;

  printf ("SVD-XT 14 frames: %.2f TFLOP per UNet forward\n", tflop);
  if (tflop < 44.7 * 0.99 || tflop > 44.7 * 1.01)
    {
      fprintf (stderr, "FAIL SVD-XT FLOPs %.2f T, expected 44.7 T\n", tflop);
      return 1;
    }
  return 0;
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *config_path = g_build_filename (argv[1], "model", "unet", "config.json", NULL);
  g_autofree char *weights_path = g_build_filename (argv[1], "model", "unet",
                                                    "diffusion_pytorch_model.safetensors", NULL);
  os_unet_config cfg;
  onestep_error error = { 0 };
  SyntheticUnet synthetic = { 0 };
  os_safetensors *st;
  int failures = 0;

  if (os_unet_config_load (config_path, &cfg, &error) != ONESTEP_OK ||
      (st = os_safetensors_open (weights_path, &error)) == NULL)
    {
      fprintf (stderr, "%s\n", error.message);
      return 1;
    }
  if (!synthetic_unet_build (&cfg, 1, &synthetic))
    return 1;

  for (int i = 0; i < synthetic.n_tensors; i++)
    {
      const os_st_tensor *mine = &synthetic.tensors[i];
      const os_st_tensor *ref = os_safetensors_find (st, mine->name);
      gboolean same = ref != NULL && ref->ndim == mine->ndim;

      for (int d = 0; same && d < mine->ndim; d++)
        same = ref->shape[d] == mine->shape[d];
      if (!same)
        {
          fprintf (stderr, "FAIL %s: %s\n", mine->name, ref ? "shape differs" : "not in the file");
          failures++;
        }
    }
  if (synthetic.n_tensors != st->n_tensors)
    {
      fprintf (stderr, "FAIL %d synthetic tensors, %d in %s\n", synthetic.n_tensors,
               st->n_tensors, weights_path);
      failures++;
    }
  printf ("%d tensors, %" G_GINT64_FORMAT " parameters\n", synthetic.n_tensors, synthetic.n_params);
  synthetic_unet_clear (&synthetic);
  os_safetensors_close (st);
  failures += check_svd_xt_flops ();
  return failures ? 1 : 0;
}
