/* cpu_attention.c: multi-head attention with an online softmax.
 *
 * Each task is one tile of queries of one (sequence, head); it walks the keys
 * in tiles, keeping per query row the running maximum and sum of exponentials
 * and rescaling its output accumulator when the maximum grows, so memory is
 * O(tile) rather than O(Sq * Sk). Both products of a tile go through sgemm;
 * with only a few keys (attention across frames) a direct loop does the
 * same work without the sgemm call and packing overheads. A task runs on one
 * thread start to end: results do not depend on the thread count. Over
 * thousands of tokens one call is seconds of work: the tasks run in units,
 * between which an abort stops the call (os_cpu_next_unit). */
#include "cpu_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_simd.h"

#define Q_TILE 128
/* Over many keys a task takes fewer query rows, down to this many, so that
 * a unit of work (os_cpu_next_unit) holds about QUERY_TASKS_PER_UNIT tasks
 * for the cores to share. */
#define MIN_Q_TILE 16
#define QUERY_TASKS_PER_UNIT 8
#define K_TILE 512
/* Up to this many keys, plain vector loops beat two tiny sgemm calls (the
 * temporal attention over frames, the one-token cross-attention). */
#define DIRECT_MAX_KEYS 32

typedef struct {
  const float *q, *k, *v;
  float *o;
  int Sq, Sk, head_dim, q_stride, k_stride, v_stride, o_stride;
  int q_tile; /* query rows per task, at most Q_TILE */
  float scale;
} attention_args;

typedef struct {
  float *scores;   /* [Q_TILE, K_TILE]: scores, then probabilities */
  float *acc;      /* [Q_TILE, head_dim]: unnormalised output */
  float *row_max;  /* [Q_TILE] */
  double *row_sum; /* [Q_TILE] */
} attention_scratch;

/* Turns a tile of scores into exp(score - running max), updating the running
 * max and sum of each row and rescaling the rows of acc that it has so far. */
OS_CPU_VECTOR_CLONES static void
online_softmax_tile(attention_scratch *w, int rows, int cols, int head_dim)
{
  for (int r = 0; r < rows; r++) {
    float *s = w->scores + (size_t)r * cols;
    float tile_max = os_cpu_max(s, cols);
    float old_max = w->row_max[r];
    float new_max = tile_max > old_max ? tile_max : old_max;
    for (int c = 0; c < cols; c += OS_LANES)
      os_vf_store(s + c, os_vf_exp(os_vf_load(s + c, cols - c) - new_max), cols - c);
    double sum = os_cpu_sum(s, cols);
    if (new_max > old_max && w->row_sum[r] > 0.0) {
      float correction = os_cpu_exp(old_max - new_max);
      float *a = w->acc + (size_t)r * head_dim;
      for (int d = 0; d < head_dim; d++)
        a[d] *= correction;
      w->row_sum[r] *= correction;
    }
    w->row_sum[r] += sum;
    w->row_max[r] = new_max;
  }
}

/* Two accumulators halve the add latency chain. */
static inline float
dot(const float *a, const float *b, int n)
{
  os_vf acc0 = os_vf_splat(0.0f), acc1 = acc0;
  int d = 0;
  for (; d + 2 * OS_LANES <= n; d += 2 * OS_LANES) {
    acc0 += os_vf_load(a + d, OS_LANES) * os_vf_load(b + d, OS_LANES);
    acc1 += os_vf_load(a + d + OS_LANES, OS_LANES) * os_vf_load(b + d + OS_LANES, OS_LANES);
  }
  for (; d < n; d += OS_LANES)
    acc0 += os_vf_load(a + d, n - d) * os_vf_load(b + d, n - d);
  return os_vf_sum(acc0 + acc1);
}

/* y += alpha x */
static inline void
axpy(float *restrict y, float alpha, const float *restrict x, int n)
{
  for (int d = 0; d < n; d += OS_LANES)
    os_vf_store(y + d, os_vf_load(y + d, n - d) + alpha * os_vf_load(x + d, n - d), n - d);
}

/* Few keys: each query row's scores, softmax and weighted sum of values in
 * one pass, no tiling needed. */
