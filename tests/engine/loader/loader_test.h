/* loader_test.h: tiny check macros and temp-dir fixtures for the loader tests. */
#ifndef LOADER_TEST_H
#define LOADER_TEST_H

#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onestep.h"

static int test_failures;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
      test_failures++;                                                               \
    }                                                                                \
  } while (0)

/* The call failed with `code` and a message containing every given fragment. */
#define CHECK_ERROR(status, err, expected_code, ...)                                 \
  check_error_at(__FILE__, __LINE__, (status), &(err), (expected_code),              \
                 (const char *[]){__VA_ARGS__, NULL})

static inline void
check_error_at(const char *file, int line, onestep_status status, const onestep_error *err,
               onestep_status expected_code, const char **fragments)
{
  if (status != expected_code || err->code != expected_code) {
    fprintf(stderr, "%s:%d: expected error code %d, got status %d / code %d (\"%s\")\n", file,
            line, expected_code, status, err->code, err->message);
    test_failures++;
    return;
  }
  for (const char **f = fragments; *f; f++) {
    if (!strstr(err->message, *f)) {
      fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", file, line, err->message, *f);
      test_failures++;
    }
  }
}

static inline char *
make_temp_dir(void)
{
  const char *base = getenv("TMPDIR");
  char *path;
  if (asprintf(&path, "%s/onestep-loader-XXXXXX", base && *base ? base : "/tmp") < 0 ||
      !mkdtemp(path)) {
    perror("mkdtemp");
    exit(2);
  }
  return path;
}

static inline int
remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
  return remove(path);
}

static inline void
remove_tree(char *path)
{
  nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(path);
}

/* Number of entries in a folder, not counting . and .. */
static inline int
count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  int n = 0;
  if (!d)
    return -1;
  for (struct dirent *e; (e = readdir(d));)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static inline char *
join_path(const char *dir, const char *name)
{
  char *path;
  if (asprintf(&path, "%s/%s", dir, name) < 0)
    exit(2);
  return path;
}

static inline void
write_bytes(const char *path, const void *bytes, size_t len)
{
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

static inline void
write_text(const char *path, const char *text)
{
  write_bytes(path, text, strlen(text));
}

/* A raw safetensors file: the given u64 header length, the header text, then
 * data_len bytes of data (or a byte pattern when data is NULL). */
static inline void
write_safetensors_raw(const char *path, uint64_t header_len, const char *header,
                      const void *data, size_t data_len)
{
  size_t text_len = strlen(header);
  size_t total = 8 + text_len + data_len;
  unsigned char *bytes = calloc(1, total);
  for (int i = 0; i < 8; i++)
    bytes[i] = (unsigned char)(header_len >> (8 * i));
  memcpy(bytes + 8, header, text_len);
  for (size_t i = 0; i < data_len; i++)
    bytes[8 + text_len + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
  write_bytes(path, bytes, total);
  free(bytes);
}

static inline int
test_summary(const char *name)
{
  if (test_failures)
    fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
  else
    printf("%s: all checks passed\n", name);
  return test_failures ? 1 : 0;
}

#endif
