// cuda_conv_cudnn.cu: forward convolutions through cuDNN 9's graph API.
//
// Per shape, data types and pointer alignment, a plan is built once and
// cached: the graph is described, cuDNN's heuristics (mode A, then the
// fallback list) rank engine configurations, and the first one whose
// numerics suit the precision and whose plan finalizes with a workspace
// within budget is kept. Three graphs are tried in turn:
//   1. conv -> + bias -> + residual, written straight into y in y's type:
//      one pass over the output, when an engine fuses the pointwise adds;
//   2. the convolution alone, written into y in y's type (fp32 results from
//      16-bit operands), bias and residual added by a separate pass;
//   3. the convolution alone with every tensor in the operand type (the
//      "pseudo half" configuration every engine family takes), followed by
//      one pass that widens the result into y and adds bias and residual.
//      In fp16/bf16 mode this rounds the convolution's result to 16 bits,
//      which the other two do not (said once on stderr when it happens).
// A shape no graph finds an engine for is remembered as such and runs
// through im2col + cuBLAS (cuda_conv.cu), said once on stderr.
//
// Tensors stay NCHW (see README.md for why); in fp16/bf16 mode x is
// converted to the operand type first unless it is already stored so. Where
// such 16-bit copies would be large, a convolution runs as several calls of
// a few images each (CALL_ELEMENTS), and one whose single image is too
// large for that is left to the caller's own chunked path.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_cudnn.h"
#include "cuda_types.cuh"

// Workspace cuDNN may ask for per convolution; configurations that want more
// are passed over (the im2col path's column budget is the same).
#define WORKSPACE_LIMIT ((int64_t)256 << 20)

// Descriptors a plan keeps alive: its tensors, operations, graph, engine
// configuration and the plan itself.
#define MAX_OWNED 20

enum { UID_X = 1, UID_W, UID_CONV, UID_BIAS, UID_BIASED, UID_RESIDUAL, UID_Y };

enum { TYPE_ABSENT = -1 };

// What a plan depends on besides the handle; compared bytewise (zeroed first).
typedef struct {
  os_cudnn_conv_shape shape;
  int x_type, y_type, bias_type, residual_type; // cuDNN data types or TYPE_ABSENT
  int alignment;                                // bytes every pointer is aligned to
  int precision;
} plan_key;

typedef struct {
  plan_key key;
  os_cudnn_descriptor plan; // NULL: no engine for this key
  int64_t workspace;
  int graph;                // which of the three graphs above
  os_cudnn_descriptor owned[MAX_OWNED];
  int n_owned;
} plan_entry;

enum { GRAPH_FUSED = 1, GRAPH_CONV_TO_Y, GRAPH_CONV_IN_OPERAND_TYPE };

struct os_cudnn_conv_plans {
  plan_entry *entries;
  size_t count, capacity;
  bool fallback_said, rounding_said;
};

// ----------------------------------------------------------------------------
// descriptors

// A graph under construction; on failure `failed` is set and the rest of the
// calls do nothing, so building reads as a straight list of attributes.
typedef struct {
  os_cuda_cudnn *dnn;
  os_cudnn_descriptor owned[MAX_OWNED];
  int n_owned;
  bool failed;
} builder;

static os_cudnn_descriptor
create(builder *b, int type)
{
  os_cudnn_descriptor desc = NULL;
  if (b->failed || b->n_owned == MAX_OWNED ||
      b->dnn->cudnnBackendCreateDescriptor(type, &desc) != OS_CUDNN_STATUS_SUCCESS) {
    b->failed = true;
    return NULL;
  }
  b->owned[b->n_owned++] = desc;
  return desc;
}

static void
set(builder *b, os_cudnn_descriptor desc, int name, int type, int64_t count, const void *values)
{
  if (!b->failed &&
      b->dnn->cudnnBackendSetAttribute(desc, name, type, count, values) != OS_CUDNN_STATUS_SUCCESS)
    b->failed = true;
}

static void
finalize(builder *b, os_cudnn_descriptor desc)
{
  if (!b->failed && b->dnn->cudnnBackendFinalize(desc) != OS_CUDNN_STATUS_SUCCESS)
    b->failed = true;
}

static void
release(os_cuda_cudnn *dnn, os_cudnn_descriptor *owned, int n)
{
  for (int i = n - 1; i >= 0; i--)
    dnn->cudnnBackendDestroyDescriptor(owned[i]);
}

