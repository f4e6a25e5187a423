/* test_ops_storage.c: the CPU backend's reproduction of the GPU's 16-bit
 * storage (os_backend_cpu_set_storage_precision). Whatever is written into an
 * ACTIVATION or WEIGHT buffer, by an op (also into the middle of a block, or
 * strided), upload, copy or fill, must be the exact backend's value rounded
 * once to the precision; float32 buffers, and every buffer once emulation is
 * off again, must hold the exact values bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_test.h"

enum { T = 7, IN = 24, OUT = 12, SEQ = 2, SQ = 5, HEADS = 2, HEAD_DIM = 8 };
enum { ROW = HEADS * HEAD_DIM, O_STRIDE = ROW + 3, OFFSET = 5 };

/* fp16 by the compiler's conversion; bf16 by hand: the top 16 bits, ties to even. */
static float
rounded(float x, onestep_precision precision)
{
  if (precision == ONESTEP_PRECISION_FP16)
    return (float)(_Float16)x;
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  memcpy(&x, &u, sizeof x);
  return x;
}

static float *
rounded_copy(const float *x, size_t n, onestep_precision precision)
{
  float *y = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++)
    y[i] = rounded(x[i], precision);
  return y;
}

/* A backend buffer of n elements as `storage`, holding x (uploaded). */
static float *
buffer(os_backend *be, os_storage storage, const float *x, size_t n)
{
  float *p = be->ops->alloc_as(be, n, storage);
  be->ops->upload(be, p, x, sizeof(float) * n);
  return p;
}

static void
check_stored(const char *what, const float *got, const float *exact, size_t n,
             onestep_precision precision)
{
  float *want = rounded_copy(exact, n, precision);
  ops_check_exact(what, got, want, n);
  free(want);
}

/* linear's output written at OFFSET elements into an activation block and
 * into a float32 block, attention's strided output into an activation block. */
