/* cuda_cudnn.h: the parts of cuDNN 9 the backend calls, declared here so that
 * neither the build nor the module needs cuDNN: the legacy convolution API
 * for the convolution backward, and the graph (backend descriptor) API for
 * the forward convolutions (cuda_conv_cudnn.cu). cuda_cudnn.cu dlopen()s
 * libcudnn.so.9 when the backend is created (the way the driver is loaded)
 * and says what is missing when it cannot. The values are cuDNN's own;
 * cuda_cudnn.cu checks them against cudnn.h wherever that header is
 * installed. */
#ifndef ONESTEP_CUDA_CUDNN_H
#define ONESTEP_CUDA_CUDNN_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_common.h"

typedef struct cudnnContext *os_cudnn_handle;
typedef struct cudnnTensorStruct *os_cudnn_tensor;
typedef struct cudnnFilterStruct *os_cudnn_filter;
typedef struct cudnnConvolutionStruct *os_cudnn_convolution;
typedef int os_cudnn_status; /* the enums are passed as int, as C passes them */
/* A graph API descriptor (cudnnBackendDescriptor_t). */
typedef void *os_cudnn_descriptor;

enum {
  OS_CUDNN_STATUS_SUCCESS = 0,
  OS_CUDNN_TENSOR_NCHW = 0,
  OS_CUDNN_DATA_FLOAT = 0,
  OS_CUDNN_CROSS_CORRELATION = 1,
  OS_CUDNN_FMA_MATH = 3, /* plain fp32 FMA kernels: no TF32 */
  /* deterministic algorithms that take every fp32 NCHW 2D shape */
  OS_CUDNN_BWD_DATA_ALGO_1 = 1,
  OS_CUDNN_BWD_FILTER_ALGO_1 = 1,
};

/* The graph API: data types, descriptor types, attribute names and types. */
enum {
  OS_CUDNN_DATA_HALF = 2,
  OS_CUDNN_DATA_BFLOAT16 = 9,
  OS_CUDNN_POINTWISE_ADD = 0,
  OS_CUDNN_HEUR_MODE_FALLBACK = 2,
  OS_CUDNN_HEUR_MODE_A = 3,

  OS_CUDNN_BACKEND_POINTWISE_DESCRIPTOR = 0,
  OS_CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR = 1,
  OS_CUDNN_BACKEND_ENGINE_DESCRIPTOR = 2,
  OS_CUDNN_BACKEND_ENGINECFG_DESCRIPTOR = 3,
  OS_CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR = 4,
  OS_CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR = 5,
  OS_CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR = 10,
  OS_CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR = 13,
  OS_CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR = 15,
  OS_CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR = 16,
  OS_CUDNN_BACKEND_TENSOR_DESCRIPTOR = 17,

  OS_CUDNN_TYPE_HANDLE = 0,
  OS_CUDNN_TYPE_DATA_TYPE = 1,
  OS_CUDNN_TYPE_BOOLEAN = 2,
  OS_CUDNN_TYPE_INT64 = 3,
  OS_CUDNN_TYPE_FLOAT = 4,
  OS_CUDNN_TYPE_VOID_PTR = 6,
  OS_CUDNN_TYPE_CONVOLUTION_MODE = 7,
  OS_CUDNN_TYPE_HEUR_MODE = 8,
  OS_CUDNN_TYPE_NUMERICAL_NOTE = 11,
  OS_CUDNN_TYPE_POINTWISE_MODE = 14,
  OS_CUDNN_TYPE_BACKEND_DESCRIPTOR = 15,
  OS_CUDNN_TYPE_BEHAVIOR_NOTE = 19,

  OS_CUDNN_ATTR_POINTWISE_MODE = 0,
  OS_CUDNN_ATTR_POINTWISE_MATH_PREC = 1,
  OS_CUDNN_ATTR_CONVOLUTION_COMP_TYPE = 100,
  OS_CUDNN_ATTR_CONVOLUTION_CONV_MODE = 101,
  OS_CUDNN_ATTR_CONVOLUTION_DILATIONS = 102,
  OS_CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES = 103,
  OS_CUDNN_ATTR_CONVOLUTION_POST_PADDINGS = 104,
  OS_CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS = 105,
  OS_CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS = 106,
  OS_CUDNN_ATTR_ENGINEHEUR_MODE = 200,
  OS_CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH = 201,
  OS_CUDNN_ATTR_ENGINEHEUR_RESULTS = 202,
  OS_CUDNN_ATTR_ENGINECFG_ENGINE = 300,
  /* deprecated by later 9.x headers in favour of device properties; every cuDNN 9 takes it */
  OS_CUDNN_ATTR_EXECUTION_PLAN_HANDLE = 400,
  OS_CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG = 401,
  OS_CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE = 402,
  OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA = 700,
  OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA = 701,
  OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC = 702,
  OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W = 703,
  OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X = 704,
  OS_CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y = 705,
  OS_CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR = 750,
  OS_CUDNN_ATTR_OPERATION_POINTWISE_XDESC = 751,
  OS_CUDNN_ATTR_OPERATION_POINTWISE_BDESC = 752,
  OS_CUDNN_ATTR_OPERATION_POINTWISE_YDESC = 753,
  OS_CUDNN_ATTR_OPERATIONGRAPH_HANDLE = 800, /* likewise */
  OS_CUDNN_ATTR_OPERATIONGRAPH_OPS = 801,
  OS_CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT = 900,
  OS_CUDNN_ATTR_TENSOR_DATA_TYPE = 901,
  OS_CUDNN_ATTR_TENSOR_DIMENSIONS = 902,
  OS_CUDNN_ATTR_TENSOR_STRIDES = 903,
  OS_CUDNN_ATTR_TENSOR_UNIQUE_ID = 906,
  OS_CUDNN_ATTR_TENSOR_IS_VIRTUAL = 907,
  OS_CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS = 1000,
  OS_CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS = 1001,
  OS_CUDNN_ATTR_VARIANT_PACK_WORKSPACE = 1003,
  OS_CUDNN_ATTR_ENGINE_NUMERICAL_NOTE = 1303,
  OS_CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE = 1305,

