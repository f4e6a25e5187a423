// cuda_cudnn.cu: cuDNN 9, dlopen()ed when the backend is created. The forward
// convolutions run through its graph API when it is there and fall back to
// im2col + cuBLAS when it is not; the convolution backward needs it (a
// training run without it gets a device error saying what to install).
//
// Where libcudnn.so.9 is looked for, first hit wins:
//   1. $ONESTEP_CUDNN_LIBRARY (the library file, or the folder holding it),
//      and nothing else when that is set;
//   2. the loader's search path (LD_LIBRARY_PATH, the ld.so cache, and this
//      module's run path: the toolkit's lib64 it was linked against);
//   3. beside the cuBLAS this module runs with (the toolkit's library folder
//      on most machines), then /usr/local/cuda*/lib64, the distribution's
//      library folders, and the nvidia/cudnn/lib folder of a pip-installed
//      nvidia-cudnn wheel (system, user and virtual-environment Pythons,
//      conda's lib).
// cuDNN's own sub-libraries (graph, engines, heuristics) are found beside
// libcudnn.so.9 through its $ORIGIN run path. Which file was loaded goes into
// the backend's name.

#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cuda_cudnn.h"

#if __has_include(<cudnn.h>)
// Where the real header is installed, the declarations must match it.
#include <cudnn.h>
#define SAME(ours, theirs) static_assert((int)OS_##ours == (int)theirs, #ours)
#define SAME_NAMED(name) SAME(name, name)
SAME(CUDNN_STATUS_SUCCESS, CUDNN_STATUS_SUCCESS);
SAME(CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NCHW);
SAME(CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT);
SAME(CUDNN_CROSS_CORRELATION, CUDNN_CROSS_CORRELATION);
SAME(CUDNN_FMA_MATH, CUDNN_FMA_MATH);
SAME(CUDNN_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
SAME(CUDNN_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
static_assert(sizeof(cudnnStatus_t) == sizeof(os_cudnn_status));
static_assert(sizeof(cudnnConvolutionBwdDataAlgo_t) == sizeof(int));
static_assert(sizeof(cudnnBackendDescriptorType_t) == sizeof(int));
static_assert(sizeof(cudnnBackendAttributeName_t) == sizeof(int));
static_assert(sizeof(cudnnBackendAttributeType_t) == sizeof(int));
static_assert(sizeof(cudnnDataType_t) == sizeof(int));
static_assert(sizeof(cudnnBackendNumericalNote_t) == sizeof(int));
SAME_NAMED(CUDNN_DATA_HALF);
SAME_NAMED(CUDNN_DATA_BFLOAT16);
SAME_NAMED(CUDNN_POINTWISE_ADD);
SAME_NAMED(CUDNN_HEUR_MODE_FALLBACK);
SAME_NAMED(CUDNN_HEUR_MODE_A);
SAME_NAMED(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
SAME_NAMED(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
SAME_NAMED(CUDNN_TYPE_HANDLE);
SAME_NAMED(CUDNN_TYPE_DATA_TYPE);
SAME_NAMED(CUDNN_TYPE_BOOLEAN);
SAME_NAMED(CUDNN_TYPE_INT64);
SAME_NAMED(CUDNN_TYPE_FLOAT);
SAME_NAMED(CUDNN_TYPE_VOID_PTR);
SAME_NAMED(CUDNN_TYPE_CONVOLUTION_MODE);
SAME_NAMED(CUDNN_TYPE_HEUR_MODE);
SAME_NAMED(CUDNN_TYPE_NUMERICAL_NOTE);
SAME_NAMED(CUDNN_TYPE_POINTWISE_MODE);
SAME_NAMED(CUDNN_TYPE_BACKEND_DESCRIPTOR);
SAME_NAMED(CUDNN_ATTR_POINTWISE_MODE);
SAME_NAMED(CUDNN_ATTR_POINTWISE_MATH_PREC);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_COMP_TYPE);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_CONV_MODE);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_DILATIONS);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS);
SAME_NAMED(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS);
SAME_NAMED(CUDNN_ATTR_ENGINEHEUR_MODE);
SAME_NAMED(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
SAME_NAMED(CUDNN_ATTR_ENGINEHEUR_RESULTS);
SAME_NAMED(CUDNN_ATTR_ENGINECFG_ENGINE);
SAME_NAMED(CUDNN_ATTR_EXECUTION_PLAN_HANDLE);
SAME_NAMED(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG);
SAME_NAMED(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE);
SAME_NAMED(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA);
SAME_NAMED(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA);
SAME_NAMED(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC);
SAME_NAMED(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W);
SAME_NAMED(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X);
SAME_NAMED(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y);
SAME_NAMED(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR);
SAME_NAMED(CUDNN_ATTR_OPERATION_POINTWISE_XDESC);
SAME_NAMED(CUDNN_ATTR_OPERATION_POINTWISE_BDESC);
SAME_NAMED(CUDNN_ATTR_OPERATION_POINTWISE_YDESC);
SAME_NAMED(CUDNN_ATTR_OPERATIONGRAPH_HANDLE);
SAME_NAMED(CUDNN_ATTR_OPERATIONGRAPH_OPS);
SAME_NAMED(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT);
SAME_NAMED(CUDNN_ATTR_TENSOR_DATA_TYPE);
SAME_NAMED(CUDNN_ATTR_TENSOR_DIMENSIONS);
SAME_NAMED(CUDNN_ATTR_TENSOR_STRIDES);
SAME_NAMED(CUDNN_ATTR_TENSOR_UNIQUE_ID);
SAME_NAMED(CUDNN_ATTR_TENSOR_IS_VIRTUAL);
SAME_NAMED(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
SAME_NAMED(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
SAME_NAMED(CUDNN_ATTR_VARIANT_PACK_WORKSPACE);
SAME_NAMED(CUDNN_ATTR_ENGINE_NUMERICAL_NOTE);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_TENSOR_CORE);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_FFT);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_WINOGRAD);
SAME_NAMED(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
SAME_NAMED(CUDNN_TYPE_BEHAVIOR_NOTE);
SAME_NAMED(CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE);
SAME_NAMED(CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION);
SAME_NAMED(CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
static_assert(sizeof(cudnnBackendBehaviorNote_t) == sizeof(int));
#undef SAME_NAMED
#undef SAME
#endif

#define CUDNN_LIBRARY "libcudnn.so.9"

// Folders searched after the loader's path (glob patterns).
static const char *const system_folders[] = {
  "/usr/local/cuda/lib64",
  "/usr/local/cuda-*/lib64",
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/usr/lib/python3*/site-packages/nvidia/cudnn/lib",
  "/usr/lib/python3/dist-packages/nvidia/cudnn/lib",
  "/usr/local/lib/python3*/site-packages/nvidia/cudnn/lib",
  "/usr/local/lib/python3*/dist-packages/nvidia/cudnn/lib",
};

// Folders under an environment variable's value (user and virtual-environment Pythons, conda).
static const struct {
  const char *variable, *pattern;
} environment_folders[] = {
  { "HOME", "/.local/lib/python3*/site-packages/nvidia/cudnn/lib" },
  { "VIRTUAL_ENV", "/lib/python3*/site-packages/nvidia/cudnn/lib" },
  { "CONDA_PREFIX", "/lib" },
  { "CONDA_PREFIX", "/lib/python3*/site-packages/nvidia/cudnn/lib" },
};

// Tries one candidate (a file name for dlopen); on success dnn holds the
// library, its functions, version, handle and path. On failure the reason is
// appended to `tried` and everything is undone.
static bool
try_library(os_cuda_backend *cb, os_cuda_cudnn *dnn, const char *file, char *tried,
            size_t tried_size)
{
  size_t used = strlen(tried);
  void *library = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    // dlerror() names the file; only the first reason is worth the space.
    if (!used)
      snprintf(tried, tried_size, "%s", dlerror());
    return false;
  }
  dnn->library = library;
  const char *missing = NULL;
#define OS_CUDNN_RESOLVE(ret, name, args)                                                      \
  if (!missing && !(dnn->name = (decltype(dnn->name))dlsym(library, #name)))                  \
    missing = #name;
  OS_CUDNN_FUNCTIONS(OS_CUDNN_RESOLVE)
#undef OS_CUDNN_RESOLVE
  Dl_info where;
  const char *path = dnn->cudnnGetVersion && dladdr((void *)dnn->cudnnGetVersion, &where) &&
                             where.dli_fname
                         ? where.dli_fname
                         : file;
  snprintf(dnn->path, sizeof dnn->path, "%s", path);
  os_cudnn_status status = OS_CUDNN_STATUS_SUCCESS;
  if (!missing) {
    dnn->version = dnn->cudnnGetVersion();
    if (dnn->version / 10000 == 9) {
      status = dnn->cudnnCreate(&dnn->handle);
      if (status == OS_CUDNN_STATUS_SUCCESS)
        status = dnn->cudnnSetStream(dnn->handle, cb->stream);
      if (status == OS_CUDNN_STATUS_SUCCESS)
        return true;
    }
  }
  if (missing)
    snprintf(tried + used, tried_size - used, "%s%s lacks %s", used ? "; " : "", dnn->path,
             missing);
  else if (dnn->version / 10000 != 9)
    snprintf(tried + used, tried_size - used, "%s%s is cuDNN %zu.%zu, not 9", used ? "; " : "",
             dnn->path, dnn->version / 10000, dnn->version / 100 % 100);
  else
    snprintf(tried + used, tried_size - used, "%s%s could not start: %s", used ? "; " : "",
             dnn->path, dnn->cudnnGetErrorString(status));
  if (dnn->handle)
    dnn->cudnnDestroy(dnn->handle);
  dlclose(library);
  memset(dnn, 0, sizeof *dnn);
  return false;
}

static bool
try_folder(os_cuda_backend *cb, os_cuda_cudnn *dnn, const char *folder, char *tried,
           size_t tried_size)
{
  char file[600];
  struct stat st;
  snprintf(file, sizeof file, "%.580s/" CUDNN_LIBRARY, folder);
  return stat(file, &st) == 0 && try_library(cb, dnn, file, tried, tried_size);
}

static bool
try_pattern(os_cuda_backend *cb, os_cuda_cudnn *dnn, const char *pattern, char *tried,
            size_t tried_size)
{
  glob_t found;
  if (glob(pattern, GLOB_ONLYDIR, NULL, &found) != 0)
    return false;
  bool loaded = false;
  for (size_t i = 0; !loaded && i < found.gl_pathc; i++)
    loaded = try_folder(cb, dnn, found.gl_pathv[i], tried, tried_size);
  globfree(&found);
  return loaded;
}

// The folder of the cuBLAS this module was loaded with: the CUDA libraries'
// own folder, wherever the toolkit or a wheel put it.
static bool
cublas_folder(char *folder, size_t size)
{
  Dl_info where;
  if (!dladdr((void *)cublasCreate, &where) || !where.dli_fname)
    return false;
  snprintf(folder, size, "%s", where.dli_fname);
  char *slash = strrchr(folder, '/');
  if (!slash)
    return false;
  *slash = '\0';
  return true;
}

static bool
search(os_cuda_backend *cb, os_cuda_cudnn *dnn, char *tried, size_t tried_size)
{
  const char *chosen = getenv("ONESTEP_CUDNN_LIBRARY");
  if (chosen && *chosen) {
    // A folder: the library in it (dlopen() then says what is wrong with it).
    char file[600];
    struct stat st;
    if (stat(chosen, &st) == 0 && S_ISDIR(st.st_mode))
      snprintf(file, sizeof file, "%.580s/" CUDNN_LIBRARY, chosen);
    else
      snprintf(file, sizeof file, "%.599s", chosen);
    return try_library(cb, dnn, file, tried, tried_size);
  }
  if (try_library(cb, dnn, CUDNN_LIBRARY, tried, tried_size))
    return true;
  char folder[512];
  if (cublas_folder(folder, sizeof folder) && try_folder(cb, dnn, folder, tried, tried_size))
    return true;
  for (size_t i = 0; i < sizeof system_folders / sizeof system_folders[0]; i++)
    if (try_pattern(cb, dnn, system_folders[i], tried, tried_size))
      return true;
  for (size_t i = 0; i < sizeof environment_folders / sizeof environment_folders[0]; i++) {
    const char *root = getenv(environment_folders[i].variable);
    if (!root || !*root)
      continue;
    snprintf(folder, sizeof folder, "%s%s", root, environment_folders[i].pattern);
    if (try_pattern(cb, dnn, folder, tried, tried_size))
      return true;
  }
  return false;
}

bool
os_cuda_cudnn_load(os_cuda_backend *cb)
{
  os_cuda_cudnn *dnn = (os_cuda_cudnn *)calloc(1, sizeof(os_cuda_cudnn));
  if (!dnn)
    return false;
  cb->cudnn = dnn;
  char tried[sizeof dnn->unavailable - 160];
  tried[0] = '\0';
  if (!search(cb, dnn, tried, sizeof tried))
    snprintf(dnn->unavailable, sizeof dnn->unavailable,
             "cuDNN 9 not found beside the CUDA libraries, in /usr/local/cuda*/lib64, the "
             "system's library folders or a pip-installed nvidia-cudnn (%s); install cuDNN 9 for "
             "CUDA %d or set ONESTEP_CUDNN_LIBRARY",
             tried, CUDART_VERSION / 1000);
  const char *conv = getenv("ONESTEP_CUDA_CONV");
  dnn->forward_convolutions = !(conv && strcmp(conv, "im2col") == 0);
  const char *compiled = getenv("ONESTEP_CUDA_CUDNN_RUNTIME_COMPILED");
  dnn->runtime_compiled_engines = compiled && strcmp(compiled, "1") == 0;
  return true;
}

os_cuda_cudnn *
os_cuda_cudnn_get(os_cuda_backend *cb, const char *what)
{
  if (cb->cudnn->unavailable[0]) {
    os_cuda_latch(cb, ONESTEP_ERR_DEVICE, "%s needs cuDNN: %s", what, cb->cudnn->unavailable);
    return NULL;
  }
  return cb->cudnn;
}

os_cuda_cudnn *
os_cuda_cudnn_if_loaded(os_cuda_backend *cb)
{
  return cb->cudnn && !cb->cudnn->unavailable[0] ? cb->cudnn : NULL;
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
  os_cuda_cudnn_conv_plans_free(dnn);
  if (dnn->handle)
    dnn->cudnnDestroy(dnn->handle);
  if (dnn->library)
    dlclose(dnn->library);
  free(dnn);
  cb->cudnn = NULL;
}
