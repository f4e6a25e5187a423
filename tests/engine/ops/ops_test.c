/* ops_test.c: see ops_test.h. */
#include "ops_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "splitmix64.h"

static int checks_run, checks_failed;

os_backend *
ops_test_backend(int n_threads)
{
  onestep_error error = { 0 };
  os_backend *be = os_backend_cpu_new(n_threads, &error);
  if (!be) {
    fprintf(stderr, "cannot create the CPU backend: %s\n", error.message);
    exit(2);
  }
  return be;
}

static void *
checked_calloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "out of memory in test\n");
    exit(2);
  }
  return p;
}

float *
ops_random(size_t n, uint64_t seed, float lo, float hi)
{
  float *x = checked_calloc(n, sizeof(float));
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + 1;
  for (size_t i = 0; i < n; i++)
    x[i] = lo + (hi - lo) * (float)((next_random(&state) >> 40) * 0x1p-24);
  return x;
}

float *
ops_zeros(size_t n)
{
  return checked_calloc(n, sizeof(float));
}

double *
ops_zeros_double(size_t n)
{
  return checked_calloc(n, sizeof(double));
}

double *
ops_to_double(const float *x, size_t n)
{
  double *y = ops_zeros_double(n);
  for (size_t i = 0; i < n; i++)
    y[i] = x[i];
  return y;
}

static bool
record(const char *what, bool ok, double err, double tol)
{
  checks_run++;
  if (!ok)
    checks_failed++;
  if (tol >= 0)
    printf("%-4s %-58s max err %.3g (tol %.1g)\n", ok ? "ok" : "FAIL", what, err, tol);
  else
    printf("%-4s %s\n", ok ? "ok" : "FAIL", what);
  return ok;
}

bool
ops_check_scaled(const char *what, const float *got, const double *want, size_t n, double tol)
{
  double scale = 1e-30, err = 0.0;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(want[i]));
  bool finite = true;
  for (size_t i = 0; i < n; i++) {
    finite = finite && isfinite(got[i]);
    err = fmax(err, fabs(got[i] - want[i]) / scale);
  }
  return record(what, finite && err <= tol, err, tol);
}

bool
ops_check_pointwise(const char *what, const float *got, const double *want, size_t n,
                    double tol)
{
  double err = 0.0;
  bool finite = true;
  for (size_t i = 0; i < n; i++) {
    finite = finite && isfinite(got[i]);
    err = fmax(err, fabs(got[i] - want[i]) / fmax(fabs(want[i]), 1.0));
  }
  return record(what, finite && err <= tol, err, tol);
}

bool
ops_check_exact(const char *what, const float *got, const float *want, size_t n)
{
  double err = 0.0;
  for (size_t i = 0; i < n; i++)
    err = fmax(err, fabs((double)got[i] - want[i]));
  return record(what, memcmp(got, want, n * sizeof(float)) == 0, err, 0.0);
}

bool
ops_check(const char *what, bool ok)
{
  return record(what, ok, 0.0, -1.0);
}

int
ops_test_finish(const char *program)
{
  printf("%s: %d checks, %d failed\n", program, checks_run, checks_failed);
  return checks_failed ? 1 : 0;
}
