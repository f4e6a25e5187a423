/* test-cuda-ops.c: every backend op on the CUDA backend against the CPU backend.
 *
 * Inputs are fresh random values each run (the seed is printed; set
 * ONESTEP_TEST_SEED to replay one). Results are compared by relative L2
 * error: GEMM-based ops at 1e-4 in fp32; in fp16 and bf16 (ONESTEP_CUDA_PRECISION)
 * the CPU rounds its product operands as the GPU does, so products must agree
 * to 5e-5 (summation order only), while attention, whose GPU kernels also
 * round the probabilities or stay fp32 for small shapes, is held to 2e-3 (fp16)
 * and 1e-2 (bf16); tf32, whose hardware rounding the CPU does not reproduce,
 * to 2e-3 everywhere. Pointwise ops and norms at 1e-5, data movement exactly. Also checks that GPU results are bitwise reproducible,
 * that an impossible allocation returns NULL, and that memory accounting
 * returns to where it was. Exits 77 (skip) when no usable GPU is found. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "splitmix64.h"

typedef struct {
  os_backend *cpu, *gpu;
  uint64_t rng;
  double tol_gemm;      /* ops whose products go through the GEMM precision */
  double tol_attention; /* attention: the GPU's kernels differ by precision */
  double tol_float;   /* pointwise, norms: fp32 arithmetic on both sides */
  int failures, checks;
} harness;

/* One tensor with the same contents on both backends. */
typedef struct {
  size_t n;
  float *c, *g; /* CPU and GPU copies */
} tensor;

/* Runs the statement block once per backend: `be` is the backend and P(t)
 * the tensor's pointer on it. */
#define ON_BOTH(h)                                                                             \
  for (int side_ = 0; side_ < 2; side_++)                                                      \
    for (os_backend *be = side_ ? (h)->gpu : (h)->cpu, *once_ = be; once_; once_ = NULL)
#define P(t) (side_ ? (t).g : (t).c)

/* ---------------------------------------------------------------------------- */
/* helpers */

static void *
xmalloc(size_t bytes)
{
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "out of host memory\n");
    exit(2);
  }
  return p;
}

/* Uniform values in [lo, hi), never all zero. */
static tensor
t_random(harness *h, size_t n, float lo, float hi)
{
  float *host = xmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    host[i] = lo + (hi - lo) * (float)((next_random(&h->rng) >> 40) * 0x1p-24);
  tensor t = { n, h->cpu->ops->alloc(h->cpu, n * sizeof(float)),
               h->gpu->ops->alloc(h->gpu, n * sizeof(float)) };
  if (!t.c || !t.g) {
    fprintf(stderr, "cannot allocate %zu floats for a test tensor\n", n);
    exit(2);
  }
  h->cpu->ops->upload(h->cpu, t.c, host, n * sizeof(float));
  h->gpu->ops->upload(h->gpu, t.g, host, n * sizeof(float));
  free(host);
  return t;
}

/* An output buffer, pre-filled with the same random values on both sides
 * so that an op which skips elements is caught. */
static tensor
t_output(harness *h, size_t n)
{
  return t_random(h, n, -3.0f, 3.0f);
}

static void
t_free(harness *h, tensor *t)
{
  h->cpu->ops->free(h->cpu, t->c);
  h->gpu->ops->free(h->gpu, t->g);
  t->c = t->g = NULL;
}

static float *
download(os_backend *be, const float *p, size_t n)
{
  float *host = xmalloc(n * sizeof(float));
  be->ops->download(be, host, p, n * sizeof(float));
  return host;
}

static void
check_sync(harness *h, const char *op)
{
  onestep_error error = { 0 };
  if (h->gpu->ops->sync(h->gpu, &error) != ONESTEP_OK) {
    printf("FAIL %-16s CUDA error: %s\n", op, error.message);
    exit(1);
  }
}

