/* Weight sets: binding by name with shape checks, dtype conversion, the
 * transform hook, zero-copy on the CPU backend, upload on a device-style
 * backend, and the errors for missing, extra and mis-shaped tensors. */
#include <math.h>

#include "backend.h"
#include "error.h"
#include "loader_test.h"
#include "weights.h"

static char *tmp_dir;

static const float conv_values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const float norm_values[4] = {-1, 0.5f, 0.25f, 100};
static const uint16_t proj_f16[6] = {0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff, 0x8000};
static const float proj_values[6] = {1, -2, 0.5f, 0x1p-24f, 65504, -0.0f};
static const uint16_t scale_bf16[1] = {0x4040};

/* conv.weight F32 [4,2,1,1], norm.weight F32 [4], proj.weight F16 [2,3], scale BF16 [1];
 * the header's space padding puts the data section 4-byte aligned or not. */
static char *
write_fixture(const char *name, bool aligned)
{
  char header[512];
  int len = snprintf(header, sizeof header,
                     "{\"conv.weight\":{\"dtype\":\"F32\",\"shape\":[4,2,1,1],\"data_offsets\":[0,32]},"
                     "\"norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]},"
                     "\"proj.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[48,60]},"
                     "\"scale\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[60,62]}}");
  /* the data section starts at 8 + len */
  while (len % 8 != (aligned ? 0 : 2))
    header[len++] = ' ';
  header[len] = '\0';
  unsigned char data[62];
  memcpy(data, conv_values, 32);
  memcpy(data + 32, norm_values, 16);
  memcpy(data + 48, proj_f16, 12);
  memcpy(data + 60, scale_bf16, 2);
  char *path = join_path(tmp_dir, name);
  write_safetensors_raw(path, (uint64_t)len, header, data, sizeof data);
  return path;
}

typedef struct {
  os_safetensors *st;
  os_weight_set *ws;
} fixture;

static fixture
open_fixture(const char *path, os_backend *be)
{
  onestep_error err = {0};
  fixture fx = {.st = os_safetensors_open(path, &err)};
  if (!fx.st) {
    fprintf(stderr, "%s\n", err.message);
    exit(2);
  }
  fx.ws = os_weight_set_new("unet", path, be);
  CHECK(os_weight_set_add_file(fx.ws, fx.st, &err) == ONESTEP_OK);
  return fx;
}

static void
close_fixture(fixture *fx)
{
  os_weight_set_free(fx->ws);
  os_safetensors_close(fx->st);
}

/* Takes every tensor with its right shape. */
static void
take_all(os_weight_set *ws, const float **conv, const float **norm, const float **proj,
         const float **scale)
{
  *conv = os_weights_take(ws, "conv.weight", 2, (const int64_t[]){4, 2});
  *norm = os_weights_takef(ws, (const int64_t[]){4, -1}, "%s.weight", "norm");
  *proj = os_weights_take(ws, "proj.weight", 2, (const int64_t[]){2, 3});
  *scale = os_weights_take(ws, "scale", 0, NULL);
}

static void
test_cpu_binding(os_backend *be, const char *path)
{
  size_t in_use = be->bytes_in_use;
  fixture fx = open_fixture(path, be);
  const float *conv, *norm, *proj, *scale;
  take_all(fx.ws, &conv, &norm, &proj, &scale);
  onestep_error err = {0};
  CHECK(os_weights_finish(fx.ws, &err) == ONESTEP_OK);

  /* F32 on a host backend: the mapping itself, no copy */
  CHECK(conv == os_safetensors_find(fx.st, "conv.weight")->data);
  CHECK(norm == os_safetensors_find(fx.st, "norm.weight")->data);
  CHECK(conv && memcmp(conv, conv_values, sizeof conv_values) == 0);
  CHECK(proj && proj != os_safetensors_find(fx.st, "proj.weight")->data);
  for (int i = 0; proj && i < 6; i++)
    CHECK(proj[i] == proj_values[i] && signbit(proj[i]) == signbit(proj_values[i]));
  CHECK(scale && scale[0] == 3.0f);
  /* only the two converted tensors use backend memory */
  CHECK(be->bytes_in_use >= in_use + 7 * sizeof(float));
  /* taking again gives the same buffer */
  CHECK(os_weights_take(fx.ws, "proj.weight", 2, (const int64_t[]){2, 3}) == proj);

  CHECK(os_weights_param_count(fx.ws) == 8 + 4 + 6 + 1);
  CHECK(strcmp(os_weights_dtype_name(fx.ws), "F32") == 0);
  CHECK(os_weights_has(fx.ws, "scale") && !os_weights_has(fx.ws, "scal"));
  close_fixture(&fx);
  CHECK(be->bytes_in_use == in_use);
}

