/* config_json.c: typed, latching reads from a JSON config file (cJSON). */
#include "config_json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CONFIG_BYTES (16 << 20) /* configs are a few KB; refuse anything absurd */

onestep_status
os_json_fail(os_json_file *f, onestep_status code, const char *fmt, ...)
{
  if (f->status != ONESTEP_OK)
    return f->status;
  char detail[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  f->status = os_error_set(f->error, code, "%s: %s", f->path, detail);
  return f->status;
}

/* Line number of a byte offset, for parse errors. */
static int
line_of(const char *text, const char *at)
{
  int line = 1;
  for (const char *p = text; p < at && *p; p++)
    line += *p == '\n';
  return line;
}

onestep_status
os_json_open(os_json_file *f, const char *path, onestep_error *error)
{
  *f = (os_json_file){.path = path, .error = error};
  FILE *file = fopen(path, "rb");
  if (!file)
    return os_json_fail(f, ONESTEP_ERR_IO, "cannot read: %s", strerror(errno));
  struct stat sb;
  if (fstat(fileno(file), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > MAX_CONFIG_BYTES) {
    fclose(file);
    return os_json_fail(f, ONESTEP_ERR_FORMAT, "not a config file (a folder, or over 16 MB)");
  }
  size_t size = (size_t)sb.st_size;
  char *text = malloc(size + 1);
  if (!text) {
    fclose(file);
    return os_json_fail(f, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory");
  }
  size_t got = fread(text, 1, size, file);
  bool read_error = ferror(file);
  fclose(file);
  if (read_error || got != size) {
    free(text);
    return os_json_fail(f, ONESTEP_ERR_IO, "read error");
  }
  text[size] = '\0';
  const char *parse_end = NULL;
  f->root = cJSON_ParseWithLengthOpts(text, size + 1, &parse_end, 1);
  if (!f->root)
    os_json_fail(f, ONESTEP_ERR_FORMAT, "not valid JSON (line %d)",
                 line_of(text, parse_end ? parse_end : text));
  else if (!cJSON_IsObject(f->root))
    os_json_fail(f, ONESTEP_ERR_FORMAT, "not a JSON object");
  free(text);
  return f->status;
}

void
os_json_close(os_json_file *f)
{
  cJSON_Delete(f->root);
  f->root = NULL;
}

const cJSON *
os_json_get(const os_json_file *f, const char *key)
{
  if (f->status != ONESTEP_OK || !f->root)
    return NULL;
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->root, key);
  return item && !cJSON_IsNull(item) ? item : NULL;
}

static bool
exact_int(const cJSON *item, int *out)
{
  if (!cJSON_IsNumber(item))
    return false;
  double d = item->valuedouble;
  if (!(d >= INT_MIN && d <= INT_MAX && d == floor(d)))
    return false;
  *out = (int)d;
  return true;
}

int
os_json_int(os_json_file *f, const char *key, int fallback)
{
  const cJSON *item = os_json_get(f, key);
  int value = fallback;
  if (item && !exact_int(item, &value)) {
    os_json_fail(f, ONESTEP_ERR_FORMAT, "'%s' must be an integer", key);
    return fallback;
  }
  return value;
}

int
os_json_int_min(os_json_file *f, const char *key, int fallback, int min)
{
  int value = os_json_int(f, key, fallback);
  if (value < min) {
    os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' is %d; it must be at least %d", key, value, min);
    return min;
  }
  return value;
}

/* The value of key when is_type accepts it; NULL when it is absent, or when it
 * has another type (then f fails with "'key' must be <what>"). */
static const cJSON *
typed_item(os_json_file *f, const char *key, cJSON_bool (*is_type)(const cJSON *),
           const char *what)
{
  const cJSON *item = os_json_get(f, key);
  if (item && !is_type(item)) {
    os_json_fail(f, ONESTEP_ERR_FORMAT, "'%s' must be %s", key, what);
    return NULL;
  }
  return item;
}

double
os_json_number(os_json_file *f, const char *key, double fallback)
{
  const cJSON *item = typed_item(f, key, cJSON_IsNumber, "a number");
  return item ? item->valuedouble : fallback;
}

bool
os_json_bool(os_json_file *f, const char *key, bool fallback)
{
  const cJSON *item = typed_item(f, key, cJSON_IsBool, "true or false");
  return item ? cJSON_IsTrue(item) : fallback;
}

const char *
os_json_string(os_json_file *f, const char *key, const char *fallback)
{
  const cJSON *item = typed_item(f, key, cJSON_IsString, "a string");
  return item ? item->valuestring : fallback;
}

int
os_json_int_list(os_json_file *f, const char *key, const int *fallback, int n_fallback,
                 int *out, int max)
{
  const cJSON *item = os_json_get(f, key);
  if (!item) {
    for (int i = 0; i < n_fallback && i < max; i++)
      out[i] = fallback[i];
    return n_fallback <= max ? n_fallback : max;
  }
  if (!cJSON_IsArray(item))
    return os_json_fail(f, ONESTEP_ERR_FORMAT, "'%s' must be a list of integers", key), 0;
  int n = cJSON_GetArraySize(item);
  if (n < 1 || n > max)
    return os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' has %d entries; 1 to %d are supported", key,
                        n, max),
           0;
  int i = 0;
  for (const cJSON *e = item->child; e; e = e->next, i++) {
    if (!exact_int(e, &out[i]) || out[i] <= 0)
      return os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' entry %d must be a positive integer", key,
                          i),
             0;
  }
  return n;
}