/* Relative L2 error of the GPU result against the CPU one; tol 0 asks for equality. */
static void
compare(harness *h, const char *op, const char *shape, const tensor *t, double tol)
{
  check_sync(h, op);
  float *want = download(h->cpu, t->c, t->n), *got = download(h->gpu, t->g, t->n);
  double num = 0.0, den = 0.0;
  size_t mismatches = 0;
  for (size_t i = 0; i < t->n; i++) {
    double d = (double)got[i] - want[i];
    num += d * d;
    den += (double)want[i] * want[i];
    mismatches += got[i] != want[i];
  }
  double err = den > 0 ? sqrt(num / den) : sqrt(num);
  bool ok = tol == 0 ? mismatches == 0 : (err <= tol && isfinite(err));
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s rel L2 %9.2e  tol %7.0e\n", ok ? "ok" : "FAIL", op, shape, err, tol);
  free(want);
  free(got);
}

/* Runs `run` twice on the GPU into t and demands identical bits. */
static void
check_deterministic(harness *h, const char *op, const tensor *t,
                    void (*run)(harness *h, void *ctx), void *ctx)
{
  run(h, ctx);
  check_sync(h, op);
  float *first = download(h->gpu, t->g, t->n);
  run(h, ctx);
  float *second = download(h->gpu, t->g, t->n);
  bool ok = memcmp(first, second, t->n * sizeof(float)) == 0;
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s bitwise identical on a second run\n", ok ? "ok" : "FAIL", op,
         "determinism");
  free(first);
  free(second);
}

/* ---------------------------------------------------------------------------- */
/* GEMM family */

static void
test_gemm(harness *h, bool ta, bool tb, int M, int N, int K)
{
  int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2; /* padded rows */
  tensor a = t_random(h, (size_t)(ta ? K : M) * lda, -1, 1);
  tensor b = t_random(h, (size_t)(tb ? N : K) * ldb, -1, 1);
  tensor c = t_output(h, (size_t)M * ldc);
  ON_BOTH(h) be->ops->gemm(be, ta, tb, M, N, K, 0.75f, P(a), lda, P(b), ldb, 0.5f, P(c), ldc);
  char shape[96];
  snprintf(shape, sizeof shape, "%c%c M=%d N=%d K=%d beta=0.5", ta ? 'T' : 'N', tb ? 'T' : 'N', M,
           N, K);
  compare(h, "gemm", shape, &c, h->tol_gemm);
  t_free(h, &a);
  t_free(h, &b);
  t_free(h, &c);
}

static void
test_gemm_batched(harness *h)
{
  /* attention-like: 5 heads of 64 interleaved in a 320-wide token row */
  int heads = 5, D = 64, S = 256, width = heads * D;
  tensor q = t_random(h, (size_t)S * width, -1, 1), k = t_random(h, (size_t)S * width, -1, 1);
  tensor s = t_output(h, (size_t)heads * S * S);
  ON_BOTH(h)
  be->ops->gemm_batched(be, false, true, S, S, D, 0.125f, P(q), width, D, P(k), width, D, 0.0f,
                        P(s), S, (int64_t)S * S, heads);
  compare(h, "gemm_batched", "NT 5 heads S=256 D=64 strided", &s, h->tol_gemm);
  t_free(h, &q);
  t_free(h, &k);
  t_free(h, &s);
}

static void
test_linear(harness *h, int T, int in, int out, bool bias, int residual_mode)
{
  tensor x = t_random(h, (size_t)T * in, -1, 1), W = t_random(h, (size_t)out * in, -0.1f, 0.1f);
  tensor b = t_random(h, out, -1, 1), y = t_output(h, (size_t)T * out);
  tensor r = t_random(h, (size_t)T * out, -1, 1);
  static const char *modes[] = { "no residual", "residual", "residual in place" };
  ON_BOTH(h)
  {
    const float *res = residual_mode == 0 ? NULL : residual_mode == 1 ? P(r) : P(y);
    be->ops->linear(be, P(y), P(x), P(W), bias ? P(b) : NULL, res, T, in, out);
  }
  char shape[96];
  snprintf(shape, sizeof shape, "T=%d %d->%d %s, %s", T, in, out, bias ? "bias" : "no bias",
           modes[residual_mode]);
  compare(h, "linear", shape, &y, h->tol_gemm);
  t_free(h, &x);
  t_free(h, &W);
  t_free(h, &b);
  t_free(h, &y);
  t_free(h, &r);
}

