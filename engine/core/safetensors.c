/* safetensors.c: mapping, validating and writing safetensors files.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data
 * section. Every tensor's data_offsets are relative to the data section. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this loader reads it in place"
#endif

#define MAX_HEADER_BYTES 100000000ull /* the format's own limit */
#define MAX_EXACT_JSON_INT 9007199254740992.0 /* 2^53: larger doubles lose integers */

int64_t
os_shape_numel(int ndim, const int64_t *shape)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

size_t
os_dtype_size(os_dtype dtype)
{
  return dtype == OS_DTYPE_F32 ? 4 : 2;
}

const char *
os_dtype_name(os_dtype dtype)
{
  switch (dtype) {
  case OS_DTYPE_F32: return "F32";
  case OS_DTYPE_F16: return "F16";
  case OS_DTYPE_BF16: return "BF16";
  }
  return "?";
}

static bool
dtype_from_name(const char *name, os_dtype *dtype)
{
  static const os_dtype all[] = {OS_DTYPE_F32, OS_DTYPE_F16, OS_DTYPE_BF16};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (strcmp(name, os_dtype_name(all[i])) == 0) {
      *dtype = all[i];
      return true;
    }
  }
  return false;
}

static float
f16_to_f32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13); /* inf or nan, payload kept */
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else {
    /* zero or subnormal: mantissa * 2^-24, exact in float */
    float magnitude = (float)mantissa * 0x1p-24f;
    memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

void
os_dtype_to_f32(float *dst, const void *src, os_dtype dtype, size_t n)
{
  const unsigned char *bytes = src;
  switch (dtype) {
  case OS_DTYPE_F32:
    memcpy(dst, src, n * sizeof(float));
    break;
  case OS_DTYPE_F16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, bytes + 2 * i, 2); /* the source may be unaligned */
      dst[i] = f16_to_f32(h);
    }
    break;
  case OS_DTYPE_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, bytes + 2 * i, 2);
      uint32_t bits = (uint32_t)h << 16;
      memcpy(&dst[i], &bits, sizeof bits);
    }
    break;
  }
}

static int
compare_tensor_names(const void *a, const void *b)
{
  return strcmp(((const os_st_tensor *)a)->name, ((const os_st_tensor *)b)->name);
}

const os_st_tensor *
os_safetensors_find(const os_safetensors *st, const char *name)
{
  os_st_tensor key = {.name = (char *)name};
  return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, compare_tensor_names);
}

void
os_safetensors_close(os_safetensors *st)
{
  if (!st)
    return;
  for (int i = 0; i < st->n_tensors; i++)
    free(st->tensors[i].name);
  free(st->tensors);
  if (st->map)
    munmap(st->map, st->map_size);
  free(st->path);
  free(st);
}

/* ---- header validation ---- */

static bool
json_exact_uint(const cJSON *item, uint64_t *out)
{
  if (!cJSON_IsNumber(item))
    return false;
  double d = item->valuedouble;
  if (!(d >= 0.0 && d <= MAX_EXACT_JSON_INT && d == floor(d)))
    return false;
  *out = (uint64_t)d;
  return true;
}

static onestep_status
check_metadata(const char *path, const cJSON *meta, onestep_error *error)
{
  if (!cJSON_IsObject(meta))
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: '__metadata__' must be a JSON object of strings", path);
  for (const cJSON *entry = meta->child; entry; entry = entry->next) {
    if (!cJSON_IsString(entry))
      return os_error_set(error, ONESTEP_ERR_FORMAT,
                          "%s: '__metadata__' entry '%s' is not a string", path,
                          entry->string);
  }
  return ONESTEP_OK;
}

