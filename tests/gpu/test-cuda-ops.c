/* test-cuda-ops.c: every backend op on the CUDA backend against the CPU backend.
 *
 * Inputs are fresh random values each run (the seed is printed; set
 * ONESTEP_TEST_SEED to replay one). Results are compared by relative L2
 * error: GEMM-based ops at 1e-4 in fp32; in fp16 and bf16 (ONESTEP_CUDA_PRECISION)
 * the CPU rounds its product operands as the GPU does, so products must agree
 * to 5e-5 (summation order only), while attention, whose GPU kernels also
 * round the probabilities or stay fp32 for small shapes, is held to 2e-3 (fp16)
 * and 1e-2 (bf16); tf32, whose hardware rounding the CPU does not reproduce,
 * to 2e-3 everywhere. Convolutions go through cuDNN when the backend found
 * it (its name says; ONESTEP_CUDA_CONV=im2col runs the other path): where no
 * cuDNN engine writes fp32 results from 16-bit operands, it rounds them to
 * 16 bits (said on stderr), so in fp16 and bf16 they are held to that
 * rounding, 1e-3 and 8e-3. Pointwise ops and norms at 1e-5, data movement exactly.
 * Every backward and training op (backend_grad.h) is compared the same way,
 * with its gradient outputs pre-filled so that accumulation is checked too:
 * fp32 on the GPU in every mode, held to 1e-5 in fp32 (to the attention
 * tolerance where the CPU rounds its operands). Also checks that GPU results
 * are bitwise reproducible, that no slot of the CUDA grad table is empty,
 * that updating a weight in place (adamw_step, ema_update, axpy) drops its
 * cached converted copies, that an impossible allocation returns NULL, and
 * that memory accounting returns to where it was.
 *
 * In fp16 and bf16 every forward op runs a second time on 16-bit buffers
 * (alloc_as ACTIVATION, weights WEIGHT): the inputs are rounded to 16 bits on
 * the host so that both backends start from the same values, and the CPU's
 * float32 result is rounded to 16 bits before the comparison, held to
 * tol_storage (a result the GPU rounds twice, as a GEMM's output and again
 * after its bias, may sit one 16-bit step away); data movement stays exact.
 * Then buffers of mixed storage (16-bit operands, float32 residual stream),
 * the real bytes of a 16-bit block, that a 16-bit weight leaves no cached
 * copy behind, and that a training op given a 16-bit buffer latches an error.
 * Exits 77 (skip) when no usable GPU is found. */
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
  double tol_conv;      /* convolutions: cuDNN may round their results to 16 bits */
  double tol_attention; /* attention: the GPU's kernels differ by precision */
  double tol_float;   /* pointwise, norms: fp32 arithmetic on both sides */
  double tol_grad;    /* backward ops: fp32 on the GPU in every mode */
  double tol_storage; /* results stored in 16 bits */
  /* The 16-bit type of the precision (FP32 in fp32 and tf32 mode), and the
   * storage test tensors get now: FP32, or ACTIVATION (weights WEIGHT). */
  onestep_precision half;
  os_storage storage;
  int failures, checks;
} harness;

