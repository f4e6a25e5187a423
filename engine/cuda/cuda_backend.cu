// cuda_backend.cu: creation of the CUDA backend, its op table, transfers,
// sync and error latching. The module's only exported symbol is
// os_cuda_backend_create, called by engine/cuda/cuda_loader.c after dlopen().

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <type_traits>

#include "cuda_common.h"
#include "cuda_cudnn.h"
#include "cuda_discriminator.h"
#include "cuda_types.cuh"

// ----------------------------------------------------------------------------
// errors

static void
set_error(onestep_error *error, onestep_status code, const char *fmt, ...)
{
  if (!error)
    return;
  va_list ap;
  va_start(ap, fmt);
  error->code = code;
  vsnprintf(error->message, sizeof error->message, fmt, ap);
  va_end(ap);
}

void
os_cuda_latch(os_cuda_backend *cb, onestep_status code, const char *fmt, ...)
{
  if (cb->latched != ONESTEP_OK)
    return;
  va_list ap;
  va_start(ap, fmt);
  cb->latched = code;
  vsnprintf(cb->latched_message, sizeof cb->latched_message, fmt, ap);
  va_end(ap);
}

// Takes `slots` consecutive slots for the launch just queued: for each, waits
// for the launch that held it, then marks it with this one.
static void
throttle(os_cuda_backend *cb, unsigned slots)
{
  for (unsigned i = 0; i < slots; i++) {
    cudaEvent_t *slot = &cb->queued[cb->launches++ % OS_CUDA_MAX_QUEUED];
    if (cb->launches > OS_CUDA_MAX_QUEUED)
      cudaEventSynchronize(*slot);
    cudaEventRecord(*slot, cb->stream);
  }
}

void
os_cuda_check_launch(os_cuda_backend *cb, const char *what)
{
  os_cuda_check_launch_work(cb, what, 0.0);
}

void
os_cuda_check_launch_work(os_cuda_backend *cb, const char *what, double flops)
{
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "CUDA %s failed: %s", what, cudaGetErrorString(err));
  double slots = 1.0 + flops / OS_CUDA_FLOPS_PER_SLOT;
  throttle(cb, slots < OS_CUDA_MAX_QUEUED ? (unsigned)slots : OS_CUDA_MAX_QUEUED);
}

void
os_cuda_check_cublas(os_cuda_backend *cb, cublasStatus_t status, const char *what)
{
  if (status != CUBLAS_STATUS_SUCCESS)
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "cuBLAS %s failed: %s", what,
                  cublasGetStatusString(status));
  throttle(cb, 1);
}

static void
check_call(os_cuda_backend *cb, cudaError_t err, const char *what)
{
  if (err != cudaSuccess) {
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "CUDA %s failed: %s", what, cudaGetErrorString(err));
    cudaGetLastError(); // consumed here, not blamed on the next launch
  }
}

// ----------------------------------------------------------------------------
// transfers and sync

// Host transfers of 16-bit buffers go through a float32 staging buffer on the
// device, converted there, in chunks of this many elements (64 MiB).
#define STAGE_ELEMENTS ((size_t)16 << 20)

static size_t
stage_elements(size_t n)
{
  return n < STAGE_ELEMENTS ? n : STAGE_ELEMENTS;
}

static void
cuda_upload(os_backend *be, void *dst, const void *src, size_t bytes)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_derived_invalidate(cb, dst, bytes);
  os_cuda_view to = os_cuda_view_of(cb, (const float *)dst);
  // From pageable memory cudaMemcpyAsync returns once src has been staged, so
  // the caller may reuse src at once while the DMA proceeds in stream order.
  if (to.type == OS_CUDA_STORE_F32) {
    check_call(cb, cudaMemcpyAsync(to.ptr, src, bytes, cudaMemcpyHostToDevice, cb->stream),
               "upload");
    return;
  }
  size_t n = bytes / sizeof(float), chunk = stage_elements(n);
  float *staged = (float *)os_cuda_scratch(cb, chunk * sizeof(float), "upload staging");
  // Stream order lets the next chunk's copy reuse the staging buffer.
  for (size_t i = 0; staged && i < n; i += chunk) {
    size_t count = n - i < chunk ? n - i : chunk;
    check_call(cb,
               cudaMemcpyAsync(staged, (const float *)src + i, count * sizeof(float),
                               cudaMemcpyHostToDevice, cb->stream),
               "upload");
    os_cuda_convert(cb, os_view_at(to, i), os_cuda_view{ staged, OS_CUDA_STORE_F32 }, count);
  }
  os_cuda_free(be, staged);
}

