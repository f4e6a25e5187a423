/* test_check.c: see test_check.h. */
#include "test_check.h"

int test_failures;

int
test_summary(const char *what)
{
  if (test_failures)
    fprintf(stderr, "%s: %d check(s) failed\n", what, test_failures);
  else
    printf("%s: all checks passed\n", what);
  return test_failures ? 1 : 0;
}
