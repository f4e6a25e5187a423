/* cpu_conv_onednn.c: conv2d through oneDNN's direct (JIT) convolution.
 *
 * Its JIT kernels work in blocked layouts (channels in blocks of 8 or 16);
 * the backend's tensors are NCHW, so every call reorders input, weights and
 * residual in and the result out (the bench times all of it). A large tensor
 * goes through in steps (groups of images, or bands of output rows of one
 * image) so that the blocked copies stay small, and of at most a unit of
 * work, with abort polls between them. The primitives of a step's
 * shape are built once and kept: oneDNN fixes a primitive's thread count
 * when it builds it, so the backend's thread count is part of the key. */
#include "cpu_conv.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* SVD's UNet and VAE at one resolution need about a hundred step shapes
 * (a banded image three or four: first, middle and last bands); room for a
 * few resolutions and thread counts. */
#define PLAN_CACHE_SIZE 512

/* One oneDNN call: N images of H input rows (a band of the backend's images
 * of image_H rows, giving a band of their image_Ho output rows). */
typedef struct {
  int N, Cin, H, W, Cout, KH, KW, stride, pad_top, pad_left, pad_bottom, pad_right;
  int image_H, image_Ho;
  int has_bias, has_residual, n_threads;
} conv_key;

/* A shape's primitives; a reorder is NULL where oneDNN's layout is the
 * backend's already (the residual's is there whenever a residual is). */
typedef struct {
  conv_key key;
  bool usable; /* oneDNN has a JIT direct kernel for the shape */
  dnnl_primitive_t conv, src_in, weights_in, residual_in, dst_out;
  dnnl_memory_desc_t src_md, weights_md, dst_md; /* the kernel's layouts */
  dnnl_memory_desc_t user_src, user_weights, user_dst, bias_md; /* views of the backend's */
} conv_plan;

/* One lock for the cache and every oneDNN call: the stream is not for
 * concurrent use, and two convolutions at once would only share the cores. */
static struct {
  pthread_mutex_t lock;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  conv_plan plans[PLAN_CACHE_SIZE];
  int n_plans, next_evicted;
  void *workspace; /* blocked copies, kept between calls (see workspace_get) */
  size_t workspace_bytes;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool
engine_ready(void)
{
  if (cache.stream)
    return true;
  if (!cache.engine && dnnl_engine_create(&cache.engine, dnnl_cpu, 0) != dnnl_success)
    return false;
  return dnnl_stream_create(&cache.stream, cache.engine, dnnl_stream_default_flags) ==
         dnnl_success;
}

static void
plan_clear(conv_plan *p)
{
  dnnl_primitive_t *primitives[] = { &p->conv, &p->src_in, &p->weights_in, &p->residual_in,
                                     &p->dst_out };
  for (size_t i = 0; i < sizeof primitives / sizeof *primitives; i++) {
    if (*primitives[i])
      dnnl_primitive_destroy(*primitives[i]);
    *primitives[i] = NULL;
  }
  p->usable = false;
}

/* *reorder = a primitive copying layout `from` into `to`, or NULL when the
 * two are the same layout and no copy is `needed`; false when oneDNN cannot
 * make it. */
static bool
make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, bool needed,
             dnnl_primitive_t *reorder)
{
  *reorder = NULL;
  if (!needed && dnnl_memory_desc_equal(from, to))
    return true;
  dnnl_primitive_desc_t pd;
  if (dnnl_reorder_primitive_desc_create(&pd, from, cache.engine, to, cache.engine, NULL) !=
      dnnl_success)
    return false;
  bool made = dnnl_primitive_create(reorder, pd) == dnnl_success;
  dnnl_primitive_desc_destroy(pd);
  return made;
}

/* GEMM-based implementations split their products by thread count (their
 * sums then depend on it); only JIT direct kernels sum each output in one
 * order (input-channel blocks, taps, channels in a block) however the
 * outputs are shared out. */
static bool
is_direct_jit(const char *impl)
{
  return impl && strncmp(impl, "jit", 3) == 0 && !strstr(impl, "gemm");
}