void
os_json_int_per_level(os_json_file *f, const char *key, const int *fallback, int n_fallback,
                      int n, int *out)
{
  const cJSON *item = os_json_get(f, key);
  if (item && cJSON_IsNumber(item)) {
    int value = os_json_int_min(f, key, 1, 1);
    for (int i = 0; i < n; i++)
      out[i] = value;
    return;
  }
  int values[64];
  int got = os_json_int_list(f, key, fallback, n_fallback, values, 64);
  if (f->status != ONESTEP_OK)
    return;
  if (got != n) {
    os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' %s %d entries but the model has %d levels", key,
                 item ? "has" : "is absent and its default has", got, n);
    return;
  }
  for (int i = 0; i < n; i++)
    out[i] = values[i];
}

int
os_json_string_list(os_json_file *f, const char *key, const char *const *fallback,
                    int n_fallback, const char **out, int max)
{
  const cJSON *item = os_json_get(f, key);
  if (!item) {
    for (int i = 0; i < n_fallback && i < max; i++)
      out[i] = fallback[i];
    return n_fallback <= max ? n_fallback : max;
  }
  int n = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : -1;
  if (n < 1 || n > max)
    return os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' must be a list of 1 to %d names", key, max),
           0;
  int i = 0;
  for (const cJSON *e = item->child; e; e = e->next, i++) {
    if (!cJSON_IsString(e))
      return os_json_fail(f, ONESTEP_ERR_FORMAT, "'%s' entry %d must be a string", key, i), 0;
    out[i] = e->valuestring;
  }
  return n;
}

void
os_json_number_list(os_json_file *f, const char *key, const float *fallback, int n, float *out)
{
  const cJSON *item = os_json_get(f, key);
  for (int i = 0; i < n; i++)
    out[i] = fallback[i];
  if (!item)
    return;
  if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != n) {
    os_json_fail(f, ONESTEP_ERR_MODEL, "'%s' must be a list of %d numbers", key, n);
    return;
  }
  int i = 0;
  for (const cJSON *e = item->child; e; e = e->next, i++) {
    if (!cJSON_IsNumber(e)) {
      os_json_fail(f, ONESTEP_ERR_FORMAT, "'%s' entry %d must be a number", key, i);
      return;
    }
    out[i] = (float)e->valuedouble;
  }
}