/* ---------------------------------------------------------------------------- */
/* convolutions */

typedef struct {
  int N, Cin, H, W, Cout, KH, KW, stride, pt, pl, pb, pr;
  bool bias, residual;
} conv_case;

typedef struct {
  conv_case cc;
  tensor x, w, b, r, y;
} conv_run;

static void
run_conv_gpu(harness *h, void *ctx)
{
  conv_run *c = ctx;
  const conv_case *k = &c->cc;
  h->gpu->ops->conv2d(h->gpu, c->y.g, c->x.g, c->w.g, k->bias ? c->b.g : NULL,
                      k->residual ? c->r.g : NULL, k->N, k->Cin, k->H, k->W, k->Cout, k->KH,
                      k->KW, k->stride, k->pt, k->pl, k->pb, k->pr);
}

static void
test_conv2d(harness *h, conv_case k, bool determinism)
{
  int Ho = (k.H + k.pt + k.pb - k.KH) / k.stride + 1, Wo = (k.W + k.pl + k.pr - k.KW) / k.stride + 1;
  conv_run c = { k };
  c.x = t_random(h, (size_t)k.N * k.Cin * k.H * k.W, -1, 1);
  c.w = t_random(h, (size_t)k.Cout * k.Cin * k.KH * k.KW, -0.2f, 0.2f);
  c.b = t_random(h, k.Cout, -1, 1);
  c.r = t_random(h, (size_t)k.N * k.Cout * Ho * Wo, -1, 1);
  c.y = t_output(h, (size_t)k.N * k.Cout * Ho * Wo);
  ON_BOTH(h)
  be->ops->conv2d(be, P(c.y), P(c.x), P(c.w), k.bias ? P(c.b) : NULL, k.residual ? P(c.r) : NULL,
                  k.N, k.Cin, k.H, k.W, k.Cout, k.KH, k.KW, k.stride, k.pt, k.pl, k.pb, k.pr);
  char shape[96];
  snprintf(shape, sizeof shape, "%dx%dx%dx%d->%d k%dx%d s%d pad %d%d%d%d%s%s", k.N, k.Cin, k.H, k.W,
           k.Cout, k.KH, k.KW, k.stride, k.pt, k.pl, k.pb, k.pr, k.bias ? " +b" : "",
           k.residual ? " +res" : "");
  compare(h, "conv2d", shape, &c.y, h->tol_gemm);
  if (determinism)
    check_deterministic(h, "conv2d", &c.y, run_conv_gpu, &c);
  t_free(h, &c.x);
  t_free(h, &c.w);
  t_free(h, &c.b);
  t_free(h, &c.r);
  t_free(h, &c.y);
}

static void
test_conv_temporal(harness *h, int B, int F, int Cin, int Cout, int HW)
{
  tensor x = t_random(h, (size_t)B * F * Cin * HW, -1, 1);
  tensor w = t_random(h, (size_t)Cout * Cin * 3, -0.2f, 0.2f), b = t_random(h, Cout, -1, 1);
  tensor y = t_output(h, (size_t)B * F * Cout * HW);
  ON_BOTH(h) be->ops->conv_temporal(be, P(y), P(x), P(w), P(b), B, F, Cin, Cout, HW);
  char shape[96];
  snprintf(shape, sizeof shape, "B=%d F=%d %d->%d HW=%d", B, F, Cin, Cout, HW);
  compare(h, "conv_temporal", shape, &y, h->tol_gemm);
  t_free(h, &x);
  t_free(h, &w);
  t_free(h, &b);
  t_free(h, &y);
}

