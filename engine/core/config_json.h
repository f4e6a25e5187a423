/* config_json.h: reading typed values from one JSON config file.
 *
 * The first problem (missing file, bad JSON, wrong type, impossible value) is
 * latched with a message naming the file and the key; later reads then do
 * nothing, so a loader reads every key and checks the status once. A key that
 * is absent or null takes the given default. */
#ifndef ONESTEP_CONFIG_JSON_H
#define ONESTEP_CONFIG_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "error.h"

typedef struct {
  const char *path;
  cJSON *root;
  onestep_error *error;
  onestep_status status;
} os_json_file;

/* Reads and parses path; the root must be a JSON object. */
onestep_status os_json_open(os_json_file *f, const char *path, onestep_error *error);
void os_json_close(os_json_file *f);

/* Latches "<path>: <message>" unless an error is already latched; returns the status. */
onestep_status os_json_fail(os_json_file *f, onestep_status code, const char *fmt, ...)
    OS_PRINTF(3, 4);

/* The value under key, or NULL when absent or null. */
const cJSON *os_json_get(const os_json_file *f, const char *key);

int os_json_int(os_json_file *f, const char *key, int fallback);
/* The same, but the value must be at least min. */
int os_json_int_min(os_json_file *f, const char *key, int fallback, int min);
double os_json_number(os_json_file *f, const char *key, double fallback);
bool os_json_bool(os_json_file *f, const char *key, bool fallback);
const char *os_json_string(os_json_file *f, const char *key, const char *fallback);

/* A list of at most max positive ints (the fallback when absent); returns its length. */
int os_json_int_list(os_json_file *f, const char *key, const int *fallback, int n_fallback,
                     int *out, int max);
/* n positive ints from a single int (repeated) or a list of exactly n; when
 * absent, the fallback list, which must then have n entries too. */
void os_json_int_per_level(os_json_file *f, const char *key, const int *fallback, int n_fallback,
                           int n, int *out);
/* A list of at most max strings (pointers into the document); returns its length. */
int os_json_string_list(os_json_file *f, const char *key, const char *const *fallback,
                        int n_fallback, const char **out, int max);
/* n numbers from a list of exactly n (the fallback when absent). */
void os_json_number_list(os_json_file *f, const char *key, const float *fallback, int n,
                         float *out);

#endif