/* Fills t (name, dtype, shape, nbytes) and the offsets from one header entry. */
static onestep_status
parse_tensor_entry(const char *path, const cJSON *entry, os_st_tensor *t, uint64_t *begin,
                   uint64_t *end, onestep_error *error)
{
  const char *name = entry->string;
  if (!cJSON_IsObject(entry))
    return os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object",
                        path, name);

  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
  if (!cJSON_IsString(dtype))
    return os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor '%s': 'dtype' is missing", path,
                        name);
  if (!dtype_from_name(dtype->valuestring, &t->dtype))
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported",
                        path, name, dtype->valuestring);

  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
  if (!cJSON_IsArray(shape))
    return os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor '%s': 'shape' is missing", path,
                        name);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > OS_MAX_DIMS)
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: tensor '%s' has %d dimensions (at most %d are supported)", path,
                        name, ndim, OS_MAX_DIMS);
  t->ndim = ndim;
  uint64_t numel = 1;
  int d = 0;
  for (const cJSON *dim = shape->child; dim; dim = dim->next, d++) {
    uint64_t size;
    if (!json_exact_uint(dim, &size))
      return os_error_set(error, ONESTEP_ERR_FORMAT,
                          "%s: tensor '%s': shape entry %d is not a non-negative integer", path,
                          name, d);
    if (size != 0 && numel > (uint64_t)INT64_MAX / 8 / size)
      return os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor '%s': shape is too large",
                          path, name);
    numel *= size;
    t->shape[d] = (int64_t)size;
  }

  const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
      !json_exact_uint(offsets->child, begin) || !json_exact_uint(offsets->child->next, end) ||
      *end < *begin)
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: tensor '%s': 'data_offsets' must be [begin, end] with begin <= end",
                        path, name);
  t->nbytes = (size_t)(numel * os_dtype_size(t->dtype));
  if (*end - *begin != t->nbytes)
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: tensor '%s' occupies %llu bytes but its %s shape needs %zu", path,
                        name, (unsigned long long)(*end - *begin), os_dtype_name(t->dtype),
                        t->nbytes);
  return ONESTEP_OK;
}

typedef struct {
  uint64_t begin, end;
  int index;
} tensor_span;

static int
compare_spans(const void *a, const void *b)
{
  const tensor_span *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

/* The spans, sorted, must tile [0, data_size) exactly. */
static onestep_status
check_spans(const char *path, tensor_span *spans, int n, const os_st_tensor *tensors,
            uint64_t data_size, onestep_error *error)
{
  qsort(spans, (size_t)n, sizeof *spans, compare_spans);
  uint64_t expected = 0;
  const char *previous = NULL;
  for (int i = 0; i < n; i++) {
    const char *name = tensors[spans[i].index].name;
    if (spans[i].begin != expected) {
      if (!previous)
        return os_error_set(error, ONESTEP_ERR_FORMAT,
                            "%s: tensor '%s' starts at byte %llu of the data section; the "
                            "first tensor must start at 0",
                            path, name, (unsigned long long)spans[i].begin);
      return os_error_set(error, ONESTEP_ERR_FORMAT,
                          "%s: tensor '%s' starts at byte %llu but tensor '%s' ends at %llu "
                          "(%s)",
                          path, name, (unsigned long long)spans[i].begin, previous,
                          (unsigned long long)expected,
                          spans[i].begin < expected ? "overlap" : "gap");
    }
    expected = spans[i].end;
    previous = name;
  }
  if (expected != data_size) {
    if (previous)
      return os_error_set(error, ONESTEP_ERR_FORMAT,
                          "%s: the last tensor '%s' ends at byte %llu but the data section "
                          "has %llu bytes (truncated or padded file)",
                          path, previous, (unsigned long long)expected,
                          (unsigned long long)data_size);
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: the file has no tensors but %llu bytes of data", path,
                        (unsigned long long)data_size);
  }
  return ONESTEP_OK;
}

