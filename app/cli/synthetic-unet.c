/* synthetic-unet.c: the UNet's tensor list walked from its config. One walk
 * serves two purposes: naming and shaping the tensors, and counting the
 * FLOPs each weight costs at the resolution where it is applied. */
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "philox.h"
#include "synthetic-unet.h"

typedef struct {
  /* tensor mode */
  GArray *tensors; /* os_st_tensor */
  uint64_t seed;
  gboolean failed;
  double flops;
} Walk;

static void weight (Walk *walk, double positions, int ndim, const int *dims, const char *fmt, ...)
  G_GNUC_PRINTF (5, 6);

/* Registers a weight of the given shape; it costs 2 x numel FLOPs at each of the
 * positions (images x pixels, or tokens) it is applied to. */
static void
weight (Walk       *walk,
        double      positions,
        int         ndim,
        const int  *dims,
        const char *fmt,
        ...)
{
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    numel *= dims[i];
  walk->flops += 2.0 * (double) numel * positions;
  if (walk->tensors == NULL)
    return;

  os_st_tensor t = { 0 };
  va_list args;
  va_start (args, fmt);
  t.name = g_strdup_vprintf (fmt, args);
  va_end (args);
  t.dtype = OS_DTYPE_F32;
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t.shape[i] = dims[i];
  t.nbytes = (size_t) numel * sizeof (float);
  float *data = g_try_malloc (t.nbytes);
  if (data == NULL)
    {
      walk->failed = TRUE;
      g_free (t.name);
      return;
    }
  /* Small random values keep activations finite through many random layers. */
  os_philox_normal (walk->seed, walk->tensors->len, 0, data, (size_t) numel);
  for (int64_t i = 0; i < numel; i++)
    data[i] *= 0.02f;
  t.data = data;
  g_array_append_val (walk->tensors, t);
}

static void
norm (Walk       *walk,
      const char *prefix,
      int         C)
{
  weight (walk, 0, 1, &C, "%s.weight", prefix);
  weight (walk, 0, 1, &C, "%s.bias", prefix);
}

static void
linear (Walk *walk, double tokens, gboolean bias, int out, int in, const char *fmt, ...)
  G_GNUC_PRINTF (6, 7);

static void
linear (Walk       *walk,
        double      tokens,
        gboolean    bias,
        int         out,
        int         in,
        const char *fmt,
        ...)
{
  va_list args;
  va_start (args, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, args);
  va_end (args);
  int dims[2] = { out, in };
  weight (walk, tokens, 2, dims, "%s.weight", prefix);
  if (bias)
    weight (walk, 0, 1, &out, "%s.bias", prefix);
}

static void
conv (Walk       *walk,
      double      positions,
      const char *prefix,
      int         out,
      int         in,
      int         kt,
      int         k)
{
  if (kt > 0)
    {
      int dims[5] = { out, in, kt, 1, 1 };
      weight (walk, positions, 5, dims, "%s.weight", prefix);
    }
  else
    {
      int dims[4] = { out, in, k, k };
      weight (walk, positions, 4, dims, "%s.weight", prefix);
    }
  weight (walk, 0, 1, &out, "%s.bias", prefix);
}

static void
mix_factor (Walk       *walk,
            const char *prefix)
{
  int one = 1;
  weight (walk, 0, 1, &one, "%s.time_mixer.mix_factor", prefix);
}

/* One half of a SpatioTemporalResBlock, R.half: the spatial one has k x k
 * convs (kt = 0), the temporal one convs over kt frames (k = 0). */
static void
resnet_half (Walk       *walk,
             const char *R,
             const char *half,
             int         Cin,
             int         Cout,
             int         temb,
             double      N,
             double      S,
             int         kt,
             int         k)
{
  char p[256];

  snprintf (p, sizeof p, "%s.%s.norm1", R, half);
  norm (walk, p, Cin);
  snprintf (p, sizeof p, "%s.%s.conv1", R, half);
  conv (walk, N * S, p, Cout, Cin, kt, k);
  linear (walk, N, TRUE, Cout, temb, "%s.%s.time_emb_proj", R, half);
  snprintf (p, sizeof p, "%s.%s.norm2", R, half);
  norm (walk, p, Cout);
  snprintf (p, sizeof p, "%s.%s.conv2", R, half);
  conv (walk, N * S, p, Cout, Cout, kt, k);
  if (Cin != Cout)
    {
      snprintf (p, sizeof p, "%s.%s.conv_shortcut", R, half);
      conv (walk, N * S, p, Cout, Cin, 0, 1);
    }
}