OS_CPU_VECTOR_CLONES static void
attention_query_tile_direct(const attention_args *a, attention_scratch *w, int seq, int head,
                            int first_query)
{
  int rows = a->Sq - first_query < a->q_tile ? a->Sq - first_query : a->q_tile;
  int hd = a->head_dim, Sk = a->Sk;
  size_t head_offset = (size_t)head * hd;
  const float *k = a->k + (size_t)seq * Sk * a->k_stride + head_offset;
  const float *v = a->v + (size_t)seq * Sk * a->v_stride + head_offset;
  float *s = w->scores, *acc = w->acc;
  for (int r = 0; r < rows; r++) {
    size_t token = (size_t)seq * a->Sq + first_query + r;
    const float *q = a->q + token * a->q_stride + head_offset;
    for (int j = 0; j < Sk; j++)
      s[j] = a->scale * dot(q, k + (size_t)j * a->k_stride, hd);
    float max = os_cpu_max(s, Sk);
    for (int j = 0; j < Sk; j += OS_LANES)
      os_vf_store(s + j, os_vf_exp(os_vf_load(s + j, Sk - j) - max), Sk - j);
    float inv_sum = (float)(1.0 / os_cpu_sum(s, Sk));
    memset(acc, 0, sizeof(float) * hd);
    for (int j = 0; j < Sk; j++)
      axpy(acc, s[j], v + (size_t)j * a->v_stride, hd);
    float *o = a->o + token * a->o_stride + head_offset;
    for (int d = 0; d < hd; d += OS_LANES)
      os_vf_store(o + d, os_vf_load(acc + d, hd - d) * inv_sum, hd - d);
  }
}

/* One tile of queries through all keys: leaves in w each row's running max,
 * sum of exponentials and unnormalised output; returns the tile's rows. */
static int
attention_query_tile_accumulate(const attention_args *a, attention_scratch *w, int seq,
                                int head, int first_query)
{
  int rows = a->Sq - first_query < a->q_tile ? a->Sq - first_query : a->q_tile;
  int hd = a->head_dim;
  const float *q = a->q + ((size_t)seq * a->Sq + first_query) * a->q_stride + (size_t)head * hd;
  for (int r = 0; r < rows; r++) {
    w->row_max[r] = -INFINITY;
    w->row_sum[r] = 0.0;
  }
  for (size_t i = 0; i < (size_t)rows * hd; i++)
    w->acc[i] = 0.0f;

  for (int first_key = 0; first_key < a->Sk; first_key += K_TILE) {
    int cols = a->Sk - first_key < K_TILE ? a->Sk - first_key : K_TILE;
    size_t key_row = (size_t)seq * a->Sk + first_key;
    const float *k = a->k + key_row * a->k_stride + (size_t)head * hd;
    const float *v = a->v + key_row * a->v_stride + (size_t)head * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hd, a->scale, q,
                a->q_stride, k, a->k_stride, 0.0f, w->scores, cols);
    online_softmax_tile(w, rows, cols, hd);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, cols, 1.0f, w->scores,
                cols, v, a->v_stride, 1.0f, w->acc, hd);
  }
  return rows;
}

static void
attention_query_tile(const attention_args *a, attention_scratch *w, int seq, int head,
                     int first_query)
{
  int rows = attention_query_tile_accumulate(a, w, seq, head, first_query), hd = a->head_dim;
  float *o = a->o + ((size_t)seq * a->Sq + first_query) * a->o_stride + (size_t)head * hd;
  for (int r = 0; r < rows; r++) {
    float inv_sum = (float)(1.0 / w->row_sum[r]);
    const float *acc = w->acc + (size_t)r * hd;
    float *out = o + (size_t)r * a->o_stride;
    for (int d = 0; d < hd; d++)
      out[d] = acc[d] * inv_sum;
  }
}

/* Multiply-adds of one query row: two products per score, an exponential
 * as ~16. */
static double
query_work(int Sk, int head_dim)
{
  return (double)Sk * (2.0 * head_dim + 16.0);
}

/* Query rows per task, a multiple of MIN_Q_TILE; from the shape only. */
static int
query_tile(int Sk, int head_dim)
{
  double rows = os_cpu_unit_work() / QUERY_TASKS_PER_UNIT / query_work(Sk, head_dim);
  if (rows >= Q_TILE)
    return Q_TILE;
  return rows >= 2 * MIN_Q_TILE ? (int)rows / MIN_Q_TILE * MIN_Q_TILE : MIN_Q_TILE;
}