/* ---------------------------------------------------------------------------- */
/* norms */

typedef struct {
  int N, C, HW, G, fps;
  bool silu;
  tensor x, gamma, beta, y;
} norm_run;

static void
run_group_norm_gpu(harness *h, void *ctx)
{
  norm_run *r = ctx;
  h->gpu->ops->group_norm(h->gpu, r->y.g, r->x.g, r->gamma.g, r->beta.g, r->N, r->C, r->HW, r->G,
                          r->fps, 1e-5f, r->silu);
}

static void
test_group_norm(harness *h, int N, int C, int HW, int G, int fps, bool silu, bool in_place)
{
  norm_run r = { N, C, HW, G, fps, silu };
  /* an offset mean makes a one-pass variance visibly wrong */
  r.x = t_random(h, (size_t)N * C * HW, 2.0f, 4.0f);
  r.gamma = t_random(h, C, 0.5f, 1.5f);
  r.beta = t_random(h, C, -0.5f, 0.5f);
  r.y = in_place ? r.x : t_output(h, (size_t)N * C * HW);
  ON_BOTH(h)
  be->ops->group_norm(be, P(r.y), P(r.x), P(r.gamma), P(r.beta), N, C, HW, G, fps, 1e-5f, silu);
  char shape[96];
  snprintf(shape, sizeof shape, "N=%d C=%d HW=%d G=%d frames/stat=%d%s%s", N, C, HW, G, fps,
           silu ? " silu" : "", in_place ? " in place" : "");
  compare(h, "group_norm", shape, &r.y, h->tol_float);
  if (!in_place) {
    check_deterministic(h, "group_norm", &r.y, run_group_norm_gpu, &r);
    t_free(h, &r.y);
  }
  t_free(h, &r.x);
  t_free(h, &r.gamma);
  t_free(h, &r.beta);
}

static void
test_layer_norm(harness *h, int T, int C, bool in_place)
{
  tensor x = t_random(h, (size_t)T * C, -2.0f, 6.0f);
  tensor gamma = t_random(h, C, 0.5f, 1.5f), beta = t_random(h, C, -0.5f, 0.5f);
  tensor y = in_place ? x : t_output(h, (size_t)T * C);
  ON_BOTH(h) be->ops->layer_norm(be, P(y), P(x), P(gamma), P(beta), T, C, 1e-5f);
  char shape[96];
  snprintf(shape, sizeof shape, "T=%d C=%d%s", T, C, in_place ? " in place" : "");
  compare(h, "layer_norm", shape, &y, h->tol_float);
  if (!in_place)
    t_free(h, &y);
  t_free(h, &x);
  t_free(h, &gamma);
  t_free(h, &beta);
}

/* ---------------------------------------------------------------------------- */
/* attention */

typedef struct {
  int n_seq, Sq, Sk, heads, D, qs, ks, vs, os;
  tensor q, k, v, o;
} attn_run;

static void
run_attention_gpu(harness *h, void *ctx)
{
  attn_run *a = ctx;
  h->gpu->ops->attention(h->gpu, a->o.g, a->q.g, a->k.g, a->v.g, a->n_seq, a->Sq, a->Sk, a->heads,
                         a->D, a->qs, a->ks, a->vs, a->os, 1.0f / sqrtf((float)a->D));
}

/* packed: q, k and v interleaved in one [tokens, 3 * heads * D] buffer, as a
 * fused projection would leave them (Sq == Sk then). */
