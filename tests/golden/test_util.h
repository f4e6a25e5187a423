/* test_util.h: the check macro and exit status shared by the golden tests. */
#ifndef ONESTEP_GOLDEN_TEST_UTIL_H
#define ONESTEP_GOLDEN_TEST_UTIL_H

#include <stddef.h>
#include <stdio.h>

extern int test_failures;

/* Counts a failed check and says where and why (printf-style), then goes on. */
#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                     \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, "\n");                                                                   \
      test_failures++;                                                                         \
    }                                                                                          \
  } while (0)

/* ||x - ref|| / ||ref|| over n values, accumulated in double. */
double relative_l2(const float *x, const float *ref, size_t n);

/* Reports how many checks failed, if any, and returns the exit status for main. */
int test_exit_status(void);

#endif