/* Attention over the values given (operands already rounded if wanted). */
static void
attention_exact(os_backend *be, float *o, const float *q, const float *k, const float *v,
                int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride,
                int k_stride, int v_stride, int o_stride, float scale)
{
  attention_args args = {
    .q = q, .k = k, .v = v, .o = o, .Sq = Sq, .Sk = Sk, .head_dim = head_dim,
    .q_stride = q_stride, .k_stride = k_stride, .v_stride = v_stride, .o_stride = o_stride,
    .q_tile = query_tile(Sk, head_dim), .scale = scale,
  };
  int n_threads = os_cpu_threads(be);
  size_t per_thread = (size_t)Q_TILE * K_TILE + (size_t)Q_TILE * head_dim + Q_TILE +
                      2 * Q_TILE; /* floats; row_sum (double) takes two each */
  float *scratch = os_cpu_scratch(be, sizeof(float) * per_thread * n_threads);
  if (!scratch)
    return;
  int q_tile = args.q_tile, q_tiles = (Sq + q_tile - 1) / q_tile;
  int64_t n_tasks = (int64_t)n_seq * heads * q_tiles;
  double task_work = (Sq < q_tile ? Sq : q_tile) * query_work(Sk, head_dim);
  os_cpu_progress progress = os_cpu_progress_start(be);

  os_cpu_blas_single_thread();
  for (int64_t first, end = 0; os_cpu_next_unit(&progress, n_tasks, task_work, &first, &end);)
#pragma omp parallel num_threads(n_threads)
  {
    float *mine = scratch + per_thread * omp_get_thread_num();
    attention_scratch w = {
      .row_sum = (double *)mine, /* first: keeps the doubles aligned */
      .scores = mine + 2 * Q_TILE,
    };
    w.acc = w.scores + (size_t)Q_TILE * K_TILE;
    w.row_max = w.acc + (size_t)Q_TILE * head_dim;
#pragma omp for schedule(dynamic)
    for (int64_t t = first; t < end; t++) {
      int tile = (int)(t % q_tiles);
      int head = (int)(t / q_tiles % heads);
      int seq = (int)(t / q_tiles / heads);
      if (Sk <= DIRECT_MAX_KEYS)
        attention_query_tile_direct(&args, &w, seq, head, tile * q_tile);
      else
        attention_query_tile(&args, &w, seq, head, tile * q_tile);
    }
  }
  free(scratch);
}

void
os_cpu_attention(os_backend *be, float *o, const float *q, const float *k, const float *v,
                 int n_seq, int Sq, int Sk, int heads, int head_dim, int q_stride, int k_stride,
                 int v_stride, int o_stride, float scale)
{
  if (n_seq <= 0 || Sq <= 0 || Sk <= 0 || heads <= 0)
    return;
  size_t row = (size_t)heads * head_dim;
  float *owned_q, *owned_k, *owned_v;
  q = os_cpu_rounded_operand(be, q, ((size_t)n_seq * Sq - 1) * q_stride + row, &owned_q);
  k = os_cpu_rounded_operand(be, k, ((size_t)n_seq * Sk - 1) * k_stride + row, &owned_k);
  v = os_cpu_rounded_operand(be, v, ((size_t)n_seq * Sk - 1) * v_stride + row, &owned_v);
  if (q && k && v)
    attention_exact(be, o, q, k, v, n_seq, Sq, Sk, heads, head_dim, q_stride, k_stride,
                    v_stride, o_stride, scale);
  free(owned_q);
  free(owned_k);
  free(owned_v);
}

/* --- backward ---
 * Per tile of queries: the forward's pass over the keys gives each row's max,
 * sum and output O, hence delta_i = sum_j P_ij dP_ij = dO_i . O_i; a second
 * pass recomputes P tile by tile and adds dV += P^T dO, dS = P (dO V^T - delta),
 * dQ += scale dS K, dK += scale dS^T Q. A task is one (sequence, head) and owns
 * its slices of dK and dV, so sums run in a fixed order on one thread. */

typedef struct {
  float *dq, *dk, *dv;
  const float *dout;
} attention_grads;

