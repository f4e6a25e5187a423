/* test_util.h: the check macro, the exit status and the model-file opener
 * shared by the checkpoint tests. */
#ifndef ONESTEP_TEST_UTIL_H
#define ONESTEP_TEST_UTIL_H

#include <stdio.h>

#include "safetensors.h"

extern int test_failures;

/* Counts a failed check and says where and why (printf-style), then goes on. */
#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                         \
      fprintf(stderr, __VA_ARGS__);                                                           \
      fprintf(stderr, "\n");                                                                  \
      test_failures++;                                                                        \
    }                                                                                         \
  } while (0)

/* Reports the failed checks (or that all passed, as `what`) and returns the
 * exit status for main. */
int test_summary(const char *what);

/* MODEL_DIR/comp/file, opened; exits the test when that fails. */
os_safetensors *open_component(const char *model_dir, const char *comp, const char *file);

#endif