/* SpatioTemporalResBlock at N images of S pixels. */
static void
resblock (Walk       *walk,
          const char *R,
          int         Cin,
          int         Cout,
          int         temb,
          double      N,
          double      S)
{
  resnet_half (walk, R, "spatial_res_block", Cin, Cout, temb, N, S, 0, 3);
  resnet_half (walk, R, "temporal_res_block", Cout, Cout, temb, N, S, 3, 0);
  mix_factor (walk, R);
}

/* Self- or cross-attention projections of one transformer block. */
static void
attention (Walk       *walk,
           const char *prefix,
           int         C,
           int         kv_dim,
           double      tokens,
           double      kv_tokens)
{
  linear (walk, tokens, FALSE, C, C, "%s.to_q", prefix);
  linear (walk, kv_tokens, FALSE, C, kv_dim, "%s.to_k", prefix);
  linear (walk, kv_tokens, FALSE, C, kv_dim, "%s.to_v", prefix);
  linear (walk, tokens, TRUE, C, C, "%s.to_out.0", prefix);
}

static void
feed_forward (Walk       *walk,
              const char *prefix,
              int         C,
              double      tokens)
{
  linear (walk, tokens, TRUE, 8 * C, C, "%s.net.0.proj", prefix);
  linear (walk, tokens, TRUE, C, 4 * C, "%s.net.2", prefix);
}

/* TransformerSpatioTemporalModel with C channels at B x F images of S tokens. */
static void
tsm (Walk       *walk,
     const char *A,
     int         C,
     int         layers,
     int         cross_dim,
     double      B,
     double      F,
     double      S)
{
  static const char *const spatial_norms[] = { "norm1", "norm2", "norm3" };
  static const char *const temporal_norms[] = { "norm_in", "norm1", "norm2", "norm3" };
  double N = B * F, tokens = N * S;
  char p[256];

  snprintf (p, sizeof p, "%s.norm", A);
  norm (walk, p, C);
  linear (walk, tokens, TRUE, C, C, "%s.proj_in", A);
  linear (walk, tokens, TRUE, C, C, "%s.proj_out", A);
  linear (walk, N, TRUE, 4 * C, C, "%s.time_pos_embed.linear_1", A);
  linear (walk, N, TRUE, C, 4 * C, "%s.time_pos_embed.linear_2", A);
  mix_factor (walk, A);
  for (int k = 0; k < layers; k++)
    {
      for (int i = 0; i < 3; i++)
        {
          snprintf (p, sizeof p, "%s.transformer_blocks.%d.%s", A, k, spatial_norms[i]);
          norm (walk, p, C);
        }
      snprintf (p, sizeof p, "%s.transformer_blocks.%d.attn1", A, k);
      attention (walk, p, C, C, tokens, tokens);
      snprintf (p, sizeof p, "%s.transformer_blocks.%d.attn2", A, k);
      attention (walk, p, C, cross_dim, tokens, B);
      snprintf (p, sizeof p, "%s.transformer_blocks.%d.ff", A, k);
      feed_forward (walk, p, C, tokens);
      /* SDPA: spatial self-attention 2 S^2 C MACs per image, temporal 2 F S C per frame. */
      walk->flops += 2.0 * (2.0 * S * S * C) * N;
      walk->flops += 2.0 * (2.0 * F * S * C) * N;

      for (int i = 0; i < 4; i++)
        {
          snprintf (p, sizeof p, "%s.temporal_transformer_blocks.%d.%s", A, k, temporal_norms[i]);
          norm (walk, p, C);
        }
      snprintf (p, sizeof p, "%s.temporal_transformer_blocks.%d.ff_in", A, k);
      feed_forward (walk, p, C, tokens);
      snprintf (p, sizeof p, "%s.temporal_transformer_blocks.%d.attn1", A, k);
      attention (walk, p, C, C, tokens, tokens);
      snprintf (p, sizeof p, "%s.temporal_transformer_blocks.%d.attn2", A, k);
      attention (walk, p, C, cross_dim, tokens, B);
      snprintf (p, sizeof p, "%s.temporal_transformer_blocks.%d.ff", A, k);
      feed_forward (walk, p, C, tokens);
    }
}

