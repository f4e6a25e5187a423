/* tape_ops.h: the differentiable ops of the tape, each a backend forward op
 * with its backward beside it (tape_ops.c). Shapes follow backend.h; every op
 * returns a new tape tensor (OS_TAPE_NONE after an error). */
#ifndef ONESTEP_TAPE_OPS_H
#define ONESTEP_TAPE_OPS_H

#include "tape.h"

/* y[T,out] = x[T,in] W[out,in]^T + b (b may be OS_TAPE_NONE). */
os_tv os_tape_linear(os_tape *t, os_tv x, os_tv W, os_tv b, int T, int in, int out);
os_tv os_tape_conv2d(os_tape *t, os_tv x, os_tv W, os_tv b, const os_conv2d_shape *shape);
/* Kernel (3,1,1) over frames: x [B,F,Cin,HW] -> [B,F,Cout,HW]. */
os_tv os_tape_conv_temporal(os_tape *t, os_tv x, os_tv W, os_tv b, int B, int F, int Cin,
                            int Cout, int HW);
os_tv os_tape_group_norm(os_tape *t, os_tv x, os_tv gamma, os_tv beta, int N, int C, int HW,
                         int G, int frames_per_stat, float eps, bool silu);
os_tv os_tape_layer_norm(os_tape *t, os_tv x, os_tv gamma, os_tv beta, int T, int C, float eps);
/* Self- or cross-attention over contiguous [n_seq*S, heads*head_dim] tensors. */
os_tv os_tape_attention(os_tape *t, os_tv q, os_tv k, os_tv v, int n_seq, int Sq, int Sk,
                        int heads, int head_dim, float scale);

os_tv os_tape_silu(os_tape *t, os_tv x, size_t n);
os_tv os_tape_gelu(os_tape *t, os_tv x, size_t n);
/* x [T, 2C] -> x[:, :C] * gelu(x[:, C:]). */
os_tv os_tape_geglu(os_tape *t, os_tv x, int T, int C);

/* a + scale * b. */
os_tv os_tape_add_scaled(os_tape *t, os_tv a, os_tv b, float scale, size_t n);
os_tv os_tape_add(os_tape *t, os_tv a, os_tv b, size_t n);
/* Slice i of x (n_slices equal slices) times scales[i] (host values). */
os_tv os_tape_scale_slices(os_tape *t, os_tv x, const float *scales, int n_slices, size_t n);
/* AlphaBlender: alpha * a + (1 - alpha) * b with alpha = sigmoid(m), or
 * 1 - sigmoid(m) when switched; m is a [1] tensor that may be trained. */
os_tv os_tape_blend(os_tape *t, os_tv a, os_tv b, os_tv m, bool switched, size_t n);

/* x [G,R,C] + v[g] on every row of group g; x OS_TAPE_NONE: v broadcast over R rows. */
os_tv os_tape_add_row_vector(os_tape *t, os_tv x, os_tv v, int G, int R, int C);
/* x [N,C,P] + v[n,c] on every position. */
os_tv os_tape_add_channel_vector(os_tape *t, os_tv x, os_tv v, int N, int C, int P);
/* [A,B,C,I] -> [A,C,B,I]. */
os_tv os_tape_permute_0213(os_tape *t, os_tv x, int A, int B, int C, int I);
os_tv os_tape_upsample_nearest(os_tape *t, os_tv x, int N, int C, int H, int W, int Ho, int Wo);
os_tv os_tape_concat_channels(os_tape *t, os_tv a, int Ca, os_tv b, int Cb, int N, int P);
/* x [N, C, P] without its first `skip` channels: [N, C - skip, P]. */
os_tv os_tape_drop_channels(os_tape *t, os_tv x, int N, int C, int skip, int P);

/* ---- the discriminator's layers (training.md section 5) ---- */

/* x for x >= 0, slope * x below. */
os_tv os_tape_leaky_relu(os_tape *t, os_tv x, float slope, size_t n);
/* PixelShuffle(r): [N, C*r*r, H, W] -> [N, C, H*r, W*r]. */
os_tv os_tape_pixel_shuffle(os_tape *t, os_tv x, int N, int C, int H, int W, int r);
/* Bilinear resize [N,C,H,W] -> [N,C,Ho,Wo] (align_corners false, no antialias). */
os_tv os_tape_resize_bilinear(os_tape *t, os_tv x, int N, int C, int H, int W, int Ho, int Wo);
/* BatchNormLocal on x [N, C, P], virtual batches of `group` samples. */
os_tv os_tape_batch_norm_local(os_tape *t, os_tv x, os_tv gamma, os_tv beta, int N, int C, int P,
                               int group, float eps);
/* PyTorch's spectral_norm in training mode: advances the persistent u [rows]
 * and v [cols] (backend memory, the caller's) by one power iteration, then
 * returns W / sigma, sigma = u^T W v, W viewed as [rows, cols]. The backward
 * holds this forward's u and v constant (no gradient through the iteration)
 * but differentiates sigma's dependence on W. */
os_tv os_tape_spectral_norm(os_tape *t, os_tv W, float *u, float *v, int rows, int cols,
                            float eps);
/* y[n, p] = sum_c x[n, c, p] e[n, c] for x [N, C, P], e [N, C]. */
os_tv os_tape_channel_projection(os_tape *t, os_tv x, os_tv e, int N, int C, int P);

#endif
