/* cuda_discriminator.h: the discriminator's layers (cuda_discriminator.cu);
 * semantics in backend.h and backend_grad.h. */
#ifndef ONESTEP_CUDA_DISCRIMINATOR_H
#define ONESTEP_CUDA_DISCRIMINATOR_H

#include "cuda_common.h"

void os_cuda_leaky_relu(os_backend *be, float *y, const float *x, float slope, size_t n);
void os_cuda_pixel_shuffle(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                           int r);
void os_cuda_resize_bilinear(os_backend *be, float *y, const float *x, int N, int C, int H, int W,
                             int Ho, int Wo);
void os_cuda_batch_norm_local(os_backend *be, float *y, const float *x, const float *gamma,
                              const float *beta, int N, int C, int P, int group, float eps);
void os_cuda_spectral_normalize(os_backend *be, float *y, const float *W, const float *u,
                                const float *v, int rows, int cols);
void os_cuda_channel_projection(os_backend *be, float *y, const float *x, const float *e, int N,
                                int C, int P);

void os_cuda_leaky_relu_backward(os_backend *be, float *dx, const float *dy, const float *x,
                                 float slope, size_t n);
void os_cuda_pixel_shuffle_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                    int H, int W, int r);
void os_cuda_resize_bilinear_backward(os_backend *be, float *dx, const float *dy, int N, int C,
                                      int H, int W, int Ho, int Wo);
void os_cuda_batch_norm_local_backward(os_backend *be, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *gamma, int N,
                                       int C, int P, int group, float eps);
void os_cuda_spectral_normalize_backward(os_backend *be, float *dW, const float *dy,
                                         const float *W, const float *u, const float *v, int rows,
                                         int cols);
void os_cuda_channel_projection_backward(os_backend *be, float *dx, float *de, const float *dy,
                                         const float *x, const float *e, int N, int C, int P);
void os_cuda_spectral_norm_power_iteration(os_backend *be, float *u, float *v, const float *W,
                                           int rows, int cols, float eps);

#endif