/* One tensor with the same contents on both backends. */
typedef struct {
  size_t n;
  float *c, *g;  /* CPU and GPU copies */
  bool half;     /* the GPU's copy stores 16 bits */
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

/* x rounded to nearest even in the 16-bit type (`half`), as the GPU stores it. */
static float
round_to(float x, onestep_precision half)
{
  if (half == ONESTEP_PRECISION_FP16)
    return (float)(_Float16)x;
  if (half != ONESTEP_PRECISION_BF16 || !isfinite(x))
    return x;
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* Uniform values in [lo, hi), never all zero, stored as `storage` on the GPU
 * (the CPU holds the same, rounded, values in float32). */
static tensor
t_random_as(harness *h, size_t n, float lo, float hi, os_storage storage)
{
  float *host = xmalloc(n * sizeof(float));
  bool half = storage != OS_STORAGE_FP32 && h->half != ONESTEP_PRECISION_FP32;
  for (size_t i = 0; i < n; i++) {
    host[i] = lo + (hi - lo) * (float)((next_random(&h->rng) >> 40) * 0x1p-24);
    if (half)
      host[i] = round_to(host[i], h->half);
  }
  tensor t = { n, h->cpu->ops->alloc_as(h->cpu, n, storage),
               h->gpu->ops->alloc_as(h->gpu, n, storage), half };
  if (!t.c || !t.g) {
    fprintf(stderr, "cannot allocate %zu floats for a test tensor\n", n);
    exit(2);
  }
  h->cpu->ops->upload(h->cpu, t.c, host, n * sizeof(float));
  h->gpu->ops->upload(h->gpu, t.g, host, n * sizeof(float));
  free(host);
  return t;
}

/* An activation or input in the pass's storage. */
static tensor
t_random(harness *h, size_t n, float lo, float hi)
{
  return t_random_as(h, n, lo, hi, h->storage);
}

/* A frozen weight: WEIGHT in the 16-bit pass. */
static tensor
t_weight(harness *h, size_t n, float lo, float hi)
{
  os_storage storage = h->storage == OS_STORAGE_FP32 ? OS_STORAGE_FP32 : OS_STORAGE_WEIGHT;
  return t_random_as(h, n, lo, hi, storage);
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

/* Relative L2 error of the GPU result against the CPU one; tol 0 asks for
 * equality. A 16-bit result is compared with the CPU's rounded to 16 bits. */
static void
compare(harness *h, const char *op, const char *shape, const tensor *t, double tol)
{
  check_sync(h, op);
  float *want = download(h->cpu, t->c, t->n), *got = download(h->gpu, t->g, t->n);
  if (t->half) {
    for (size_t i = 0; i < t->n; i++)
      want[i] = round_to(want[i], h->half);
    if (tol > 0 && tol < h->tol_storage)
      tol = h->tol_storage;
  }
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

/* Runs `run` twice on the GPU into t, each time from t's present contents
 * (gradients accumulate into them), and demands identical bits. */
static void
check_deterministic(harness *h, const char *op, const tensor *t,
                    void (*run)(harness *h, void *ctx), void *ctx)
{
  check_sync(h, op);
  float *start = download(h->gpu, t->g, t->n);
  run(h, ctx);
  check_sync(h, op);
  float *first = download(h->gpu, t->g, t->n);
  h->gpu->ops->upload(h->gpu, t->g, start, t->n * sizeof(float));
  run(h, ctx);
  float *second = download(h->gpu, t->g, t->n);
  free(start);
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
  tensor x = t_random(h, (size_t)T * in, -1, 1), W = t_weight(h, (size_t)out * in, -0.1f, 0.1f);
  tensor b = t_weight(h, out, -1, 1), y = t_output(h, (size_t)T * out);
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
  bool misaligned; /* x one element into its buffer: 4-byte aligned only */
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
  h->gpu->ops->conv2d(h->gpu, c->y.g, c->x.g + k->misaligned, c->w.g, k->bias ? c->b.g : NULL,
                      k->residual ? c->r.g : NULL, k->N, k->Cin, k->H, k->W, k->Cout, k->KH,
                      k->KW, k->stride, k->pt, k->pl, k->pb, k->pr);
}

static void
test_conv2d(harness *h, conv_case k, bool determinism)
{
  int Ho = (k.H + k.pt + k.pb - k.KH) / k.stride + 1, Wo = (k.W + k.pl + k.pr - k.KW) / k.stride + 1;
  conv_run c = { k };
  c.x = t_random(h, (size_t)k.N * k.Cin * k.H * k.W + k.misaligned, -1, 1);
  c.w = t_weight(h, (size_t)k.Cout * k.Cin * k.KH * k.KW, -0.2f, 0.2f);
  c.b = t_weight(h, k.Cout, -1, 1);
  c.r = t_random(h, (size_t)k.N * k.Cout * Ho * Wo, -1, 1);
  c.y = t_output(h, (size_t)k.N * k.Cout * Ho * Wo);
  ON_BOTH(h)
  be->ops->conv2d(be, P(c.y), P(c.x) + k.misaligned, P(c.w), k.bias ? P(c.b) : NULL,
                  k.residual ? P(c.r) : NULL,
                  k.N, k.Cin, k.H, k.W, k.Cout, k.KH, k.KW, k.stride, k.pt, k.pl, k.pb, k.pr);
  char shape[96];
  snprintf(shape, sizeof shape, "%dx%dx%dx%d->%d k%dx%d s%d pad %d%d%d%d%s%s%s", k.N, k.Cin, k.H,
           k.W, k.Cout, k.KH, k.KW, k.stride, k.pt, k.pl, k.pb, k.pr, k.bias ? " +b" : "",
           k.residual ? " +res" : "", k.misaligned ? " x+1" : "");
  compare(h, "conv2d", shape, &c.y, h->tol_conv);
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
  tensor w = t_weight(h, (size_t)Cout * Cin * 3, -0.2f, 0.2f), b = t_weight(h, Cout, -1, 1);
  tensor y = t_output(h, (size_t)B * F * Cout * HW);
  ON_BOTH(h) be->ops->conv_temporal(be, P(y), P(x), P(w), P(b), B, F, Cin, Cout, HW);
  char shape[96];
  snprintf(shape, sizeof shape, "B=%d F=%d %d->%d HW=%d", B, F, Cin, Cout, HW);
  compare(h, "conv_temporal", shape, &y, h->tol_conv);
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
  r.gamma = t_weight(h, C, 0.5f, 1.5f);
  r.beta = t_weight(h, C, -0.5f, 0.5f);
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

/* group_norm_stats over three tiles of pixels gathered by copy_columns, then
 * group_norm_apply on each and copy_columns back: the gathered tiles must be
 * the CPU's exactly, the normalised tensor within float rounding. */
static void
test_group_norm_tiles(harness *h, int N, int C, int HW, int G, int fps, bool silu)
{
  int widths[3] = { HW / 4, HW / 2, HW - HW / 4 - HW / 2 }, rows = N * C;
  size_t stats_n = (size_t)N / fps * G * OS_GROUP_NORM_STATS_FLOATS;
  tensor x = t_random(h, (size_t)rows * HW, 2.0f, 4.0f);
  tensor gamma = t_weight(h, C, 0.5f, 1.5f), beta = t_weight(h, C, -0.5f, 0.5f);
  /* statistics are float32 whatever the tensors store (backend.h) */
  tensor y = t_output(h, (size_t)rows * HW);
  tensor stats = t_random_as(h, stats_n, -3.0f, 3.0f, OS_STORAGE_FP32);
  tensor tiles[3];
  for (int i = 0; i < 3; i++)
    tiles[i] = t_output(h, (size_t)rows * widths[i]);
  ON_BOTH(h)
  {
    be->ops->fill(be, P(stats), 0.0f, stats_n);
    for (int i = 0, p0 = 0; i < 3; p0 += widths[i++]) {
      be->ops->copy_columns(be, P(tiles[i]), widths[i], P(x) + p0, HW, rows, widths[i]);
      be->ops->group_norm_stats(be, P(stats), P(tiles[i]), N, C, widths[i], G, fps);
    }
  }
  compare(h, "copy_columns", "a middle range of pixels into a tile", &tiles[1], 0);
  ON_BOTH(h)
  for (int i = 0, p0 = 0; i < 3; p0 += widths[i++]) {
    be->ops->group_norm_apply(be, P(tiles[i]), P(tiles[i]), P(stats), P(gamma), P(beta), N, C,
                              widths[i], G, fps, 1e-5f, silu);
    be->ops->copy_columns(be, P(y) + p0, HW, P(tiles[i]), widths[i], rows, widths[i]);
  }
  char shape[96];
  snprintf(shape, sizeof shape, "N=%d C=%d HW=%d G=%d frames/stat=%d%s, 3 tiles", N, C, HW, G,
           fps, silu ? " silu" : "");
  compare(h, "group_norm tiled", shape, &y, h->tol_float);
  for (int i = 0; i < 3; i++)
    t_free(h, &tiles[i]);
  t_free(h, &x);
  t_free(h, &gamma);
  t_free(h, &beta);
  t_free(h, &y);
  t_free(h, &stats);
}

static void
test_layer_norm(harness *h, int T, int C, bool in_place)
{
  tensor x = t_random(h, (size_t)T * C, -2.0f, 6.0f);
  tensor gamma = t_weight(h, C, 0.5f, 1.5f), beta = t_weight(h, C, -0.5f, 0.5f);
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

/* resize_bilinear's cases, N, C, H, W -> Ho, Wo: enlarged along both axes to
 * 224 (a latent), reduced along both, and small odd sizes either way. */
static const int resize_cases[][6] = { { 8, 4, 72, 128, 224, 224 }, { 2, 3, 300, 450, 224, 224 },
                                       { 2, 3, 7, 9, 10, 13 }, { 2, 3, 9, 12, 5, 7 } };

/* The discriminator's layers at its shapes: a batch of 8, 64 to 384 channels
 * at 16x16, a 2x pixel shuffle, inputs resized to 224x224 (enlarged and
 * reduced), BatchNormLocal over virtual batches of 4 and the spectral norm of
 * a 3x3 convolution's weight [384, 384 * 9]. */
static void
test_discriminator(harness *h)
{
  const size_t n = 3 * 100003;
  tensor x = t_random(h, n, -3, 3), y = t_output(h, n);
  ON_BOTH(h) be->ops->leaky_relu(be, P(y), P(x), 0.2f, n);
  compare(h, "leaky_relu", "n=300009 slope 0.2", &y, 0);
  ON_BOTH(h) be->ops->leaky_relu(be, P(x), P(x), 0.0f, n);
  compare(h, "leaky_relu", "in place, slope 0 (ReLU)", &x, 0);
  t_free(h, &x);
  t_free(h, &y);

  int N = 8, C = 64, H = 16, W = 16, r = 2;
  tensor ps = t_random(h, (size_t)N * C * r * r * H * W, -1, 1), psy = t_output(h, ps.n);
  ON_BOTH(h) be->ops->pixel_shuffle(be, P(psy), P(ps), N, C, H, W, r);
  compare(h, "pixel_shuffle", "8x256x16x16 -> 8x64x32x32", &psy, 0);
  t_free(h, &ps);
  t_free(h, &psy);

  for (size_t i = 0; i < sizeof resize_cases / sizeof resize_cases[0]; i++) {
    const int *s = resize_cases[i];
    tensor rx = t_random(h, (size_t)s[0] * s[1] * s[2] * s[3], -1, 1);
    tensor ry = t_output(h, (size_t)s[0] * s[1] * s[4] * s[5]);
    ON_BOTH(h) be->ops->resize_bilinear(be, P(ry), P(rx), s[0], s[1], s[2], s[3], s[4], s[5]);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d -> %dx%d", s[0], s[1], s[2], s[3], s[4], s[5]);
    compare(h, "resize_bilinear", shape, &ry, h->tol_float);
    t_free(h, &rx);
    t_free(h, &ry);
  }

  int Cb = 384, Pb = 16 * 16;
  tensor bx = t_random(h, (size_t)N * Cb * Pb, 2.0f, 4.0f), by = t_output(h, bx.n);
  tensor gamma = t_weight(h, Cb, 0.5f, 1.5f), beta = t_weight(h, Cb, -0.5f, 0.5f);
  ON_BOTH(h) be->ops->batch_norm_local(be, P(by), P(bx), P(gamma), P(beta), N, Cb, Pb, 4, 1e-5f);
  compare(h, "batch_norm_local", "N=8 C=384 P=256 group 4", &by, h->tol_float);
  ON_BOTH(h) be->ops->batch_norm_local(be, P(bx), P(bx), P(gamma), P(beta), N, Cb, Pb, 8, 1e-5f);
  compare(h, "batch_norm_local", "in place, group 8", &bx, h->tol_float);
  t_free(h, &gamma);
  t_free(h, &beta);

  t_free(h, &bx);
  t_free(h, &by);

  tensor px = t_random(h, (size_t)N * Cb * Pb, -1, 1), e = t_random(h, (size_t)N * Cb, -1, 1);
  tensor proj = t_output(h, (size_t)N * Pb);
  ON_BOTH(h) be->ops->channel_projection(be, P(proj), P(px), P(e), N, Cb, Pb);
  compare(h, "channel_project", "N=8 C=384 P=256", &proj, h->tol_float);
  t_free(h, &px);
  t_free(h, &e);
  t_free(h, &proj);

  int rows = 384, cols = 384 * 9;
  tensor Wt = t_weight(h, (size_t)rows * cols, -0.05f, 0.05f), Wn = t_output(h, Wt.n);
  tensor u = t_random(h, rows, -1, 1), v = t_random(h, cols, -1, 1);
  ON_BOTH(h) be->ops->spectral_normalize(be, P(Wn), P(Wt), P(u), P(v), rows, cols);
  compare(h, "spectral_norm", "W [384, 3456]", &Wn, h->tol_float);
  t_free(h, &Wt);
  t_free(h, &Wn);
  t_free(h, &u);
  t_free(h, &v);
}

/* ---------------------------------------------------------------------------- */
/* backward and training ops (backend_grad.h) */

/* Every slot of os_backend_grad_ops, so that a new slot missing from the
 * CUDA table (or from this list: see the size check) fails the test. */
#define GRAD_SLOTS(X)                                                                          \
  X(linear_backward) X(conv2d_backward) X(conv_temporal_backward) X(group_norm_backward)       \
  X(layer_norm_backward) X(attention_backward) X(silu_backward) X(gelu_backward)               \
  X(quick_gelu_backward) X(geglu_backward) X(axpy) X(dot) X(sum_rows) X(sum_channel_planes)    \
  X(upsample_nearest_backward) X(split_channels) X(leaky_relu_backward)                        \
  X(pixel_shuffle_backward) X(resize_bilinear_backward) X(batch_norm_local_backward)           \
  X(spectral_normalize_backward) X(channel_projection_backward) X(loss) X(adamw_step)          \
  X(ema_update) X(spectral_norm_power_iteration)
#define GRAD_SLOT_COUNT(slot) +1
_Static_assert(sizeof(os_backend_grad_ops) ==
                   (0 GRAD_SLOTS(GRAD_SLOT_COUNT)) * sizeof(void (*)(void)),
               "GRAD_SLOTS lists every slot of os_backend_grad_ops");

static void
test_grad_table(harness *h)
{
  const os_backend_grad_ops *grad = h->gpu->ops->grad;
  int missing = 0;
#define GRAD_SLOT_CHECK(slot)                                                                  \
  if (!grad || !grad->slot) {                                                                  \
    printf("     CUDA grad table lacks %s\n", #slot);                                          \
    missing++;                                                                                 \
  }
  GRAD_SLOTS(GRAD_SLOT_CHECK)
#undef GRAD_SLOT_CHECK
  h->checks++;
  h->failures += missing > 0;
  printf("%-4s %-16s %-44s %d empty slots\n", missing ? "FAIL" : "ok", "grad table", "CUDA",
         missing);
}

/* The CPU reference of a backward op; its absence is a failure, not a skip. */
static bool
cpu_has(harness *h, const char *slot, bool present)
{
  if (!present) {
    h->checks++;
    h->failures++;
    printf("FAIL %-16s the CPU backend has no %s to compare with\n", slot, slot);
  }
  return present;
}
#define CPU_HAS(h, slot) cpu_has(h, #slot, (h)->cpu->ops->grad && (h)->cpu->ops->grad->slot)

/* Compares a value both backends returned to the host. */
static void
compare_scalar(harness *h, const char *op, const char *shape, double got, double want, double tol)
{
  check_sync(h, op);
  double err = fabs(got - want) / (fabs(want) > 0 ? fabs(want) : 1.0);
  bool ok = err <= tol && isfinite(got);
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s rel err %9.2e  tol %7.0e\n", ok ? "ok" : "FAIL", op, shape, err, tol);
}

static void
test_linear_backward(harness *h, int T, int in, int out, bool want_dx, bool want_db)
{
  if (!CPU_HAS(h, linear_backward))
    return;
  tensor x = t_random(h, (size_t)T * in, -1, 1), W = t_random(h, (size_t)out * in, -0.3f, 0.3f);
  tensor dy = t_random(h, (size_t)T * out, -1, 1);
  tensor dx = t_output(h, (size_t)T * in), dW = t_output(h, (size_t)out * in);
  tensor db = t_output(h, out);
  ON_BOTH(h)
  be->ops->grad->linear_backward(be, want_dx ? P(dx) : NULL, P(dW), want_db ? P(db) : NULL,
                                 P(dy), P(x), P(W), T, in, out);
  char shape[96];
  snprintf(shape, sizeof shape, "T=%d %d->%d%s%s", T, in, out, want_dx ? "" : ", no dx",
           want_db ? "" : ", no db");
  if (want_dx)
    compare(h, "linear_bwd dx", shape, &dx, h->tol_grad);
  compare(h, "linear_bwd dW", shape, &dW, h->tol_grad);
  if (want_db)
    compare(h, "linear_bwd db", shape, &db, h->tol_grad);
  t_free(h, &x);
  t_free(h, &W);
  t_free(h, &dy);
  t_free(h, &dx);
  t_free(h, &dW);
  t_free(h, &db);
}

/* conv2d_backward needs cuDNN, which the backend loads on first use: when it
 * is missing, that is one failure with the backend's reason, and the other
 * ops are still checked. */
static bool
gpu_has_cudnn(harness *h)
{
  static int usable = -1;
  if (usable >= 0)
    return usable;
  os_backend *g = h->gpu;
  os_conv2d_shape k = { 1, 1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1 };
  float *buf = g->ops->alloc(g, 4 * 9 * sizeof(float));
  if (!buf) {
    fprintf(stderr, "cannot allocate the cuDNN probe\n");
    exit(2);
  }
  g->ops->fill(g, buf, 1.0f, 4 * 9);
  g->ops->grad->conv2d_backward(g, buf, buf + 9, NULL, buf + 18, buf + 27, buf + 27, &k);
  onestep_error error = { 0 };
  usable = g->ops->sync(g, &error) == ONESTEP_OK;
  g->ops->free(g, buf);
  if (!usable) {
    h->checks++;
    h->failures++;
    printf("FAIL %-16s %s\n", "conv2d_backward", error.message);
  }
  return usable;
}

typedef struct {
  os_conv2d_shape shape;
  tensor x, w, dy, dx, dw, db;
} conv_grad_run;

static void
run_conv_backward_gpu(harness *h, void *ctx)
{
  conv_grad_run *c = ctx;
  h->gpu->ops->grad->conv2d_backward(h->gpu, c->dx.g, c->dw.g, c->db.g, c->dy.g, c->x.g, c->w.g,
                                     &c->shape);
}

/* want: which gradients to ask for ("xwb", any subset). */
static void
test_conv2d_backward(harness *h, os_conv2d_shape k, const char *want, bool determinism)
{
  if (!CPU_HAS(h, conv2d_backward) || !gpu_has_cudnn(h))
    return;
  int Ho = os_conv2d_out_h(&k), Wo = os_conv2d_out_w(&k);
  conv_grad_run c = { k };
  c.x = t_random(h, (size_t)k.N * k.Cin * k.H * k.W, -1, 1);
  c.w = t_random(h, (size_t)k.Cout * k.Cin * k.KH * k.KW, -0.3f, 0.3f);
  c.dy = t_random(h, (size_t)k.N * k.Cout * Ho * Wo, -1, 1);
  c.dx = t_output(h, c.x.n);
  c.dw = t_output(h, c.w.n);
  c.db = t_output(h, k.Cout);
  bool want_x = strchr(want, 'x'), want_w = strchr(want, 'w'), want_b = strchr(want, 'b');
  ON_BOTH(h)
  be->ops->grad->conv2d_backward(be, want_x ? P(c.dx) : NULL, want_w ? P(c.dw) : NULL,
                                 want_b ? P(c.db) : NULL, P(c.dy), P(c.x), P(c.w), &k);
  char shape[96];
  snprintf(shape, sizeof shape, "%dx%dx%dx%d->%d k%dx%d s%d pad %d%d%d%d", k.N, k.Cin, k.H, k.W,
           k.Cout, k.KH, k.KW, k.stride, k.pad_top, k.pad_left, k.pad_bottom, k.pad_right);
  if (want_x)
    compare(h, "conv2d_bwd dx", shape, &c.dx, h->tol_grad);
  if (want_w)
    compare(h, "conv2d_bwd dW", shape, &c.dw, h->tol_grad);
  if (want_b)
    compare(h, "conv2d_bwd db", shape, &c.db, h->tol_grad);
  if (determinism) /* all three requested */
    check_deterministic(h, "conv2d_bwd dW", &c.dw, run_conv_backward_gpu, &c);
  tensor *all[] = { &c.x, &c.w, &c.dy, &c.dx, &c.dw, &c.db };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    t_free(h, all[i]);
}

static void
test_conv_temporal_backward(harness *h, int B, int F, int Cin, int Cout, int HW)
{
  if (!CPU_HAS(h, conv_temporal_backward))
    return;
  tensor x = t_random(h, (size_t)B * F * Cin * HW, -1, 1);
  tensor w = t_random(h, (size_t)Cout * Cin * 3, -0.3f, 0.3f);
  tensor dy = t_random(h, (size_t)B * F * Cout * HW, -1, 1);
  tensor dx = t_output(h, x.n), dw = t_output(h, w.n), db = t_output(h, Cout);
  ON_BOTH(h)
  be->ops->grad->conv_temporal_backward(be, P(dx), P(dw), P(db), P(dy), P(x), P(w), B, F, Cin,
                                        Cout, HW);
  char shape[96];
  snprintf(shape, sizeof shape, "B=%d F=%d %d->%d HW=%d", B, F, Cin, Cout, HW);
  compare(h, "temporal_bwd dx", shape, &dx, h->tol_grad);
  compare(h, "temporal_bwd dW", shape, &dw, h->tol_grad);
  compare(h, "temporal_bwd db", shape, &db, h->tol_grad);
  tensor *all[] = { &x, &w, &dy, &dx, &dw, &db };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    t_free(h, all[i]);
}

typedef struct {
  int N, C, HW, G, fps;
  bool silu;
  tensor x, gamma, beta, dy, dx, dgamma, dbeta;
} norm_grad_run;

static void
run_group_norm_backward_gpu(harness *h, void *ctx)
{
  norm_grad_run *r = ctx;
  h->gpu->ops->grad->group_norm_backward(h->gpu, r->dx.g, r->dgamma.g, r->dbeta.g, r->dy.g,
                                         r->x.g, r->gamma.g, r->beta.g, r->N, r->C, r->HW, r->G,
                                         r->fps, 1e-5f, r->silu);
}

static void
test_group_norm_backward(harness *h, int N, int C, int HW, int G, int fps, bool silu,
                         bool determinism)
{
  if (!CPU_HAS(h, group_norm_backward))
    return;
  norm_grad_run r = { N, C, HW, G, fps, silu };
  r.x = t_random(h, (size_t)N * C * HW, 2.0f, 4.0f); /* an offset mean, as in the forward test */
  r.gamma = t_random(h, C, 0.5f, 1.5f);
  r.beta = t_random(h, C, -0.5f, 0.5f);
  r.dy = t_random(h, r.x.n, -1, 1);
  r.dx = t_output(h, r.x.n);
  r.dgamma = t_output(h, C);
  r.dbeta = t_output(h, C);
  ON_BOTH(h)
  be->ops->grad->group_norm_backward(be, P(r.dx), P(r.dgamma), P(r.dbeta), P(r.dy), P(r.x),
                                     P(r.gamma), P(r.beta), N, C, HW, G, fps, 1e-5f, silu);
  char shape[96];
  snprintf(shape, sizeof shape, "N=%d C=%d HW=%d G=%d frames/stat=%d%s", N, C, HW, G, fps,
           silu ? " silu" : "");
  compare(h, "gn_bwd dx", shape, &r.dx, h->tol_grad);
  compare(h, "gn_bwd dgamma", shape, &r.dgamma, h->tol_grad);
  compare(h, "gn_bwd dbeta", shape, &r.dbeta, h->tol_grad);
  if (determinism)
    check_deterministic(h, "gn_bwd dx", &r.dx, run_group_norm_backward_gpu, &r);
  tensor *all[] = { &r.x, &r.gamma, &r.beta, &r.dy, &r.dx, &r.dgamma, &r.dbeta };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    t_free(h, all[i]);
}

static void
test_layer_norm_backward(harness *h, int T, int C)
{
  if (!CPU_HAS(h, layer_norm_backward))
    return;
  tensor x = t_random(h, (size_t)T * C, -2.0f, 6.0f), dy = t_random(h, (size_t)T * C, -1, 1);
  tensor gamma = t_random(h, C, 0.5f, 1.5f);
  tensor dx = t_output(h, x.n), dgamma = t_output(h, C), dbeta = t_output(h, C);
  ON_BOTH(h)
  be->ops->grad->layer_norm_backward(be, P(dx), P(dgamma), P(dbeta), P(dy), P(x), P(gamma), T,
                                     C, 1e-5f);
  char shape[96];
  snprintf(shape, sizeof shape, "T=%d C=%d", T, C);
  compare(h, "ln_bwd dx", shape, &dx, h->tol_grad);
  compare(h, "ln_bwd dgamma", shape, &dgamma, h->tol_grad);
  compare(h, "ln_bwd dbeta", shape, &dbeta, h->tol_grad);
  tensor *all[] = { &x, &dy, &gamma, &dx, &dgamma, &dbeta };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    t_free(h, all[i]);
}

typedef struct {
  int n_seq, Sq, Sk, heads, D, qs, ks, vs, os;
  tensor q, k, v, d_o, dq, dk, dv;
} attn_grad_run;

static void
run_attention_backward_gpu(harness *h, void *ctx)
{
  attn_grad_run *a = ctx;
  h->gpu->ops->grad->attention_backward(h->gpu, a->dq.g, a->dk.g, a->dv.g, a->d_o.g, a->q.g,
                                        a->k.g, a->v.g, a->n_seq, a->Sq, a->Sk, a->heads, a->D,
                                        a->qs, a->ks, a->vs, a->os, 1.0f / sqrtf((float)a->D));
}

/* Token rows padded by `pad` floats beyond heads * D (q, k, v, the output
 * and their gradients each by a different amount), or, when packed, q, k
 * and v interleaved in one buffer and their gradients likewise (Sq == Sk). */
static void
test_attention_backward(harness *h, int n_seq, int Sq, int Sk, int heads, int D, int pad,
                        bool packed, bool determinism)
{
  if (!CPU_HAS(h, attention_backward))
    return;
  int width = heads * D;
  attn_grad_run a = { n_seq, Sq, Sk, heads, D };
  if (packed) {
    a.qs = a.ks = a.vs = 3 * width;
    a.q = t_random(h, (size_t)n_seq * Sq * 3 * width, -2, 2);
    a.dq = t_output(h, a.q.n);
    a.k = a.v = a.q;
    a.dk = a.dv = a.dq;
    a.k.c += width, a.k.g += width, a.v.c += 2 * width, a.v.g += 2 * width;
    a.dk.c += width, a.dk.g += width, a.dv.c += 2 * width, a.dv.g += 2 * width;
  } else {
    a.qs = width + pad, a.ks = width + 2 * pad, a.vs = width + 3 * pad;
    a.q = t_random(h, (size_t)n_seq * Sq * a.qs, -2, 2);
    a.k = t_random(h, (size_t)n_seq * Sk * a.ks, -2, 2);
    a.v = t_random(h, (size_t)n_seq * Sk * a.vs, -2, 2);
    a.dq = t_output(h, a.q.n);
    a.dk = t_output(h, a.k.n);
    a.dv = t_output(h, a.v.n);
  }
  a.os = width + pad;
  a.d_o = t_random(h, (size_t)n_seq * Sq * a.os, -1, 1);
  ON_BOTH(h)
  be->ops->grad->attention_backward(be, P(a.dq), P(a.dk), P(a.dv), P(a.d_o), P(a.q), P(a.k),
                                    P(a.v), n_seq, Sq, Sk, heads, D, a.qs, a.ks, a.vs, a.os,
                                    1.0f / sqrtf((float)D));
  char shape[96];
  snprintf(shape, sizeof shape, "%d seq, %d x %d tokens, %d x %d, %s", n_seq, Sq, Sk, heads, D,
           packed ? "packed" : "padded rows");
  if (packed) {
    tensor all = a.dq; /* dq, dk and dv interleaved */
    compare(h, "attn_bwd dqkv", shape, &all, h->tol_grad);
  } else {
    compare(h, "attn_bwd dq", shape, &a.dq, h->tol_grad);
    compare(h, "attn_bwd dk", shape, &a.dk, h->tol_grad);
    compare(h, "attn_bwd dv", shape, &a.dv, h->tol_grad);
  }
  if (determinism) /* packed: the whole interleaved gradient */
    check_deterministic(h, "attn_bwd", packed ? &a.dq : &a.dk, run_attention_backward_gpu, &a);
  t_free(h, &a.q);
  t_free(h, &a.dq);
  t_free(h, &a.d_o);
  if (!packed) {
    t_free(h, &a.k);
    t_free(h, &a.v);
    t_free(h, &a.dk);
    t_free(h, &a.dv);
  }
}

static void
test_pointwise_backward(harness *h)
{
  const size_t n = 10007;
  tensor x = t_random(h, n, -6, 6), dy = t_random(h, n, -1, 1), dx = t_output(h, n);
  char shape[64];
  snprintf(shape, sizeof shape, "n=%zu", n);
  if (CPU_HAS(h, silu_backward)) {
    ON_BOTH(h) be->ops->grad->silu_backward(be, P(dx), P(dy), P(x), n);
    compare(h, "silu_backward", shape, &dx, h->tol_grad);
  }
  if (CPU_HAS(h, gelu_backward)) {
    ON_BOTH(h) be->ops->grad->gelu_backward(be, P(dx), P(dy), P(x), n);
    compare(h, "gelu_backward", shape, &dx, h->tol_grad);
  }
  if (CPU_HAS(h, quick_gelu_backward)) {
    ON_BOTH(h) be->ops->grad->quick_gelu_backward(be, P(dx), P(dy), P(x), n);
    compare(h, "quick_gelu_bwd", shape, &dx, h->tol_grad);
  }
  if (CPU_HAS(h, axpy)) {
    ON_BOTH(h) be->ops->grad->axpy(be, P(dx), P(dy), -0.37f, n);
    compare(h, "axpy", shape, &dx, h->tol_grad);
  }
  if (CPU_HAS(h, dot)) {
    double want = h->cpu->ops->grad->dot(h->cpu, x.c, dy.c, n);
    double got = h->gpu->ops->grad->dot(h->gpu, x.g, dy.g, n);
    compare_scalar(h, "dot", shape, got, want, h->tol_grad);
  }
  t_free(h, &x);
  t_free(h, &dy);
  t_free(h, &dx);

  int T = 33, C = 40;
  if (CPU_HAS(h, geglu_backward)) {
    tensor g = t_random(h, (size_t)T * 2 * C, -4, 4), gdy = t_random(h, (size_t)T * C, -1, 1);
    tensor gdx = t_output(h, g.n);
    ON_BOTH(h) be->ops->grad->geglu_backward(be, P(gdx), P(gdy), P(g), T, C);
    compare(h, "geglu_backward", "T=33 C=40", &gdx, h->tol_grad);
    t_free(h, &g);
    t_free(h, &gdy);
    t_free(h, &gdx);
  }
}

static void
test_sums_and_layout_backward(harness *h)
{
  if (CPU_HAS(h, sum_rows)) {
    int G = 3, R = 700, C = 45; /* several row chunks, a ragged column tile */
    tensor x = t_random(h, (size_t)G * R * C, -1, 1), v = t_output(h, (size_t)G * C);
    ON_BOTH(h) be->ops->grad->sum_rows(be, P(v), P(x), G, R, C);
    compare(h, "sum_rows", "G=3 R=700 C=45", &v, h->tol_grad);
    t_free(h, &x);
    t_free(h, &v);
  }
  if (CPU_HAS(h, sum_channel_planes)) {
    int N = 3, C = 7, Pp = 333;
    tensor x = t_random(h, (size_t)N * C * Pp, -1, 1), v = t_output(h, (size_t)N * C);
    ON_BOTH(h) be->ops->grad->sum_channel_planes(be, P(v), P(x), N, C, Pp);
    compare(h, "sum_channel_pl", "N=3 C=7 P=333", &v, h->tol_grad);
    t_free(h, &x);
    t_free(h, &v);
  }
  if (CPU_HAS(h, upsample_nearest_backward)) {
    /* doubling, a non-integer enlargement and a reduction (sources skipped) */
    static const int sizes[][4] = { { 6, 9, 12, 18 }, { 7, 9, 10, 13 }, { 9, 12, 5, 7 } };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      int N = 2, C = 3, H = sizes[i][0], W = sizes[i][1], Ho = sizes[i][2], Wo = sizes[i][3];
      tensor dy = t_random(h, (size_t)N * C * Ho * Wo, -1, 1);
      tensor dx = t_output(h, (size_t)N * C * H * W);
      ON_BOTH(h) be->ops->grad->upsample_nearest_backward(be, P(dx), P(dy), N, C, H, W, Ho, Wo);
      char shape[64];
      snprintf(shape, sizeof shape, "2x3x%dx%d <- %dx%d", H, W, Ho, Wo);
      compare(h, "upsample_bwd", shape, &dx, h->tol_grad);
      t_free(h, &dy);
      t_free(h, &dx);
    }
  }
  if (CPU_HAS(h, split_channels)) {
    int N = 3, Ca = 5, Cb = 7, Pp = 99;
    tensor dy = t_random(h, (size_t)N * (Ca + Cb) * Pp, -1, 1);
    tensor da = t_output(h, (size_t)N * Ca * Pp), db = t_output(h, (size_t)N * Cb * Pp);
    ON_BOTH(h) be->ops->grad->split_channels(be, P(da), P(db), P(dy), Ca, Cb, N, Pp);
    compare(h, "split_channels", "3 x (5 + 7) x 99, da", &da, 0);
    compare(h, "split_channels", "3 x (5 + 7) x 99, db", &db, 0);
    ON_BOTH(h) be->ops->grad->split_channels(be, NULL, P(db), P(dy), Ca, Cb, N, Pp);
    compare(h, "split_channels", "3 x (5 + 7) x 99, da NULL", &db, 0);
    t_free(h, &dy);
    t_free(h, &da);
    t_free(h, &db);
  }
}

/* The discriminator's backwards (shapes as in test_discriminator), each
 * gradient pre-filled, and run twice on the GPU for bitwise reproducibility
 * (after the comparisons: those runs accumulate into the GPU's gradients only). */
typedef struct {
  int N, C, H, W, Ho, Wo, r, group; /* the layers on feature maps */
  int rows, cols;                    /* spectral normalisation's W */
  tensor x, dy, dx;
  tensor gamma, dgamma, dbeta; /* batch_norm_local */
  tensor e, de;                /* channel_projection */
  tensor Wt, dW, u, v;         /* spectral normalisation */
} disc_grad_run;

static void
run_leaky_relu_backward_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->leaky_relu_backward(h->gpu, r->dx.g, r->dy.g, r->x.g, 0.2f, r->x.n);
}

static void
run_pixel_shuffle_backward_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->pixel_shuffle_backward(h->gpu, r->dx.g, r->dy.g, r->N, r->C, r->H, r->W,
                                            r->r);
}

static void
run_resize_bilinear_backward_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->resize_bilinear_backward(h->gpu, r->dx.g, r->dy.g, r->N, r->C, r->H, r->W,
                                              r->Ho, r->Wo);
}

static void
run_batch_norm_local_backward_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->batch_norm_local_backward(h->gpu, r->dx.g, r->dgamma.g, r->dbeta.g, r->dy.g,
                                               r->x.g, r->gamma.g, r->N, r->C, r->H * r->W,
                                               r->group, 1e-5f);
}

static void
run_channel_projection_backward_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->channel_projection_backward(h->gpu, r->dx.g, r->de.g, r->dy.g, r->x.g,
                                                 r->e.g, r->N, r->C, r->H * r->W);
}

static void
run_spectral_normalize_backward_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->spectral_normalize_backward(h->gpu, r->dW.g, r->dy.g, r->Wt.g, r->u.g,
                                                 r->v.g, r->rows, r->cols);
}