static void
cuda_download(os_backend *be, void *dst, const void *src, size_t bytes)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_view from = os_cuda_view_of(cb, (const float *)src);
  if (from.type == OS_CUDA_STORE_F32) {
    check_call(cb, cudaMemcpyAsync(dst, from.ptr, bytes, cudaMemcpyDeviceToHost, cb->stream),
               "download");
  } else {
    size_t n = bytes / sizeof(float), chunk = stage_elements(n);
    float *staged = (float *)os_cuda_scratch(cb, chunk * sizeof(float), "download staging");
    for (size_t i = 0; staged && i < n; i += chunk) {
      size_t count = n - i < chunk ? n - i : chunk;
      os_cuda_convert(cb, os_cuda_view{ staged, OS_CUDA_STORE_F32 }, os_view_at(from, i), count);
      check_call(cb,
                 cudaMemcpyAsync((float *)dst + i, staged, count * sizeof(float),
                                 cudaMemcpyDeviceToHost, cb->stream),
                 "download");
    }
    os_cuda_free(be, staged);
  }
  check_call(cb, cudaStreamSynchronize(cb->stream), "download");
}

static void
cuda_copy(os_backend *be, void *dst, const void *src, size_t bytes)
{
  os_cuda_backend *cb = os_cuda(be);
  os_cuda_derived_invalidate(cb, dst, bytes);
  os_cuda_view to = os_cuda_view_of(cb, (const float *)dst);
  os_cuda_view from = os_cuda_view_of(cb, (const float *)src);
  size_t n = bytes / sizeof(float);
  // float32 blocks may hold other data (alloc takes bytes): copied byte for byte
  size_t stored_bytes = to.type == OS_CUDA_STORE_F32 ? bytes : n * os_cuda_dtype_size(to.type);
  if (to.type == from.type)
    check_call(cb,
               cudaMemcpyAsync(to.ptr, from.ptr, stored_bytes, cudaMemcpyDeviceToDevice,
                               cb->stream),
               "copy");
  else
    os_cuda_convert(cb, to, from, n);
}

static onestep_status
cuda_sync(os_backend *be, onestep_error *error)
{
  os_cuda_backend *cb = os_cuda(be);
  check_call(cb, cudaStreamSynchronize(cb->stream), "sync");
  onestep_status status = cb->latched;
  if (status != ONESTEP_OK)
    set_error(error, status, "%s (%s)", cb->latched_message, cb->device_name);
  // Reported once: after running out of memory the backend stays usable. A
  // sticky device fault latches again on the next call anyway.
  cb->latched = ONESTEP_OK;
  return status;
}

static void
cuda_destroy(os_backend *be)
{
  os_cuda_backend *cb = os_cuda(be);
  if (!cb)
    return;
  cudaStreamSynchronize(cb->stream);
  os_cuda_profile_report(cb);
  for (int i = 0; i < OS_CUDA_MAX_QUEUED; i++)
    if (cb->queued[i])
      cudaEventDestroy(cb->queued[i]);
  os_cuda_derived_destroy(cb);
  os_cuda_cudnn_destroy(cb);
  os_cuda_lt_destroy(cb->lt);
  if (cb->pool)
    os_cuda_pool_free_all(cb->pool);
  if (cb->cublas_workspace)
    cudaFree(cb->cublas_workspace);
  if (cb->cublas)
    cublasDestroy(cb->cublas);
  if (cb->stream)
    cudaStreamDestroy(cb->stream);
  free(cb);
}