typedef struct {
  attention_scratch forward;
  float *dp;     /* [Q_TILE, K_TILE]: dP, then dS */
  double *delta; /* [Q_TILE] */
} attention_backward_scratch;

/* p = exp(s - max) / sum and ds = p (dp - delta), row by row. */
OS_CPU_VECTOR_CLONES static void
softmax_tile(float *scores, const attention_scratch *w, int rows, int cols)
{
  for (int r = 0; r < rows; r++) {
    float *s = scores + (size_t)r * cols, max = w->row_max[r];
    float inv_sum = (float)(1.0 / w->row_sum[r]);
    for (int c = 0; c < cols; c += OS_LANES)
      os_vf_store(s + c, os_vf_exp(os_vf_load(s + c, cols - c) - max) * inv_sum, cols - c);
  }
}

OS_CPU_VECTOR_CLONES static void
softmax_backward_tile(float *dp, const float *p, const double *delta, int rows, int cols)
{
  for (int r = 0; r < rows; r++) {
    float *d = dp + (size_t)r * cols, row_delta = (float)delta[r];
    const float *pr = p + (size_t)r * cols;
    for (int c = 0; c < cols; c += OS_LANES)
      os_vf_store(d + c, os_vf_load(pr + c, cols - c) * (os_vf_load(d + c, cols - c) - row_delta),
                  cols - c);
  }
}

static void
attention_backward_query_tile(const attention_args *a, const attention_grads *g,
                              attention_backward_scratch *w, int seq, int head,
                              int first_query)
{
  attention_scratch *fw = &w->forward;
  int rows = attention_query_tile_accumulate(a, fw, seq, head, first_query), hd = a->head_dim;
  size_t head_offset = (size_t)head * hd, first_row = (size_t)seq * a->Sq + first_query;
  const float *q = a->q + first_row * a->q_stride + head_offset;
  const float *dout = g->dout + first_row * a->o_stride + head_offset;
  float *dq = g->dq ? g->dq + first_row * a->q_stride + head_offset : NULL;
  for (int r = 0; r < rows; r++) {
    const float *o = fw->acc + (size_t)r * hd, *dor = dout + (size_t)r * a->o_stride;
    double dot_o = 0.0;
    for (int d = 0; d < hd; d++)
      dot_o += (double)dor[d] * o[d];
    w->delta[r] = dot_o / fw->row_sum[r];
  }

  for (int first_key = 0; first_key < a->Sk; first_key += K_TILE) {
    int cols = a->Sk - first_key < K_TILE ? a->Sk - first_key : K_TILE;
    size_t key_row = (size_t)seq * a->Sk + first_key;
    const float *k = a->k + key_row * a->k_stride + head_offset;
    const float *v = a->v + key_row * a->v_stride + head_offset;
    float *p = fw->scores;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hd, a->scale, q,
                a->q_stride, k, a->k_stride, 0.0f, p, cols);
    softmax_tile(p, fw, rows, cols);
    if (g->dv)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hd, rows, 1.0f, p, cols, dout,
                  a->o_stride, 1.0f, g->dv + key_row * a->v_stride + head_offset, a->v_stride);
    if (!dq && !g->dk)
      continue;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hd, 1.0f, dout,
                a->o_stride, v, a->v_stride, 0.0f, w->dp, cols);
    softmax_backward_tile(w->dp, p, w->delta, rows, cols);
    if (dq)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, cols, a->scale, w->dp,
                  cols, k, a->k_stride, 1.0f, dq, a->q_stride);
    if (g->dk)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hd, rows, a->scale, w->dp,
                  cols, q, a->q_stride, 1.0f, g->dk + key_row * a->k_stride + head_offset,
                  a->k_stride);
  }
}

/* Few keys: the whole (sequence, head) row by row with vector loops, as the
 * forward's direct path; delta_i = sum_j P_ij dP_ij straight from the row. */