static void
run_power_iteration_gpu(harness *h, void *ctx)
{
  disc_grad_run *r = ctx;
  h->gpu->ops->grad->spectral_norm_power_iteration(h->gpu, r->u.g, r->v.g, r->Wt.g, r->rows,
                                                   r->cols, 1e-12f);
}

/* Frees the run's tensors that were allocated. */
static void
free_grad_run(harness *h, disc_grad_run *r)
{
  tensor *all[] = { &r->x, &r->dy, &r->dx, &r->gamma, &r->dgamma, &r->dbeta,
                    &r->e, &r->de, &r->Wt, &r->dW, &r->u, &r->v };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i]->c)
      t_free(h, all[i]);
}

static void
test_discriminator_backward(harness *h)
{
  if (CPU_HAS(h, leaky_relu_backward)) {
    size_t n = 10007;
    disc_grad_run r = { .x = t_random(h, n, -3, 3), .dy = t_random(h, n, -1, 1),
                        .dx = t_output(h, n) };
    ON_BOTH(h) be->ops->grad->leaky_relu_backward(be, P(r.dx), P(r.dy), P(r.x), 0.2f, n);
    compare(h, "leaky_relu_bwd", "n=10007 slope 0.2", &r.dx, h->tol_grad);
    check_deterministic(h, "leaky_relu_bwd", &r.dx, run_leaky_relu_backward_gpu, &r);
    free_grad_run(h, &r);
  }
  if (CPU_HAS(h, pixel_shuffle_backward)) {
    disc_grad_run r = { .N = 8, .C = 64, .H = 16, .W = 16, .r = 2 };
    r.dy = t_random(h, (size_t)8 * 64 * 32 * 32, -1, 1);
    r.dx = t_output(h, r.dy.n);
    ON_BOTH(h) be->ops->grad->pixel_shuffle_backward(be, P(r.dx), P(r.dy), 8, 64, 16, 16, 2);
    compare(h, "pixel_shuf_bwd", "8x256x16x16 <- 8x64x32x32", &r.dx, 0);
    check_deterministic(h, "pixel_shuf_bwd", &r.dx, run_pixel_shuffle_backward_gpu, &r);
    free_grad_run(h, &r);
  }
  if (CPU_HAS(h, resize_bilinear_backward)) {
    for (size_t i = 0; i < sizeof resize_cases / sizeof resize_cases[0]; i++) {
      const int *s = resize_cases[i];
      disc_grad_run r = { .N = s[0], .C = s[1], .H = s[2], .W = s[3], .Ho = s[4], .Wo = s[5] };
      r.dy = t_random(h, (size_t)r.N * r.C * r.Ho * r.Wo, -1, 1);
      r.dx = t_output(h, (size_t)r.N * r.C * r.H * r.W);
      ON_BOTH(h)
      be->ops->grad->resize_bilinear_backward(be, P(r.dx), P(r.dy), r.N, r.C, r.H, r.W, r.Ho,
                                              r.Wo);
      char shape[64];
      snprintf(shape, sizeof shape, "%dx%dx%dx%d <- %dx%d", s[0], s[1], s[2], s[3], s[4], s[5]);
      compare(h, "resize_bil_bwd", shape, &r.dx, h->tol_grad);
      check_deterministic(h, "resize_bil_bwd", &r.dx, run_resize_bilinear_backward_gpu, &r);
      free_grad_run(h, &r);
    }
  }
  if (CPU_HAS(h, batch_norm_local_backward)) {
    disc_grad_run r = { .N = 8, .C = 384, .H = 16, .W = 16, .group = 4 };
    r.x = t_random(h, (size_t)8 * 384 * 256, 2.0f, 4.0f);
    r.dy = t_random(h, r.x.n, -1, 1);
    r.dx = t_output(h, r.x.n);
    r.gamma = t_random(h, 384, 0.5f, 1.5f);
    r.dgamma = t_output(h, 384);
    r.dbeta = t_output(h, 384);
    ON_BOTH(h)
    be->ops->grad->batch_norm_local_backward(be, P(r.dx), P(r.dgamma), P(r.dbeta), P(r.dy),
                                             P(r.x), P(r.gamma), 8, 384, 256, 4, 1e-5f);
    const char *shape = "N=8 C=384 P=256 group 4";
    compare(h, "bnl_bwd dx", shape, &r.dx, h->tol_grad);
    compare(h, "bnl_bwd dgamma", shape, &r.dgamma, h->tol_grad);
    compare(h, "bnl_bwd dbeta", shape, &r.dbeta, h->tol_grad);
    /* the parameter gradients alone */
    ON_BOTH(h)
    be->ops->grad->batch_norm_local_backward(be, NULL, P(r.dgamma), P(r.dbeta), P(r.dy), P(r.x),
                                             P(r.gamma), 8, 384, 256, 4, 1e-5f);
    compare(h, "bnl_bwd dgamma", "dx NULL", &r.dgamma, h->tol_grad);
    compare(h, "bnl_bwd dbeta", "dx NULL", &r.dbeta, h->tol_grad);
    check_deterministic(h, "bnl_bwd dx", &r.dx, run_batch_norm_local_backward_gpu, &r);
    check_deterministic(h, "bnl_bwd dgamma", &r.dgamma, run_batch_norm_local_backward_gpu, &r);
    free_grad_run(h, &r);
  }
  if (CPU_HAS(h, channel_projection_backward)) {
    disc_grad_run r = { .N = 8, .C = 384, .H = 16, .W = 16 };
    r.x = t_random(h, (size_t)8 * 384 * 256, -1, 1);
    r.e = t_random(h, (size_t)8 * 384, -1, 1);
    r.dy = t_random(h, (size_t)8 * 256, -1, 1);
    r.dx = t_output(h, r.x.n);
    r.de = t_output(h, r.e.n);
    ON_BOTH(h)
    be->ops->grad->channel_projection_backward(be, P(r.dx), P(r.de), P(r.dy), P(r.x), P(r.e), 8,
                                               384, 256);
    compare(h, "chan_proj_bwd dx", "N=8 C=384 P=256", &r.dx, h->tol_grad);
    compare(h, "chan_proj_bwd de", "N=8 C=384 P=256", &r.de, h->tol_grad);
    ON_BOTH(h)
    be->ops->grad->channel_projection_backward(be, NULL, P(r.de), P(r.dy), P(r.x), P(r.e), 8, 384,
                                               256);
    compare(h, "chan_proj_bwd de", "dx NULL", &r.de, h->tol_grad);
    check_deterministic(h, "chan_proj_bwd de", &r.de, run_channel_projection_backward_gpu, &r);
    free_grad_run(h, &r);
  }
  /* W [384, 3456], a 3x3 convolution's weight */
  int rows = 384, cols = 384 * 9;
  if (CPU_HAS(h, spectral_normalize_backward)) {
    disc_grad_run r = { .rows = rows, .cols = cols };
    r.Wt = t_random(h, (size_t)rows * cols, -0.05f, 0.05f);
    r.dy = t_random(h, r.Wt.n, -1, 1);
    r.dW = t_output(h, r.Wt.n);
    r.u = t_random(h, rows, -1, 1);
    r.v = t_random(h, cols, -1, 1);
    ON_BOTH(h)
    be->ops->grad->spectral_normalize_backward(be, P(r.dW), P(r.dy), P(r.Wt), P(r.u), P(r.v),
                                               rows, cols);
    compare(h, "spectral_bwd", "W [384, 3456]", &r.dW, h->tol_grad);
    check_deterministic(h, "spectral_bwd", &r.dW, run_spectral_normalize_backward_gpu, &r);
    free_grad_run(h, &r);
  }
  if (CPU_HAS(h, spectral_norm_power_iteration)) {
    disc_grad_run r = { .rows = rows, .cols = cols };
    r.Wt = t_random(h, (size_t)rows * cols, -0.05f, 0.05f);
    r.u = t_random(h, rows, -1, 1);
    r.v = t_output(h, cols);
    ON_BOTH(h)
    be->ops->grad->spectral_norm_power_iteration(be, P(r.u), P(r.v), P(r.Wt), rows, cols, 1e-12f);
    compare(h, "power_iter u", "W [384, 3456]", &r.u, h->tol_grad);
    compare(h, "power_iter v", "W [384, 3456]", &r.v, h->tol_grad);
    check_deterministic(h, "power_iter u", &r.u, run_power_iteration_gpu, &r);
    free_grad_run(h, &r);
  }
}