static void
test_unaligned_f32_is_copied(os_backend *be, const char *path)
{
  fixture fx = open_fixture(path, be);
  const os_st_tensor *t = os_safetensors_find(fx.st, "conv.weight");
  CHECK((uintptr_t)t->data % 4 != 0);
  const float *conv = os_weights_take(fx.ws, "conv.weight", 4, (const int64_t[]){4, 2, 1, 1});
  CHECK(conv && (const void *)conv != t->data && (uintptr_t)conv % 4 == 0);
  CHECK(conv && memcmp(conv, conv_values, sizeof conv_values) == 0);
  close_fixture(&fx);
}

static onestep_status
double_values(const char *name, float *data, int ndim, const int64_t *shape, void *user_data,
              onestep_error *error)
{
  int *calls = user_data;
  (*calls)++;
  if (strcmp(name, "scale") == 0)
    return os_error_set(error, ONESTEP_ERR_MODEL, "lora: no rank for '%s'", name);
  for (int64_t i = 0; i < os_shape_numel(ndim, shape); i++)
    data[i] *= 2;
  return ONESTEP_OK;
}

static void
test_transform(os_backend *be, const char *path)
{
  fixture fx = open_fixture(path, be);
  int calls = 0;
  os_weight_set_set_transform(fx.ws, double_values, &calls);
  const float *conv = os_weights_take(fx.ws, "conv.weight", 2, (const int64_t[]){4, 2});
  const float *proj = os_weights_take(fx.ws, "proj.weight", 2, (const int64_t[]){2, 3});
  CHECK(conv && conv != os_safetensors_find(fx.st, "conv.weight")->data);
  for (int i = 0; conv && i < 8; i++)
    CHECK(conv[i] == 2 * conv_values[i]);
  CHECK(proj && proj[1] == -4.0f);
  /* the mapping stays untouched */
  CHECK(((const float *)os_safetensors_find(fx.st, "conv.weight")->data)[0] == 1.0f);
  CHECK(os_weights_take(fx.ws, "scale", 1, (const int64_t[]){1}) == NULL);
  onestep_error err = {0};
  CHECK_ERROR(os_weights_finish(fx.ws, &err), err, ONESTEP_ERR_MODEL, "lora", "'scale'");
  CHECK(calls == 3);
  close_fixture(&fx);
}

static void
test_errors(os_backend *be, const char *path)
{
  onestep_error err = {0};
  const float *conv, *norm, *proj, *scale;

  fixture fx = open_fixture(path, be);
  take_all(fx.ws, &conv, &norm, &proj, &scale);
  CHECK(os_weights_take(fx.ws, "down_blocks.0.missing.weight", 1, (const int64_t[]){4}) == NULL);
  /* later takes do nothing once an error is latched */
  CHECK(os_weights_take(fx.ws, "also.missing", 1, (const int64_t[]){4}) == NULL);
  CHECK_ERROR(os_weights_finish(fx.ws, &err), err, ONESTEP_ERR_MODEL,
              "unet: tensor 'down_blocks.0.missing.weight' is missing from", path,
              "(required by the config)");
  close_fixture(&fx);

  fx = open_fixture(path, be);
  conv = os_weights_take(fx.ws, "conv.weight", 2, (const int64_t[]){4, 2});
  proj = os_weights_take(fx.ws, "proj.weight", 2, (const int64_t[]){2, 3});
  scale = os_weights_take(fx.ws, "scale", 1, (const int64_t[]){1});
  CHECK(conv && proj && scale);
  CHECK_ERROR(os_weights_finish(fx.ws, &err), err, ONESTEP_ERR_MODEL,
              "unet: tensor 'norm.weight' in", path,
              "is not part of this model (config and weights disagree)");
  close_fixture(&fx);

  fx = open_fixture(path, be);
  CHECK(os_weights_take(fx.ws, "conv.weight", 2, (const int64_t[]){2, 4}) == NULL);
  CHECK_ERROR(os_weights_finish(fx.ws, &err), err, ONESTEP_ERR_MODEL, "'conv.weight'", path,
              "has shape [4,2,1,1], the config implies [2,4]");
  close_fixture(&fx);

  fx = open_fixture(path, be);
  CHECK(os_weights_take(fx.ws, "norm.weight", 2, (const int64_t[]){4, 2}) == NULL);
  CHECK_ERROR(os_weights_finish(fx.ws, &err), err, ONESTEP_ERR_MODEL,
              "has shape [4], the config implies [4,2]");
  /* the same file twice is a duplicate */
  CHECK_ERROR(os_weight_set_add_file(fx.ws, fx.st, &err), err, ONESTEP_ERR_MODEL,
              "'conv.weight' is given twice");
  close_fixture(&fx);
}

