/* grad_test.c: see grad_test.h. */
#include "grad_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "splitmix64.h"

/* Central differences of a float64 reference: truncation ~h^2, rounding
 * ~1e-16 / h, both far below the float32 backward's ~1e-6. */
#define FD_STEP 1e-4
#define FD_TOLERANCE 1e-4

static uint64_t random_state;

void
grad_test_seed(int argc, char **argv)
{
  const char *given = argc > 1 ? argv[1] : getenv("ONESTEP_TEST_SEED");
  uint64_t seed = given ? strtoull(given, NULL, 0)
                        : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
  printf("seed %llu (replay: %s %llu, or ONESTEP_TEST_SEED=%llu)\n", (unsigned long long)seed,
         argv[0], (unsigned long long)seed, (unsigned long long)seed);
  random_state = seed;
}

float *
grad_random(size_t n, float lo, float hi)
{
  return ops_random(n, next_random(&random_state), lo, hi);
}

int
grad_random_int(int lo, int hi)
{
  return lo + (int)(next_random(&random_state) % (uint64_t)(hi - lo + 1));
}

bool
grad_check_l2(const char *what, const double *got, const double *want, size_t n, double tol)
{
  double diff = 0.0, norm = 0.0;
  bool finite = true;
  for (size_t i = 0; i < n; i++) {
    finite = finite && isfinite(got[i]);
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  /* A gradient that vanishes (attention to one key: dq = dk = 0) is
   * measured against an rms of 1e-2, the scale of the others. */
  double err = sqrt(diff) / fmax(sqrt(norm), 1e-2 * sqrt((double)n));
  char line[160];
  snprintf(line, sizeof line, "%s: rel L2 err %.3g (tol %.0e)", what, err, tol);
  return ops_check(line, finite && err <= tol);
}

/* sum_i dy_i y_i(in), the scalar whose gradient the backward gives. */
static double
weighted_output(const grad_case *c, double *const *in, const double *dy, double *y)
{
  c->reference(c->ctx, in, y);
  double total = 0.0;
  for (size_t i = 0; i < c->n_out; i++)
    total += dy[i] * y[i];
  return total;
}

/* The backward with the gradients of the inputs in `wanted` into grads
 * (the others NULL). */
static void
run_backward(os_backend *be, const grad_case *c, float **grads, const bool *wanted,
             const float *dy)
{
  float *passed[GRAD_MAX_INPUTS] = { 0 };
  for (int i = 0; i < c->n_inputs; i++)
    passed[i] = wanted[i] ? grads[i] : NULL;
  c->backward(be, c->ctx, passed, dy, c->inputs);
}

void
grad_check(os_backend *be, const grad_case *c)
{
  char what[200];
  float *dy = grad_random(c->n_out, -1, 1);
  double *dy_d = ops_to_double(dy, c->n_out), *y = ops_zeros_double(c->n_out);
  double *in[GRAD_MAX_INPUTS];
  float *grads[GRAD_MAX_INPUTS] = { 0 }, *bases[GRAD_MAX_INPUTS] = { 0 };
  for (int i = 0; i < c->n_inputs; i++) {
    in[i] = ops_to_double(c->inputs[i], c->sizes[i]);
    if (c->has_grad[i]) {
      /* Gradients start from random values: the backward must add to them. */
      bases[i] = grad_random(c->sizes[i], -1, 1);
      grads[i] = malloc(sizeof(float) * c->sizes[i]);
      memcpy(grads[i], bases[i], sizeof(float) * c->sizes[i]);
    }
  }
  run_backward(be, c, grads, c->has_grad, dy);

  double backward_dot_dir = 0.0, fd_dot = 0.0, term_scale = 0.0;
  double *dir[GRAD_MAX_INPUTS] = { 0 };
  for (int i = 0; i < c->n_inputs; i++) {
    if (!c->has_grad[i])
      continue;
    size_t n = c->sizes[i];
    double *got = ops_zeros_double(n), *want = ops_zeros_double(n);
    for (size_t j = 0; j < n; j++) {
      got[j] = (double)grads[i][j] - bases[i][j];
      double saved = in[i][j], h = FD_STEP * fmax(1.0, fabs(saved));
      in[i][j] = saved + h;
      double plus = weighted_output(c, in, dy_d, y);
      in[i][j] = saved - h;
      double minus = weighted_output(c, in, dy_d, y);
      in[i][j] = saved;
      want[j] = (plus - minus) / (2 * h);
    }
    snprintf(what, sizeof what, "%s: d%s vs finite differences", c->name, c->input_names[i]);
    grad_check_l2(what, got, want, n, FD_TOLERANCE);
    float *dir_f = grad_random(n, -1, 1);
    dir[i] = ops_to_double(dir_f, n);
    free(dir_f);
    for (size_t j = 0; j < n; j++) {
      backward_dot_dir += got[j] * dir[i][j];
      term_scale += fabs(got[j] * dir[i][j]);
    }
    free(got), free(want);
  }

  /* <dy, J dir> by central differences along dir, against <J^T dy, dir>. */
  double *moved[GRAD_MAX_INPUTS];
  for (int sign = 1; sign >= -1; sign -= 2) {
    for (int i = 0; i < c->n_inputs; i++) {
      moved[i] = ops_zeros_double(c->sizes[i]);
      for (size_t j = 0; j < c->sizes[i]; j++)
        moved[i][j] = in[i][j] + (dir[i] ? sign * FD_STEP * dir[i][j] : 0.0);
    }
    fd_dot += sign * weighted_output(c, moved, dy_d, y) / (2 * FD_STEP);
    for (int i = 0; i < c->n_inputs; i++)
      free(moved[i]);
  }
  /* Relative to the sum of the terms' magnitudes: the sum itself may cancel. */
  double err = fabs(backward_dot_dir - fd_dot) / fmax(term_scale, 1e-30);
  snprintf(what, sizeof what, "%s: <dy, J dir> = <J^T dy, dir>: rel err %.3g (tol %.0e)",
           c->name, err, FD_TOLERANCE);
  ops_check(what, isfinite(backward_dot_dir) && err <= FD_TOLERANCE);

  /* Each gradient alone, the others NULL: the same bits as all together. */
  for (int i = 0; i < c->n_inputs; i++) {
    if (!c->has_grad[i])
      continue;
    bool only[GRAD_MAX_INPUTS] = { false };
    only[i] = true;
    float *alone[GRAD_MAX_INPUTS] = { 0 };
    alone[i] = malloc(sizeof(float) * c->sizes[i]);
    memcpy(alone[i], bases[i], sizeof(float) * c->sizes[i]);
    run_backward(be, c, alone, only, dy);
    snprintf(what, sizeof what, "%s: d%s alone (others NULL) = all together", c->name,
             c->input_names[i]);
    ops_check_exact(what, alone[i], grads[i], c->sizes[i]);
    free(alone[i]);
  }

  for (int i = 0; i < c->n_inputs; i++)
    free(in[i]), free(grads[i]), free(bases[i]), free(dir[i]);
  free(dy), free(dy_d), free(y);
}

void
grad_check_threads(os_backend *be1, os_backend *be2, const grad_case *c)
{
  float *dy = grad_random(c->n_out, -1, 1);
  float *one[GRAD_MAX_INPUTS] = { 0 }, *two[GRAD_MAX_INPUTS] = { 0 };
  for (int i = 0; i < c->n_inputs; i++)
    if (c->has_grad[i]) {
      one[i] = grad_random(c->sizes[i], -1, 1);
      two[i] = malloc(sizeof(float) * c->sizes[i]);
      memcpy(two[i], one[i], sizeof(float) * c->sizes[i]);
    }
  run_backward(be1, c, one, c->has_grad, dy);
  run_backward(be2, c, two, c->has_grad, dy);
  for (int i = 0; i < c->n_inputs; i++) {
    if (!c->has_grad[i])
      continue;
    char what[200];
    snprintf(what, sizeof what, "%s: d%s, same bits on other thread counts", c->name,
             c->input_names[i]);
    ops_check_exact(what, two[i], one[i], c->sizes[i]);
    free(one[i]), free(two[i]);
  }
  free(dy);
}

void
grad_case_free(grad_case *c)
{
  for (int i = 0; i < c->n_inputs; i++)
    free(c->inputs[i]);
}