static void
test_training_ops(harness *h)
{
  const size_t n = 20011;
  char shape[64];
  if (CPU_HAS(h, loss)) {
    tensor pred = t_random(h, n, -2, 2), target = t_random(h, n, -2, 2), grad = t_output(h, n);
    static const char *names[] = { "squared", "pseudo-Huber c=0.03" };
    for (int kind = OS_LOSS_SQUARED; kind <= OS_LOSS_PSEUDO_HUBER; kind++) {
      double sums[2] = { 0.0, 0.0 };
      ON_BOTH(h)
      sums[side_] = be->ops->grad->loss(be, P(grad), P(pred), P(target), n, (os_loss_kind)kind,
                                        0.03f, 0.5f / n);
      snprintf(shape, sizeof shape, "%s n=%zu", names[kind], n);
      compare_scalar(h, "loss", shape, sums[1], sums[0], h->tol_grad);
      compare(h, "loss grad", shape, &grad, h->tol_grad);
    }
    t_free(h, &pred);
    t_free(h, &target);
    t_free(h, &grad);
  }
  if (CPU_HAS(h, adamw_step)) {
    tensor p = t_random(h, n, -1, 1), g = t_random(h, n, -1, 1);
    tensor m = t_random(h, n, -0.1f, 0.1f), v = t_random(h, n, 0.0f, 0.01f);
    for (int64_t step = 1; step <= 3; step++) { /* the bias corrections change per step */
      ON_BOTH(h)
      be->ops->grad->adamw_step(be, P(p), P(g), P(m), P(v), n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f,
                                step);
    }
    snprintf(shape, sizeof shape, "3 steps, n=%zu", n);
    compare(h, "adamw p", shape, &p, h->tol_grad);
    compare(h, "adamw m", shape, &m, h->tol_grad);
    compare(h, "adamw v", shape, &v, h->tol_grad);
    t_free(h, &p);
    t_free(h, &g);
    t_free(h, &m);
    t_free(h, &v);
  }
  if (CPU_HAS(h, ema_update)) {
    tensor e = t_random(h, n, -1, 1), p = t_random(h, n, -1, 1);
    ON_BOTH(h) be->ops->grad->ema_update(be, P(e), P(p), 0.999f, n);
    snprintf(shape, sizeof shape, "mu=0.999 n=%zu", n);
    compare(h, "ema_update", shape, &e, h->tol_grad);
    t_free(h, &e);
    t_free(h, &p);
  }
}

