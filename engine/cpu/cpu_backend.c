/* cpu_backend.c: the CPU backend object, its memory ops and its op table. */
#include "cpu_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Each block is preceded by a header holding its size, padded so that the
 * pointer handed out stays 64-byte aligned (whole cache lines, AVX-512).
 * Every storage holds float32 here (cpu_storage.c rounds the 16-bit ones'
 * values when asked to, keeping its own list of them). */
#define OS_CPU_ALIGN 64

static void *
cpu_alloc_as(os_backend *be, size_t n, os_storage storage)
{
  (void)storage;
  if (n > (SIZE_MAX - OS_CPU_ALIGN) / sizeof(float))
    return NULL;
  size_t bytes = n * sizeof(float);
  void *block = NULL;
  if (posix_memalign(&block, OS_CPU_ALIGN, bytes + OS_CPU_ALIGN) != 0)
    return NULL;
  *(size_t *)block = bytes;
  be->bytes_in_use += bytes;
  if (be->bytes_in_use > be->peak_bytes)
    be->peak_bytes = be->bytes_in_use;
  return (char *)block + OS_CPU_ALIGN;
}

static void *
cpu_alloc(os_backend *be, size_t bytes)
{
  return cpu_alloc_as(be, (bytes + sizeof(float) - 1) / sizeof(float), OS_STORAGE_FP32);
}

static void
cpu_free(os_backend *be, void *ptr)
{
  if (!ptr)
    return;
  void *block = (char *)ptr - OS_CPU_ALIGN;
  be->bytes_in_use -= *(size_t *)block;
  free(block);
}

static void
cpu_memcpy(os_backend *be, void *dst, const void *src, size_t bytes)
{
  if (bytes)
    memcpy(dst, src, bytes);
}

/* A copy between the backend's buffers may be a whole frame batch at full
 * resolution: in units, with abort polls between them (upload and download
 * always finish, as their results leave the backend). */
static void
cpu_copy(os_backend *be, void *dst, const void *src, size_t bytes)
{
  os_cpu_progress progress = os_cpu_progress_start(be);
  double byte_work = 2.0 * OS_CPU_VALUE_WORK / sizeof(float);
  for (int64_t first, end = 0; os_cpu_next_unit(&progress, bytes, byte_work, &first, &end);)
    memcpy((char *)dst + first, (const char *)src + first, end - first);
}

void *
os_cpu_scratch(os_backend *be, size_t bytes)
{
  void *ptr = malloc(bytes ? bytes : 1);
  if (!ptr)
    ((os_cpu_backend *)be)->out_of_memory = true;
  return ptr;
}

static double unit_work = OS_CPU_UNIT_WORK;

double
os_cpu_unit_work(void)
{
  return unit_work;
}

void
os_cpu_set_unit_work(double work)
{
  unit_work = work > 0.0 ? work : OS_CPU_UNIT_WORK;
}

bool
os_cpu_stop_before(os_cpu_progress *p, double work)
{
  if (p->stopped)
    return true;
  if (p->since_poll >= unit_work) {
    p->since_poll = 0.0;
    p->stopped = p->be->abort_cb && p->be->abort_cb(p->be->abort_user_data);
  }
  p->since_poll += work;
  return p->stopped;
}

void
os_cpu_starting(os_cpu_progress *p, double work)
{
  if (work > unit_work / 4 && p->since_poll < unit_work)
    p->since_poll = unit_work;
}

bool
os_cpu_next_unit(os_cpu_progress *p, int64_t n_items, double item_work, int64_t *begin,
                 int64_t *end)
{
  if (*end >= n_items)
    return false;
  if (*end == 0)
    os_cpu_starting(p, (double)n_items * item_work);
  /* Enough items to reach a unit's work, so that each unit is followed by a poll. */
  double fit = item_work > 0.0 ? ceil(unit_work / item_work) : (double)n_items;
  int64_t items = fit < (double)(n_items - *end) ? (int64_t)fit : n_items - *end;
  if (os_cpu_stop_before(p, (double)items * item_work))
    return false;
  *begin = *end;
  *end += items;
  return true;
}

static onestep_status
cpu_sync(os_backend *be, onestep_error *error)
{
  os_cpu_backend *cpu = (os_cpu_backend *)be;
  if (cpu->out_of_memory) {
    cpu->out_of_memory = false;
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY,
                        "CPU backend: out of memory for an operation's scratch buffer");
  }
  return ONESTEP_OK;
}

static void
cpu_destroy(os_backend *be)
{
  os_cpu_storage_emulation_free(((os_cpu_backend *)be)->storage);
  free(be);
}