OS_CPU_VECTOR_CLONES static void
attention_backward_direct(const attention_args *a, const attention_grads *g, int seq, int head)
{
  int hd = a->head_dim, Sk = a->Sk;
  size_t head_offset = (size_t)head * hd;
  const float *k = a->k + (size_t)seq * Sk * a->k_stride + head_offset;
  const float *v = a->v + (size_t)seq * Sk * a->v_stride + head_offset;
  float *dk = g->dk ? g->dk + (size_t)seq * Sk * a->k_stride + head_offset : NULL;
  float *dv = g->dv ? g->dv + (size_t)seq * Sk * a->v_stride + head_offset : NULL;
  float p[DIRECT_MAX_KEYS], dp[DIRECT_MAX_KEYS];
  for (int i = 0; i < a->Sq; i++) {
    size_t token = (size_t)seq * a->Sq + i;
    const float *q = a->q + token * a->q_stride + head_offset;
    const float *dout = g->dout + token * a->o_stride + head_offset;
    for (int j = 0; j < Sk; j++)
      p[j] = a->scale * dot(q, k + (size_t)j * a->k_stride, hd);
    float max = os_cpu_max(p, Sk);
    for (int j = 0; j < Sk; j += OS_LANES)
      os_vf_store(p + j, os_vf_exp(os_vf_load(p + j, Sk - j) - max), Sk - j);
    float inv_sum = (float)(1.0 / os_cpu_sum(p, Sk));
    double delta = 0.0;
    for (int j = 0; j < Sk; j++) {
      p[j] *= inv_sum;
      dp[j] = dot(dout, v + (size_t)j * a->v_stride, hd);
      delta += (double)p[j] * dp[j];
      if (dv)
        axpy(dv + (size_t)j * a->v_stride, p[j], dout, hd);
    }
    float *dq = g->dq ? g->dq + token * a->q_stride + head_offset : NULL;
    for (int j = 0; j < Sk; j++) {
      float ds = a->scale * p[j] * (dp[j] - (float)delta);
      if (dq)
        axpy(dq, ds, k + (size_t)j * a->k_stride, hd);
      if (dk)
        axpy(dk + (size_t)j * a->k_stride, ds, q, hd);
    }
  }
}

void
os_cpu_attention_backward(os_backend *be, float *dq, float *dk, float *dv, const float *do_,
                          const float *q, const float *k, const float *v, int n_seq, int Sq,
                          int Sk, int heads, int head_dim, int q_stride, int k_stride,
                          int v_stride, int o_stride, float scale)
{
  if (n_seq <= 0 || Sq <= 0 || Sk <= 0 || heads <= 0 || (!dq && !dk && !dv))
    return;
  attention_args args = {
    .q = q, .k = k, .v = v, .Sq = Sq, .Sk = Sk, .head_dim = head_dim, .q_stride = q_stride,
    .k_stride = k_stride, .v_stride = v_stride, .o_stride = o_stride, .q_tile = Q_TILE,
    .scale = scale,
  };
  attention_grads grads = { .dq = dq, .dk = dk, .dv = dv, .dout = do_ };
  int n_threads = os_cpu_threads(be);
  /* floats: the doubles row_sum and delta first (two each), then scores, dP,
   * acc and row_max. */
  size_t per_thread = 4 * (size_t)Q_TILE + 2 * (size_t)Q_TILE * K_TILE +
                      (size_t)Q_TILE * head_dim + Q_TILE;
  float *scratch = os_cpu_scratch(be, sizeof(float) * per_thread * n_threads);
  if (!scratch)
    return;
  int n_tasks = n_seq * heads;
  os_cpu_blas_single_thread();
#pragma omp parallel num_threads(n_threads)
  {
    float *mine = scratch + per_thread * omp_get_thread_num();
    attention_backward_scratch w = {
      .forward = { .row_sum = (double *)mine },
      .delta = (double *)mine + Q_TILE,
    };
    w.forward.scores = mine + 4 * Q_TILE;
    w.dp = w.forward.scores + (size_t)Q_TILE * K_TILE;
    w.forward.acc = w.dp + (size_t)Q_TILE * K_TILE;
    w.forward.row_max = w.forward.acc + (size_t)Q_TILE * head_dim;
#pragma omp for schedule(dynamic)
    for (int task = 0; task < n_tasks; task++)
      if (Sk <= DIRECT_MAX_KEYS)
        attention_backward_direct(&args, &grads, task / heads, task % heads);
      else
        for (int first_query = 0; first_query < Sq; first_query += Q_TILE)
          attention_backward_query_tile(&args, &grads, &w, task / heads, task % heads,
                                        first_query);
  }
  free(scratch);
}
