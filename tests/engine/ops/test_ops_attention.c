/* test_ops_attention.c: tiled online-softmax attention against a plain
 * softmax in double: Sk = 1, Sq = 1, several query and key tiles with a
 * growing running maximum, huge scores, head_dim 4..512, interleaved q/k/v. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops_test.h"

typedef struct {
  int n_seq, Sq, Sk, heads, hd, q_stride, k_stride, v_stride, o_stride;
  float scale;
} attention_case;

static void
reference_attention(double *o, const float *q, const float *k, const float *v,
                    const attention_case *c)
{
  double *scores = ops_zeros_double(c->Sk);
  for (int s = 0; s < c->n_seq; s++)
    for (int h = 0; h < c->heads; h++)
      for (int i = 0; i < c->Sq; i++) {
        const float *qi = q + ((size_t)s * c->Sq + i) * c->q_stride + h * c->hd;
        double max = -INFINITY, sum = 0.0;
        for (int j = 0; j < c->Sk; j++) {
          const float *kj = k + ((size_t)s * c->Sk + j) * c->k_stride + h * c->hd;
          double dot = 0.0;
          for (int d = 0; d < c->hd; d++)
            dot += (double)qi[d] * kj[d];
          scores[j] = dot * c->scale;
          max = fmax(max, scores[j]);
        }
        for (int j = 0; j < c->Sk; j++)
          sum += scores[j] = exp(scores[j] - max);
        double *oi = o + ((size_t)s * c->Sq + i) * c->o_stride + h * c->hd;
        for (int d = 0; d < c->hd; d++) {
          double acc = 0.0;
          for (int j = 0; j < c->Sk; j++)
            acc += scores[j] * v[((size_t)s * c->Sk + j) * c->v_stride + h * c->hd + d];
          oi[d] = acc / sum;
        }
      }
  free(scores);
}

/* ramp > 0 adds a score that grows with the key index (through dimension 0
 * of every head), so each new key tile raises the running maximum.
 * exact_scores rounds q and k to multiples of 1/4 so that float dot products
 * are exact: huge scores then test overflow, not float32's score rounding
 * (which any float implementation shares). */
static void
run_case(os_backend *be, attention_case c, float ramp, bool exact_scores, const char *label)
{
  size_t q_n = (size_t)c.n_seq * c.Sq * c.q_stride, k_n = (size_t)c.n_seq * c.Sk * c.k_stride;
  size_t v_n = (size_t)c.n_seq * c.Sk * c.v_stride, o_n = (size_t)c.n_seq * c.Sq * c.o_stride;
  float *q = ops_random(q_n, 21, -1, 1), *k = ops_random(k_n, 22, -1, 1);
  float *v = ops_random(v_n, 23, -1, 1), *o = ops_random(o_n, 24, -1, 1);
  if (exact_scores) {
    for (size_t i = 0; i < q_n; i++)
      q[i] = roundf(q[i] * 4) / 4;
    for (size_t i = 0; i < k_n; i++)
      k[i] = roundf(k[i] * 4) / 4;
  }
  if (ramp > 0) {
    for (size_t t = 0; t < (size_t)c.n_seq * c.Sq; t++)
      for (int h = 0; h < c.heads; h++)
        q[t * c.q_stride + h * c.hd] = 1.0f;
    for (int s = 0; s < c.n_seq; s++)
      for (int j = 0; j < c.Sk; j++)
        for (int h = 0; h < c.heads; h++)
          k[((size_t)s * c.Sk + j) * c.k_stride + h * c.hd] = ramp * j;
  }
  double *want = ops_to_double(o, o_n); /* columns outside the heads stay untouched */
  reference_attention(want, q, k, v, &c);
  be->ops->attention(be, o, q, k, v, c.n_seq, c.Sq, c.Sk, c.heads, c.hd, c.q_stride,
                     c.k_stride, c.v_stride, c.o_stride, c.scale);
  char what[120];
  snprintf(what, sizeof what, "attention %s (seq %d, Sq %d, Sk %d, %dx%d)", label, c.n_seq,
           c.Sq, c.Sk, c.heads, c.hd);
  ops_check_scaled(what, o, want, o_n, 2e-6);
  free(q), free(k), free(v), free(o), free(want);
}