static void
test_attention(harness *h, const char *what, int n_seq, int Sq, int Sk, int heads, int D,
               bool packed, bool determinism)
{
  int width = heads * D;
  attn_run a = { n_seq, Sq, Sk, heads, D };
  size_t q_elems, k_elems;
  if (packed) {
    a.qs = a.ks = a.vs = 3 * width;
    q_elems = (size_t)n_seq * Sq * 3 * width;
    a.q = t_random(h, q_elems, -2, 2);
    a.k = a.q;
    a.v = a.q;
    a.k.c += width;
    a.k.g += width;
    a.v.c += 2 * width;
    a.v.g += 2 * width;
  } else {
    a.qs = a.ks = a.vs = width;
    q_elems = (size_t)n_seq * Sq * width;
    k_elems = (size_t)n_seq * Sk * width;
    a.q = t_random(h, q_elems, -2, 2);
    a.k = t_random(h, k_elems, -2, 2);
    a.v = t_random(h, k_elems, -2, 2);
  }
  a.os = width;
  a.o = t_output(h, (size_t)n_seq * Sq * width);
  ON_BOTH(h)
  be->ops->attention(be, P(a.o), P(a.q), P(a.k), P(a.v), n_seq, Sq, Sk, heads, D, a.qs, a.ks,
                     a.vs, a.os, 1.0f / sqrtf((float)D));
  char shape[96];
  snprintf(shape, sizeof shape, "%s: %d seq, %d x %d tokens, %d x %d%s", what, n_seq, Sq, Sk,
           heads, D, packed ? " packed" : "");
  compare(h, "attention", shape, &a.o, h->tol_attention);
  if (determinism)
    check_deterministic(h, "attention", &a.o, run_attention_gpu, &a);
  t_free(h, &a.o);
  t_free(h, &a.q);
  if (!packed) {
    t_free(h, &a.k);
    t_free(h, &a.v);
  }
}

/* ---------------------------------------------------------------------------- */
/* pointwise and data movement */

static void
test_pointwise(harness *h)
{
  const size_t n = 3 * 100003; /* odd size: no op may assume multiples of a block */
  tensor x = t_random(h, n, -6, 6), a = t_random(h, n, -1, 1), y = t_output(h, n);
  char shape[64];
  snprintf(shape, sizeof shape, "n=%zu", n);

  ON_BOTH(h) be->ops->silu(be, P(y), P(x), n);
  compare(h, "silu", shape, &y, h->tol_float);
  ON_BOTH(h) be->ops->gelu(be, P(y), P(x), n);
  compare(h, "gelu", shape, &y, h->tol_float);
  ON_BOTH(h) be->ops->quick_gelu(be, P(y), P(x), n);
  compare(h, "quick_gelu", shape, &y, h->tol_float);
  ON_BOTH(h) be->ops->add(be, P(y), P(x), P(a), n);
  compare(h, "add", shape, &y, h->tol_float);
  ON_BOTH(h) be->ops->blend(be, P(y), P(x), P(a), 0.3f, n);
  compare(h, "blend", shape, &y, h->tol_float);
  ON_BOTH(h) be->ops->scale(be, P(y), P(x), -1.7f, n);
  compare(h, "scale", shape, &y, h->tol_float);
  ON_BOTH(h) be->ops->silu(be, P(x), P(x), n);
  compare(h, "silu", "in place", &x, h->tol_float);
  ON_BOTH(h) be->ops->fill(be, P(y), 0.625f, n);
  compare(h, "fill", shape, &y, 0);
  ON_BOTH(h) be->ops->copy(be, P(y), P(a), n * sizeof(float));
  compare(h, "copy", shape, &y, 0);
  t_free(h, &x);
  t_free(h, &a);
  t_free(h, &y);

  int T = 1000, C = 640;
  tensor g = t_random(h, (size_t)T * 2 * C, -4, 4), gy = t_output(h, (size_t)T * C);
  ON_BOTH(h) be->ops->geglu(be, P(gy), P(g), T, C);
  compare(h, "geglu", "T=1000 C=640", &gy, h->tol_float);
  t_free(h, &g);
  t_free(h, &gy);

  int G = 3, R = 77, Cv = 320;
  tensor rx = t_random(h, (size_t)G * R * Cv, -1, 1), rv = t_random(h, (size_t)G * Cv, -1, 1);
  ON_BOTH(h) be->ops->add_row_vector(be, P(rx), P(rv), G, R, Cv);
  compare(h, "add_row_vector", "G=3 R=77 C=320", &rx, h->tol_float);
  t_free(h, &rx);
  t_free(h, &rv);

  int N = 6, Cc = 320, Pp = 24 * 40;
  tensor cx = t_random(h, (size_t)N * Cc * Pp, -1, 1), cv = t_random(h, (size_t)N * Cc, -1, 1);
  ON_BOTH(h) be->ops->add_channel_vector(be, P(cx), P(cv), N, Cc, Pp);
  compare(h, "add_channel_vec", "N=6 C=320 P=960", &cx, h->tol_float);
  t_free(h, &cx);
  t_free(h, &cv);
}

