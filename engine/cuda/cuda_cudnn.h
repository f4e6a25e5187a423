/* cuda_cudnn.h: the part of cuDNN 9's legacy convolution API that the
 * convolution backward uses, declared here so that neither the build nor the
 * module needs cuDNN: cuda_cudnn.cu dlopen()s libcudnn.so.9 on first use (the
 * way the driver is loaded) and says what is missing when it cannot. The
 * values are cuDNN's own; cuda_cudnn.cu checks them against cudnn.h wherever
 * that header is installed. */
#ifndef ONESTEP_CUDA_CUDNN_H
#define ONESTEP_CUDA_CUDNN_H

#include <stddef.h>

#include "cuda_common.h"

typedef struct cudnnContext *os_cudnn_handle;
typedef struct cudnnTensorStruct *os_cudnn_tensor;
typedef struct cudnnFilterStruct *os_cudnn_filter;
typedef struct cudnnConvolutionStruct *os_cudnn_convolution;
typedef int os_cudnn_status; /* the enums are passed as int, as C passes them */

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
     void *dw))

/* The loaded library: one pointer per function above, named as in cuDNN. */
struct os_cuda_cudnn {
#define OS_CUDNN_POINTER(ret, name, args) ret(*name) args;
  OS_CUDNN_FUNCTIONS(OS_CUDNN_POINTER)
#undef OS_CUDNN_POINTER
  void *library;
  os_cudnn_handle handle; /* on the backend's stream */
  char unavailable[384];  /* why cuDNN cannot be used; empty when it can */
};

/* cuDNN on the backend's stream, loaded on first use; NULL (with the reason
 * latched as a device error) when it is missing or unusable. */
os_cuda_cudnn *os_cuda_cudnn_get(os_cuda_backend *cb, const char *what);
/* Latches a failed cuDNN call's status; false when the call failed. */
bool os_cuda_cudnn_check(os_cuda_backend *cb, os_cuda_cudnn *dnn, os_cudnn_status status,
                         const char *what);
void os_cuda_cudnn_destroy(os_cuda_backend *cb);

#endif