  /* numerical notes an engine may carry */
  OS_CUDNN_NUMERICAL_NOTE_TENSOR_CORE = 0,
  OS_CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS = 1,
  OS_CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION = 2,
  OS_CUDNN_NUMERICAL_NOTE_FFT = 3,
  OS_CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC = 4,
  OS_CUDNN_NUMERICAL_NOTE_WINOGRAD = 5,
  OS_CUDNN_NUMERICAL_NOTE_TYPE_COUNT = 10,

  /* behaviour notes */
  OS_CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION = 0,
  OS_CUDNN_BEHAVIOR_NOTE_TYPE_COUNT = 5,
};

#define OS_CUDNN_FUNCTIONS(X)                                                                  \
  X(size_t, cudnnGetVersion, (void))                                                           \
  X(const char *, cudnnGetErrorString, (os_cudnn_status status))                               \
  X(os_cudnn_status, cudnnCreate, (os_cudnn_handle * handle))                                  \
  X(os_cudnn_status, cudnnDestroy, (os_cudnn_handle handle))                                   \
  X(os_cudnn_status, cudnnSetStream, (os_cudnn_handle handle, cudaStream_t stream))            \
  X(os_cudnn_status, cudnnCreateTensorDescriptor, (os_cudnn_tensor * desc))                    \
  X(os_cudnn_status, cudnnSetTensor4dDescriptor,                                               \
    (os_cudnn_tensor desc, int format, int data_type, int n, int c, int h, int w))             \
  X(os_cudnn_status, cudnnDestroyTensorDescriptor, (os_cudnn_tensor desc))                     \
  X(os_cudnn_status, cudnnCreateFilterDescriptor, (os_cudnn_filter * desc))                    \
  X(os_cudnn_status, cudnnSetFilter4dDescriptor,                                               \
    (os_cudnn_filter desc, int data_type, int format, int k, int c, int h, int w))             \
  X(os_cudnn_status, cudnnDestroyFilterDescriptor, (os_cudnn_filter desc))                     \
  X(os_cudnn_status, cudnnCreateConvolutionDescriptor, (os_cudnn_convolution * desc))          \
  X(os_cudnn_status, cudnnSetConvolution2dDescriptor,                                          \
    (os_cudnn_convolution desc, int pad_h, int pad_w, int stride_h, int stride_w,              \
     int dilation_h, int dilation_w, int mode, int compute_type))                              \
  X(os_cudnn_status, cudnnSetConvolutionMathType, (os_cudnn_convolution desc, int math_type))  \
  X(os_cudnn_status, cudnnDestroyConvolutionDescriptor, (os_cudnn_convolution desc))           \
  X(os_cudnn_status, cudnnGetConvolutionBackwardDataWorkspaceSize,                             \
    (os_cudnn_handle handle, os_cudnn_filter w_desc, os_cudnn_tensor dy_desc,                  \
     os_cudnn_convolution conv_desc, os_cudnn_tensor dx_desc, int algo, size_t *bytes))        \
  X(os_cudnn_status, cudnnConvolutionBackwardData,                                             \
    (os_cudnn_handle handle, const void *alpha, os_cudnn_filter w_desc, const void *w,         \
     os_cudnn_tensor dy_desc, const void *dy, os_cudnn_convolution conv_desc, int algo,        \
     void *workspace, size_t workspace_bytes, const void *beta, os_cudnn_tensor dx_desc,       \
     void *dx))                                                                                \
  X(os_cudnn_status, cudnnGetConvolutionBackwardFilterWorkspaceSize,                           \
    (os_cudnn_handle handle, os_cudnn_tensor x_desc, os_cudnn_tensor dy_desc,                  \
     os_cudnn_convolution conv_desc, os_cudnn_filter dw_desc, int algo, size_t *bytes))        \
  X(os_cudnn_status, cudnnConvolutionBackwardFilter,                                           \
    (os_cudnn_handle handle, const void *alpha, os_cudnn_tensor x_desc, const void *x,         \
     os_cudnn_tensor dy_desc, const void *dy, os_cudnn_convolution conv_desc, int algo,        \
     void *workspace, size_t workspace_bytes, const void *beta, os_cudnn_filter dw_desc,       \
     void *dw))                                                                                \
  X(os_cudnn_status, cudnnBackendCreateDescriptor, (int type, os_cudnn_descriptor * desc))    \
  X(os_cudnn_status, cudnnBackendDestroyDescriptor, (os_cudnn_descriptor desc))               \
  X(os_cudnn_status, cudnnBackendFinalize, (os_cudnn_descriptor desc))                        \
  X(os_cudnn_status, cudnnBackendSetAttribute,                                                 \
    (os_cudnn_descriptor desc, int name, int type, int64_t count, const void *elements))       \
  X(os_cudnn_status, cudnnBackendGetAttribute,                                                 \
    (os_cudnn_descriptor const desc, int name, int type, int64_t requested, int64_t *count,    \
     void *elements))                                                                          \
  X(os_cudnn_status, cudnnBackendExecute,                                                      \
    (os_cudnn_handle handle, os_cudnn_descriptor plan, os_cudnn_descriptor variant_pack))