/* x [A, Bd, Cd, I] -> y [A, Cd, Bd, I]; `offset` shifts both buffers by that
 * many floats (the op must not assume aligned rows). */
static void
test_permute(harness *h, int A, int Bd, int Cd, int I, int offset)
{
  size_t n = (size_t)A * Bd * Cd * I;
  tensor x = t_random(h, n + offset, -1, 1), y = t_output(h, n + offset);
  ON_BOTH(h) be->ops->permute_0213(be, P(y) + offset, P(x) + offset, A, Bd, Cd, I);
  char shape[96];
  snprintf(shape, sizeof shape, "%d x %d x %d x %d%s", A, Bd, Cd, I,
           offset ? " (unaligned)" : "");
  compare(h, "permute_0213", shape, &y, 0);
  t_free(h, &x);
  t_free(h, &y);
}

static void
test_layout(harness *h)
{
  /* frames <-> pixels as the temporal blocks do: [B, F, HW, C] -> [B, HW, F, C] */
  test_permute(h, 2, 14, 24 * 40, 64, 0);
  test_permute(h, 1, 14, 48 * 48, 320, 0);
  /* rows of odd length, and rows off 16-byte alignment: element copies */
  test_permute(h, 2, 5, 33, 7, 0);
  test_permute(h, 1, 3, 50, 64, 1);
  /* long rows, split over several warps, with a partial last segment */
  test_permute(h, 2, 3, 4, 20000, 0);
  test_permute(h, 2, 3, 4, 20001, 0);
  /* single elements: batched transposes [N, C, S] <-> [N, S, C], full and ragged tiles */
  test_permute(h, 2, 320, 128 * 72, 1, 0);
  test_permute(h, 2, 128 * 72, 320, 1, 0);
  test_permute(h, 3, 77, 1000, 1, 0);

  int N = 4, C = 64, H = 18, W = 32;
  tensor u = t_random(h, (size_t)N * C * H * W, -1, 1);
  tensor u2 = t_output(h, (size_t)N * C * 2 * H * 2 * W), u3 = t_output(h, (size_t)N * C * 25 * 45);
  ON_BOTH(h) be->ops->upsample_nearest(be, P(u2), P(u), N, C, H, W, 2 * H, 2 * W);
  compare(h, "upsample_nearest", "4x64x18x32 -> 36x64", &u2, 0);
  ON_BOTH(h) be->ops->upsample_nearest(be, P(u3), P(u), N, C, H, W, 25, 45);
  compare(h, "upsample_nearest", "4x64x18x32 -> 25x45 (non-integer)", &u3, 0);
  t_free(h, &u);
  t_free(h, &u2);
  t_free(h, &u3);

  int Ca = 320, Cb = 640, Pp = 18 * 32;
  tensor a = t_random(h, (size_t)N * Ca * Pp, -1, 1), b = t_random(h, (size_t)N * Cb * Pp, -1, 1);
  tensor cat = t_output(h, (size_t)N * (Ca + Cb) * Pp);
  ON_BOTH(h) be->ops->concat_channels(be, P(cat), P(a), Ca, P(b), Cb, N, Pp);
  compare(h, "concat_channels", "4 x (320 + 640) x 576", &cat, 0);
  t_free(h, &a);
  t_free(h, &b);
  t_free(h, &cat);
}