// ----------------------------------------------------------------------------
// the op tables

// The backward and training ops compute in float32 only. Each entry of the
// grad table is wrapped: when any of its buffer arguments stores 16 bits it
// latches an error instead of reading 16-bit data as floats (the check is one
// comparison while no 16-bit buffer is live, as in fp32 and tf32 mode).
template <typename T>
static bool
stores_float32(os_cuda_backend *cb, T argument)
{
  if constexpr (std::is_convertible_v<T, const float *>)
    return !argument || os_cuda_view_of(cb, argument).type == OS_CUDA_STORE_F32;
  else
    return true; // sizes, scalars, shapes
}

template <auto op> struct fp32_only;

template <typename R, typename... Args, R (*op)(os_backend *, Args...)>
struct fp32_only<op> {
  static R
  call(os_backend *be, Args... args)
  {
    os_cuda_backend *cb = os_cuda(be);
    if (os_cuda_has_16bit_buffers(cb) && !(stores_float32(cb, args) && ...)) {
      os_cuda_latch(cb, ONESTEP_ERR_DEVICE,
                    "a backward or training op was given a 16-bit buffer: training needs fp32 "
                    "precision");
      if constexpr (std::is_void_v<R>)
        return;
      else
        return (R)NAN;
    }
    return op(be, args...);
  }
};

#define FP32_ONLY(slot) .slot = fp32_only<os_cuda_##slot>::call

static const os_backend_grad_ops cuda_grad_ops = {
  FP32_ONLY(linear_backward),
  FP32_ONLY(conv2d_backward),
  FP32_ONLY(conv_temporal_backward),
  FP32_ONLY(group_norm_backward),
  FP32_ONLY(layer_norm_backward),
  FP32_ONLY(attention_backward),
  FP32_ONLY(silu_backward),
  FP32_ONLY(gelu_backward),
  FP32_ONLY(quick_gelu_backward),
  FP32_ONLY(geglu_backward),
  FP32_ONLY(axpy),
  FP32_ONLY(dot),
  FP32_ONLY(sum_rows),
  FP32_ONLY(sum_channel_planes),
  FP32_ONLY(upsample_nearest_backward),
  FP32_ONLY(split_channels),
  FP32_ONLY(leaky_relu_backward),
  FP32_ONLY(pixel_shuffle_backward),
  FP32_ONLY(resize_bilinear_backward),
  FP32_ONLY(batch_norm_local_backward),
  FP32_ONLY(spectral_normalize_backward),
  FP32_ONLY(channel_projection_backward),
  FP32_ONLY(loss),
  FP32_ONLY(adamw_step),
  FP32_ONLY(ema_update),
  FP32_ONLY(spectral_norm_power_iteration),
};

#undef FP32_ONLY

static const os_backend_ops cuda_ops = {
  .name = "cuda",
  .is_host = false,
  .alloc = os_cuda_alloc,
  .alloc_as = os_cuda_alloc_as,
  .free = os_cuda_free,
  .upload = cuda_upload,
  .download = cuda_download,
  .copy = cuda_copy,
  .fill = os_cuda_fill,
  .sync = cuda_sync,
  .destroy = cuda_destroy,
  .gemm = os_cuda_gemm,
  .gemm_batched = os_cuda_gemm_batched,
  .linear = os_cuda_linear,
  .conv2d = os_cuda_conv2d,
  .conv_temporal = os_cuda_conv_temporal,
  .group_norm = os_cuda_group_norm,
  .group_norm_stats = os_cuda_group_norm_stats,
  .group_norm_apply = os_cuda_group_norm_apply,
  .layer_norm = os_cuda_layer_norm,
  .attention = os_cuda_attention,
  .silu = os_cuda_silu,
  .gelu = os_cuda_gelu,
  .quick_gelu = os_cuda_quick_gelu,
  .geglu = os_cuda_geglu,
  .add = os_cuda_add,
  .blend = os_cuda_blend,
  .scale = os_cuda_scale,
  .add_row_vector = os_cuda_add_row_vector,
  .add_channel_vector = os_cuda_add_channel_vector,
  .permute_0213 = os_cuda_permute_0213,
  .upsample_nearest = os_cuda_upsample_nearest,
  .concat_channels = os_cuda_concat_channels,
  .copy_columns = os_cuda_copy_columns,
  .leaky_relu = os_cuda_leaky_relu,
  .pixel_shuffle = os_cuda_pixel_shuffle,
  .resize_bilinear = os_cuda_resize_bilinear,
  .batch_norm_local = os_cuda_batch_norm_local,
  .spectral_normalize = os_cuda_spectral_normalize,
  .channel_projection = os_cuda_channel_projection,
  .grad = &cuda_grad_ops,
};

