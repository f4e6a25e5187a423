// cuda_gemm_lt.cu: linear layers through cuBLASLt, bias and residual inside
// the GEMM: y = x W^T + bias + residual is one cublasLtMatmul with
// D = y, C = residual (beta 1; C may be y itself) and the BIAS epilogue, so
// neither the residual copy nor the bias pass of the plain cuBLAS path is
// needed. The model code's activations after linear layers are exact-erf
// GELU (CLIP) and GEGLU (the UNet's feed-forward), which cuBLASLt's tanh
// GELU epilogue would not reproduce, so only bias and residual are fused.
//
// Descriptors and the algorithm cuBLASLt's heuristics pick are cached per
// shape, types and pointer alignment; a shape without an algorithm goes
// through the plain cuBLAS path (cuda_gemm.cu).

#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "cuda_common.h"

typedef struct {
  int T, in, out;
  cudaDataType operand, output, bias; // bias: (cudaDataType)-1 without one
  bool residual;
  int alignment;
  cublasComputeType_t compute;
} lt_key;

typedef struct {
  lt_key key;
  bool usable; // cuBLASLt has an algorithm for it
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t weight, input, output;
  cublasLtMatmulAlgo_t algo;
} lt_entry;

struct os_cuda_lt {
  cublasLtHandle_t handle;
  lt_entry *entries;
  size_t count, capacity;
};

os_cuda_lt *
os_cuda_lt_new(void)
{
  os_cuda_lt *lt = (os_cuda_lt *)calloc(1, sizeof *lt);
  if (lt && cublasLtCreate(&lt->handle) != CUBLAS_STATUS_SUCCESS) {
    free(lt);
    return NULL;
  }
  return lt;
}

static void
release_entry(lt_entry *e)
{
  if (e->weight)
    cublasLtMatrixLayoutDestroy(e->weight);
  if (e->input)
    cublasLtMatrixLayoutDestroy(e->input);
  if (e->output)
    cublasLtMatrixLayoutDestroy(e->output);
  if (e->desc)
    cublasLtMatmulDescDestroy(e->desc);
}

void
os_cuda_lt_destroy(os_cuda_lt *lt)
{
  if (!lt)
    return;
  for (size_t i = 0; i < lt->count; i++)
    release_entry(&lt->entries[i]);
  free(lt->entries);
  cublasLtDestroy(lt->handle);
  free(lt);
}

// Column-major view of the row-major product: y^T [out, T] = W [out, in]
// (stored [in, out] column-major, transposed) times x^T [in, T].
static bool
describe(os_cuda_lt *lt, lt_entry *e)
{
  const lt_key *k = &e->key;
  cublasOperation_t transposed = CUBLAS_OP_T, plain = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = k->bias != (cudaDataType)-1 ? CUBLASLT_EPILOGUE_BIAS
                                                             : CUBLASLT_EPILOGUE_DEFAULT;
  bool ok =
      cublasLtMatmulDescCreate(&e->desc, k->compute, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transposed,
                                     sizeof transposed) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSB, &plain,
                                     sizeof plain) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                     sizeof epilogue) == CUBLAS_STATUS_SUCCESS &&
      (k->bias == (cudaDataType)-1 ||
       cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &k->bias,
                                      sizeof k->bias) == CUBLAS_STATUS_SUCCESS) &&
      cublasLtMatrixLayoutCreate(&e->weight, k->operand, k->in, k->out, k->in) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&e->input, k->operand, k->in, k->T, k->in) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&e->output, k->output, k->out, k->T, k->out) ==
          CUBLAS_STATUS_SUCCESS;
  if (!ok)
    return false;

  cublasLtMatmulPreference_t preference;
  if (cublasLtMatmulPreferenceCreate(&preference) != CUBLAS_STATUS_SUCCESS)
    return false;
  uint64_t workspace = OS_CUBLAS_WORKSPACE;
  uint32_t alignment = (uint32_t)k->alignment;
  cublasLtMatmulPreferenceAttributes_t aligned[] = {
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES
  };
  ok = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                            &workspace, sizeof workspace) == CUBLAS_STATUS_SUCCESS;
  for (size_t i = 0; ok && i < sizeof aligned / sizeof aligned[0]; i++)
    ok = cublasLtMatmulPreferenceSetAttribute(preference, aligned[i], &alignment,
                                              sizeof alignment) == CUBLAS_STATUS_SUCCESS;
  cublasLtMatmulHeuristicResult_t result;
  int found = 0;
  ok = ok && cublasLtMatmulAlgoGetHeuristic(lt->handle, e->desc, e->weight, e->input, e->output,
                                            e->output, preference, 1, &result,
                                            &found) == CUBLAS_STATUS_SUCCESS &&
       found > 0;
  cublasLtMatmulPreferenceDestroy(preference);
  if (ok)
    e->algo = result.algo;
  return ok;
}