static void
walk_unet (Walk                 *walk,
           const os_unet_config *cfg,
           double                B,
           double                F,
           int                   h,
           int                   w)
{
  int L = cfg->n_levels, c0 = cfg->block_out_channels[0], temb = 4 * c0;
  int D = cfg->cross_attention_dim;
  double N = B * F;
  double S[OS_MAX_LEVELS];
  char name[128];

  for (int l = 0; l < L; l++)
    {
      S[l] = (double) h * w;
      h = (h + 1) / 2;
      w = (w + 1) / 2;
    }

  conv (walk, N * S[0], "conv_in", c0, cfg->in_channels, 0, 3);
  linear (walk, B, TRUE, temb, c0, "time_embedding.linear_1");
  linear (walk, B, TRUE, temb, temb, "time_embedding.linear_2");
  linear (walk, B, TRUE, temb, cfg->projection_class_embeddings_input_dim, "add_embedding.linear_1");
  linear (walk, B, TRUE, temb, temb, "add_embedding.linear_2");

  for (int l = 0; l < L; l++)
    {
      int C = cfg->block_out_channels[l];
      int prev = l == 0 ? c0 : cfg->block_out_channels[l - 1];
      for (int j = 0; j < cfg->layers_per_block; j++)
        {
          snprintf (name, sizeof name, "down_blocks.%d.resnets.%d", l, j);
          resblock (walk, name, j == 0 ? prev : C, C, temb, N, S[l]);
          if (cfg->down_has_attention[l])
            {
              snprintf (name, sizeof name, "down_blocks.%d.attentions.%d", l, j);
              tsm (walk, name, C, cfg->transformer_layers_per_block[l], D, B, F, S[l]);
            }
        }
      if (l < L - 1)
        {
          snprintf (name, sizeof name, "down_blocks.%d.downsamplers.0.conv", l);
          conv (walk, N * S[l + 1], name, C, C, 0, 3);
        }
    }

  int Cm = cfg->block_out_channels[L - 1];
  resblock (walk, "mid_block.resnets.0", Cm, Cm, temb, N, S[L - 1]);
  tsm (walk, "mid_block.attentions.0", Cm, cfg->transformer_layers_per_block[L - 1], D, B, F,
       S[L - 1]);
  resblock (walk, "mid_block.resnets.1", Cm, Cm, temb, N, S[L - 1]);

  for (int i = 0; i < L; i++)
    {
      int level = L - 1 - i;
      int out = cfg->block_out_channels[level];
      int prev_out = cfg->block_out_channels[i == 0 ? L - 1 : level + 1];
      int in = cfg->block_out_channels[level > 0 ? level - 1 : 0];
      for (int j = 0; j <= cfg->layers_per_block; j++)
        {
          int skip = j == cfg->layers_per_block ? in : out;
          int res_in = j == 0 ? prev_out : out;
          snprintf (name, sizeof name, "up_blocks.%d.resnets.%d", i, j);
          resblock (walk, name, res_in + skip, out, temb, N, S[level]);
          if (cfg->up_has_attention[i])
            {
              snprintf (name, sizeof name, "up_blocks.%d.attentions.%d", i, j);
              tsm (walk, name, out, cfg->transformer_layers_per_block[level], D, B, F, S[level]);
            }
        }
      if (level > 0)
        {
          snprintf (name, sizeof name, "up_blocks.%d.upsamplers.0.conv", i);
          conv (walk, N * S[level - 1], name, out, out, 0, 3);
        }
    }

  norm (walk, "conv_norm_out", c0);
  conv (walk, N * S[0], "conv_out", cfg->out_channels, c0, 0, 3);
}

gboolean
synthetic_unet_build (const os_unet_config *cfg,
                      uint64_t              seed,
                      SyntheticUnet        *out)
{
  Walk walk = { 0 };

  walk.tensors = g_array_new (FALSE, TRUE, sizeof (os_st_tensor));
  walk.seed = seed;
  walk_unet (&walk, cfg, 1, 1, 8, 8);
  out->n_tensors = walk.tensors->len;
  out->n_params = 0;
  for (guint i = 0; i < walk.tensors->len; i++)
    out->n_params += (int64_t) (g_array_index (walk.tensors, os_st_tensor, i).nbytes / sizeof (float));
  out->tensors = (os_st_tensor *) g_array_free (walk.tensors, FALSE);
  if (walk.failed)
    {
      synthetic_unet_clear (out);
      return FALSE;
    }
  return TRUE;
}

void
synthetic_unet_clear (SyntheticUnet *unet)
{
  for (int i = 0; i < unet->n_tensors; i++)
    {
      g_free (unet->tensors[i].name);
      g_free ((void *) unet->tensors[i].data);
    }
  g_free (unet->tensors);
  unet->tensors = NULL;
  unet->n_tensors = 0;
}

double
synthetic_unet_flops (const os_unet_config *cfg,
                      int                   B,
                      int                   F,
                      int                   h,
                      int                   w)
{
  Walk walk = { 0 };
  walk_unet (&walk, cfg, B, F, h, w);
  return walk.flops;
}