/* Parses the header and fills st->tensors (data pointers into the data section). */
static onestep_status
parse_header(os_safetensors *st, const char *json_text, size_t json_len,
             const unsigned char *data, uint64_t data_size, onestep_error *error)
{
  const char *path = st->path;
  const char *parse_end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json_text, json_len, &parse_end, 0);
  if (!root)
    return os_error_set(error, ONESTEP_ERR_FORMAT,
                        "%s: the header is not valid JSON (near byte %td of the header)", path,
                        parse_end ? parse_end - json_text : (ptrdiff_t)0);
  onestep_status status = ONESTEP_OK;
  for (const char *p = parse_end; p && p < json_text + json_len; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      status = os_error_set(error, ONESTEP_ERR_FORMAT,
                            "%s: the header has bytes after its JSON object", path);
      goto out;
    }
  }
  if (!cJSON_IsObject(root)) {
    status = os_error_set(error, ONESTEP_ERR_FORMAT, "%s: the header is not a JSON object", path);
    goto out;
  }

  int n = 0;
  for (const cJSON *entry = root->child; entry; entry = entry->next)
    n++;
  st->tensors = calloc((size_t)(n ? n : 1), sizeof *st->tensors);
  tensor_span *spans = calloc((size_t)(n ? n : 1), sizeof *spans);
  if (!st->tensors || !spans) {
    free(spans);
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory reading the header",
                          path);
    goto out;
  }

  for (const cJSON *entry = root->child; entry; entry = entry->next) {
    if (strcmp(entry->string, "__metadata__") == 0) {
      if ((status = check_metadata(path, entry, error)) != ONESTEP_OK)
        break;
      continue;
    }
    os_st_tensor *t = &st->tensors[st->n_tensors];
    uint64_t begin = 0, end = 0;
    if ((status = parse_tensor_entry(path, entry, t, &begin, &end, error)) != ONESTEP_OK)
      break;
    if (!(t->name = strdup(entry->string))) {
      status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
      break;
    }
    spans[st->n_tensors] = (tensor_span){begin, end, st->n_tensors};
    st->n_tensors++;
    /* bounds are checked by check_spans before anyone reads through data */
    t->data = begin <= data_size ? data + begin : NULL;
  }
  if (status == ONESTEP_OK)
    status = check_spans(path, spans, st->n_tensors, st->tensors, data_size, error);
  free(spans);
  if (status != ONESTEP_OK)
    goto out;

  /* cJSON keeps repeated keys, so duplicates show up as equal neighbours. */
  qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, compare_tensor_names);
  for (int i = 1; i < st->n_tensors; i++) {
    if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
      status = os_error_set(error, ONESTEP_ERR_FORMAT, "%s: tensor '%s' appears twice", path,
                            st->tensors[i].name);
      break;
    }
  }
out:
  cJSON_Delete(root);
  return status;
}

os_safetensors *
os_safetensors_open(const char *path, onestep_error *error)
{
  os_safetensors *st = calloc(1, sizeof *st);
  if (!st || !(st->path = strdup(path))) {
    free(st);
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    return NULL;
  }

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    os_error_set(error, ONESTEP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    os_error_set(error, ONESTEP_ERR_IO, "%s: not a regular file", path);
    close(fd);
    goto fail;
  }
  uint64_t file_size = (uint64_t)sb.st_size;
  if (file_size < 8) {
    os_error_set(error, ONESTEP_ERR_FORMAT,
                 "%s: only %llu bytes; a safetensors file starts with an 8-byte header length",
                 path, (unsigned long long)file_size);
    close(fd);
    goto fail;
  }
  void *map = mmap(NULL, (size_t)file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd); /* the mapping keeps the file */
  if (map == MAP_FAILED) {
    os_error_set(error, ONESTEP_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    goto fail;
  }
  st->map = map;
  st->map_size = (size_t)file_size;

  const unsigned char *bytes = map;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--)
    header_len = header_len << 8 | bytes[i];
  if (header_len > file_size - 8) {
    os_error_set(error, ONESTEP_ERR_FORMAT,
                 "%s: header length %llu exceeds the file (%llu bytes): truncated or not a "
                 "safetensors file",
                 path, (unsigned long long)header_len, (unsigned long long)file_size);
    goto fail;
  }
  if (header_len >= MAX_HEADER_BYTES) {
    os_error_set(error, ONESTEP_ERR_FORMAT, "%s: header length %llu is over the 100 MB limit",
                 path, (unsigned long long)header_len);
    goto fail;
  }

  /* a NUL-terminated copy, so the JSON parser can never read past the header */
  char *json_text = malloc((size_t)header_len + 1);
  if (!json_text) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory reading the header", path);
    goto fail;
  }
  memcpy(json_text, bytes + 8, (size_t)header_len);
  json_text[header_len] = '\0';
  onestep_status status = parse_header(st, json_text, (size_t)header_len, bytes + 8 + header_len,
                                       file_size - 8 - header_len, error);
  free(json_text);
  if (status != ONESTEP_OK)
    goto fail;
  return st;

