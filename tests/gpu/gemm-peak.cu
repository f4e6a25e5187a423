// gemm-peak.cu: the card's own rates, the yardstick for the benchmark's
// "% of peak": cuBLAS GEMMs at 8192^3 (fp16 and bf16 operands with fp32
// accumulation, tf32, exact fp32) and a device-to-device copy. Median of 5
// runs after a warm-up, timed with CUDA events. Prints one line per rate and
// last "fp16_peak_tflops <value>" for scripts. Exits 77 without a GPU.

#include <stdio.h>
#include <stdlib.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#define N 8192
#define RUNS 5

#define CHECK(call)                                                                            \
  do {                                                                                         \
    cudaError_t err_ = (call);                                                                 \
    if (err_ != cudaSuccess) {                                                                 \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(err_));           \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

static int
compare_floats(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

// Median milliseconds of one GEMM of the given types.
static float
time_gemm(cublasHandle_t handle, cudaDataType ab_type, cudaDataType c_type,
          cublasComputeType_t compute, void *A, void *B, void *C)
{
  float alpha = 1.0f, beta = 0.0f, times[RUNS];
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  for (int r = -1; r < RUNS; r++) {
    CHECK(cudaEventRecord(start));
    cublasStatus_t status =
        cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &alpha, A, ab_type, N, B, ab_type,
                     N, &beta, C, c_type, N, compute, CUBLAS_GEMM_DEFAULT);
    if (status != CUBLAS_STATUS_SUCCESS) {
      fprintf(stderr, "cublasGemmEx: %s\n", cublasGetStatusString(status));
      exit(1);
    }
    CHECK(cudaEventRecord(stop));
    CHECK(cudaEventSynchronize(stop));
    if (r >= 0)
      CHECK(cudaEventElapsedTime(&times[r], start, stop));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  qsort(times, RUNS, sizeof times[0], compare_floats);
  return times[RUNS / 2];
}

int
main(void)
{
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    printf("SKIP: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  printf("device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major, prop.minor,
         prop.multiProcessorCount, prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));

  size_t bytes = (size_t)N * N * sizeof(float);
  void *A, *B, *C;
  CHECK(cudaMalloc(&A, bytes));
  CHECK(cudaMalloc(&B, bytes));
  CHECK(cudaMalloc(&C, bytes));
  // Small nonzero operands: zeros would let the hardware idle on some cards.
  CHECK(cudaMemset(A, 0x3c, bytes));
  CHECK(cudaMemset(B, 0x3c, bytes));
  cublasHandle_t handle;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "cublasCreate failed\n");
    return 1;
  }

  double flop = 2.0 * N * N * N;
  static const struct {
    const char *name;
    cudaDataType ab;
    cublasComputeType_t compute;
  } cases[] = {
    { "fp16", CUDA_R_16F, CUBLAS_COMPUTE_32F },
    { "bf16", CUDA_R_16BF, CUBLAS_COMPUTE_32F },
    { "tf32", CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32 },
    { "fp32", CUDA_R_32F, CUBLAS_COMPUTE_32F },
  };
  double fp16_peak = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    float ms = time_gemm(handle, cases[i].ab, CUDA_R_32F, cases[i].compute, A, B, C);
    double tflops = flop / (ms * 1e-3) / 1e12;
    printf("GEMM %d^3 %s operands, fp32 accumulate: %8.2f ms  %7.1f TFLOP/s\n", N, cases[i].name,
           ms, tflops);
    if (i == 0)
      fp16_peak = tflops;
  }
  // fp16 in and out, the way the reference's measurement runs
  float ms = time_gemm(handle, CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F, A, B, C);
  double fp16_out = flop / (ms * 1e-3) / 1e12;
  printf("GEMM %d^3 fp16 in and out:                %8.2f ms  %7.1f TFLOP/s\n", N, ms, fp16_out);
  if (fp16_out > fp16_peak)
    fp16_peak = fp16_out;

  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  CHECK(cudaMemcpy(C, A, bytes, cudaMemcpyDeviceToDevice));
  CHECK(cudaEventRecord(start));
  CHECK(cudaMemcpy(C, A, bytes, cudaMemcpyDeviceToDevice));
  CHECK(cudaEventRecord(stop));
  CHECK(cudaEventSynchronize(stop));
  CHECK(cudaEventElapsedTime(&ms, start, stop));
  printf("device copy %zu MiB: %.2f TB/s (read + write)\n", bytes >> 20, 2.0 * bytes / (ms * 1e-3) / 1e12);

  printf("fp16_peak_tflops %.1f\n", fp16_peak);
  cublasDestroy(handle);
  cudaFree(A);
  cudaFree(B);
  cudaFree(C);
  return 0;
}
