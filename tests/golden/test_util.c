/* test_util.c: see test_util.h. */
#include "test_util.h"

int test_failures;

int test_exit_status(void)
{
  if (test_failures)
    fprintf(stderr, "%d check(s) failed\n", test_failures);
  return test_failures ? 1 : 0;
}