static void
test_renamed_sources(os_backend *be, const char *path)
{
  onestep_error err = {0};
  os_safetensors *st = os_safetensors_open(path, &err);
  os_weight_set *ws = os_weight_set_new("vae", "checkpoint.safetensors", be);
  CHECK(os_weight_set_add(ws, "decoder.conv_in.weight", os_safetensors_find(st, "conv.weight"),
                          &err) == ONESTEP_OK);
  CHECK(os_weight_set_add(ws, "decoder.norm.weight", os_safetensors_find(st, "norm.weight"),
                          &err) == ONESTEP_OK);
  CHECK_ERROR(os_weight_set_add(ws, "decoder.norm.weight", os_safetensors_find(st, "scale"), &err),
              err, ONESTEP_ERR_MODEL, "vae", "'decoder.norm.weight' is given twice");
  const float *w = os_weights_take(ws, "decoder.conv_in.weight", 4, (const int64_t[]){4, 2, 1, 1});
  CHECK(w && w[7] == 8.0f);
  CHECK(os_weights_take(ws, "conv.weight", 2, (const int64_t[]){4, 2}) == NULL);
  CHECK_ERROR(os_weights_finish(ws, &err), err, ONESTEP_ERR_MODEL,
              "vae: tensor 'conv.weight' is missing from checkpoint.safetensors");
  os_weight_set_free(ws);
  os_safetensors_close(st);
}

/* The CPU backend's ops, but flagged as device memory, so weights go through
 * alloc + upload as on a GPU. */
static void
test_device_style_upload(os_backend *be, const char *path)
{
  const os_backend_ops *cpu_ops = be->ops;
  os_backend_ops device_ops = *cpu_ops;
  device_ops.is_host = false;
  be->ops = &device_ops;

  size_t in_use = be->bytes_in_use;
  fixture fx = open_fixture(path, be);
  const float *conv, *norm, *proj, *scale;
  take_all(fx.ws, &conv, &norm, &proj, &scale);
  onestep_error err = {0};
  CHECK(os_weights_finish(fx.ws, &err) == ONESTEP_OK);
  CHECK(conv && conv != os_safetensors_find(fx.st, "conv.weight")->data);
  float back[8];
  be->ops->download(be, back, conv, sizeof back);
  CHECK(memcmp(back, conv_values, sizeof back) == 0);
  be->ops->download(be, back, proj, 6 * sizeof(float));
  CHECK(back[4] == 65504.0f);
  CHECK(be->bytes_in_use >= in_use + 19 * sizeof(float));
  close_fixture(&fx);
  CHECK(be->bytes_in_use == in_use);
  be->ops = cpu_ops;
}

int
main(void)
{
  tmp_dir = make_temp_dir();
  onestep_error err = {0};
  os_backend *be = os_backend_cpu_new(1, &err);
  if (!be) {
    fprintf(stderr, "cpu backend: %s\n", err.message);
    return 1;
  }
  char *aligned = write_fixture("aligned.safetensors", true);
  char *unaligned = write_fixture("unaligned.safetensors", false);

  test_cpu_binding(be, aligned);
  test_unaligned_f32_is_copied(be, unaligned);
  test_transform(be, aligned);
  test_errors(be, aligned);
  test_renamed_sources(be, aligned);
  test_device_style_upload(be, aligned);

  be->ops->destroy(be);
  unlink(aligned), free(aligned);
  unlink(unaligned), free(unaligned);
  CHECK(count_entries(tmp_dir) == 0);
  remove_tree(tmp_dir);
  return test_summary("weights");
}
