// cuda_profile.cu: per-op GPU time, for finding what to optimise next.
//
// With ONESTEP_CUDA_PROFILE=1 the backend's op table is replaced by one whose
// compute ops record a CUDA event before and after the real op; when the
// backend is destroyed, the summed times per op are printed to stderr. Times
// are inclusive (an op that calls another through the table counts both).

#include <stdio.h>
#include <stdlib.h>

#include "cuda_common.h"

#define PENDING_MAX 8192 // event pairs in flight before they are summed

enum {
  P_GEMM, P_GEMM_BATCHED, P_LINEAR, P_CONV2D, P_CONV_TEMPORAL, P_GROUP_NORM, P_LAYER_NORM,
  P_ATTENTION, P_FILL, P_SILU, P_GELU, P_QUICK_GELU, P_GEGLU, P_ADD, P_BLEND, P_SCALE,
  P_ADD_ROW_VECTOR, P_ADD_CHANNEL_VECTOR, P_PERMUTE_0213, P_UPSAMPLE_NEAREST,
  P_CONCAT_CHANNELS, P_COUNT
};

static const char *const op_names[P_COUNT] = {
  "gemm", "gemm_batched", "linear", "conv2d", "conv_temporal", "group_norm", "layer_norm",
  "attention", "fill", "silu", "gelu", "quick_gelu", "geglu", "add", "blend", "scale",
  "add_row_vector", "add_channel_vector", "permute_0213", "upsample_nearest", "concat_channels",
};

typedef struct {
  cudaEvent_t start, end;
  int op;
} pending_pair;

struct os_cuda_profile {
  cudaEvent_t *free_events;
  int n_free, cap_free;
  pending_pair pending[PENDING_MAX];
  int n_pending;
  double ms[P_COUNT];
  long long calls[P_COUNT];
};

static cudaEvent_t
take_event(os_cuda_profile *p)
{
  if (p->n_free > 0)
    return p->free_events[--p->n_free];
  cudaEvent_t e = NULL;
  cudaEventCreate(&e);
  return e;
}

static void
give_event(os_cuda_profile *p, cudaEvent_t e)
{
  if (p->n_free == p->cap_free) {
    int cap = p->cap_free ? 2 * p->cap_free : 2 * PENDING_MAX;
    cudaEvent_t *grown = (cudaEvent_t *)realloc(p->free_events, cap * sizeof *grown);
    if (!grown) {
      cudaEventDestroy(e);
      return;
    }
    p->free_events = grown;
    p->cap_free = cap;
  }
  p->free_events[p->n_free++] = e;
}

// Waits for the pending pairs and adds their times up.
static void
flush(os_cuda_profile *p)
{
  if (p->n_pending == 0)
    return;
  cudaEventSynchronize(p->pending[p->n_pending - 1].end);
  for (int i = 0; i < p->n_pending; i++) {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, p->pending[i].start, p->pending[i].end) == cudaSuccess) {
      p->ms[p->pending[i].op] += ms;
      p->calls[p->pending[i].op]++;
    }
    give_event(p, p->pending[i].start);
    give_event(p, p->pending[i].end);
  }
  p->n_pending = 0;
}

static cudaEvent_t
begin(os_backend *be)
{
  os_cuda_backend *cb = os_cuda(be);
  cudaEvent_t start = take_event(cb->profile);
  cudaEventRecord(start, cb->stream);
  return start;
}

static void
end(os_backend *be, cudaEvent_t start, int op)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_profile *p = cb->profile;
  cudaEvent_t stop = take_event(p);
  cudaEventRecord(stop, cb->stream);
  p->pending[p->n_pending++] = (pending_pair){ start, stop, op };
  if (p->n_pending == PENDING_MAX)
    flush(p);
}

// A table entry that times `fn` as op `id`.
template <typename Fn, Fn fn, int id> struct timed;
template <typename... Args, void (*fn)(os_backend *, Args...), int id>
struct timed<void (*)(os_backend *, Args...), fn, id> {
  static void
  call(os_backend *be, Args... args)
  {
    cudaEvent_t start = begin(be);
    fn(be, args...);
    end(be, start, id);
  }
};
#define TIMED(fn, id) timed<decltype(&fn), fn, id>::call

const os_backend_ops *
os_cuda_profiled_ops(const os_backend_ops *plain)
{
  static const os_backend_ops table = [plain] {
    os_backend_ops t = *plain;
    t.gemm = TIMED(os_cuda_gemm, P_GEMM);
    t.gemm_batched = TIMED(os_cuda_gemm_batched, P_GEMM_BATCHED);
    t.linear = TIMED(os_cuda_linear, P_LINEAR);
    t.conv2d = TIMED(os_cuda_conv2d, P_CONV2D);
    t.conv_temporal = TIMED(os_cuda_conv_temporal, P_CONV_TEMPORAL);
    t.group_norm = TIMED(os_cuda_group_norm, P_GROUP_NORM);
    t.layer_norm = TIMED(os_cuda_layer_norm, P_LAYER_NORM);
    t.attention = TIMED(os_cuda_attention, P_ATTENTION);
    t.fill = TIMED(os_cuda_fill, P_FILL);
    t.silu = TIMED(os_cuda_silu, P_SILU);
    t.gelu = TIMED(os_cuda_gelu, P_GELU);
    t.quick_gelu = TIMED(os_cuda_quick_gelu, P_QUICK_GELU);
    t.geglu = TIMED(os_cuda_geglu, P_GEGLU);
    t.add = TIMED(os_cuda_add, P_ADD);
    t.blend = TIMED(os_cuda_blend, P_BLEND);
    t.scale = TIMED(os_cuda_scale, P_SCALE);
    t.add_row_vector = TIMED(os_cuda_add_row_vector, P_ADD_ROW_VECTOR);
    t.add_channel_vector = TIMED(os_cuda_add_channel_vector, P_ADD_CHANNEL_VECTOR);
    t.permute_0213 = TIMED(os_cuda_permute_0213, P_PERMUTE_0213);
    t.upsample_nearest = TIMED(os_cuda_upsample_nearest, P_UPSAMPLE_NEAREST);
    t.concat_channels = TIMED(os_cuda_concat_channels, P_CONCAT_CHANNELS);
    return t;
  }();
  return &table;
}

os_cuda_profile *
os_cuda_profile_new(void)
{
  return (os_cuda_profile *)calloc(1, sizeof(os_cuda_profile));
}

void
os_cuda_profile_report(os_cuda_backend *cb)
{
  os_cuda_profile *p = cb->profile;
  if (!p)
    return;
  flush(p);
  double total = 0.0;
  for (int i = 0; i < P_COUNT; i++)
    total += p->ms[i];
  fprintf(stderr, "\nCUDA op profile, %s (GPU time per op, inclusive):\n", cb->device_name);
  fprintf(stderr, "%-20s %10s %12s %7s\n", "op", "calls", "total ms", "share");
  bool done[P_COUNT] = { false };
  for (int n = 0; n < P_COUNT; n++) { // largest first
    int best = -1;
    for (int i = 0; i < P_COUNT; i++)
      if (!done[i] && p->calls[i] && (best < 0 || p->ms[i] > p->ms[best]))
        best = i;
    if (best < 0)
      break;
    done[best] = true;
    fprintf(stderr, "%-20s %10lld %12.1f %6.1f%%\n", op_names[best], p->calls[best], p->ms[best],
            total > 0 ? 100.0 * p->ms[best] / total : 0.0);
  }
  for (int i = 0; i < p->n_free; i++)
    cudaEventDestroy(p->free_events[i]);
  free(p->free_events);
  free(p);
  cb->profile = NULL;
}
