/* ops_test.h: helpers shared by the CPU op tests: seeded random tensors,
 * comparisons that print each op's maximum error, and a failure count. */
#ifndef ONESTEP_OPS_TEST_H
#define ONESTEP_OPS_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* A backend with n_threads workers; exits the test when creation fails. */
os_backend *ops_test_backend(int n_threads);

/* n uniform values in [lo, hi) from a fixed per-call seed (never all zero). */
float *ops_random(size_t n, uint64_t seed, float lo, float hi);
float *ops_zeros(size_t n);
double *ops_zeros_double(size_t n);
/* x widened to double, as a reference to check against or start from. */
double *ops_to_double(const float *x, size_t n);

/* Max |got - want| / max(max|want|, 1e-30): error relative to the tensor's
 * scale, for ops that accumulate. Prints it; fails above tol. */
bool ops_check_scaled(const char *what, const float *got, const double *want, size_t n,
                      double tol);
/* Max |got - want| / max(|want|, 1): per element, for pointwise functions. */
bool ops_check_pointwise(const char *what, const float *got, const double *want, size_t n,
                         double tol);
/* Bitwise equality (memcmp), for ops that only move or combine in float. */
bool ops_check_exact(const char *what, const float *got, const float *want, size_t n);
/* A plain condition, printed with its description. */
bool ops_check(const char *what, bool ok);

/* 0 when every check passed, else 1; prints the tally. */
int ops_test_finish(const char *program);

#endif