void
os_cpu_blas_single_thread(void)
{
  if (openblas_get_num_threads() != 1)
    openblas_set_num_threads(1);
}

static const os_backend_grad_ops cpu_grad_ops = {
  .linear_backward = os_cpu_linear_backward,
  .conv2d_backward = os_cpu_conv2d_backward,
  .conv_temporal_backward = os_cpu_conv_temporal_backward,
  .group_norm_backward = os_cpu_group_norm_backward,
  .layer_norm_backward = os_cpu_layer_norm_backward,
  .attention_backward = os_cpu_attention_backward,
  .silu_backward = os_cpu_silu_backward,
  .gelu_backward = os_cpu_gelu_backward,
  .quick_gelu_backward = os_cpu_quick_gelu_backward,
  .geglu_backward = os_cpu_geglu_backward,
  .axpy = os_cpu_axpy,
  .dot = os_cpu_dot,
  .sum_rows = os_cpu_sum_rows,
  .sum_channel_planes = os_cpu_sum_channel_planes,
  .upsample_nearest_backward = os_cpu_upsample_nearest_backward,
  .split_channels = os_cpu_split_channels,
  .leaky_relu_backward = os_cpu_leaky_relu_backward,
  .pixel_shuffle_backward = os_cpu_pixel_shuffle_backward,
  .resize_bilinear_backward = os_cpu_resize_bilinear_backward,
  .batch_norm_local_backward = os_cpu_batch_norm_local_backward,
  .spectral_normalize_backward = os_cpu_spectral_normalize_backward,
  .channel_projection_backward = os_cpu_channel_projection_backward,
  .loss = os_cpu_loss,
  .adamw_step = os_cpu_adamw_step,
  .ema_update = os_cpu_ema_update,
  .spectral_norm_power_iteration = os_cpu_spectral_norm_power_iteration,
};

static const os_backend_ops cpu_ops = {
  .name = "cpu",
  .is_host = true,
  .alloc = cpu_alloc,
  .alloc_as = cpu_alloc_as,
  .free = cpu_free,
  .upload = cpu_memcpy,
  .download = cpu_memcpy,
  .copy = cpu_copy,
  .fill = os_cpu_fill,
  .sync = cpu_sync,
  .destroy = cpu_destroy,
  .gemm = os_cpu_gemm,
  .gemm_batched = os_cpu_gemm_batched,
  .linear = os_cpu_linear,
  .conv2d = os_cpu_conv2d,
  .conv_temporal = os_cpu_conv_temporal,
  .group_norm = os_cpu_group_norm,
  .group_norm_stats = os_cpu_group_norm_stats,
  .group_norm_apply = os_cpu_group_norm_apply,
  .layer_norm = os_cpu_layer_norm,
  .attention = os_cpu_attention,
  .silu = os_cpu_silu,
  .gelu = os_cpu_gelu,
  .quick_gelu = os_cpu_quick_gelu,
  .geglu = os_cpu_geglu,
  .add = os_cpu_add,
  .blend = os_cpu_blend,
  .scale = os_cpu_scale,
  .add_row_vector = os_cpu_add_row_vector,
  .add_channel_vector = os_cpu_add_channel_vector,
  .permute_0213 = os_cpu_permute_0213,
  .upsample_nearest = os_cpu_upsample_nearest,
  .concat_channels = os_cpu_concat_channels,
  .copy_columns = os_cpu_copy_columns,
  .leaky_relu = os_cpu_leaky_relu,
  .pixel_shuffle = os_cpu_pixel_shuffle,
  .resize_bilinear = os_cpu_resize_bilinear,
  .batch_norm_local = os_cpu_batch_norm_local,
  .spectral_normalize = os_cpu_spectral_normalize,
  .channel_projection = os_cpu_channel_projection,
  .grad = &cpu_grad_ops,
};

os_backend *
os_backend_cpu_new(int n_threads, onestep_error *error)
{
  if (n_threads < 0) {
    os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT,
                 "threads: %d is not a thread count (use 0 for all cores)", n_threads);
    return NULL;
  }
  os_cpu_backend *cpu = calloc(1, sizeof *cpu);
  if (!cpu) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory creating the CPU backend");
    return NULL;
  }
  cpu->base.ops = &cpu_ops;
  cpu->n_threads = n_threads > 0 ? n_threads : omp_get_num_procs();
  if (cpu->n_threads < 1)
    cpu->n_threads = 1;
  os_cpu_blas_single_thread();
  return &cpu->base;
}
