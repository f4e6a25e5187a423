/* test_util.c: see test_util.h. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>

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