static bool
conv_primitive_create(conv_plan *p, const dnnl_convolution_desc_t *desc)
{
  const conv_key *k = &p->key;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t post_ops = NULL;
  dnnl_primitive_desc_t pd = NULL;
  const char *impl = NULL;
  bool made = dnnl_primitive_attr_create(&attr) == dnnl_success;
  if (made && k->has_residual) /* y = conv + bias + (what y held: the residual) */
    made = dnnl_post_ops_create(&post_ops) == dnnl_success &&
           dnnl_post_ops_append_sum(post_ops, 1.0f) == dnnl_success &&
           dnnl_primitive_attr_set_post_ops(attr, post_ops) == dnnl_success;
  made = made && dnnl_primitive_desc_create(&pd, desc, attr, cache.engine, NULL) == dnnl_success &&
         dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
         is_direct_jit(impl) && dnnl_primitive_create(&p->conv, pd) == dnnl_success;
  if (made) {
    p->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    p->weights_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    p->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  }
  if (pd)
    dnnl_primitive_desc_destroy(pd);
  if (post_ops)
    dnnl_post_ops_destroy(post_ops);
  if (attr)
    dnnl_primitive_attr_destroy(attr);
  return made;
}

static bool
md_by_tag(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
  return dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag) == dnnl_success;
}

/* An NCHW view with the given image and channel-plane strides. */
static bool
md_nchw_view(dnnl_memory_desc_t *md, const dnnl_dims_t dims, int64_t image, int64_t plane)
{
  dnnl_dims_t strides = { image, plane, dims[3], 1 };
  return dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, strides) == dnnl_success;
}

/* Output columns: every step has the whole width. */
static int
out_width(const conv_key *k)
{
  return (k->W + k->pad_left + k->pad_right - k->KW) / k->stride + 1;
}

/* Builds p's primitives for p->key; p->usable says whether it could. */
static void
plan_build(conv_plan *p)
{
  const conv_key *k = &p->key;
  int Ho = (k->H + k->pad_top + k->pad_bottom - k->KH) / k->stride + 1;
  int Wo = out_width(k);
  int64_t in_plane = (int64_t)k->image_H * k->W, out_plane = (int64_t)k->image_Ho * Wo;
  dnnl_dims_t src_dims = { k->N, k->Cin, k->H, k->W };
  dnnl_dims_t weight_dims = { k->Cout, k->Cin, k->KH, k->KW };
  dnnl_dims_t dst_dims = { k->N, k->Cout, Ho, Wo }, bias_dims = { k->Cout };
  dnnl_dims_t strides = { k->stride, k->stride };
  dnnl_dims_t pad_before = { k->pad_top, k->pad_left };
  dnnl_dims_t pad_after = { k->pad_bottom, k->pad_right };
  dnnl_memory_desc_t any_src, any_weights, any_dst;
  dnnl_convolution_desc_t desc;
  bool built =
    md_nchw_view(&p->user_src, src_dims, k->Cin * in_plane, in_plane) &&
    md_by_tag(&p->user_weights, 4, weight_dims, dnnl_oihw) &&
    md_nchw_view(&p->user_dst, dst_dims, k->Cout * out_plane, out_plane) &&
    md_by_tag(&p->bias_md, 1, bias_dims, dnnl_x) &&
    md_by_tag(&any_src, 4, src_dims, dnnl_format_tag_any) &&
    md_by_tag(&any_weights, 4, weight_dims, dnnl_format_tag_any) &&
    md_by_tag(&any_dst, 4, dst_dims, dnnl_format_tag_any) &&
    dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                       &any_src, &any_weights, k->has_bias ? &p->bias_md : NULL,
                                       &any_dst, strides, pad_before, pad_after) == dnnl_success &&
    conv_primitive_create(p, &desc) &&
    make_reorder(&p->user_src, &p->src_md, false, &p->src_in) &&
    make_reorder(&p->user_weights, &p->weights_md, false, &p->weights_in) &&
    make_reorder(&p->user_dst, &p->dst_md, k->has_residual, &p->residual_in) &&
    make_reorder(&p->dst_md, &p->user_dst, false, &p->dst_out);
  if (!built)
    plan_clear(p);
  p->usable = built;
}

/* The cached plan for key, built on first use (evicting the oldest when the
 * cache is full). */
static conv_plan *
plan_for(const conv_key *key)
{
  for (int i = 0; i < cache.n_plans; i++)
    if (memcmp(&cache.plans[i].key, key, sizeof *key) == 0)
      return &cache.plans[i];
  conv_plan *p;
  if (cache.n_plans < PLAN_CACHE_SIZE) {
    p = &cache.plans[cache.n_plans++];
  } else {
    p = &cache.plans[cache.next_evicted];
    cache.next_evicted = (cache.next_evicted + 1) % PLAN_CACHE_SIZE;
    plan_clear(p);
  }
  memset(p, 0, sizeof *p);
  p->key = *key;
  plan_build(p);
  return p;
}