static lt_entry *
entry_for(os_cuda_lt *lt, const lt_key *key)
{
  for (size_t i = 0; i < lt->count; i++)
    if (memcmp(&lt->entries[i].key, key, sizeof *key) == 0)
      return &lt->entries[i];
  if (lt->count == lt->capacity) {
    size_t capacity = lt->capacity ? 2 * lt->capacity : 64;
    lt_entry *grown = (lt_entry *)realloc(lt->entries, capacity * sizeof *grown);
    if (!grown)
      return NULL;
    lt->entries = grown;
    lt->capacity = capacity;
  }
  lt_entry *e = &lt->entries[lt->count++];
  memset(e, 0, sizeof *e);
  e->key = *key;
  e->usable = describe(lt, e);
  return e;
}

bool
os_cuda_linear_lt(os_cuda_backend *cb, float *y, const float *x, const float *W,
                  const float *bias, const float *residual, int T, int in, int out)
{
  if (!cb->lt)
    return false;
  os_cuda_view yv = os_cuda_view_of(cb, y);
  os_cuda_view rv = residual ? os_cuda_view_of(cb, residual) : yv;
  os_cuda_view bv = bias ? os_cuda_view_of(cb, bias) : os_cuda_view{ NULL, OS_CUDA_STORE_F32 };
  if (rv.type != yv.type) // cuBLASLt's C and D share one type
    return false;
  cudaDataType operand = os_cuda_operand_type(cb);
  lt_key key;
  memset(&key, 0, sizeof key);
  key.T = T;
  key.in = in;
  key.out = out;
  key.operand = operand;
  key.output = os_cuda_dtype_cuda(yv.type);
  key.bias = bias ? os_cuda_dtype_cuda(bv.type) : (cudaDataType)-1;
  key.residual = residual != NULL;
  key.compute = operand == CUDA_R_32F && cb->precision == OS_CUDA_TF32
                    ? CUBLAS_COMPUTE_32F_FAST_TF32
                    : CUBLAS_COMPUTE_32F;
  // Operands in another type are converted into pool blocks, aligned far
  // beyond 16 bytes; the others are used where they lie.
  os_cuda_view xv = os_cuda_view_of(cb, x), wv = os_cuda_view_of(cb, W);
  const void *addresses[] = { yv.ptr, rv.ptr, bv.ptr,
                              os_cuda_dtype_cuda(xv.type) == operand ? xv.ptr : NULL,
                              os_cuda_dtype_cuda(wv.type) == operand ? wv.ptr : NULL };
  key.alignment = os_cuda_alignment(addresses, 5);
  lt_entry *e = entry_for(cb->lt, &key);
  if (!e || !e->usable)
    return false;

  os_cuda_operand w, xo;
  if (!os_cuda_operand_prepare(cb, &w, W, (size_t)out * in, true))
    return true;
  if (os_cuda_operand_prepare(cb, &xo, x, (size_t)T * in, false)) {
    float alpha = 1.0f, beta = residual ? 1.0f : 0.0f;
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
    if (bias)
      status = cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bv.ptr,
                                              sizeof bv.ptr);
    if (status == CUBLAS_STATUS_SUCCESS)
      status = cublasLtMatmul(cb->lt->handle, e->desc, &alpha, w.ptr, e->weight, xo.ptr, e->input,
                              &beta, rv.ptr, e->output, yv.ptr, e->output, &e->algo,
                              cb->cublas_workspace, OS_CUBLAS_WORKSPACE, cb->stream);
    os_cuda_check_cublas(cb, status, "cuBLASLt linear");
    os_cuda_operand_release(cb, &xo);
  }
  os_cuda_operand_release(cb, &w);
  return true;
}
