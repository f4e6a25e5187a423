/* grad_test.h: checks for the backward ops (backend_grad.h) against float64
 * reference forwards written in the tests: central finite differences, the
 * linearisation <dy, J dir> = <J^T dy, dir>, accumulation into existing
 * gradients, NULL gradients and bit-identical results for 1 and 2 threads.
 * Random values and shapes come from a seed that changes every run; it is
 * printed, and argv[1] or ONESTEP_TEST_SEED replays one. */
#ifndef ONESTEP_GRAD_TEST_H
#define ONESTEP_GRAD_TEST_H

#include "ops_test.h"

#define GRAD_MAX_INPUTS 4

/* Picks and prints the run's seed. */
void grad_test_seed(int argc, char **argv);
/* From the run's seed: n uniform floats in [lo, hi), an int in [lo, hi]. */
float *grad_random(size_t n, float lo, float hi);
int grad_random_int(int lo, int hi);

/* One op under test. inputs[i] holds sizes[i] floats; has_grad[i] says
 * whether the backward produces its gradient (a bias only read by the
 * forward, for one, does not take part in the backward's arguments but its
 * gradient is still checked when has_grad). */
typedef struct grad_case {
  const char *name;
  const void *ctx; /* the shape, for reference and backward */
  int n_inputs;
  const char *input_names[GRAD_MAX_INPUTS];
  float *inputs[GRAD_MAX_INPUTS];
  size_t sizes[GRAD_MAX_INPUTS];
  bool has_grad[GRAD_MAX_INPUTS];
  size_t n_out;
  /* y[n_out] from the inputs, in double. */
  void (*reference)(const void *ctx, double *const *in, double *y);
  /* grads[i] += the gradient of input i (NULL: not wanted). */
  void (*backward)(os_backend *be, const void *ctx, float *const *grads, const float *dy,
                   float *const *inputs);
} grad_case;

/* Finite differences of every input element, the linearisation, accumulation
 * and each gradient alone (the others NULL) equal to all together, on be. */
void grad_check(os_backend *be, const grad_case *c);
/* The backward on be1 and be2 (other thread counts): bit-identical. */
void grad_check_threads(os_backend *be1, os_backend *be2, const grad_case *c);
/* Frees the case's inputs. */
void grad_case_free(grad_case *c);

/* Relative L2 error ||got - want|| / ||want|| (||want|| at least an rms of
 * 1e-2), printed; fails above tol. */
bool grad_check_l2(const char *what, const double *got, const double *want, size_t n,
                   double tol);

#endif