/* ---------------------------------------------------------------------------- */
/* memory */

static void
test_memory(harness *h)
{
  os_backend *g = h->gpu;
  size_t before = g->bytes_in_use;
  void *huge = g->ops->alloc(g, (size_t)1 << 50); /* a petabyte: must fail cleanly */
  void *small = g->ops->alloc(g, 1000);
  bool ok = huge == NULL && small != NULL && g->bytes_in_use > before;
  g->ops->free(g, small);
  ok = ok && g->bytes_in_use == before && g->peak_bytes >= before;
  check_sync(h, "memory");
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s NULL for 1 PiB, accounting returns to %zu bytes\n", ok ? "ok" : "FAIL",
         "alloc/free", "", before);
}

/* ---------------------------------------------------------------------------- */

/* The precision the GPU runs in (ONESTEP_CUDA_PRECISION overrides the FP32
 * asked for below); the CPU then reproduces its operand rounding where it can,
 * and the tolerances follow (see the top of this file). */
static onestep_precision
configure_precision(harness *h)
{
  onestep_precision precision = ONESTEP_PRECISION_FP32;
  const char *name = getenv("ONESTEP_CUDA_PRECISION");
  if (name && *name && !onestep_precision_from_name(name, &precision)) {
    fprintf(stderr, "ONESTEP_CUDA_PRECISION=%s: expected fp32, tf32, fp16 or bf16\n", name);
    exit(1);
  }
  switch (precision) {
  case ONESTEP_PRECISION_FP16:
  case ONESTEP_PRECISION_AUTO:
    os_backend_cpu_set_operand_precision(h->cpu, ONESTEP_PRECISION_FP16);
    h->tol_gemm = 5e-5;
    h->tol_attention = 2e-3;
    break;
  case ONESTEP_PRECISION_BF16:
    os_backend_cpu_set_operand_precision(h->cpu, ONESTEP_PRECISION_BF16);
    h->tol_gemm = 5e-5;
    h->tol_attention = 1e-2;
    break;
  case ONESTEP_PRECISION_TF32:
    h->tol_gemm = h->tol_attention = 2e-3;
    break;
  default:
    h->tol_gemm = h->tol_attention = 1e-4;
  }
  return precision;
}

