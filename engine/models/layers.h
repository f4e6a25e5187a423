/* layers.h: the building blocks shared by the UNet, the VAE and CLIP.
 *
 * Each layer is a weights struct filled by a bind function (tensor names and
 * shapes checked through the weight set) and a forward function over explicit
 * backend buffers and shapes, so that a backward can later sit beside it. */
#ifndef ONESTEP_LAYERS_H
#define ONESTEP_LAYERS_H

#include <stdbool.h>

#include "backend.h"
#include "weights.h"

/* ---- buffers ---- */

/* Model buffers, by what they store (backend.h's os_storage; docs/precision.md
 * lists which buffer is which and why). n elements, NULL when out of memory.
 * os_alloc_floats: always float32, for what carries the residual stream
 * between blocks, statistics, the sampler's state and anything exchanged
 * with the host. os_alloc_activations: the backend's activation type (16
 * bits in fp16 and bf16 precision), for the temporaries inside a block. */
float *os_alloc_floats(os_backend *be, size_t n);
float *os_alloc_activations(os_backend *be, size_t n);
void os_free_floats(os_backend *be, float *p); /* either kind; NULL is fine */
/* ONESTEP_ERR_ABORTED when the backend's abort callback asks to stop. */
onestep_status os_check_abort(os_backend *be);

/* ---- weights ---- */

/* Formats a tensor name; names are far shorter than the buffers, so a
 * truncated one can only fail to match (and is reported as missing). */
