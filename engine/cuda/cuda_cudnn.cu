// cuda_cudnn.cu: cuDNN 9 for the convolution backward, dlopen()ed on first
// use. Inference never needs it, so the module loads and runs without it; a
// training run without it gets a device error saying what to install.
// libcudnn.so.9 is looked up on the library path and in the toolkit's lib64
// (the module's run path), where NVIDIA's packages put it.

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_cudnn.h"

#if __has_include(<cudnn.h>)
// Where the real header is installed, the declarations must match it.
#include <cudnn.h>
static_assert((int)OS_CUDNN_STATUS_SUCCESS == (int)CUDNN_STATUS_SUCCESS);
static_assert((int)OS_CUDNN_TENSOR_NCHW == (int)CUDNN_TENSOR_NCHW);
static_assert((int)OS_CUDNN_DATA_FLOAT == (int)CUDNN_DATA_FLOAT);
static_assert((int)OS_CUDNN_CROSS_CORRELATION == (int)CUDNN_CROSS_CORRELATION);
static_assert((int)OS_CUDNN_FMA_MATH == (int)CUDNN_FMA_MATH);
static_assert((int)OS_CUDNN_BWD_DATA_ALGO_1 == (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
static_assert((int)OS_CUDNN_BWD_FILTER_ALGO_1 == (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
static_assert(sizeof(cudnnStatus_t) == sizeof(os_cudnn_status));
static_assert(sizeof(cudnnConvolutionBwdDataAlgo_t) == sizeof(int));
#endif

#define CUDNN_LIBRARY "libcudnn.so.9"

// Fills dnn, or writes why not into dnn->unavailable.
static void
load(os_cuda_backend *cb, os_cuda_cudnn *dnn)
{
  dnn->library = dlopen(CUDNN_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (!dnn->library) {
    snprintf(dnn->unavailable, sizeof dnn->unavailable,
             "cuDNN 9 cannot be loaded (%s); install NVIDIA's cuDNN 9 for CUDA %d "
             "or put " CUDNN_LIBRARY " on the library path",
             dlerror(), CUDART_VERSION / 1000);
    return;
  }
#define OS_CUDNN_RESOLVE(ret, name, args)                                                      \
  if (!(dnn->name = (decltype(dnn->name))dlsym(dnn->library, #name))) {                     \
    snprintf(dnn->unavailable, sizeof dnn->unavailable, CUDNN_LIBRARY " lacks %s", #name);    \
    return;                                                                                    \
  }
  OS_CUDNN_FUNCTIONS(OS_CUDNN_RESOLVE)
#undef OS_CUDNN_RESOLVE
  size_t version = dnn->cudnnGetVersion();
  if (version / 10000 != 9) {
    snprintf(dnn->unavailable, sizeof dnn->unavailable,
             "found cuDNN %zu.%zu, but the backend is written against cuDNN 9", version / 10000,
             version / 100 % 100);
    return;
  }
  os_cudnn_status status = dnn->cudnnCreate(&dnn->handle);
  if (status == OS_CUDNN_STATUS_SUCCESS)
    status = dnn->cudnnSetStream(dnn->handle, cb->stream);
  if (status != OS_CUDNN_STATUS_SUCCESS)
    snprintf(dnn->unavailable, sizeof dnn->unavailable, "cuDNN %zu could not start: %s", version,
             dnn->cudnnGetErrorString(status));
}

os_cuda_cudnn *
os_cuda_cudnn_get(os_cuda_backend *cb, const char *what)
{
  if (!cb->cudnn) {
    cb->cudnn = (os_cuda_cudnn *)calloc(1, sizeof(os_cuda_cudnn));
    if (!cb->cudnn) {
      os_cuda_latch(cb, ONESTEP_ERR_OUT_OF_MEMORY, "out of host memory loading cuDNN");
      return NULL;
    }
    load(cb, cb->cudnn);
  }
  if (cb->cudnn->unavailable[0]) {
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "%s needs cuDNN: %s", what, cb->cudnn->unavailable);
    return NULL;
  }
  return cb->cudnn;
}

bool
os_cuda_cudnn_check(os_cuda_backend *cb, os_cuda_cudnn *dnn, os_cudnn_status status,
                    const char *what)
{
  if (status == OS_CUDNN_STATUS_SUCCESS)
    return true;
  os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "cuDNN %s failed: %s", what,
                dnn->cudnnGetErrorString(status));
  return false;
}

void
os_cuda_cudnn_destroy(os_cuda_backend *cb)
{
  os_cuda_cudnn *dnn = cb->cudnn;
  if (!dnn)
    return;
  if (dnn->handle)
    dnn->cudnnDestroy(dnn->handle);
  if (dnn->library)
    dlclose(dnn->library);
  free(dnn);
  cb->cudnn = NULL;
}