/* ---------------------------------------------------------------------------- */
/* weights updated in place (training spec section 10) */

typedef enum { UPDATE_ADAMW, UPDATE_EMA, UPDATE_AXPY, UPDATE_COUNT } weight_update;

/* A linear layer (whose weight has cached fp16/bf16 copies) and a temporal
 * convolution (whose weight has cached regrouped taps in every precision). */
typedef struct {
  int T, in, out, F, Cin, Cout, HW;
  tensor x_lin, x_tmp, y_lin, y_tmp;
} cached_layers;

static void
forward_cached_layers(harness *h, cached_layers *l, const float *w_lin, const float *w_tmp)
{
  os_backend *g = h->gpu;
  g->ops->linear(g, l->y_lin.g, l->x_lin.g, w_lin, NULL, NULL, l->T, l->in, l->out);
  g->ops->conv_temporal(g, l->y_tmp.g, l->x_tmp.g, w_tmp, NULL, 1, l->F, l->Cin, l->Cout, l->HW);
}

static void
update_weight(harness *h, weight_update u, tensor *w, const tensor *other, tensor *m, tensor *v)
{
  os_backend *g = h->gpu;
  if (u == UPDATE_ADAMW)
    g->ops->grad->adamw_step(g, w->g, other->g, m->g, v->g, w->n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f,
                             1);
  else if (u == UPDATE_EMA)
    g->ops->grad->ema_update(g, w->g, other->g, 0.5f, w->n);
  else
    g->ops->grad->axpy(g, w->g, other->g, -0.25f, w->n);
}