typedef struct os_cudnn_conv_plans os_cudnn_conv_plans;

/* The loaded library: one pointer per function above, named as in cuDNN. */
struct os_cuda_cudnn {
#define OS_CUDNN_POINTER(ret, name, args) ret(*name) args;
  OS_CUDNN_FUNCTIONS(OS_CUDNN_POINTER)
#undef OS_CUDNN_POINTER
  void *library;
  char path[256];            /* the libcudnn.so.9 loaded */
  size_t version;            /* cudnnGetVersion(): 91900 for 9.19.0 */
  os_cudnn_handle handle;    /* on the backend's stream */
  char unavailable[1024];    /* why cuDNN cannot be used; empty when it can */
  os_cudnn_conv_plans *conv_plans; /* forward convolution plans (cuda_conv_cudnn.cu) */
  /* Forward convolutions through cuDNN; ONESTEP_CUDA_CONV=im2col turns
   * them off (to compare the two paths). */
  bool forward_convolutions;
  /* Engines compiled at run time (NVRTC) allowed; ONESTEP_CUDA_CUDNN_RUNTIME_COMPILED=1. */
  bool runtime_compiled_engines;
};

/* Loads cuDNN on the backend's stream (at creation); whether it worked or
 * why not is then in cb->cudnn. False only when out of host memory. */
bool os_cuda_cudnn_load(os_cuda_backend *cb);
/* cuDNN when it loaded; NULL (with the reason latched as a device error,
 * naming `what`) when it is missing or unusable. */
os_cuda_cudnn *os_cuda_cudnn_get(os_cuda_backend *cb, const char *what);
/* cuDNN when it loaded, else NULL, latching nothing: for paths with a fallback. */
os_cuda_cudnn *os_cuda_cudnn_if_loaded(os_cuda_backend *cb);
/* Latches a failed cuDNN call's status; false when the call failed. */
bool os_cuda_cudnn_check(os_cuda_backend *cb, os_cuda_cudnn *dnn, os_cudnn_status status,
                         const char *what);
void os_cuda_cudnn_destroy(os_cuda_backend *cb);

/* A forward convolution as cuDNN's graph sees it: x [N, Cin, H, W], the
 * packed weight [Cout, Cin, KH, KW] and y [N, Cout, Ho, Wo], the dimensions
 * always in that order and the memory order given by element strides (the
 * temporal convolution views its [B, F, C, HW] tensors as N = B, H = F,
 * W = HW with a (3, 1) kernel). y's channel stride is the length of the runs
 * that share a channel in memory. */
typedef struct {
  int64_t x_dims[4], x_strides[4];
  int64_t w_dims[4];
  int64_t y_dims[4], y_strides[4];
  int64_t stride[2], pre_pad[2], post_pad[2];
} os_cudnn_conv_shape;

/* y = conv(x, W) + bias (may be NULL) + residual (may be NULL, laid out as
 * y) through cuDNN, the operands in the precision's type (W's converted copy
 * cached as for GEMMs). False when cuDNN is missing or has no plan for this
 * shape and types, before anything is queued: the caller then takes its own
 * path. Errors after that are latched as usual. */
bool os_cuda_cudnn_conv_forward(os_cuda_backend *cb, const os_cudnn_conv_shape *shape, float *y,
                                const float *x, const float *W, const float *bias,
                                const float *residual);
/* Frees the cached forward convolution plans (cuda_conv_cudnn.cu). */
void os_cuda_cudnn_conv_plans_free(os_cuda_cudnn *dnn);

#endif
