/* Safetensors: a round trip, every corruption the validator must catch, and
 * exact F16/BF16 conversion. Fixtures are written at run time to a temp dir. */
#include <math.h>
#include <stdint.h>

#include "loader_test.h"
#include "safetensors.h"

static char *tmp_dir;

static char *
write_raw(const char *name, uint64_t header_len, const char *header, size_t data_len)
{
  char *path = join_path(tmp_dir, name);
  write_safetensors_raw(path, header_len, header, NULL, data_len);
  return path;
}

static char *
write_header(const char *name, const char *header, size_t data_len)
{
  return write_raw(name, strlen(header), header, data_len);
}

/* Opening must fail with FORMAT and a message naming the file and each of
 * up to three fragments (the list ends at the first NULL). */
static void
expect_corrupt_at(int line, const char *path, const char *const *fragments)
{
  const char *wanted[5] = {path};
  for (int i = 0; i < 3 && fragments[i]; i++)
    wanted[i + 1] = fragments[i];

  onestep_error err = {0};
  os_safetensors *st = os_safetensors_open(path, &err);
  CHECK(st == NULL);
  os_safetensors_close(st);
  check_error_at(__FILE__, line, ONESTEP_ERR_FORMAT, &err, ONESTEP_ERR_FORMAT, wanted);
}

#define EXPECT_CORRUPT(path, ...) \
  expect_corrupt_at(__LINE__, (path), (const char *const[]){__VA_ARGS__, NULL})