int
main(void)
{
  onestep_error error = { 0 };
  os_backend *gpu = os_backend_cuda_new(ONESTEP_PRECISION_FP32, &error);
  if (!gpu) {
    printf("SKIP: no usable CUDA backend: %s\n", error.message);
    return error.code == ONESTEP_ERR_DEVICE ? 77 : 1;
  }
  os_backend *cpu = os_backend_cpu_new(0, &error);
  if (!cpu) {
    fprintf(stderr, "cannot create the CPU backend: %s\n", error.message);
    return 1;
  }
  const char *seed_env = getenv("ONESTEP_TEST_SEED");
  uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL);
  harness h = { .cpu = cpu, .gpu = gpu, .rng = seed, .tol_float = 1e-5 };
  onestep_precision precision = configure_precision(&h);
  printf("seed %llu (ONESTEP_TEST_SEED replays it), %s: products to %.0e, attention to %.0e\n",
         (unsigned long long)seed, onestep_precision_name(precision), h.tol_gemm,
         h.tol_attention);

  test_memory(&h);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      test_gemm(&h, ta, tb, 300, 320, 640);
  test_gemm(&h, false, false, 1, 1024, 320); /* a single row: the time embedding */
  test_gemm_batched(&h);
  test_linear(&h, 1024, 320, 1280, true, 0);
  test_linear(&h, 1024, 320, 320, true, 1);
  test_linear(&h, 1024, 320, 320, false, 2);
  test_linear(&h, 1, 1024, 1280, true, 0);

  /* UNet resnet 3x3, conv_in on 8 channels, VAE downsampler (stride 2, pad
   * right/bottom only), 1x1 shortcut, a non-square kernel */
  test_conv2d(&h, (conv_case){ 2, 64, 24, 40, 64, 3, 3, 1, 1, 1, 1, 1, true, true }, true);
  test_conv2d(&h, (conv_case){ 3, 8, 24, 40, 80, 3, 3, 1, 1, 1, 1, 1, true, false }, false);
  test_conv2d(&h, (conv_case){ 2, 64, 32, 48, 64, 3, 3, 2, 0, 0, 1, 1, true, false }, false);
  test_conv2d(&h, (conv_case){ 2, 96, 24, 40, 64, 1, 1, 1, 0, 0, 0, 0, true, true }, false);
  test_conv2d(&h, (conv_case){ 1, 16, 20, 20, 24, 1, 3, 1, 0, 1, 0, 1, false, false }, false);
  /* columns over the 256 MiB chunk in every precision: built in ranges of
   * output rows (with a shorter last range), as at 1024x576 */
  test_conv2d(&h, (conv_case){ 1, 128, 384, 384, 32, 3, 3, 1, 1, 1, 1, 1, true, false }, false);
  /* two images per chunk in fp16/bf16, one in fp32, with a remainder */
  test_conv2d(&h, (conv_case){ 3, 64, 302, 302, 16, 3, 3, 1, 1, 1, 1, 1, true, true }, false);
  test_conv_temporal(&h, 2, 7, 64, 96, 24 * 40);
  test_conv_temporal(&h, 1, 1, 32, 32, 100); /* one frame: only the centre tap */
  /* staging over the 256 MiB chunk in every precision: ranges of pixels */
  test_conv_temporal(&h, 1, 14, 1280, 64, 9216);

  test_group_norm(&h, 6, 64, 24 * 40, 32, 1, true, false);
  test_group_norm(&h, 6, 128, 24 * 40, 32, 3, false, false); /* across frames */
  test_group_norm(&h, 4, 64, 1000, 16, 1, true, true);
  test_layer_norm(&h, 1000, 320, false);
  test_layer_norm(&h, 257, 1280, true);

  test_attention(&h, "spatial", 2, 960, 960, 5, 64, false, true);
  test_attention(&h, "temporal", 960, 14, 14, 5, 64, true, false);
  test_attention(&h, "cross", 4, 960, 1, 5, 64, false, false);
  test_attention(&h, "CLIP", 1, 257, 257, 16, 80, true, false);
  test_attention(&h, "VAE", 2, 576, 576, 1, 512, false, true);
  test_attention(&h, "tiny heads", 3, 100, 37, 2, 4, false, false);
  test_attention(&h, "odd dim", 2, 70, 90, 3, 100, false, false);
  test_attention(&h, "wide heads", 1, 200, 333, 2, 128, false, false);
  test_attention(&h, "long keys", 1, 100, 1100, 2, 40, false, false);
  /* Spatial attention at a UNet level with over 1024 tokens: the path that
   * ONESTEP_CUDA_ATTENTION chooses between in fp16/bf16. */
  test_attention(&h, "spatial, long", 2, 2304, 2304, 5, 64, false, true);

  test_pointwise(&h);
  test_layout(&h);

  printf("%d of %d checks passed; GPU peak %.1f MiB\n", h.checks - h.failures, h.checks,
         gpu->peak_bytes / (1024.0 * 1024.0));
  gpu->ops->destroy(gpu);
  cpu->ops->destroy(cpu);
  return h.failures ? 1 : 0;
}