// ----------------------------------------------------------------------------
// creation

// Indexed by os_cuda_precision.
static const char *const precision_names[] = { "fp32", "tf32", "fp16", "bf16" };

// The environment's choice, when set, overrides the caller's (tests, benchmarks).
static bool
parse_precision(const char *text, onestep_precision requested, os_cuda_precision *out)
{
  if (!text || !*text) {
    *out = requested == ONESTEP_PRECISION_FP32   ? OS_CUDA_FP32
           : requested == ONESTEP_PRECISION_TF32 ? OS_CUDA_TF32
           : requested == ONESTEP_PRECISION_BF16 ? OS_CUDA_BF16
                                                 : OS_CUDA_FP16; /* auto and fp16 */
    return true;
  }
  for (size_t p = 0; p < sizeof precision_names / sizeof precision_names[0]; p++) {
    if (strcasecmp(text, precision_names[p]) == 0) {
      *out = (os_cuda_precision)p;
      return true;
    }
  }
  return false;
}

// "<GPU>, <precision>, cuDNN <version> (<file>)", or where the convolutions
// go without it: what `onestep-cli info` shows as the device.
static void
name_backend(os_cuda_backend *cb)
{
  const os_cuda_cudnn *dnn = cb->cudnn;
  const char *precision = precision_names[cb->precision];
  char *name = cb->base.name;
  size_t size = sizeof cb->base.name;
  int length;
  if (dnn->unavailable[0])
    length = snprintf(name, size, "%s, %s, no cuDNN 9: convolutions by im2col + cuBLAS",
                      cb->device_name, precision);
  else
    length = snprintf(name, size, "%s, %s, cuDNN %zu.%zu.%zu (%s)", cb->device_name, precision,
                      dnn->version / 10000, dnn->version / 100 % 100, dnn->version % 100,
                      dnn->path);
  if (length >= (int)size) // a long library path: say it was cut
    memcpy(name + size - 4, "...", 4);
}

// A kernel of this module, used to ask whether the module holds code the
// device can run (sm_80 and sm_90 cubins, compute_90 PTX).
__global__ void
probe_kernel(void)
{
}