static void
check_ops(os_backend *exact, os_backend *be, onestep_precision precision)
{
  const char *name = onestep_precision_name(precision);
  float *x = ops_random((size_t)T * IN, 1, -1, 1), *w = ops_random((size_t)OUT * IN, 2, -1, 1);
  float *bias = ops_random(OUT, 3, -1, 1);
  float *q = ops_random((size_t)SEQ * SQ * ROW, 4, -2, 2);
  float *k = ops_random((size_t)SEQ * SQ * ROW, 5, -2, 2);
  float *v = ops_random((size_t)SEQ * SQ * ROW, 6, -1, 1);
  size_t y_n = OFFSET + (size_t)T * OUT, o_n = (size_t)SEQ * SQ * O_STRIDE;
  float *want_y = ops_zeros(y_n), *want_o = ops_zeros(o_n);
  exact->ops->linear(exact, want_y + OFFSET, x, w, bias, NULL, T, IN, OUT);
  exact->ops->attention(exact, want_o, q, k, v, SEQ, SQ, SQ, HEADS, HEAD_DIM, ROW, ROW, ROW,
                        O_STRIDE, 0.3f);

  /* Inputs in float32 blocks, so that only the storage of outputs differs. */
  float *dx = buffer(be, OS_STORAGE_FP32, x, (size_t)T * IN);
  float *dw = buffer(be, OS_STORAGE_FP32, w, (size_t)OUT * IN);
  float *db = buffer(be, OS_STORAGE_FP32, bias, OUT);
  float *dq = buffer(be, OS_STORAGE_FP32, q, (size_t)SEQ * SQ * ROW);
  float *dk = buffer(be, OS_STORAGE_FP32, k, (size_t)SEQ * SQ * ROW);
  float *dv = buffer(be, OS_STORAGE_FP32, v, (size_t)SEQ * SQ * ROW);
  float *zeros = ops_zeros(o_n);
  /* A freed block between live ones keeps the registry's order honest. */
  float *gone = be->ops->alloc_as(be, 64, OS_STORAGE_ACTIVATION);
  float *act_y = buffer(be, OS_STORAGE_ACTIVATION, zeros, y_n);
  float *f32_y = buffer(be, OS_STORAGE_FP32, zeros, y_n);
  float *act_o = buffer(be, OS_STORAGE_ACTIVATION, zeros, o_n);
  be->ops->free(be, gone);
  be->ops->linear(be, act_y + OFFSET, dx, dw, db, NULL, T, IN, OUT);
  be->ops->linear(be, f32_y + OFFSET, dx, dw, db, NULL, T, IN, OUT);
  be->ops->attention(be, act_o, dq, dk, dv, SEQ, SQ, SQ, HEADS, HEAD_DIM, ROW, ROW, ROW,
                     O_STRIDE, 0.3f);
  char what[120];
  snprintf(what, sizeof what, "%s: linear into the middle of an activation block, rounded", name);
  check_stored(what, act_y, want_y, y_n, precision);
  snprintf(what, sizeof what, "%s: linear into a float32 block, exact", name);
  ops_check_exact(what, f32_y, want_y, y_n);
  snprintf(what, sizeof what, "%s: strided attention output in an activation block, rounded",
           name);
  check_stored(what, act_o, want_o, o_n, precision);

  /* upload, copy and fill round too; WEIGHT blocks store the same type. */
  float *weight = buffer(be, OS_STORAGE_WEIGHT, w, (size_t)OUT * IN);
  snprintf(what, sizeof what, "%s: weights rounded at upload", name);
  check_stored(what, weight, w, (size_t)OUT * IN, precision);
  be->ops->copy(be, act_y, dx, sizeof(float) * y_n); /* x has more than y_n values */
  snprintf(what, sizeof what, "%s: copy into an activation block, rounded", name);
  check_stored(what, act_y, x, y_n, precision);
  float third = 1.0f / 3.0f;
  be->ops->fill(be, act_o, third, o_n);
  snprintf(what, sizeof what, "%s: fill of an activation block, rounded", name);
  ops_check(what, act_o[o_n - 1] == rounded(third, precision) && act_o[0] == act_o[o_n - 1]);

  float *all[] = { dx, dw, db, dq, dk, dv, act_y, f32_y, act_o, weight };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    be->ops->free(be, all[i]);
  free(x), free(w), free(bias), free(q), free(k), free(v), free(want_y), free(want_o);
  free(zeros);
}

/* Off again: activation blocks hold exact values, and the table is the exact one. */
static void
check_off(os_backend *exact, os_backend *be)
{
  os_backend_cpu_set_storage_precision(be, ONESTEP_PRECISION_FP32);
  ops_check("storage emulation off: the exact op table", be->ops == exact->ops);
  float *x = ops_random((size_t)T * IN, 7, -1, 1), *w = ops_random((size_t)OUT * IN, 8, -1, 1);
  float *want = ops_zeros((size_t)T * OUT);
  exact->ops->linear(exact, want, x, w, NULL, NULL, T, IN, OUT);
  float *act = be->ops->alloc_as(be, (size_t)T * OUT, OS_STORAGE_ACTIVATION);
  be->ops->linear(be, act, x, w, NULL, NULL, T, IN, OUT);
  ops_check_exact("storage emulation off: activation blocks exact", act, want, (size_t)T * OUT);
  be->ops->free(be, act);
  free(x), free(w), free(want);
}

int
main(void)
{
  os_backend *exact = ops_test_backend(2), *be = ops_test_backend(2);
  onestep_precision precisions[] = { ONESTEP_PRECISION_FP16, ONESTEP_PRECISION_BF16 };
  for (int i = 0; i < 2; i++) {
    os_backend_cpu_set_storage_precision(be, precisions[i]);
    check_ops(exact, be, precisions[i]);
  }
  check_off(exact, be);
  exact->ops->destroy(exact);
  be->ops->destroy(be);
  return ops_test_finish("test-ops-storage");
}