static bool
execute(dnnl_primitive_t primitive, int n_args, const dnnl_exec_arg_t *args)
{
  return dnnl_primitive_execute(primitive, cache.stream, n_args, args) == dnnl_success;
}

/* Copies `from` into `to` through reorder (a memcpy-like layout change). */
static bool
reorder(dnnl_primitive_t reorder, dnnl_memory_t from, dnnl_memory_t to)
{
  dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
  return execute(reorder, 2, args);
}

/* A memory object over data, NULL when it cannot be made. */
static dnnl_memory_t
wrap(const dnnl_memory_desc_t *md, const void *data)
{
  dnnl_memory_t memory;
  return dnnl_memory_create(&memory, md, cache.engine, (void *)data) == dnnl_success ? memory
                                                                                    : NULL;
}

#define BLOCKED_ALIGN 64

static size_t
aligned_size(const dnnl_memory_desc_t *md)
{
  return (dnnl_memory_desc_get_size(md) + BLOCKED_ALIGN - 1) / BLOCKED_ALIGN * BLOCKED_ALIGN;
}

/* Blocked copies up to this size stay allocated between calls: fresh pages
 * for each call cost as much as the reorders themselves (the kernel zeroes
 * every page on first touch). It holds a step's input and output (see
 * DEFAULT_STEP_BYTES) and the largest UNet weights (59 MiB). */
#define WORKSPACE_KEPT_BYTES ((size_t)192 << 20)

/* `bytes` of scratch for the blocked copies, aligned for oneDNN; *owned is
 * what the caller frees afterwards (NULL for the kept workspace). NULL when
 * out of memory (latched for sync()). */
static char *
workspace_get(os_backend *be, size_t bytes, char **owned)
{
  *owned = NULL;
  char *base;
  if (cache.workspace && bytes <= cache.workspace_bytes) {
    base = cache.workspace;
  } else if (bytes <= WORKSPACE_KEPT_BYTES) {
    free(cache.workspace);
    cache.workspace_bytes = 0;
    cache.workspace = os_cpu_scratch(be, bytes + BLOCKED_ALIGN);
    if (!cache.workspace)
      return NULL;
    cache.workspace_bytes = bytes;
    base = cache.workspace;
  } else {
    base = *owned = os_cpu_scratch(be, bytes + BLOCKED_ALIGN);
    if (!base)
      return NULL;
  }
  return (char *)(((uintptr_t)base + BLOCKED_ALIGN - 1) & ~(uintptr_t)(BLOCKED_ALIGN - 1));
}

/* Which images and output rows one oneDNN call computes. */
typedef struct {
  int image, images, row, rows;
} conv_step;

/* The key of the call computing `step` of the convolution `whole`: the
 * input rows its output rows need, and the padding rows among them. */
static conv_key
step_key(const conv_key *whole, const conv_step *step)
{
  conv_key k = *whole;
  int first = step->row * whole->stride - whole->pad_top;
  int end = (step->row + step->rows - 1) * whole->stride - whole->pad_top + whole->KH;
  k.N = step->images;
  k.pad_top = first < 0 ? -first : 0;
  k.pad_bottom = end > whole->H ? end - whole->H : 0;
  k.H = (end < whole->H ? end : whole->H) - (first > 0 ? first : 0);
  return k;
}

/* Each call's blocked input and output take about this much at most (or
 * one output row), so a large tensor costs little more memory than the
 * lowering's column buffers. Tests lower it to run the steps on small shapes. */
#define DEFAULT_STEP_BYTES ((size_t)64 << 20)
static size_t step_bytes = DEFAULT_STEP_BYTES;

void
os_cpu_conv2d_onednn_set_step_bytes(size_t bytes)
{
  pthread_mutex_lock(&cache.lock);
  step_bytes = bytes ? bytes : DEFAULT_STEP_BYTES;
  pthread_mutex_unlock(&cache.lock);
}

/* Multiply-adds of one output row of one image. */
static double
row_work(const conv_key *k)
{
  return (double)out_width(k) * k->Cout * k->Cin * k->KH * k->KW;
}

/* The steps' size, from the shape only: the largest divisor of N whose
 * images fit step_bytes and a unit of work; for images larger than that,
 * one image in equal bands of output rows. */