/* One query, two keys, hand-computed softmax weights e/(1+e) and 1/(1+e). */
static void
test_attention_hand(os_backend *be)
{
  float q[2] = { 1, 0 }, k[4] = { 1, 0, 0, 1 }, v[4] = { 1, 2, 3, 4 }, o[2];
  be->ops->attention(be, o, q, k, v, 1, 1, 2, 1, 2, 2, 2, 2, 2, 1.0f);
  double w1 = 0.7310585786300049, w2 = 0.2689414213699951;
  double want[2] = { w1 * 1 + w2 * 3, w1 * 2 + w2 * 4 };
  ops_check_pointwise("attention hand: 1 query, 2 keys", o, want, 2, 1e-6);
}

/* q, k, v as the three thirds of each token of one [T, 3C] buffer. */
static void
test_attention_interleaved(os_backend *be)
{
  const int n_seq = 2, T = 37, heads = 3, hd = 8, C = heads * hd;
  attention_case c = { n_seq, T, T, heads, hd, 3 * C, 3 * C, 3 * C, C + 5, 0.35f };
  float *qkv = ops_random((size_t)n_seq * T * 3 * C, 25, -1, 1);
  size_t o_n = (size_t)n_seq * T * c.o_stride;
  float *o = ops_random(o_n, 26, -1, 1);
  double *want = ops_to_double(o, o_n);
  reference_attention(want, qkv, qkv + C, qkv + 2 * C, &c);
  be->ops->attention(be, o, qkv, qkv + C, qkv + 2 * C, n_seq, T, T, heads, hd, 3 * C, 3 * C,
                     3 * C, C + 5, 0.35f);
  ops_check_scaled("attention interleaved [T,3C] q/k/v, padded o", o, want, o_n, 2e-6);
  free(qkv), free(o), free(want);
}

int
main(void)
{
  os_backend *be = ops_test_backend(2);
  test_attention_hand(be);
  run_case(be, (attention_case){ 2, 5, 1, 3, 4, 12, 12, 12, 12, 0.5f }, 0, false, "Sk=1");
  run_case(be, (attention_case){ 3, 1, 7, 2, 8, 16, 16, 16, 16, 0.35f }, 0, false, "Sq=1");
  run_case(be, (attention_case){ 2, 9, 4, 5, 12, 60, 60, 60, 60, 0.29f }, 0, false, "cross Sq!=Sk");
  /* Up to 32 keys take the direct path, more the tiled sgemm path. */
  run_case(be, (attention_case){ 2, 70, 32, 1, 512, 512, 512, 512, 512, 0.0442f }, 0, false,
           "direct path, 32 keys, head_dim 512");
  run_case(be, (attention_case){ 2, 1, 33, 3, 6, 18, 18, 18, 18, 0.4f }, 0, false,
           "sgemm path, 33 keys, Sq=1");
  /* Over the 128-query and 512-key tiles: 2 query tiles, 3 key tiles. */
  run_case(be, (attention_case){ 1, 150, 1100, 2, 64, 128, 128, 128, 128, 0.125f }, 0.02f, false,
           "tiles, growing max");
  run_case(be, (attention_case){ 1, 150, 1100, 2, 64, 128, 128, 128, 128, 8.0f }, 0.125f, true,
           "tiles, scores in the hundreds");
  run_case(be, (attention_case){ 1, 130, 600, 1, 512, 512, 512, 512, 512, 0.0442f }, 0.01f, false,
           "head_dim 512, 2x2 tiles");
  test_attention_interleaved(be);
  be->ops->destroy(be);
  return ops_test_finish("test-ops-attention");
}