static os_backend *
create(onestep_precision requested, onestep_error *error)
{
  int driver = 0, runtime = 0, count = 0;
  cudaError_t err = cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  // Minor versions are compatible within a major release (CUDA's minor version compatibility).
  if (err != cudaSuccess || driver / 1000 < runtime / 1000) {
    set_error(error, ONESTEP_ERR_DEVICE,
              "the NVIDIA driver supports CUDA %d.%d but the CUDA backend needs %d.%d; "
              "update the driver",
              driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    return NULL;
  }
  err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    set_error(error, ONESTEP_ERR_DEVICE, "no CUDA device found: %s",
              err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
    return NULL;
  }

  os_cuda_precision precision;
  const char *precision_env = getenv("ONESTEP_CUDA_PRECISION");
  if (!parse_precision(precision_env, requested, &precision)) {
    set_error(error, ONESTEP_ERR_INVALID_ARGUMENT,
              "ONESTEP_CUDA_PRECISION=%s is not one of fp32, tf32, fp16, bf16", precision_env);
    return NULL;
  }

  os_cuda_backend *cb = (os_cuda_backend *)calloc(1, sizeof *cb);
  if (!cb) {
    set_error(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of host memory creating the CUDA backend");
    return NULL;
  }
  cb->base.ops = &cuda_ops;
  cb->precision = precision;
  cb->device = 0;

  cudaDeviceProp prop;
  err = cudaSetDevice(cb->device);
  if (err == cudaSuccess)
    err = cudaGetDeviceProperties(&prop, cb->device);
  if (err != cudaSuccess) {
    set_error(error, ONESTEP_ERR_DEVICE, "CUDA device 0 is unusable: %s", cudaGetErrorString(err));
    free(cb);
    return NULL;
  }
  snprintf(cb->device_name, sizeof cb->device_name, "%.200s (sm_%d%d, %.1f GiB)", prop.name,
           prop.major, prop.minor, prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));

  cudaFuncAttributes attr;
  err = cudaFuncGetAttributes(&attr, probe_kernel);
  if (err != cudaSuccess) {
    set_error(error, ONESTEP_ERR_DEVICE,
              "the CUDA backend has no code for %s: %s (built for sm_80, sm_90 and newer)",
              cb->device_name, cudaGetErrorString(err));
    free(cb);
    return NULL;
  }

  cublasStatus_t status;
  err = cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking);
  // Blocking sync: a throttled host thread sleeps instead of spinning.
  for (int i = 0; err == cudaSuccess && i < OS_CUDA_MAX_QUEUED; i++)
    err = cudaEventCreateWithFlags(&cb->queued[i], cudaEventDisableTiming | cudaEventBlockingSync);
  if (err == cudaSuccess)
    err = cudaMalloc(&cb->cublas_workspace, OS_CUBLAS_WORKSPACE);
  if (err != cudaSuccess) {
    set_error(error, ONESTEP_ERR_DEVICE, "CUDA setup on %s failed: %s", cb->device_name,
              cudaGetErrorString(err));
    cuda_destroy(&cb->base);
    return NULL;
  }
  if ((status = cublasCreate(&cb->cublas)) != CUBLAS_STATUS_SUCCESS ||
      (status = cublasSetStream(cb->cublas, cb->stream)) != CUBLAS_STATUS_SUCCESS ||
      (status = cublasSetWorkspace(cb->cublas, cb->cublas_workspace, OS_CUBLAS_WORKSPACE)) !=
          CUBLAS_STATUS_SUCCESS) {
    set_error(error, ONESTEP_ERR_DEVICE, "cuBLAS setup on %s failed: %s", cb->device_name,
              cublasGetStatusString(status));
    cuda_destroy(&cb->base);
    return NULL;
  }
  // Without cuBLASLt (a missing library would have failed the module's
  // loading; this is an initialisation failure) linear layers use cuBLAS.
  cb->lt = os_cuda_lt_new();
  cb->pool = os_cuda_pool_new();
  cb->derived = os_cuda_derived_new();
  if (!os_cuda_cudnn_load(cb)) {
    set_error(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of host memory creating the CUDA backend");
    cuda_destroy(&cb->base);
    return NULL;
  }
  name_backend(cb);
  const char *attention_env = getenv("ONESTEP_CUDA_ATTENTION");
  cb->attention_blocked = attention_env && strcmp(attention_env, "blocked") == 0;

  const char *profile_env = getenv("ONESTEP_CUDA_PROFILE");
  bool profile = profile_env && *profile_env && strcmp(profile_env, "0") != 0;
  if (profile) {
    cb->profile = os_cuda_profile_new();
    cb->base.ops = os_cuda_profiled_ops(&cuda_ops);
  }
  if (!cb->pool || !cb->derived || (profile && !cb->profile)) {
    set_error(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of host memory creating the CUDA backend");
    cuda_destroy(&cb->base);
    return NULL;
  }
  return &cb->base;
}

extern "C" __attribute__((visibility("default"))) os_backend *
os_cuda_backend_create(onestep_precision precision, onestep_error *error)
{
  return create(precision, error);
}