static void
test_round_trip(void)
{
  float a[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
  float b[1] = {42};
  os_st_write_tensor tensors[] = {
      {.name = "zeta.weight", .ndim = 2, .shape = {2, 3}, .data = a},
      {.name = "alpha \"quoted\"", .ndim = 0, .data = b},
      {.name = "empty", .ndim = 2, .shape = {0, 5}, .data = NULL},
  };
  char *path = join_path(tmp_dir, "round.safetensors");
  onestep_error err = {0};
  CHECK(os_safetensors_write(path, tensors, 3, &err) == ONESTEP_OK);
  CHECK(count_entries(tmp_dir) == 1); /* no temporary file left */

  os_safetensors *st = os_safetensors_open(path, &err);
  CHECK(st != NULL);
  if (st) {
    CHECK(st->n_tensors == 3);
    CHECK(strcmp(st->tensors[0].name, "alpha \"quoted\"") == 0); /* sorted */
    CHECK(strcmp(st->tensors[2].name, "zeta.weight") == 0);
    const os_st_tensor *t = os_safetensors_find(st, "zeta.weight");
    CHECK(t && t->dtype == OS_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 &&
          t->shape[1] == 3 && t->nbytes == sizeof a);
    CHECK(t && memcmp(t->data, a, sizeof a) == 0);
    t = os_safetensors_find(st, "alpha \"quoted\"");
    CHECK(t && t->ndim == 0 && t->nbytes == 4 && *(const float *)t->data == 42.0f);
    t = os_safetensors_find(st, "empty");
    CHECK(t && t->nbytes == 0 && t->shape[1] == 5);
    CHECK(os_safetensors_find(st, "missing") == NULL);
    /* the data section starts 8-byte aligned */
    CHECK(((const unsigned char *)os_safetensors_find(st, "alpha \"quoted\"")->data -
           (const unsigned char *)st->map) % 8 == 0);
  }
  os_safetensors_close(st);
  unlink(path);
  free(path);
}

static void
test_write_failure_leaves_nothing(void)
{
  float a[1] = {1};
  os_st_write_tensor t = {.name = "a", .ndim = 1, .shape = {1}, .data = a};
  onestep_error err = {0};

  char *missing_dir = join_path(tmp_dir, "no/such/dir/x.safetensors");
  CHECK_ERROR(os_safetensors_write(missing_dir, &t, 1, &err), err, ONESTEP_ERR_IO, missing_dir);
  free(missing_dir);

  /* renaming onto a folder fails after the data is written: the temp file must go */
  char *sub = join_path(tmp_dir, "occupied");
  CHECK(mkdir(sub, 0700) == 0);
  CHECK_ERROR(os_safetensors_write(sub, &t, 1, &err), err, ONESTEP_ERR_IO, sub);
  CHECK(count_entries(tmp_dir) == 1);
  rmdir(sub);
  free(sub);

  os_st_write_tensor twice[2] = {t, t};
  char *path = join_path(tmp_dir, "twice.safetensors");
  CHECK_ERROR(os_safetensors_write(path, twice, 2, &err), err, ONESTEP_ERR_INVALID_ARGUMENT,
              "'a'");
  CHECK(count_entries(tmp_dir) == 0);
  free(path);
}

static void
test_corrupt_files(void)
{
  char *path;

  path = join_path(tmp_dir, "tiny.safetensors");
  write_bytes(path, "\x10\0\0", 3);
  EXPECT_CORRUPT(path, "8-byte");
  unlink(path), free(path);

  path = write_raw("long_header.safetensors", 1000, "{}", 0);
  EXPECT_CORRUPT(path, "header length 1000 exceeds the file");
  unlink(path), free(path);

  /* a huge length in a small file is caught by the file-size check */
  path = write_raw("huge_header.safetensors", UINT64_C(1) << 62, "{}", 0);
  EXPECT_CORRUPT(path, "exceeds the file");
  unlink(path), free(path);

  /* a length over 100 MB is refused even when the file is that large (sparse) */
  path = write_raw("over_limit.safetensors", 100000000, "{}", 0);
  CHECK(truncate(path, 100000008 + 16) == 0);
  EXPECT_CORRUPT(path, "100 MB");
  unlink(path), free(path);

  /* headers the validator must refuse: file name, header, data bytes, fragments */
  static const struct {
    const char *file;
    const char *header;
    size_t data_len;
    const char *fragments[3];
  } bad_headers[] = {
      {"not_json.safetensors",
       "{\"a\": {\"dtype\": \"F32\",",
       0,
       {"not valid JSON"}},
      {"array.safetensors",
       "[1, 2]",
       0,
       {"not a JSON object"}},
      {"overlap.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
       12,
       {"'b'", "'a'", "overlap"}},
      {"gap.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
       16,
       {"'b'", "gap"}},
      {"late_start.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8,
       {"'a'", "start at 0"}},
      {"truncated_data.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
       10,
       {"'a'", "ends at byte 16", "10 bytes"}},
      {"trailing_data.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
       12,
       {"'a'", "12 bytes"}},
      {"size_mismatch.safetensors",
       "{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
       24,
       {"'w'", "24 bytes", "needs 12"}},
      {"int8.safetensors",
       "{\"q\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
       4,
       {"'q'", "I8"}},
      {"f64.safetensors",
       "{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
       8,
       {"'d'", "F64"}},
      {"duplicate.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8,
       {"'a'", "twice"}},
      {"negative_dim.safetensors",
       "{\"n\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}",
       0,
       {"'n'", "shape"}},
      {"too_many_dims.safetensors",
       "{\"n\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
       "\"data_offsets\":[0,4]}}",
       4,
       {"'n'", "9 dimensions"}},
      {"overflow.safetensors",
       "{\"n\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
       "\"data_offsets\":[0,0]}}",
       0,
       {"'n'", "too large"}},
      {"bad_offsets.safetensors",
       "{\"n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
       4,
       {"'n'", "data_offsets"}},
      {"no_dtype.safetensors",
       "{\"n\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
       4,
       {"'n'", "dtype"}},
      {"bad_metadata.safetensors",
       "{\"__metadata__\":{\"format\":3}}",
       0,
       {"__metadata__", "format"}},
  };
  for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
    path = write_header(bad_headers[i].file, bad_headers[i].header, bad_headers[i].data_len);
    expect_corrupt_at(__LINE__, path, bad_headers[i].fragments);
    unlink(path), free(path);
  }
}

