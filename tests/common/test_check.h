/* test_check.h: the failure count, the check macro and the exit status shared
 * by the checkpoint and golden tests (link tests/common/test_check.c). */
#ifndef ONESTEP_TEST_CHECK_H
#define ONESTEP_TEST_CHECK_H

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

/* Reports the failed checks (or that all passed, as `what`) and returns the
 * exit status for main. */
int test_summary(const char *what);

#endif