/* forward; update the weights in place; forward again: the second forward
 * must equal one with fresh copies of the updated weights (that the cache
 * never saw), and differ from the first. */
static void
test_weight_update_invalidates_cache(harness *h)
{
  static const char *names[] = { "adamw_step", "ema_update", "axpy" };
  cached_layers l = { 64, 96, 80, 4, 16, 24, 50 };
  l.x_lin = t_random(h, (size_t)l.T * l.in, -1, 1);
  l.x_tmp = t_random(h, (size_t)l.F * l.Cin * l.HW, -1, 1);
  l.y_lin = t_output(h, (size_t)l.T * l.out);
  l.y_tmp = t_output(h, (size_t)l.F * l.Cout * l.HW);
  for (int u = 0; u < UPDATE_COUNT; u++) {
    tensor w[2] = { t_random(h, (size_t)l.out * l.in, -0.3f, 0.3f),
                    t_random(h, (size_t)l.Cout * l.Cin * 3, -0.3f, 0.3f) };
    tensor after[2];
    forward_cached_layers(h, &l, w[0].g, w[1].g);
    check_sync(h, names[u]);
    float *before_lin = download(h->gpu, l.y_lin.g, l.y_lin.n);
    float *before_tmp = download(h->gpu, l.y_tmp.g, l.y_tmp.n);
    for (int i = 0; i < 2; i++) {
      tensor other = t_random(h, w[i].n, -1, 1), m = t_random(h, w[i].n, -0.1f, 0.1f);
      tensor v = t_random(h, w[i].n, 0.0f, 0.01f);
      update_weight(h, (weight_update)u, &w[i], &other, &m, &v);
      t_free(h, &other);
      t_free(h, &m);
      t_free(h, &v);
    }
    forward_cached_layers(h, &l, w[0].g, w[1].g);
    float *after_lin = download(h->gpu, l.y_lin.g, l.y_lin.n);
    float *after_tmp = download(h->gpu, l.y_tmp.g, l.y_tmp.n);
    for (int i = 0; i < 2; i++) {
      after[i] = t_output(h, w[i].n);
      h->gpu->ops->copy(h->gpu, after[i].g, w[i].g, w[i].n * sizeof(float));
    }
    forward_cached_layers(h, &l, after[0].g, after[1].g);
    float *fresh_lin = download(h->gpu, l.y_lin.g, l.y_lin.n);
    float *fresh_tmp = download(h->gpu, l.y_tmp.g, l.y_tmp.n);
    check_sync(h, names[u]);
    bool ok = memcmp(after_lin, fresh_lin, l.y_lin.n * sizeof(float)) == 0 &&
              memcmp(after_tmp, fresh_tmp, l.y_tmp.n * sizeof(float)) == 0 &&
              memcmp(after_lin, before_lin, l.y_lin.n * sizeof(float)) != 0 &&
              memcmp(after_tmp, before_tmp, l.y_tmp.n * sizeof(float)) != 0;
    h->checks++;
    h->failures += !ok;
    printf("%-4s %-16s %-44s %s\n", ok ? "ok" : "FAIL", names[u], "linear, conv_temporal weights",
           ok ? "the next forward uses the updated weights" : "a forward used a stale cached weight");
    free(before_lin);
    free(before_tmp);
    free(after_lin);
    free(after_tmp);
    free(fresh_lin);
    free(fresh_tmp);
    for (int i = 0; i < 2; i++) {
      t_free(h, &w[i]);
      t_free(h, &after[i]);
    }
  }
  t_free(h, &l.x_lin);
  t_free(h, &l.x_tmp);
  t_free(h, &l.y_lin);
  t_free(h, &l.y_tmp);
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
/* 16-bit storage (run in fp16 and bf16 only) */

#define FP32 OS_STORAGE_FP32
#define ACT OS_STORAGE_ACTIVATION
#define WGT OS_STORAGE_WEIGHT

/* Ops whose buffers store different types, as model code mixes them: 16-bit
 * operands and activations beside a float32 residual stream. */
static void
test_mixed_storage(harness *h)
{
  int T = 200, in = 320, out = 640;
  tensor x = t_random_as(h, (size_t)T * in, -1, 1, ACT);
  tensor W = t_random_as(h, (size_t)out * in, -0.1f, 0.1f, WGT);
  tensor b = t_random_as(h, out, -1, 1, WGT);
  tensor stream = t_random_as(h, (size_t)T * out, -1, 1, FP32);
  ON_BOTH(h) be->ops->linear(be, P(stream), P(x), P(W), P(b), P(stream), T, in, out);
  compare(h, "linear", "16-bit x, W; float32 residual in place", &stream, h->tol_gemm);

  tensor a16 = t_random_as(h, stream.n, -1, 1, ACT), sum = t_random_as(h, stream.n, -1, 1, FP32);
  ON_BOTH(h) be->ops->add(be, P(sum), P(stream), P(a16), stream.n);
  compare(h, "add", "float32 + 16-bit -> float32", &sum, h->tol_float);
  ON_BOTH(h) be->ops->add(be, P(a16), P(stream), P(a16), stream.n);
  compare(h, "add", "float32 + 16-bit -> 16-bit, in place", &a16, h->tol_float);

  tensor back = t_random_as(h, stream.n, -1, 1, FP32);
  tensor narrow = t_random_as(h, stream.n, -1, 1, ACT);
  ON_BOTH(h) be->ops->copy(be, P(narrow), P(stream), stream.n * sizeof(float));
  compare(h, "copy", "float32 -> 16-bit (rounds)", &narrow, 0);
  ON_BOTH(h) be->ops->copy(be, P(back), P(narrow), stream.n * sizeof(float));
  compare(h, "copy", "16-bit -> float32 (exact)", &back, 0);

  /* [T, out] viewed as [1, T, out/64, 64] -> [1, out/64, T, 64]: float32 in, 16-bit out */
  tensor permuted = t_random_as(h, stream.n, -1, 1, ACT);
  ON_BOTH(h) be->ops->permute_0213(be, P(permuted), P(stream), 1, T, out / 64, 64);
  compare(h, "permute_0213", "float32 -> 16-bit", &permuted, 0);

  int N = 2, C = 64, H = 24, Wd = 40;
  tensor img = t_random_as(h, (size_t)N * C * H * Wd, -1, 1, ACT);
  tensor cw = t_random_as(h, (size_t)C * C * 9, -0.2f, 0.2f, WGT);
  tensor res = t_random_as(h, img.n, -1, 1, FP32), cy = t_random_as(h, img.n, -1, 1, FP32);
  ON_BOTH(h)
  be->ops->conv2d(be, P(cy), P(img), P(cw), NULL, P(res), N, C, H, Wd, C, 3, 3, 1, 1, 1, 1, 1);
  compare(h, "conv2d", "16-bit x, W; float32 y and residual", &cy, h->tol_conv);
  tensor normed = t_random_as(h, img.n, -1, 1, ACT);
  ON_BOTH(h)
  be->ops->group_norm(be, P(normed), P(res), NULL, NULL, N, C, H * Wd, 32, 1, 1e-5f, true);
  compare(h, "group_norm", "float32 x -> 16-bit y, no affine", &normed, h->tol_float);

  int S = 256, heads = 5, D = 64;
  tensor q = t_random_as(h, (size_t)S * heads * D, -2, 2, ACT);
  tensor k = t_random_as(h, q.n, -2, 2, FP32), v = t_random_as(h, q.n, -2, 2, ACT);
  tensor o = t_random_as(h, q.n, -1, 1, FP32);
  ON_BOTH(h)
  be->ops->attention(be, P(o), P(q), P(k), P(v), 1, S, S, heads, D, heads * D, heads * D,
                     heads * D, heads * D, 0.125f);
  compare(h, "attention", "16-bit q, v; float32 k and o", &o, h->tol_attention);

  tensor *all[] = { &x, &W, &b, &stream, &a16, &sum, &back, &narrow, &permuted, &img, &cw,
                    &res, &cy, &normed, &q, &k, &v, &o };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    t_free(h, all[i]);
}

/* A 16-bit block holds 2 bytes per element, and element offsets into it
 * address the right values in transfers. */
static void
test_16bit_memory(harness *h)
{
  os_backend *g = h->gpu;
  const size_t n = 100000;
  size_t before = g->bytes_in_use;
  float *block = g->ops->alloc_as(g, n, OS_STORAGE_ACTIVATION);
  size_t used = g->bytes_in_use - before;
  if (!block) {
    fprintf(stderr, "cannot allocate a 16-bit block\n");
    exit(2);
  }
  float *host = xmalloc(n * sizeof(float)), *part = xmalloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    host[i] = round_to((float)i * 0.25f - 3000.0f, h->half);
  g->ops->upload(g, block, host, n * sizeof(float));
  /* a range inside the block, read through an element offset */
  g->ops->download(g, part, block + 12345, 777 * sizeof(float));
  bool ok = used >= 2 * n && used < 3 * n && memcmp(part, host + 12345, 777 * sizeof(float)) == 0;
  /* and written through one */
  g->ops->upload(g, block + 500, host, 10 * sizeof(float));
  g->ops->download(g, part, block + 500, 10 * sizeof(float));
  ok = ok && memcmp(part, host, 10 * sizeof(float)) == 0;
  g->ops->free(g, block);
  ok = ok && g->bytes_in_use == before;
  check_sync(h, "16-bit memory");
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s %zu bytes for %zu elements, offsets address elements\n",
         ok ? "ok" : "FAIL", "alloc_as", "16-bit block", used, n);
  free(host);
  free(part);

  /* transfers longer than the backend's 64 MiB float32 staging chunk */
  const size_t large = ((size_t)1 << 24) + 4097;
  float *big = g->ops->alloc_as(g, large, OS_STORAGE_WEIGHT);
  float *in = xmalloc(large * sizeof(float)), *out = xmalloc(large * sizeof(float));
  if (!big) {
    fprintf(stderr, "cannot allocate a 16-bit block of %zu elements\n", large);
    exit(2);
  }
  for (size_t i = 0; i < large; i++)
    in[i] = round_to((float)(i % 65521) * 0.03125f - 1000.0f, h->half);
  g->ops->upload(g, big, in, large * sizeof(float));
  g->ops->download(g, out, big, large * sizeof(float));
  g->ops->free(g, big);
  check_sync(h, "16-bit transfers");
  ok = memcmp(in, out, large * sizeof(float)) == 0;
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s %s\n", ok ? "ok" : "FAIL", "upload/download",
         "16-bit, over a staging chunk",
         ok ? "round trip exact" : "values differ after the round trip");
  free(in);
  free(out);
}

