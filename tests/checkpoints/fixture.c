/* fixture.c: see fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *grow(void *p, int *cap, size_t elem)
{
  *cap = *cap ? 2 * *cap : 64;
  void *q = realloc(p, *cap * elem);
  if (!q) {
    fprintf(stderr, "fixture: out of memory\n");
    exit(2);
  }
  return q;
}

static void keep(fixture *f, float *data)
{
  if (f->n_owned == f->cap_owned)
    f->owned = grow(f->owned, &f->cap_owned, sizeof *f->owned);
  f->owned[f->n_owned++] = data;
}

void fixture_add(fixture *f, const char *name, int ndim, const int64_t *shape, const float *data)
{
  if (f->n == f->cap) {
    int cap = f->cap;
    f->tensors = grow(f->tensors, &cap, sizeof *f->tensors);
    f->names = grow(f->names, &f->cap, sizeof *f->names);
  }
  f->names[f->n] = strdup(name);
  os_st_write_tensor *t = &f->tensors[f->n++];
  memset(t, 0, sizeof *t);
  t->name = f->names[f->n - 1];
  t->ndim = ndim;
  memcpy(t->shape, shape, ndim * sizeof *shape);
  t->data = data;
}

void fixture_add_owned(fixture *f, const char *name, int ndim, const int64_t *shape, float *data)
{
  keep(f, data);
  fixture_add(f, name, ndim, shape, data);
}

float *fixture_f32(fixture *f, const os_st_tensor *t)
{
  size_t n = (size_t)os_shape_numel(t->ndim, t->shape);
  float *out = malloc((n ? n : 1) * sizeof *out);
  if (!out)
    exit(2);
  os_dtype_to_f32(out, t->data, t->dtype, n);
  keep(f, out);
  return out;
}

void fixture_write(fixture *f, const char *path)
{
  onestep_error err = {0};
  if (os_safetensors_write(path, f->tensors, f->n, &err) != ONESTEP_OK) {
    fprintf(stderr, "fixture: writing %s: %s\n", path, err.message);
    exit(2);
  }
  for (int i = 0; i < f->n; i++)
    free(f->names[i]);
  for (int i = 0; i < f->n_owned; i++)
    free(f->owned[i]);
  free(f->tensors);
  free(f->names);
  free(f->owned);
  memset(f, 0, sizeof *f);
}
