/* safetensors.h: memory-mapped, fully validated safetensors files. */
#ifndef ONESTEP_SAFETENSORS_H
#define ONESTEP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "onestep.h"

#define OS_MAX_DIMS 8

typedef enum { OS_DTYPE_F32 = 0, OS_DTYPE_F16, OS_DTYPE_BF16 } os_dtype;

typedef struct {
  char *name;
  os_dtype dtype;
  int ndim;
  int64_t shape[OS_MAX_DIMS];
  const void *data; /* inside the mapping */
  size_t nbytes;
} os_st_tensor;

typedef struct {
  char *path;
  void *map;
  size_t map_size;
  int n_tensors;
  os_st_tensor *tensors; /* sorted by name */
} os_safetensors;

/* Maps and validates the whole file: header length within the file and under
 * 100 MB, valid JSON, known dtypes, byte sizes equal to shapes, offsets
 * contiguous from 0 without gaps or overlap, no duplicate names. */
os_safetensors *os_safetensors_open(const char *path, onestep_error *error);
void os_safetensors_close(os_safetensors *st);
const os_st_tensor *os_safetensors_find(const os_safetensors *st, const char *name);

/* Element count of a shape. */
int64_t os_shape_numel(int ndim, const int64_t *shape);
size_t os_dtype_size(os_dtype dtype);
const char *os_dtype_name(os_dtype dtype);
/* Converts n elements of dtype at src to float32. */
void os_dtype_to_f32(float *dst, const void *src, os_dtype dtype, size_t n);

/* A tensor to write: float32 data of the given shape. */
typedef struct {
  const char *name;
  int ndim;
  int64_t shape[OS_MAX_DIMS];
  const float *data;
} os_st_write_tensor;

/* Writes an F32 safetensors file atomically (temporary name, then rename);
 * on failure nothing is left at path. */
onestep_status os_safetensors_write(const char *path, const os_st_write_tensor *tensors,
                                    int n, onestep_error *error);

#endif