/* A linear layer on a 16-bit weight leaves no converted copy on the device;
 * on a float32 weight in this precision it caches one 16-bit copy. */
static void
test_16bit_weight_not_copied(harness *h)
{
  os_backend *g = h->gpu;
  int T = 64, in = 256, out = 512;
  tensor x = t_random_as(h, (size_t)T * in, -1, 1, ACT);
  tensor y = t_random_as(h, (size_t)T * out, -1, 1, ACT);
  tensor w16 = t_random_as(h, (size_t)out * in, -0.1f, 0.1f, WGT);
  tensor w32 = t_random_as(h, (size_t)out * in, -0.1f, 0.1f, FP32);
  size_t before = g->bytes_in_use;
  g->ops->linear(g, y.g, x.g, w16.g, NULL, NULL, T, in, out);
  check_sync(h, "linear");
  size_t after_16 = g->bytes_in_use;
  g->ops->linear(g, y.g, x.g, w32.g, NULL, NULL, T, in, out);
  check_sync(h, "linear");
  size_t after_32 = g->bytes_in_use;
  bool ok = after_16 == before && after_32 >= before + (size_t)out * in * 2;
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s %s\n", ok ? "ok" : "FAIL", "linear", "cached weight copies",
         ok ? "none of a 16-bit weight, one of a float32 weight"
            : "a 16-bit weight was copied, or a float32 one was not cached");
  t_free(h, &x);
  t_free(h, &y);
  t_free(h, &w16);
  t_free(h, &w32);
}

/* Training ops compute in float32: a 16-bit buffer is an error, not garbage. */
static void
test_training_refuses_16bit(harness *h)
{
  os_backend *g = h->gpu;
  int T = 8, in = 16, out = 8;
  tensor x = t_random_as(h, (size_t)T * in, -1, 1, FP32);
  tensor dy = t_random_as(h, (size_t)T * out, -1, 1, FP32);
  tensor W = t_random_as(h, (size_t)out * in, -1, 1, WGT), dx = t_random_as(h, x.n, -1, 1, FP32);
  g->ops->grad->linear_backward(g, dx.g, NULL, NULL, dy.g, x.g, W.g, T, in, out);
  onestep_error error = { 0 };
  onestep_status status = g->ops->sync(g, &error);
  bool ok = status == ONESTEP_ERR_DEVICE && strstr(error.message, "training needs fp32 precision");
  h->checks++;
  h->failures += !ok;
  printf("%-4s %-16s %-44s %s\n", ok ? "ok" : "FAIL", "linear_backward", "16-bit weight",
         ok ? "refused: training needs fp32 precision" : error.message);
  t_free(h, &x);
  t_free(h, &dy);
  t_free(h, &W);
  t_free(h, &dx);
}

#undef FP32
#undef ACT
#undef WGT

/* ---------------------------------------------------------------------------- */
/* every forward op, in the harness's storage */