static void
test_metadata_and_missing_file(void)
{
  char *path = write_header("meta.safetensors",
                            "{\"__metadata__\":{\"format\":\"pt\"},"
                            "\"x\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}  ",
                            4);
  onestep_error err = {0};
  os_safetensors *st = os_safetensors_open(path, &err);
  CHECK(st && st->n_tensors == 1 && st->tensors[0].dtype == OS_DTYPE_BF16);
  os_safetensors_close(st);
  unlink(path), free(path);

  path = join_path(tmp_dir, "absent.safetensors");
  CHECK(os_safetensors_open(path, &err) == NULL);
  CHECK_ERROR(ONESTEP_ERR_IO, err, ONESTEP_ERR_IO, path);
  free(path);
}

static void
test_half_conversion(void)
{
  const uint16_t f16[] = {0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff,
                          0x0400, 0x7c00, 0xfc00, 0x7e00, 0x3555};
  const float f16_expected[] = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f, 0x1p-24f,
                                1023 * 0x1p-24f, 0x1p-14f, INFINITY, -INFINITY, NAN,
                                0.333251953125f};
  const size_t n16 = sizeof f16 / sizeof f16[0];
  float out[16];
  os_dtype_to_f32(out, f16, OS_DTYPE_F16, n16);
  for (size_t i = 0; i < n16; i++) {
    if (isnan(f16_expected[i]))
      CHECK(isnan(out[i]));
    else
      CHECK(out[i] == f16_expected[i] && signbit(out[i]) == signbit(f16_expected[i]));
  }

  const uint16_t bf16[] = {0x3f80, 0xc040, 0x0001, 0x7f80, 0x3eab, 0x8000};
  const float bf16_expected[] = {1.0f, -3.0f, 0x1p-133f, INFINITY, 0.333984375f, -0.0f};
  os_dtype_to_f32(out, bf16, OS_DTYPE_BF16, 6);
  for (int i = 0; i < 6; i++)
    CHECK(out[i] == bf16_expected[i] && signbit(out[i]) == signbit(bf16_expected[i]));

  /* unaligned source bytes */
  unsigned char buf[5] = {0xff, 0x00, 0x3c, 0x00, 0xc0};
  os_dtype_to_f32(out, buf + 1, OS_DTYPE_F16, 2);
  CHECK(out[0] == 1.0f && out[1] == -2.0f);
}

/* The files of tiny-a, written by Python's safetensors, open and index. */
static void
test_reference_files(const char *model_dir)
{
  static const struct {
    const char *file;
    int n_tensors;
  } files[] = {
      {"unet/diffusion_pytorch_model.safetensors", 626},
      {"vae/diffusion_pytorch_model.safetensors", 161},
      {"image_encoder/model.safetensors", 40},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char *path = join_path(model_dir, files[i].file);
    onestep_error err = {0};
    os_safetensors *st = os_safetensors_open(path, &err);
    CHECK(st && st->n_tensors == files[i].n_tensors);
    if (!st)
      fprintf(stderr, "%s\n", err.message);
    for (int t = 0; st && t < st->n_tensors; t++) {
      CHECK(st->tensors[t].dtype == OS_DTYPE_F32);
      CHECK(os_safetensors_find(st, st->tensors[t].name) == &st->tensors[t]);
    }
    os_safetensors_close(st);
    free(path);
  }
  char *unet_path = join_path(model_dir, files[0].file);
  onestep_error err = {0};
  os_safetensors *unet = os_safetensors_open(unet_path, &err);
  const os_st_tensor *conv_in = unet ? os_safetensors_find(unet, "conv_in.weight") : NULL;
  CHECK(conv_in && conv_in->ndim == 4 && conv_in->shape[0] == 32 && conv_in->shape[1] == 8 &&
        conv_in->shape[2] == 3 && conv_in->shape[3] == 3);
  os_safetensors_close(unet);
  free(unet_path);
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s TINY_MODEL_DIR\n", argv[0]);
    return 2;
  }
  tmp_dir = make_temp_dir();
  test_reference_files(argv[1]);
  test_round_trip();
  test_write_failure_leaves_nothing();
  test_corrupt_files();
  test_metadata_and_missing_file();
  test_half_conversion();
  CHECK(count_entries(tmp_dir) == 0);
  remove_tree(tmp_dir);
  return test_summary("safetensors");
}