static os_cudnn_descriptor
tensor(builder *b, int64_t uid, int type, const int64_t *dims, const int64_t *strides,
       int64_t alignment, bool is_virtual)
{
  os_cudnn_descriptor t = create(b, OS_CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  set(b, t, OS_CUDNN_ATTR_TENSOR_UNIQUE_ID, OS_CUDNN_TYPE_INT64, 1, &uid);
  set(b, t, OS_CUDNN_ATTR_TENSOR_DATA_TYPE, OS_CUDNN_TYPE_DATA_TYPE, 1, &type);
  set(b, t, OS_CUDNN_ATTR_TENSOR_DIMENSIONS, OS_CUDNN_TYPE_INT64, 4, dims);
  set(b, t, OS_CUDNN_ATTR_TENSOR_STRIDES, OS_CUDNN_TYPE_INT64, 4, strides);
  set(b, t, OS_CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, OS_CUDNN_TYPE_INT64, 1, &alignment);
  set(b, t, OS_CUDNN_ATTR_TENSOR_IS_VIRTUAL, OS_CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
  finalize(b, t);
  return t;
}

// out = in + addend, computed in fp32.
static os_cudnn_descriptor
add_node(builder *b, os_cudnn_descriptor in, os_cudnn_descriptor addend, os_cudnn_descriptor out)
{
  int mode = OS_CUDNN_POINTWISE_ADD, math = OS_CUDNN_DATA_FLOAT;
  os_cudnn_descriptor pw = create(b, OS_CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  set(b, pw, OS_CUDNN_ATTR_POINTWISE_MODE, OS_CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  set(b, pw, OS_CUDNN_ATTR_POINTWISE_MATH_PREC, OS_CUDNN_TYPE_DATA_TYPE, 1, &math);
  finalize(b, pw);
  os_cudnn_descriptor op = create(b, OS_CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  set(b, op, OS_CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &pw);
  set(b, op, OS_CUDNN_ATTR_OPERATION_POINTWISE_XDESC, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &in);
  set(b, op, OS_CUDNN_ATTR_OPERATION_POINTWISE_BDESC, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &addend);
  set(b, op, OS_CUDNN_ATTR_OPERATION_POINTWISE_YDESC, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &out);
  finalize(b, op);
  return op;
}

// The operation graph of one of the three graphs.
static os_cudnn_descriptor
describe_graph(builder *b, const plan_key *k, int which)
{
  const os_cudnn_conv_shape *s = &k->shape;
  int64_t a = k->alignment;
  int64_t w_strides[4] = { s->w_dims[1] * s->w_dims[2] * s->w_dims[3], s->w_dims[2] * s->w_dims[3],
                           s->w_dims[3], 1 };
  bool with_bias = which == GRAPH_FUSED && k->bias_type != TYPE_ABSENT;
  bool with_residual = which == GRAPH_FUSED && k->residual_type != TYPE_ABSENT;
  os_cudnn_descriptor x = tensor(b, UID_X, k->x_type, s->x_dims, s->x_strides, a, false);
  os_cudnn_descriptor w = tensor(b, UID_W, k->x_type, s->w_dims, w_strides, a, false);
  bool conv_is_last = !with_bias && !with_residual;
  int conv_type = which == GRAPH_CONV_IN_OPERAND_TYPE ? k->x_type
                  : conv_is_last                     ? k->y_type
                                                     : (int)OS_CUDNN_DATA_FLOAT;
  os_cudnn_descriptor conv_out = tensor(b, conv_is_last ? UID_Y : UID_CONV, conv_type,
                                        s->y_dims, s->y_strides, a, !conv_is_last);

  int64_t spatial = 2, dilations[2] = { 1, 1 };
  int compute = OS_CUDNN_DATA_FLOAT, mode = OS_CUDNN_CROSS_CORRELATION;
  os_cudnn_descriptor conv = create(b, OS_CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, OS_CUDNN_TYPE_INT64, 1, &spatial);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_COMP_TYPE, OS_CUDNN_TYPE_DATA_TYPE, 1, &compute);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_CONV_MODE, OS_CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_DILATIONS, OS_CUDNN_TYPE_INT64, 2, dilations);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, OS_CUDNN_TYPE_INT64, 2, s->stride);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, OS_CUDNN_TYPE_INT64, 2, s->pre_pad);
  set(b, conv, OS_CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, OS_CUDNN_TYPE_INT64, 2, s->post_pad);
  finalize(b, conv);

  float alpha = 1.0f, beta = 0.0f;
  os_cudnn_descriptor ops[3];
  int n_ops = 0;
  os_cudnn_descriptor fprop = create(b, OS_CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  set(b, fprop, OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &x);
  set(b, fprop, OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &w);
  set(b, fprop, OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &conv_out);
  set(b, fprop, OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
      OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv);
  set(b, fprop, OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, OS_CUDNN_TYPE_FLOAT, 1, &alpha);
  set(b, fprop, OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, OS_CUDNN_TYPE_FLOAT, 1, &beta);
  finalize(b, fprop);
  ops[n_ops++] = fprop;

  os_cudnn_descriptor last = conv_out;
  if (with_bias) {
    int64_t bias_dims[4] = { 1, s->y_dims[1], 1, 1 }, bias_strides[4] = { s->y_dims[1], 1, 1, 1 };
    os_cudnn_descriptor bias = tensor(b, UID_BIAS, k->bias_type, bias_dims, bias_strides, a, false);
    os_cudnn_descriptor biased =
        with_residual ? tensor(b, UID_BIASED, OS_CUDNN_DATA_FLOAT, s->y_dims, s->y_strides, a, true)
                      : tensor(b, UID_Y, k->y_type, s->y_dims, s->y_strides, a, false);
    ops[n_ops++] = add_node(b, last, bias, biased);
    last = biased;
  }
  if (with_residual) {
    os_cudnn_descriptor residual =
        tensor(b, UID_RESIDUAL, k->residual_type, s->y_dims, s->y_strides, a, false);
    os_cudnn_descriptor out = tensor(b, UID_Y, k->y_type, s->y_dims, s->y_strides, a, false);
    ops[n_ops++] = add_node(b, last, residual, out);
  }

  os_cudnn_descriptor graph = create(b, OS_CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  set(b, graph, OS_CUDNN_ATTR_OPERATIONGRAPH_HANDLE, OS_CUDNN_TYPE_HANDLE, 1, &b->dnn->handle);
  set(b, graph, OS_CUDNN_ATTR_OPERATIONGRAPH_OPS, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops, ops);
  finalize(b, graph);
  return graph;
}

// ----------------------------------------------------------------------------
// engine choice

// Whether an engine keeps the precision's promises: fp32 accumulation and
// reproducible results always; in fp32 mode also plain fp32 arithmetic (no
// TF32 tensor cores, no Winograd or FFT transforms), since the golden checks
// compare fp32 runs to 1e-5. Engines compiled at run time (NVRTC, seconds
// per shape when the plan is built, so a minute before the first UNet call
// at a new size) only when asked for (ONESTEP_CUDA_CUDNN_RUNTIME_COMPILED).
static bool
engine_suits(os_cuda_cudnn *dnn, os_cudnn_descriptor config, int precision)
{
  os_cudnn_descriptor engine = NULL;
  int64_t n_numerical = 0, n_behavior = 0;
  int numerical[OS_CUDNN_NUMERICAL_NOTE_TYPE_COUNT], behavior[OS_CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  bool known = dnn->cudnnBackendCreateDescriptor(OS_CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) ==
                   OS_CUDNN_STATUS_SUCCESS &&
               dnn->cudnnBackendGetAttribute(config, OS_CUDNN_ATTR_ENGINECFG_ENGINE,
                                             OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n_numerical,
                                             &engine) == OS_CUDNN_STATUS_SUCCESS &&
               dnn->cudnnBackendGetAttribute(engine, OS_CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                             OS_CUDNN_TYPE_NUMERICAL_NOTE,
                                             OS_CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n_numerical,
                                             numerical) == OS_CUDNN_STATUS_SUCCESS &&
               dnn->cudnnBackendGetAttribute(engine, OS_CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE,
                                             OS_CUDNN_TYPE_BEHAVIOR_NOTE,
                                             OS_CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n_behavior,
                                             behavior) == OS_CUDNN_STATUS_SUCCESS;
  if (engine)
    dnn->cudnnBackendDestroyDescriptor(engine);
  if (!known)
    return false;
  for (int64_t i = 0; i < n_behavior; i++)
    if (behavior[i] == OS_CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION && !dnn->runtime_compiled_engines)
      return false;
  for (int64_t i = 0; i < n_numerical; i++) {
    switch (numerical[i]) {
    case OS_CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
    case OS_CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
      return false;
    case OS_CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
    case OS_CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
    case OS_CUDNN_NUMERICAL_NOTE_WINOGRAD:
    case OS_CUDNN_NUMERICAL_NOTE_FFT:
      if (precision == OS_CUDA_FP32)
        return false;
      break;
    default:
      break;
    }
  }
  return true;
}

// Ranks the graph's engine configurations with one heuristics mode and
// finalizes the first suitable one into a plan (owned by b). NULL when none.
static os_cudnn_descriptor
first_plan(builder *b, os_cudnn_descriptor graph, int heur_mode, int precision, int64_t *workspace)
{
  os_cuda_cudnn *dnn = b->dnn;
  builder heur_b = { dnn, {}, 0, false };
  os_cudnn_descriptor heur = create(&heur_b, OS_CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  set(&heur_b, heur, OS_CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
      &graph);
  set(&heur_b, heur, OS_CUDNN_ATTR_ENGINEHEUR_MODE, OS_CUDNN_TYPE_HEUR_MODE, 1, &heur_mode);
  finalize(&heur_b, heur);
  int64_t count = 0;
  if (!heur_b.failed &&
      dnn->cudnnBackendGetAttribute(heur, OS_CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                    OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                    NULL) != OS_CUDNN_STATUS_SUCCESS)
    count = 0;
  os_cudnn_descriptor *configs =
      count > 0 ? (os_cudnn_descriptor *)calloc((size_t)count, sizeof *configs) : NULL;
  int64_t created = 0;
  while (configs && created < count &&
         dnn->cudnnBackendCreateDescriptor(OS_CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
                                           &configs[created]) == OS_CUDNN_STATUS_SUCCESS)
    created++;
  int64_t filled = 0;
  if (created &&
      dnn->cudnnBackendGetAttribute(heur, OS_CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                    OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, created, &filled,
                                    configs) != OS_CUDNN_STATUS_SUCCESS)
    filled = 0;

  os_cudnn_descriptor chosen = NULL;
  int64_t chosen_index = -1;
  for (int64_t i = 0; !chosen && i < filled && i < created; i++) {
    if (!engine_suits(dnn, configs[i], precision))
      continue;
    os_cudnn_descriptor plan = NULL;
    int64_t bytes = 0, n = 0;
    bool ok = dnn->cudnnBackendCreateDescriptor(OS_CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR,
                                                &plan) == OS_CUDNN_STATUS_SUCCESS &&
              dnn->cudnnBackendSetAttribute(plan, OS_CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                            OS_CUDNN_TYPE_HANDLE, 1,
                                            &dnn->handle) == OS_CUDNN_STATUS_SUCCESS &&
              dnn->cudnnBackendSetAttribute(plan, OS_CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                            OS_CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                            &configs[i]) == OS_CUDNN_STATUS_SUCCESS &&
              dnn->cudnnBackendFinalize(plan) == OS_CUDNN_STATUS_SUCCESS &&
              dnn->cudnnBackendGetAttribute(plan, OS_CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                            OS_CUDNN_TYPE_INT64, 1, &n,
                                            &bytes) == OS_CUDNN_STATUS_SUCCESS &&
              bytes <= WORKSPACE_LIMIT;
    if (ok) {
      chosen = plan;
      chosen_index = i;
      *workspace = bytes;
    } else if (plan) {
      dnn->cudnnBackendDestroyDescriptor(plan);
    }
  }
  // The plan and its engine configuration join the graph's descriptors
  // (at most 14 of them, so they fit); the other configurations go.
  for (int64_t i = 0; i < created; i++) {
    if (i == chosen_index)
      b->owned[b->n_owned++] = configs[i];
    else
      dnn->cudnnBackendDestroyDescriptor(configs[i]);
  }
  if (chosen)
    b->owned[b->n_owned++] = chosen;
  free(configs);
  release(dnn, heur_b.owned, heur_b.n_owned);
  return chosen;
}

// Builds the plan for a key into entry: graphs 1, 2 and 3 in turn, each
// with heuristics mode A and then the fallback list.
static void
build_plan(os_cuda_cudnn *dnn, plan_entry *entry)
{
  static const int modes[] = { OS_CUDNN_HEUR_MODE_A, OS_CUDNN_HEUR_MODE_FALLBACK };
  const plan_key *k = &entry->key;
  bool something_to_fuse = k->bias_type != TYPE_ABSENT || k->residual_type != TYPE_ABSENT;
  bool y_in_operand_type = k->y_type == k->x_type;
  for (int which = GRAPH_FUSED; which <= GRAPH_CONV_IN_OPERAND_TYPE; which++) {
    // Skip the graphs that equal the next one.
    if ((which == GRAPH_FUSED && !something_to_fuse) ||
        (which == GRAPH_CONV_TO_Y && y_in_operand_type))
      continue;
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
      builder b = { dnn, {}, 0, false };
      os_cudnn_descriptor graph = describe_graph(&b, k, which);
      os_cudnn_descriptor plan =
          b.failed ? NULL : first_plan(&b, graph, modes[m], k->precision, &entry->workspace);
      if (plan) {
        entry->plan = plan;
        entry->graph = which;
        memcpy(entry->owned, b.owned, sizeof b.owned);
        entry->n_owned = b.n_owned;
        return;
      }
      release(dnn, b.owned, b.n_owned);
      if (b.failed) // the graph itself was refused: other heuristics will not help
        break;
    }
  }
}

// The cached entry for key, building it on first use; NULL when out of host memory.
static plan_entry *
plan_for(os_cuda_cudnn *dnn, const plan_key *key)
{
  if (!dnn->conv_plans &&
      !(dnn->conv_plans = (os_cudnn_conv_plans *)calloc(1, sizeof(os_cudnn_conv_plans))))
    return NULL;
  os_cudnn_conv_plans *plans = dnn->conv_plans;
  for (size_t i = 0; i < plans->count; i++)
    if (memcmp(&plans->entries[i].key, key, sizeof *key) == 0)
      return &plans->entries[i];
  if (plans->count == plans->capacity) {
    size_t capacity = plans->capacity ? 2 * plans->capacity : 64;
    plan_entry *grown = (plan_entry *)realloc(plans->entries, capacity * sizeof *grown);
    if (!grown)
      return NULL;
    plans->entries = grown;
    plans->capacity = capacity;
  }
  plan_entry *entry = &plans->entries[plans->count++];
  memset(entry, 0, sizeof *entry);
  entry->key = *key;
  build_plan(dnn, entry);
  return entry;
}

void
os_cuda_cudnn_conv_plans_free(os_cuda_cudnn *dnn)
{
  os_cudnn_conv_plans *plans = dnn->conv_plans;
  if (!plans)
    return;
  for (size_t i = 0; i < plans->count; i++)
    release(dnn, plans->entries[i].owned, plans->entries[i].n_owned);
  free(plans->entries);
  free(plans);
  dnn->conv_plans = NULL;
}

// ----------------------------------------------------------------------------
// execution

// Multiply-adds of the convolution, counted twice: the queue weight of its launch.
static double
conv_flops(const os_cudnn_conv_shape *s)
{
  return 2.0 * (double)s->y_dims[0] * s->y_dims[1] * s->y_dims[2] * s->y_dims[3] *
         (double)s->w_dims[1] * s->w_dims[2] * s->w_dims[3];
}

static bool
execute(os_cuda_backend *cb, os_cuda_cudnn *dnn, const plan_entry *entry, int n,
        const int64_t *uids, void *const *pointers, void *workspace)
{
  builder b = { dnn, {}, 0, false };
  os_cudnn_descriptor pack = create(&b, OS_CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  set(&b, pack, OS_CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, OS_CUDNN_TYPE_INT64, n, uids);
  set(&b, pack, OS_CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, OS_CUDNN_TYPE_VOID_PTR, n, pointers);
  set(&b, pack, OS_CUDNN_ATTR_VARIANT_PACK_WORKSPACE, OS_CUDNN_TYPE_VOID_PTR, 1, &workspace);
  finalize(&b, pack);
  os_cudnn_status status = b.failed ? (os_cudnn_status)-1
                                    : dnn->cudnnBackendExecute(dnn->handle, entry->plan, pack);
  release(dnn, b.owned, b.n_owned);
  if (b.failed)
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "cuDNN convolution: variant pack refused");
  bool ok = !b.failed && os_cuda_cudnn_check(cb, dnn, status, "convolution");
  os_cuda_check_launch_work(cb, "cuDNN convolution", conv_flops(&entry->key.shape));
  return ok;
}

static __device__ __forceinline__ float
widen(__half v)
{
  return __half2float(v);
}

static __device__ __forceinline__ float
widen(__nv_bfloat16 v)
{
  return __bfloat162float(v);
}

// y = conv + bias[c] + residual for graph 3's 16-bit result: one block per
// run of P elements sharing channel row % C.
template <typename T>
__global__ void
widen_epilogue_kernel(float *y, const T *conv, const float *bias, const float *residual,
                      unsigned C, unsigned P)
{
  size_t row = blockIdx.x, start = row * P;
  float b = bias ? bias[row % C] : 0.0f;
  OS_CUDA_ROW_LOOP(j, P)
  {
    float v = widen(conv[start + j]) + b;
    y[start + j] = residual ? v + residual[start + j] : v;
  }
}

static int
cudnn_type(os_cuda_dtype type)
{
  return type == OS_CUDA_STORE_F16    ? (int)OS_CUDNN_DATA_HALF
         : type == OS_CUDA_STORE_BF16 ? (int)OS_CUDNN_DATA_BFLOAT16
                                      : (int)OS_CUDNN_DATA_FLOAT;
}

static int
cudnn_operand_type(cudaDataType type)
{
  return type == CUDA_R_16F    ? (int)OS_CUDNN_DATA_HALF
         : type == CUDA_R_16BF ? (int)OS_CUDNN_DATA_BFLOAT16
                               : (int)OS_CUDNN_DATA_FLOAT;
}

// Elements a tensor spans in memory.
static size_t
span(const int64_t *dims, const int64_t *strides)
{
  size_t last = 0;
  for (int d = 0; d < 4; d++)
    last += (size_t)(dims[d] - 1) * (size_t)strides[d];
  return last + 1;
}

// x and y elements one cuDNN call may cover: bounds the scratch of the
// 16-bit copies (x converted in, the third graph's result out) at 1 GiB each.
// The UNet's convolutions stay whole calls; the decoder's full-resolution
// ones take a few images at a time. Calls split along the first dimension
// (images; batch elements for the temporal view), whose parts are
// contiguous in memory.
#define CALL_ELEMENTS ((size_t)512 << 20)

// The part of the convolution from image `start`, `count` images.
static os_cudnn_conv_shape
call_shape(const os_cudnn_conv_shape *s, int64_t start, int64_t count, size_t *x_offset,
           size_t *y_offset)
{
  os_cudnn_conv_shape part = *s;
  part.x_dims[0] = part.y_dims[0] = count;
  *x_offset = (size_t)(start * s->x_strides[0]);
  *y_offset = (size_t)(start * s->y_strides[0]);
  return part;
}

// One call's operands: the views of its part of x, y and the residual (element
// offsets are the same whatever a buffer stores), the bias, and the weight
// in the operand type.
typedef struct {
  os_cuda_view x, y, bias, residual;
  const void *weight;
} call_operands;

static call_operands
operands_at(os_cuda_backend *cb, const float *x, float *y, const float *bias,
            const float *residual, const void *weight, size_t x_offset, size_t y_offset)
{
  os_cuda_view none = { NULL, OS_CUDA_STORE_F32 };
  call_operands o = { os_cuda_view_of(cb, x + x_offset), os_cuda_view_of(cb, y + y_offset),
                      bias ? os_cuda_view_of(cb, bias) : none,
                      residual ? os_cuda_view_of(cb, residual + y_offset) : none, weight };
  return o;
}

static plan_key
key_for(const os_cuda_backend *cb, const os_cudnn_conv_shape *part, int in_type,
        const call_operands *o)
{
  bool convert_x = cudnn_type(o->x.type) != in_type;
  plan_key key;
  memset(&key, 0, sizeof key);
  key.shape = *part;
  key.x_type = in_type;
  key.y_type = cudnn_type(o->y.type);
  key.bias_type = o->bias.ptr ? cudnn_type(o->bias.type) : TYPE_ABSENT;
  key.residual_type = o->residual.ptr ? cudnn_type(o->residual.type) : TYPE_ABSENT;
  // A converted x comes from the pool, aligned far beyond 16 bytes.
  const void *addresses[] = { convert_x ? NULL : o->x.ptr, o->y.ptr, o->bias.ptr,
                              o->residual.ptr, o->weight };
  key.alignment = os_cuda_alignment(addresses, 5);
  key.precision = cb->precision;
  return key;
}

static void
say_once(bool *said, os_cuda_cudnn *dnn, const os_cudnn_conv_shape *s, const char *what)
{
  if (*said)
    return;
  *said = true;
  fprintf(stderr,
          "onestep: cuDNN %zu has no engine %s (x [%lld, %lld, %lld, %lld], weight [%lld, %lld, "
          "%lld, %lld])\n",
          dnn->version, what, (long long)s->x_dims[0], (long long)s->x_dims[1],
          (long long)s->x_dims[2], (long long)s->x_dims[3], (long long)s->w_dims[0],
          (long long)s->w_dims[1], (long long)s->w_dims[2], (long long)s->w_dims[3]);
}

// Whether the plan writes its result in the operand type for the epilogue to widen.
static bool
widens_after(const plan_entry *entry)
{
  return entry->graph == GRAPH_CONV_IN_OPERAND_TYPE && entry->key.y_type != entry->key.x_type;
}

// The entry a call runs with, or NULL when it has none it can use: no
// engine, or the third graph into a y the epilogue cannot write (16-bit of
// another type).
static plan_entry *
usable_plan(os_cuda_cudnn *dnn, const plan_key *key)
{
  plan_entry *entry = plan_for(dnn, key);
  if (!entry || !entry->plan)
    return NULL;
  return widens_after(entry) && key->y_type != OS_CUDNN_DATA_FLOAT ? NULL : entry;
}

// Queues one call: converts its part of x if needed, runs the plan, and adds
// what the graph left out. y and residual point at the call's part.
static void
run_call(os_cuda_backend *cb, os_cuda_cudnn *dnn, const plan_entry *entry, cudaDataType operand,
         const call_operands *o, float *y, const float *bias, const float *residual)
{
  const os_cudnn_conv_shape *part = &entry->key.shape;
  size_t in_size = os_cuda_type_size(operand);
  size_t x_count = span(part->x_dims, part->x_strides);
  size_t y_count = span(part->y_dims, part->y_strides);
  bool convert_x = cudnn_type(o->x.type) != entry->key.x_type;
  bool fused = entry->graph == GRAPH_FUSED, widen_after = widens_after(entry);
  if (widen_after)
    say_once(&dnn->conv_plans->rounding_said, dnn, part,
             "writing fp32 from 16-bit NCHW operands for a convolution; its results are "
             "rounded to 16 bits");
  // The epilogue adds what is fp32; os_cuda_bias_residual the rest.
  bool bias_widened = widen_after && o->bias.ptr && o->bias.type == OS_CUDA_STORE_F32;
  bool residual_widened = widen_after && o->residual.ptr && o->residual.type == OS_CUDA_STORE_F32;
  const float *bias_after = fused || bias_widened ? NULL : bias;
  const float *residual_after = fused || residual_widened ? NULL : residual;

  void *x_converted = convert_x ? os_cuda_scratch(cb, x_count * in_size, "convolution input")
                                : NULL;
  void *conv_out = widen_after ? os_cuda_scratch(cb, y_count * in_size, "convolution output")
                               : NULL;
  void *workspace =
      entry->workspace ? os_cuda_scratch(cb, (size_t)entry->workspace, "cuDNN workspace") : NULL;
  bool ready = (!convert_x || x_converted) && (!widen_after || conv_out) &&
               (!entry->workspace || workspace);
  if (ready) {
    if (convert_x)
      os_cuda_convert(cb, os_cuda_view{ x_converted, os_cuda_storage_type(cb) }, o->x, x_count);
    int64_t uids[5] = { UID_X, UID_W, UID_Y };
    void *pointers[5] = { convert_x ? x_converted : o->x.ptr, (void *)o->weight,
                          widen_after ? conv_out : o->y.ptr };
    int n = 3;
    if (fused && o->bias.ptr) {
      uids[n] = UID_BIAS;
      pointers[n++] = o->bias.ptr;
    }
    if (fused && o->residual.ptr) {
      uids[n] = UID_RESIDUAL;
      pointers[n++] = o->residual.ptr;
    }
    bool ran = execute(cb, dnn, entry, n, uids, pointers, workspace);
    int64_t C = part->y_dims[1], P = part->y_strides[1];
    unsigned rows = (unsigned)(y_count / (size_t)P);
    if (ran && widen_after) {
      const float *b = bias_widened ? (const float *)o->bias.ptr : NULL;
      const float *r = residual_widened ? (const float *)o->residual.ptr : NULL;
      if (operand == CUDA_R_16F)
        widen_epilogue_kernel<<<rows, os_cuda_row_threads((size_t)P), 0, cb->stream>>>(
            (float *)o->y.ptr, (const __half *)conv_out, b, r, (unsigned)C, (unsigned)P);
      else
        widen_epilogue_kernel<<<rows, os_cuda_row_threads((size_t)P), 0, cb->stream>>>(
            (float *)o->y.ptr, (const __nv_bfloat16 *)conv_out, b, r, (unsigned)C, (unsigned)P);
      os_cuda_check_launch(cb, "convolution epilogue");
    }
    if (ran && (bias_after || residual_after))
      os_cuda_bias_residual(cb, y, bias_after, residual_after, (int)(rows / C), (int)C, (int)P);
  }
  os_cuda_free(&cb->base, workspace);
  os_cuda_free(&cb->base, conv_out);
  os_cuda_free(&cb->base, x_converted);
}

bool
os_cuda_cudnn_conv_forward(os_cuda_backend *cb, const os_cudnn_conv_shape *shape, float *y,
                           const float *x, const float *W, const float *bias,
                           const float *residual)
{
  os_cuda_cudnn *dnn = os_cuda_cudnn_if_loaded(cb);
  if (!dnn || !dnn->forward_convolutions)
    return false;
  cudaDataType operand = os_cuda_operand_type(cb);
  int in_type = cudnn_operand_type(operand);
  os_cuda_view xv = os_cuda_view_of(cb, x), yv = os_cuda_view_of(cb, y);
  bool convert_x = cudnn_type(xv.type) != in_type;
  // An image too large for one call's 16-bit copies: the caller's own path
  // works in bounded chunks.
  bool may_copy = convert_x || cudnn_type(yv.type) != in_type;
  int64_t per_call =
      (int64_t)(CALL_ELEMENTS / (size_t)(shape->x_strides[0] + shape->y_strides[0]));
  if (per_call == 0 && may_copy)
    return false;
  int64_t images = shape->x_dims[0];
  if (per_call < 1 || !may_copy || per_call > images)
    per_call = images;

  // Every call's plan before anything is queued (the last call may be
  // smaller, and offsets may change alignment): the caller's path takes over
  // when one is missing. A weight already in the operand type is used where
  // it lies (its alignment counts); a converted copy comes later, from the pool.
  os_cuda_view wv = os_cuda_view_of(cb, W);
  const void *weight_stored = cudnn_type(wv.type) == in_type ? wv.ptr : NULL;
  for (int64_t start = 0; start < images; start += per_call) {
    size_t x_offset, y_offset;
    int64_t count = images - start < per_call ? images - start : per_call;
    os_cudnn_conv_shape part = call_shape(shape, start, count, &x_offset, &y_offset);
    call_operands o = operands_at(cb, x, y, bias, residual, weight_stored, x_offset, y_offset);
    plan_key key = key_for(cb, &part, in_type, &o);
    if (!usable_plan(dnn, &key)) {
      if (dnn->conv_plans)
        say_once(&dnn->conv_plans->fallback_said, dnn, &part,
                 "for a convolution; such convolutions run as im2col + cuBLAS");
      return false;
    }
  }

  os_cuda_operand w;
  size_t w_count = (size_t)(shape->w_dims[0] * shape->w_dims[1] * shape->w_dims[2] *
                            shape->w_dims[3]);
  if (!os_cuda_operand_prepare(cb, &w, W, w_count, true))
    return true;
  for (int64_t start = 0; start < images; start += per_call) {
    size_t x_offset, y_offset;
    int64_t count = images - start < per_call ? images - start : per_call;
    os_cudnn_conv_shape part = call_shape(shape, start, count, &x_offset, &y_offset);
    call_operands o = operands_at(cb, x, y, bias, residual, weight_stored, x_offset, y_offset);
    plan_key key = key_for(cb, &part, in_type, &o);
    o.weight = w.ptr;
    run_call(cb, dnn, usable_plan(dnn, &key), operand, &o, y + y_offset, bias,
             residual ? residual + y_offset : NULL);
  }
  os_cuda_operand_release(cb, &w);
  return true;
}