static void
test_forward_ops(harness *h)
{
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      test_gemm(h, ta, tb, 300, 320, 640);
  test_gemm(h, false, false, 1, 1024, 320); /* a single row: the time embedding */
  test_gemm_batched(h);
  test_linear(h, 1024, 320, 1280, true, 0);
  test_linear(h, 1024, 320, 320, true, 1);
  test_linear(h, 1024, 320, 320, false, 2);
  test_linear(h, 1, 1024, 1280, true, 0);
  /* cuBLASLt's bias epilogue and residual as C at CLIP's sizes, and rows
   * of an odd length (4-byte aligned operands) */
  test_linear(h, 257, 1280, 5120, true, 0);
  test_linear(h, 257, 5120, 1280, true, 2);
  test_linear(h, 77, 33, 17, true, 1);

  /* UNet resnet 3x3, conv_in on 8 channels, VAE downsampler (stride 2, pad
   * right/bottom only), 1x1 shortcut, a non-square kernel */
  test_conv2d(h, (conv_case){ 2, 64, 24, 40, 64, 3, 3, 1, 1, 1, 1, 1, true, true }, true);
  test_conv2d(h, (conv_case){ 3, 8, 24, 40, 80, 3, 3, 1, 1, 1, 1, 1, true, false }, false);
  test_conv2d(h, (conv_case){ 2, 64, 32, 48, 64, 3, 3, 2, 0, 0, 1, 1, true, false }, false);
  test_conv2d(h, (conv_case){ 2, 96, 24, 40, 64, 1, 1, 1, 0, 0, 0, 0, true, true }, false);
  test_conv2d(h, (conv_case){ 1, 16, 20, 20, 24, 1, 3, 1, 0, 1, 0, 1, false, false }, false);
  /* columns over the 256 MiB chunk in every precision: built in ranges of
   * output rows (with a shorter last range), as at 1024x576 */
  test_conv2d(h, (conv_case){ 1, 128, 384, 384, 32, 3, 3, 1, 1, 1, 1, 1, true, false }, false);
  /* two images per chunk in fp16/bf16, one in fp32, with a remainder */
  test_conv2d(h, (conv_case){ 3, 64, 302, 302, 16, 3, 3, 1, 1, 1, 1, 1, true, true }, false);
  /* the UNet's widths through cuDNN: 3x3 with bias and residual (fused where
   * an engine takes it), its downsampler (stride 2, symmetric padding), and
   * an input only 4-byte aligned (another plan) */
  test_conv2d(h, (conv_case){ 2, 320, 24, 40, 320, 3, 3, 1, 1, 1, 1, 1, true, true }, true);
  test_conv2d(h, (conv_case){ 2, 320, 24, 40, 320, 3, 3, 2, 1, 1, 1, 1, true, false }, false);
  test_conv2d(h, (conv_case){ 2, 64, 24, 40, 64, 3, 3, 1, 1, 1, 1, 1, true, true, true }, false);
  test_conv_temporal(h, 2, 7, 64, 96, 24 * 40);
  test_conv_temporal(h, 2, 14, 320, 320, 24 * 40); /* the UNet's temporal resnets */
  test_conv_temporal(h, 1, 1, 32, 32, 100); /* one frame: only the centre tap */
  /* staging over the 256 MiB chunk in every precision: ranges of pixels */
  test_conv_temporal(h, 1, 14, 1280, 64, 9216);

  test_group_norm(h, 6, 64, 24 * 40, 32, 1, true, false);
  test_group_norm(h, 6, 128, 24 * 40, 32, 3, false, false); /* across frames */
  test_group_norm(h, 4, 64, 1000, 16, 1, true, true);
  test_group_norm_tiles(h, 6, 64, 24 * 40, 32, 1, true);
  test_group_norm_tiles(h, 6, 128, 24 * 40, 32, 6, false); /* across frames */
  test_layer_norm(h, 1000, 320, false);
  test_layer_norm(h, 257, 1280, true);

  test_attention(h, "spatial", 2, 960, 960, 5, 64, false, true);
  test_attention(h, "temporal", 960, 14, 14, 5, 64, true, false);
  test_attention(h, "cross", 4, 960, 1, 5, 64, false, false);
  test_attention(h, "CLIP", 1, 257, 257, 16, 80, true, false);
  test_attention(h, "VAE", 2, 576, 576, 1, 512, false, true);
  test_attention(h, "tiny heads", 3, 100, 37, 2, 4, false, false);
  test_attention(h, "odd dim", 2, 70, 90, 3, 100, false, false);
  test_attention(h, "wide heads", 1, 200, 333, 2, 128, false, false);
  test_attention(h, "long keys", 1, 100, 1100, 2, 40, false, false);
  /* Spatial attention at a UNet level with over 1024 tokens: the path that
   * ONESTEP_CUDA_ATTENTION chooses between in fp16/bf16. */
  test_attention(h, "spatial, long", 2, 2304, 2304, 5, 64, false, true);

  test_pointwise(h);
  test_layout(h);
  test_discriminator(h);
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
    h->tol_conv = 1e-3;
    h->tol_attention = 2e-3;
    h->half = ONESTEP_PRECISION_FP16;
    h->tol_storage = 2e-3; /* 11-bit significands: 2^-11 relative per rounding */
    break;
  case ONESTEP_PRECISION_BF16:
    os_backend_cpu_set_operand_precision(h->cpu, ONESTEP_PRECISION_BF16);
    h->tol_gemm = 5e-5;
    h->tol_conv = 8e-3;
    h->tol_attention = 1e-2;
    h->half = ONESTEP_PRECISION_BF16;
    h->tol_storage = 1.6e-2; /* 8-bit significands */
    break;
  case ONESTEP_PRECISION_TF32:
    h->tol_gemm = h->tol_conv = h->tol_attention = 2e-3;
    break;
  default:
    h->tol_gemm = h->tol_conv = h->tol_attention = 1e-4;
  }
  /* where the CPU rounds product operands and the GPU's backward does not */
  h->tol_grad = precision == ONESTEP_PRECISION_FP32 ? 1e-5 : h->tol_attention;
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
  harness h = { .cpu = cpu, .gpu = gpu, .rng = seed, .tol_float = 1e-5,
                .half = ONESTEP_PRECISION_FP32, .storage = OS_STORAGE_FP32 };
  onestep_precision precision = configure_precision(&h);
  printf("%s\nseed %llu (ONESTEP_TEST_SEED replays it), %s: products to %.0e, convolutions to "
         "%.0e, attention to %.0e\n",
         gpu->name, (unsigned long long)seed, onestep_precision_name(precision), h.tol_gemm,
         h.tol_conv, h.tol_attention);

  test_memory(&h);
  test_forward_ops(&h);

  test_grad_table(&h);
  test_linear_backward(&h, 77, 96, 64, true, true);
  test_linear_backward(&h, 40, 33, 17, false, false);
  /* 3x3 same padding, VAE downsampler (stride 2, pad right/bottom only),
   * 1x1 shortcut, non-square kernel with left/right padding only, and each
   * gradient alone */
  test_conv2d_backward(&h, (os_conv2d_shape){ 2, 8, 12, 14, 16, 3, 3, 1, 1, 1, 1, 1 }, "xwb", true);
  test_conv2d_backward(&h, (os_conv2d_shape){ 2, 8, 16, 16, 12, 3, 3, 2, 0, 0, 1, 1 }, "xwb", false);
  test_conv2d_backward(&h, (os_conv2d_shape){ 2, 16, 9, 11, 8, 1, 1, 1, 0, 0, 0, 0 }, "xwb", false);
  test_conv2d_backward(&h, (os_conv2d_shape){ 1, 6, 10, 11, 5, 1, 3, 1, 0, 1, 0, 1 }, "xwb", false);
  test_conv2d_backward(&h, (os_conv2d_shape){ 1, 6, 10, 11, 5, 3, 3, 2, 1, 0, 2, 1 }, "x", false);
  test_conv2d_backward(&h, (os_conv2d_shape){ 1, 6, 10, 11, 5, 3, 3, 2, 1, 0, 2, 1 }, "w", false);
  test_conv2d_backward(&h, (os_conv2d_shape){ 1, 6, 10, 11, 5, 3, 3, 2, 1, 0, 2, 1 }, "b", false);
  test_conv_temporal_backward(&h, 2, 5, 12, 16, 30);
  test_conv_temporal_backward(&h, 1, 1, 8, 8, 20); /* one frame: only the centre tap */
  test_group_norm_backward(&h, 4, 32, 50, 8, 1, true, true);
  test_group_norm_backward(&h, 4, 32, 50, 8, 1, false, false);
  test_group_norm_backward(&h, 6, 16, 30, 4, 3, true, false); /* across frames */
  test_group_norm_backward(&h, 6, 16, 30, 4, 3, false, false);
  test_layer_norm_backward(&h, 50, 96);
  test_attention_backward(&h, 2, 37, 53, 3, 32, 5, false, true);   /* Sq != Sk, padded rows */
  test_attention_backward(&h, 3, 40, 40, 2, 64, 0, true, true);    /* packed q, k, v */
  test_attention_backward(&h, 1, 20, 70, 2, 80, 3, false, false);  /* CLIP's head dim */
  test_attention_backward(&h, 4, 14, 14, 5, 4, 1, false, false);   /* tiny heads, frames */
  test_attention_backward(&h, 1, 9, 5, 1, 128, 2, false, false);   /* the widest flash head */
  test_attention_backward(&h, 2, 48, 31, 1, 512, 4, false, true);  /* the VAE's: cuBLAS path */
  test_attention_backward(&h, 2, 24, 24, 2, 160, 0, true, false);  /* packed, cuBLAS path */
  test_pointwise_backward(&h);
  test_sums_and_layout_backward(&h);
  test_discriminator_backward(&h);
  test_training_ops(&h);
  test_weight_update_invalidates_cache(&h);

  if (h.half != ONESTEP_PRECISION_FP32) {
    printf("--- every forward op again on %s buffers (activations and weights), results to "
           "%.0e\n", onestep_precision_name(h.half), h.tol_storage);
    h.storage = OS_STORAGE_ACTIVATION;
    test_forward_ops(&h);
    test_mixed_storage(&h);
    test_16bit_memory(&h);
    test_16bit_weight_not_copied(&h);
    test_training_refuses_16bit(&h);
    h.storage = OS_STORAGE_FP32;
  }

  printf("%d of %d checks passed; GPU peak %.1f MiB\n", h.checks - h.failures, h.checks,
         gpu->peak_bytes / (1024.0 * 1024.0));
  gpu->ops->destroy(gpu);
  cpu->ops->destroy(cpu);
  return h.failures ? 1 : 0;
}