static conv_step
step_size(const conv_key *k)
{
  int Ho = k->image_Ho, Wo = out_width(k);
  size_t row_bytes = sizeof(float) * ((size_t)k->Cin * k->stride * k->W + (size_t)k->Cout * Wo);
  double image_bytes = (double)row_bytes * Ho, image_work = row_work(k) * Ho;
  double parts = fmax(image_bytes / (double)step_bytes, image_work / os_cpu_unit_work());
  if (parts > 1.0) {
    int bands = parts < Ho ? (int)ceil(parts) : Ho;
    return (conv_step){ .images = 1, .rows = (Ho + bands - 1) / bands };
  }
  int images = 1.0 / parts < k->N ? (int)(1.0 / parts) : k->N;
  while (k->N % images != 0)
    images--;
  return (conv_step){ .images = images, .rows = Ho };
}

/* The steps in order: *step starts zeroed; false after the last. */
static bool
step_next(const conv_key *whole, const conv_step *size, conv_step *step)
{
  if (step->rows == 0) {
    *step = (conv_step){ 0, size->images, 0, size->rows };
  } else if (step->row + step->rows < whole->image_Ho) {
    step->row += step->rows;
  } else if (step->image + step->images < whole->N) {
    step->image += step->images;
    step->row = 0;
  } else {
    return false;
  }
  int left = whole->image_Ho - step->row;
  step->rows = size->rows < left ? size->rows : left;
  return true;
}

static void
memories_destroy(dnnl_memory_t *memories, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (memories[i])
      dnnl_memory_destroy(memories[i]);
}

/* Runs one step with plan p: input (and residual) reordered into the blocked
 * buffers at `blocked`, the kernel, the output reordered back. `weights` and
 * `bias` are ready for p. */
static bool
step_run(const conv_plan *p, const conv_step *step, const conv_key *whole, char *blocked,
         size_t src_bytes, dnnl_memory_t weights, dnnl_memory_t bias, float *y, const float *x,
         const float *residual)
{
  int Wo = out_width(whole);
  int first_row = step->row * whole->stride - whole->pad_top;
  size_t in_offset = (size_t)step->image * whole->Cin * whole->image_H * whole->W +
                     (size_t)(first_row > 0 ? first_row : 0) * whole->W;
  size_t out_offset = ((size_t)step->image * whole->Cout * whole->image_Ho + step->row) * Wo;
  /* Views (memory objects) of the backend's buffers and the blocked copies. */
  struct {
    dnnl_memory_t user_src, user_dst, user_residual, src, dst;
  } m = {
    .user_src = wrap(&p->user_src, x + in_offset),
    .user_dst = wrap(&p->user_dst, y + out_offset),
    .user_residual = residual ? wrap(&p->user_dst, residual + out_offset) : NULL,
    .src = p->src_in ? wrap(&p->src_md, blocked) : NULL,
    .dst = p->dst_out ? wrap(&p->dst_md, blocked + src_bytes) : NULL,
  };
  dnnl_memory_t src = p->src_in ? m.src : m.user_src, dst = p->dst_out ? m.dst : m.user_dst;
  bool ran = src && dst && m.user_src && m.user_dst && (!residual || m.user_residual);
  if (ran && p->src_in)
    ran = reorder(p->src_in, m.user_src, src);
  /* The kernel adds what the output holds: the residual. */
  if (ran && residual)
    ran = reorder(p->residual_in, m.user_residual, dst);
  if (ran) {
    dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, src }, { DNNL_ARG_WEIGHTS, weights },
                               { DNNL_ARG_DST, dst }, { DNNL_ARG_BIAS, bias } };
    ran = execute(p->conv, bias ? 4 : 3, args);
  }
  if (ran && p->dst_out)
    ran = reorder(p->dst_out, dst, m.user_dst);
  ran = ran && dnnl_stream_wait(cache.stream) == dnnl_success;
  dnnl_memory_t memories[] = { m.user_src, m.user_dst, m.user_residual, m.src, m.dst };
  memories_destroy(memories, sizeof memories / sizeof *memories);
  return ran;
}

/* *weights = p's weights: the backend's own where p takes them as they are,
 * else the blocked copy at `blocked`, reordered unless it holds p's layout
 * already (*held, when *holding). */
