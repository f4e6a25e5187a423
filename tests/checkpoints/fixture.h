/* fixture.h: building safetensors files for the checkpoint tests. */
#ifndef ONESTEP_TEST_FIXTURE_H
#define ONESTEP_TEST_FIXTURE_H

#include "safetensors.h"

typedef struct {
  os_st_write_tensor *tensors;
  char **names;
  float **owned;
  int n, cap, n_owned, cap_owned;
} fixture;

/* Adds a tensor over data (not copied: keep it alive until written). */
void fixture_add(fixture *f, const char *name, int ndim, const int64_t *shape, const float *data);
/* Adds a tensor whose data the fixture takes over. */
void fixture_add_owned(fixture *f, const char *name, int ndim, const int64_t *shape, float *data);
/* A float copy of a stored tensor, owned by the fixture. */
float *fixture_f32(fixture *f, const os_st_tensor *t);
/* Writes the file (aborts the test on failure) and clears the fixture. */
void fixture_write(fixture *f, const char *path);

#endif