fail:
  os_safetensors_close(st);
  return NULL;
}

/* ---- writing ---- */

static bool
write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    len -= (size_t)w;
  }
  return true;
}

/* The header JSON padded with spaces so the data section starts 8-byte aligned. */
static char *
build_header(const char *path, const os_st_write_tensor *tensors, int n, size_t *header_len,
             onestep_error *error)
{
  cJSON *root = cJSON_CreateObject();
  uint64_t offset = 0;
  for (int i = 0; root && i < n; i++) {
    const os_st_write_tensor *t = &tensors[i];
    bool valid = t->ndim >= 0 && t->ndim <= OS_MAX_DIMS;
    for (int d = 0; valid && d < t->ndim; d++)
      valid = t->shape[d] >= 0;
    if (!valid) {
      os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has an invalid shape",
                   path, t->name);
      cJSON_Delete(root);
      return NULL;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, t->name)) {
      os_error_set(error, ONESTEP_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is given twice", path,
                   t->name);
      cJSON_Delete(root);
      return NULL;
    }
    double dims[OS_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++)
      dims[d] = (double)t->shape[d];
    uint64_t nbytes = (uint64_t)os_shape_numel(t->ndim, t->shape) * sizeof(float);
    double span[2] = {(double)offset, (double)(offset + nbytes)};
    offset += nbytes;
    cJSON *entry = cJSON_AddObjectToObject(root, t->name);
    if (!entry || !cJSON_AddStringToObject(entry, "dtype", "F32") ||
        !cJSON_AddItemToObject(entry, "shape", cJSON_CreateDoubleArray(dims, t->ndim)) ||
        !cJSON_AddItemToObject(entry, "data_offsets", cJSON_CreateDoubleArray(span, 2))) {
      cJSON_Delete(root);
      root = NULL;
    }
  }
  char *json = root ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!json) {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory building the header", path);
    return NULL;
  }
  size_t len = strlen(json);
  size_t padded = (len + 7) / 8 * 8;
  char *header = malloc(padded);
  if (header) {
    memcpy(header, json, len);
    memset(header + len, ' ', padded - len);
    *header_len = padded;
  } else {
    os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory building the header", path);
  }
  cJSON_free(json);
  return header;
}

onestep_status
os_safetensors_write(const char *path, const os_st_write_tensor *tensors, int n,
                     onestep_error *error)
{
  size_t header_len = 0;
  char *header = build_header(path, tensors, n, &header_len, error);
  if (!header)
    return error ? error->code : ONESTEP_ERR_INVALID_ARGUMENT;

  size_t tmp_len = strlen(path) + sizeof ".tmp-XXXXXX";
  char *tmp_path = malloc(tmp_len);
  if (!tmp_path) {
    free(header);
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  snprintf(tmp_path, tmp_len, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp_path);
  if (fd < 0) {
    onestep_status status = os_error_set(error, ONESTEP_ERR_IO, "%s: cannot create %s: %s", path,
                                         tmp_path, strerror(errno));
    free(tmp_path);
    free(header);
    return status;
  }

  unsigned char length_le[8];
  for (int i = 0; i < 8; i++)
    length_le[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
  int err = 0;
  if (!write_all(fd, length_le, 8) || !write_all(fd, header, header_len))
    err = errno;
  for (int i = 0; !err && i < n; i++) {
    size_t nbytes = (size_t)os_shape_numel(tensors[i].ndim, tensors[i].shape) * sizeof(float);
    if (!write_all(fd, tensors[i].data, nbytes))
      err = errno;
  }
  if (!err && fsync(fd) != 0)
    err = errno;
  if (close(fd) != 0 && !err)
    err = errno;
  if (!err && rename(tmp_path, path) != 0)
    err = errno;
  onestep_status status = ONESTEP_OK;
  if (err) {
    unlink(tmp_path);
    status = os_error_set(error, ONESTEP_ERR_IO, "%s: cannot write: %s", path, strerror(err));
  }
  free(tmp_path);
  free(header);
  return status;
}
