/* cpu_conv_onednn.c: conv2d through oneDNN's direct (JIT) convolution.
 *
 * Its JIT kernels work in blocked layouts (channels in blocks of 8 or 16);
 * the backend's tensors are NCHW, so every call reorders input, weights and
 * residual in and the result out (the bench times all of it). The primitives
 * of a shape are built once and kept: oneDNN fixes a primitive's thread count
 * when it builds it, so the backend's thread count is part of the key. */
#include "cpu_conv.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* More distinct shapes than SVD's UNet and VAE use together. */
#define PLAN_CACHE_SIZE 96

typedef struct {
  int N, Cin, H, W, Cout, KH, KW, stride, pad_top, pad_left, pad_bottom, pad_right;
  int has_bias, has_residual, n_threads;
} conv_key;

/* A shape's primitives; a reorder is NULL where oneDNN's layout is NCHW
 * (OIHW for weights) already. */
typedef struct {
  conv_key key;
  bool usable; /* oneDNN has a JIT direct kernel for the shape */
  dnnl_primitive_t conv, src_in, weights_in, residual_in, dst_out;
  dnnl_memory_desc_t src_md, weights_md, dst_md;           /* the kernel's layouts */
  dnnl_memory_desc_t user_src, user_weights, user_dst, bias_md; /* the backend's */
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
 * two are the same layout; false when oneDNN cannot make it. */
static bool
make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
             dnnl_primitive_t *reorder)
{
  *reorder = NULL;
  if (dnnl_memory_desc_equal(from, to))
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

/* Builds p's primitives for p->key; p->usable says whether it could. */
static void
plan_build(conv_plan *p)
{
  const conv_key *k = &p->key;
  int Ho = (k->H + k->pad_top + k->pad_bottom - k->KH) / k->stride + 1;
  int Wo = (k->W + k->pad_left + k->pad_right - k->KW) / k->stride + 1;
  dnnl_dims_t src_dims = { k->N, k->Cin, k->H, k->W };
  dnnl_dims_t weight_dims = { k->Cout, k->Cin, k->KH, k->KW };
  dnnl_dims_t dst_dims = { k->N, k->Cout, Ho, Wo }, bias_dims = { k->Cout };
  dnnl_dims_t strides = { k->stride, k->stride };
  dnnl_dims_t pad_before = { k->pad_top, k->pad_left }, pad_after = { k->pad_bottom, k->pad_right };
  dnnl_memory_desc_t any_src, any_weights, any_dst;
  dnnl_convolution_desc_t desc;
  bool built =
    dnnl_memory_desc_init_by_tag(&p->user_src, 4, src_dims, dnnl_f32, dnnl_nchw) == dnnl_success &&
    dnnl_memory_desc_init_by_tag(&p->user_weights, 4, weight_dims, dnnl_f32, dnnl_oihw) == dnnl_success &&
    dnnl_memory_desc_init_by_tag(&p->user_dst, 4, dst_dims, dnnl_f32, dnnl_nchw) == dnnl_success &&
    dnnl_memory_desc_init_by_tag(&p->bias_md, 1, bias_dims, dnnl_f32, dnnl_x) == dnnl_success &&
    dnnl_memory_desc_init_by_tag(&any_src, 4, src_dims, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
    dnnl_memory_desc_init_by_tag(&any_weights, 4, weight_dims, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
    dnnl_memory_desc_init_by_tag(&any_dst, 4, dst_dims, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
    dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                       &any_src, &any_weights, k->has_bias ? &p->bias_md : NULL,
                                       &any_dst, strides, pad_before, pad_after) == dnnl_success &&
    conv_primitive_create(p, &desc) && make_reorder(&p->user_src, &p->src_md, &p->src_in) &&
    make_reorder(&p->user_weights, &p->weights_md, &p->weights_in) &&
    make_reorder(&p->user_dst, &p->dst_md, &p->residual_in) &&
    make_reorder(&p->dst_md, &p->user_dst, &p->dst_out);
  if (!built)
    plan_clear(p);
  p->usable = built;
}

/* The cached plan for key, built on first use (evicting the oldest when the
 * cache is full); NULL when oneDNN cannot even be started. */
static conv_plan *
plan_for(const conv_key *key)
{
  if (!engine_ready())
    return NULL;
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
 * every page on first touch). It holds two chunks (CHUNK_BYTES) and the
 * largest UNet weights. */
#define WORKSPACE_KEPT_BYTES ((size_t)192 << 20)

/* `bytes` of scratch for the blocked copies, aligned for oneDNN; *owned is
 * what the caller frees afterwards (NULL for the kept workspace). NULL when
 * out of memory (latched for sync()). */
static char *
workspace_get(os_backend *be, size_t bytes, char **owned)
{
  *owned = NULL;
  char *base;
  if (bytes <= cache.workspace_bytes) {
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

/* Views (memory objects) of the backend's buffers and the blocked copies. */
typedef struct {
  dnnl_memory_t user_src, user_weights, user_dst, user_residual, bias, src, weights, dst;
} conv_memories;

static void
memories_destroy(conv_memories *m)
{
  dnnl_memory_t all[] = { m->user_src, m->user_weights, m->user_dst, m->user_residual,
                          m->bias, m->src, m->weights, m->dst };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i])
      dnnl_memory_destroy(all[i]);
}

/* Runs p on `chunks` groups of p->key.N images each: the weights are
 * reordered once, each group's input, residual and output in turn through
 * the same blocked buffers. True when the convolution is done or failed for
 * want of memory (latched for sync()); false when oneDNN failed and the
 * caller should compute it another way. */
static bool
plan_run(os_backend *be, const conv_plan *p, int chunks, float *y, const float *x,
         const float *W, const float *bias, const float *residual)
{
  size_t src_bytes = p->src_in ? aligned_size(&p->src_md) : 0;
  size_t weight_bytes = p->weights_in ? aligned_size(&p->weights_md) : 0;
  size_t dst_bytes = p->dst_out ? aligned_size(&p->dst_md) : 0;
  char *scratch;
  char *blocked = workspace_get(be, src_bytes + weight_bytes + dst_bytes, &scratch);
  if (!blocked)
    return true;
  size_t in_floats = dnnl_memory_desc_get_size(&p->user_src) / sizeof(float);
  size_t out_floats = dnnl_memory_desc_get_size(&p->user_dst) / sizeof(float);
  conv_memories m = {
    .user_src = wrap(&p->user_src, x), .user_weights = wrap(&p->user_weights, W),
    .user_dst = wrap(&p->user_dst, y), .user_residual = residual ? wrap(&p->user_dst, residual) : NULL,
    .bias = bias ? wrap(&p->bias_md, bias) : NULL,
    .src = p->src_in ? wrap(&p->src_md, blocked) : NULL,
    .weights = p->weights_in ? wrap(&p->weights_md, blocked + src_bytes) : NULL,
    .dst = p->dst_out ? wrap(&p->dst_md, blocked + src_bytes + weight_bytes) : NULL,
  };
  dnnl_memory_t src = p->src_in ? m.src : m.user_src;
  dnnl_memory_t weights = p->weights_in ? m.weights : m.user_weights;
  dnnl_memory_t dst = p->dst_out ? m.dst : m.user_dst;
  bool ran = m.user_src && m.user_weights && m.user_dst && src && weights && dst &&
             (!residual || m.user_residual) && (!bias || m.bias);
  if (ran && p->weights_in)
    ran = reorder(p->weights_in, m.user_weights, weights);
  for (int chunk = 0; ran && chunk < chunks; chunk++) {
    size_t in_offset = in_floats * chunk, out_offset = out_floats * chunk;
    /* The user views move along the batch; the blocked ones stay put. */
    ran = dnnl_memory_set_data_handle(m.user_src, (void *)(x + in_offset)) == dnnl_success &&
          dnnl_memory_set_data_handle(m.user_dst, y + out_offset) == dnnl_success &&
          (!residual || dnnl_memory_set_data_handle(m.user_residual,
                                                    (void *)(residual + out_offset)) == dnnl_success);
    if (ran && p->src_in)
      ran = reorder(p->src_in, m.user_src, src);
    if (ran && residual) {
      if (p->residual_in)
        ran = reorder(p->residual_in, m.user_residual, dst);
      else
        memcpy(y + out_offset, residual + out_offset, sizeof(float) * out_floats);
    }
    if (ran) {
      dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, src }, { DNNL_ARG_WEIGHTS, weights },
                                 { DNNL_ARG_DST, dst }, { DNNL_ARG_BIAS, m.bias } };
      ran = execute(p->conv, bias ? 4 : 3, args);
    }
    if (ran && p->dst_out)
      ran = reorder(p->dst_out, dst, m.user_dst);
    ran = ran && dnnl_stream_wait(cache.stream) == dnnl_success;
  }
  memories_destroy(&m);
  free(scratch);
  return ran;
}

/* Images per oneDNN call: the largest divisor of N whose blocked input and
 * output copies take at most CHUNK_BYTES (or one image), so that a large
 * batch costs little more memory than the lowering's column buffers. */
#define CHUNK_BYTES ((size_t)64 << 20)

static int
images_per_chunk(const conv_key *k)
{
  int Ho = (k->H + k->pad_top + k->pad_bottom - k->KH) / k->stride + 1;
  int Wo = (k->W + k->pad_left + k->pad_right - k->KW) / k->stride + 1;
  size_t image_bytes = sizeof(float) * ((size_t)k->Cin * k->H * k->W + (size_t)k->Cout * Ho * Wo);
  int most = CHUNK_BYTES / image_bytes > (size_t)k->N ? k->N : (int)(CHUNK_BYTES / image_bytes);
  for (int chunk = most; chunk > 1; chunk--)
    if (k->N % chunk == 0)
      return chunk;
  return 1;
}

bool
os_cpu_conv2d_onednn(os_backend *be, float *y, const float *x, const float *W,
                     const float *bias, const float *residual, int N, int Cin, int H, int Wd,
                     int Cout, int KH, int KW, int stride, int pad_top, int pad_left,
                     int pad_bottom, int pad_right)
{
  conv_key key = {
    .N = N, .Cin = Cin, .H = H, .W = Wd, .Cout = Cout, .KH = KH, .KW = KW, .stride = stride,
    .pad_top = pad_top, .pad_left = pad_left, .pad_bottom = pad_bottom, .pad_right = pad_right,
    .has_bias = bias != NULL, .has_residual = residual != NULL, .n_threads = os_cpu_threads(be),
  };
  pthread_mutex_lock(&cache.lock);
  /* oneDNN's OpenMP runtime takes its thread count from the caller's
   * OpenMP setting, when building and when running. */
  int caller_threads = omp_get_max_threads();
  omp_set_num_threads(key.n_threads);
  int chunk = images_per_chunk(&key);
  key.N = chunk;
  const conv_plan *p = plan_for(&key);
  bool done = p && p->usable && plan_run(be, p, N / chunk, y, x, W, bias, residual);
  omp_set_num_threads(caller_threads);
  pthread_mutex_unlock(&cache.lock);
  return done;
}