static bool
weights_ready(const conv_plan *p, char *blocked, const float *W, dnnl_memory_t *weights,
              dnnl_memory_desc_t *held, bool *holding)
{
  if (*weights)
    dnnl_memory_destroy(*weights);
  if (!p->weights_in) {
    *weights = wrap(&p->user_weights, W);
    return *weights != NULL;
  }
  *weights = wrap(&p->weights_md, blocked);
  if (!*weights)
    return false;
  if (*holding && dnnl_memory_desc_equal(held, &p->weights_md))
    return true;
  dnnl_memory_t user = wrap(&p->user_weights, W);
  *holding = user && reorder(p->weights_in, user, *weights);
  *held = p->weights_md;
  if (user)
    dnnl_memory_destroy(user);
  return *holding;
}

static size_t
larger(size_t a, size_t b)
{
  return a > b ? a : b;
}

/* Runs the convolution `whole` step by step. True when it is done, failed
 * for want of memory (latched for sync()) or stopped between steps by an
 * abort (y then unfinished); false when oneDNN has no usable kernel for a
 * step (then nothing is written) or failed: the caller then computes it
 * another way. */
static bool
conv_run(os_backend *be, const conv_key *whole, float *y, const float *x, const float *W,
         const float *bias, const float *residual)
{
  conv_step size = step_size(whole), step = { 0 };
  size_t src_bytes = 0, dst_bytes = 0, weight_bytes = 0;
  /* Every step has a kernel; the blocked buffers' sizes. */
  while (step_next(whole, &size, &step)) {
    conv_key key = step_key(whole, &step);
    const conv_plan *p = key.H > 0 ? plan_for(&key) : NULL; /* H: rows all padding */
    if (!p || !p->usable)
      return false;
    src_bytes = larger(src_bytes, p->src_in ? aligned_size(&p->src_md) : 0);
    dst_bytes = larger(dst_bytes, p->dst_out ? aligned_size(&p->dst_md) : 0);
    weight_bytes = larger(weight_bytes, p->weights_in ? aligned_size(&p->weights_md) : 0);
  }
  char *owned;
  char *blocked = workspace_get(be, src_bytes + dst_bytes + weight_bytes, &owned);
  if (!blocked)
    return true;
  dnnl_memory_t weights = NULL, bias_memory = NULL;
  dnnl_memory_desc_t held;
  bool holding = false, ran = true;
  os_cpu_progress progress = os_cpu_progress_start(be);
  os_cpu_starting(&progress, row_work(whole) * whole->N * whole->image_Ho);
  step = (conv_step){ 0 };
  while (ran && step_next(whole, &size, &step) &&
         !os_cpu_stop_before(&progress, row_work(whole) * step.images * step.rows)) {
    conv_key key = step_key(whole, &step);
    /* Looked up again: building a later step's plan may have evicted it. */
    const conv_plan *p = plan_for(&key);
    ran = p->usable;
    if (ran && bias && !bias_memory)
      ran = (bias_memory = wrap(&p->bias_md, bias)) != NULL;
    ran = ran && weights_ready(p, blocked + src_bytes + dst_bytes, W, &weights, &held, &holding) &&
          step_run(p, &step, whole, blocked, src_bytes, weights, bias_memory, y, x, residual);
  }
  dnnl_memory_t memories[] = { weights, bias_memory };
  memories_destroy(memories, 2);
  free(owned);
  return ran;
}

bool
os_cpu_conv2d_onednn(os_backend *be, float *y, const float *x, const float *W,
                     const float *bias, const float *residual, int N, int Cin, int H, int Wd,
                     int Cout, int KH, int KW, int stride, int pad_top, int pad_left,
                     int pad_bottom, int pad_right)
{
  conv_key whole = {
    .N = N, .Cin = Cin, .H = H, .W = Wd, .Cout = Cout, .KH = KH, .KW = KW, .stride = stride,
    .pad_top = pad_top, .pad_left = pad_left, .pad_bottom = pad_bottom, .pad_right = pad_right,
    .image_H = H, .image_Ho = (H + pad_top + pad_bottom - KH) / stride + 1,
    .has_bias = bias != NULL, .has_residual = residual != NULL, .n_threads = os_cpu_threads(be),
  };
  pthread_mutex_lock(&cache.lock);
  /* oneDNN's OpenMP runtime takes its thread count from the caller's
   * OpenMP setting, when building and when running. */
  int caller_threads = omp_get_max_threads();
  omp_set_num_threads(whole.n_threads);
  bool done = engine_ready() && conv_run(be, &whole, y, x, W, bias, residual);
  omp_set_num_threads(caller_threads);
  pthread_mutex_unlock(&cache.lock);
  return done;
}
