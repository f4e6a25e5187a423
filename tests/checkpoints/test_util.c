/* test_util.c: see test_util.h. */
#include "test_util.h"

#include <stdlib.h>

int test_failures;

int test_summary(const char *what)
{
  if (test_failures)
    fprintf(stderr, "%d check(s) failed\n", test_failures);
  else
    printf("%s: all checks passed\n", what);
  return test_failures ? 1 : 0;
}

os_safetensors *open_component(const char *model_dir, const char *comp, const char *file)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", model_dir, comp, file);
  onestep_error err = {0};
  os_safetensors *st = os_safetensors_open(path, &err);
  if (!st) {
    fprintf(stderr, "cannot open %s: %s\n", path, err.message);
    exit(2);
  }
  return st;
}