void os_format_name(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct {
  const float *w, *b; /* b may be NULL */
  int in, out;
} os_linear_w;

typedef struct {
  const float *w, *b;
  int cin, cout, kh, kw;
} os_conv_w;

typedef struct {
  const float *gamma, *beta;
  int channels;
} os_norm_w;

void os_bind_linear(os_weight_set *ws, os_linear_w *l, const char *prefix, int in, int out,
                    bool bias);
void os_bind_conv(os_weight_set *ws, os_conv_w *c, const char *prefix, int cin, int cout, int k,
                  bool bias);
/* Conv3d with kernel (3,1,1): weight [cout, cin, 3, 1, 1]. */
void os_bind_conv_temporal(os_weight_set *ws, os_conv_w *c, const char *prefix, int cin, int cout);
void os_bind_norm(os_weight_set *ws, os_norm_w *n, const char *prefix, int channels);
/* AlphaBlender's weight of the spatial side from its [1] mix factor m, read
 * once at bind: sigmoid(m), or 1 - sigmoid(m) where the blend is switched
 * (the VAE decoder), computed in float32 as the reference does. *mix_factor
 * gets the tensor itself (training reads and updates it). */
float os_bind_mix_alpha(os_weight_set *ws, const char *name, bool switch_mix,
                        const float **mix_factor);

/* y[T,out] = x W^T + b (+ residual, which may equal y). */
void os_linear_forward(os_backend *be, const os_linear_w *l, float *y, const float *x, int T,
                       const float *residual);
/* Same-size convolution (stride 1, padding k/2). */
void os_conv_forward(os_backend *be, const os_conv_w *c, float *y, const float *x, int N, int H,
                     int W, const float *residual);

/* ---- embeddings ---- */

/* diffusers' Timesteps(dim, flip_sin_to_cos=True, shift 0) on the host:
 * out[i, :] = [cos(t_i f) | sin(t_i f)], f_j = exp(-ln(1e4) j / (dim/2)). */
void os_sinusoid_embedding(float *out, const float *t, int n, int dim);

/* TimestepEmbedding: linear_1 -> SiLU -> linear_2. */
typedef struct {
  os_linear_w linear_1, linear_2;
} os_timestep_embedding_w;

void os_bind_timestep_embedding(os_weight_set *ws, os_timestep_embedding_w *e, const char *prefix,
                                int in, int hidden, int out);
/* y [T, out]; uses a scratch buffer of T*hidden. */
onestep_status os_timestep_embedding_forward(os_backend *be, const os_timestep_embedding_w *e,
                                             float *y, const float *x, int T);

/* Layers that work image by image (spatial resnets, upsampling) process
 * chunks of images whose temporaries stay near this many floats (default
 * below, 0 restores it); temporal resnets whose tensors exceed it convolve in
 * place through windows of frames. The result does not depend on it (beyond
 * the CPU's summation order for other matrix sizes). For tests and
 * memory-tight devices. */
#define OS_IMAGE_CHUNK_FLOATS ((size_t)64 << 20)
void os_layers_set_image_chunk_budget(size_t floats);

/* ---- resnets ---- */

/* ResnetBlock2D: GN -> SiLU -> conv -> (+temb) -> GN -> SiLU -> conv, + shortcut. */
typedef struct {
  os_norm_w norm1, norm2;
  os_conv_w conv1, conv2, conv_shortcut;
  os_linear_w time_emb_proj;
  bool has_shortcut, has_temb;
  int cin, cout, groups;
  float eps;
} os_resnet2d_w;

void os_bind_resnet2d(os_weight_set *ws, os_resnet2d_w *r, const char *prefix, int cin, int cout,
                      int temb_dim, int groups, float eps);
/* x [N,cin,H,W] -> y [N,cout,H,W]; temb_silu [N,temb] (SiLU already applied) or NULL.
 * y may equal x when cin == cout (in place). */
onestep_status os_resnet2d_forward(os_backend *be, const os_resnet2d_w *r, float *y, const float *x,
                                   int N, int H, int W, const float *temb_silu);

/* TemporalResnetBlock: the same with (3,1,1) convolutions and GroupNorm across frames. */
typedef struct {
  os_norm_w norm1, norm2;
  os_conv_w conv1, conv2;
  os_linear_w time_emb_proj;
  bool has_temb;
  int channels, groups;
  float eps;
} os_temporal_resnet_w;

/* SpatioTemporalResBlock: spatial resnet, temporal resnet on its output, blended. */
typedef struct {
  os_resnet2d_w spatial;
  os_temporal_resnet_w temporal;
  float spatial_alpha; /* out = alpha * spatial + (1 - alpha) * temporal */
  const float *mix_factor; /* [1]: alpha = sigmoid(mix_factor), or 1 - that when switched */
  bool switch_mix;
} os_st_resblock_w;

void os_bind_st_resblock(os_weight_set *ws, os_st_resblock_w *r, const char *prefix, int cin,
                         int cout, int temb_dim, float eps, float temporal_eps, bool switch_mix);
/* A nearest resize of the input from (H, W) to the block's size, then a
 * same-size conv, run in front of a resnet chunk by chunk of images (the
 * VAE decoder's upsampler), so that the resized input never exists whole. */
typedef struct {
  const os_conv_w *conv;
  int H, W;
} os_resize_input;

/* x [B*F, cin, H, W] (or at resize's size) -> *y, a new buffer
 * [B*F, cout, H, W] (NULL on error); resize may be NULL. With consume_x, x is
 * freed as soon as the spatial half has read it (also on error), so that the
 * input never coexists with the temporal half's buffers. */
onestep_status os_st_resblock_forward(os_backend *be, const os_st_resblock_w *r, float **y,
                                      float *x, bool consume_x, int B, int F, int H, int W,
                                      const float *temb_silu, const os_resize_input *resize);

/* ---- sampling ---- */

/* Conv 3x3 stride 2: UNet pads 1 on every side, the VAE encoder pads right and bottom by 1. */
typedef struct {
  os_conv_w conv;
  bool asymmetric_pad;
} os_downsample_w;

void os_bind_downsample(os_weight_set *ws, os_downsample_w *d, const char *prefix, int channels,
                        bool asymmetric_pad);
void os_downsample_out_size(const os_downsample_w *d, int H, int W, int *Ho, int *Wo);
void os_downsample_forward(os_backend *be, const os_downsample_w *d, float *y, const float *x,
                           int N, int H, int W);

/* Nearest resize to (Ho, Wo), then conv 3x3; scratch of N*C*Ho*Wo. */
onestep_status os_upsample_forward(os_backend *be, const os_conv_w *conv, float *y, const float *x,
                                   int N, int H, int W, int Ho, int Wo);

/* ---- attention and feed-forward ---- */

typedef struct {
  os_linear_w to_q, to_k, to_v, to_out;
  int dim, heads, head_dim;
} os_attention_w;

/* to_q/k/v [dim, kv_dim] (bias as given), to_out [dim, dim] with bias. */
void os_bind_attention(os_weight_set *ws, os_attention_w *a, const char *prefix, int dim,
                       int kv_dim, int heads, bool qkv_bias, const char *q_name,
                       const char *k_name, const char *v_name, const char *out_name);
/* Layers that work token by token (attention projections, feed-forward)
 * process chunks of tokens whose temporaries stay near this many floats;
 * defaults below by backend, 0 restores them. */
#define OS_HOST_TOKEN_CHUNK_FLOATS ((size_t)16 << 20)
#define OS_DEVICE_TOKEN_CHUNK_FLOATS ((size_t)128 << 20)
void os_layers_set_token_chunk_budget(size_t floats);

/* y[n_seq*S, dim] += attn(xn) where xn is the normalised input of the same
 * shape; xn is overwritten (it holds the attention output before to_out).
 * q, k and v exist for chunks of whole sequences only. */
onestep_status os_self_attention_forward(os_backend *be, const os_attention_w *a, float *y,
                                         float *xn, int n_seq, int S);
/* Cross-attention to one context token per group: softmax over a single key
 * is exactly 1, so every query of group g receives to_out(to_v(ctx_g)).
 * y [G, R, dim] += that; ctx [G, kv_dim]. */
onestep_status os_single_token_cross_attention_forward(os_backend *be, const os_attention_w *a,
                                                       float *y, const float *ctx, int G, int R);

/* FeedForward with GEGLU: proj [2*inner, dim] -> a * gelu(g) -> out [dim, inner]. */
typedef struct {
  os_linear_w proj, out;
  int dim, inner;
} os_geglu_ff_w;

void os_bind_geglu_ff(os_weight_set *ws, os_geglu_ff_w *f, const char *prefix, int dim, int inner);
/* y[T,dim] = residual + ff(xn); residual may equal y. Chunked over tokens so
 * the 2*inner expansion stays bounded. */
onestep_status os_geglu_ff_forward(os_backend *be, const os_geglu_ff_w *f, float *y,
                                   const float *xn, int T, const float *residual);

#endif
