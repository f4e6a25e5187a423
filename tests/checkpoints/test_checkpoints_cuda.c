/* The checkpoint formats and the preview fit on the CUDA backend: weights
 * from the folder and from the single file, uploaded to the GPU, give
 * bit-identical UNet outputs there; the preview decoder fitted through the
 * GPU VAE agrees with the CPU fit. Skips (77) without a usable GPU.
 *
 * usage: test-checkpoints-cuda MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "preview.h"
#include "sgm_fixture.h"
#include "test_util.h"
#include "unet.h"
#include "vae.h"

static os_model_source open_ok(const char *path, const os_checkpoint_options *o, os_backend *be)
{
  os_model_source src;
  onestep_error err = {0};
  if (os_checkpoint_open(path, o, be, &src, &err) != ONESTEP_OK) {
    fprintf(stderr, "cannot open %s: %s\n", path, err.message);
    exit(1);
  }
  return src;
}

static float *to_device(os_backend *be, const float *host, size_t n)
{
  float *dev = be->ops->alloc(be, n * sizeof(float));
  be->ops->upload(be, dev, host, n * sizeof(float));
  return dev;
}

/* UNet forward on the GPU; out is host memory. */
static void unet_on_gpu(os_backend *be, os_model_source *src, float *out, size_t out_n)
{
  enum { F = 2, H = 8, W = 8 };
  const os_unet_config *uc = &src->config.unet;
  size_t in_n = (size_t)F * uc->in_channels * H * W;
  float *sample = malloc(in_n * sizeof(float)), *context = malloc(uc->cross_attention_dim * sizeof(float));
  for (size_t i = 0; i < in_n; i++)
    sample[i] = sinf(0.37f * (float)i);
  for (int i = 0; i < uc->cross_attention_dim; i++)
    context[i] = cosf(0.11f * (float)i);
  float ids[3] = {6, 127, 0.02f};
  float *sample_dev = to_device(be, sample, in_n);
  float *context_dev = to_device(be, context, uc->cross_attention_dim);
  float *out_dev = be->ops->alloc(be, out_n * sizeof(float));
  onestep_error err = {0};
  os_unet *unet = os_unet_bind(uc, src->unet);
  CHECK(unet && os_weights_finish(src->unet, &err) == ONESTEP_OK, "bind: %s", err.message);
  if (unet) {
    CHECK(os_unet_forward(unet, be, sample_dev, 0.5f, context_dev, ids, 1, F, H, W, out_dev,
                          &err) == ONESTEP_OK &&
              be->ops->sync(be, &err) == ONESTEP_OK,
          "forward: %s", err.message);
    be->ops->download(be, out, out_dev, out_n * sizeof(float));
  }
  os_unet_free(unet);
  be->ops->free(be, sample_dev);
  be->ops->free(be, context_dev);
  be->ops->free(be, out_dev);
  free(sample);
  free(context);
}

static void check_single_file_on_gpu(os_backend *gpu, const char *model_dir, const char *tmp)
{
  os_model_source folder = open_ok(model_dir, NULL, gpu);
  char path[512];
  snprintf(path, sizeof path, "%s/tiny-svd_xt.safetensors", tmp);
  sgm_fixture_single_file(model_dir, path, &folder.config.unet, folder.config.vae.n_levels, false);
  os_checkpoint_options o = os_checkpoint_default_options();
  o.unet_attention_heads = folder.config.unet.num_attention_heads[0];
  o.clip_attention_heads = folder.config.clip.num_attention_heads;
  os_model_source single = open_ok(path, &o, gpu);
  size_t out_n = (size_t)2 * folder.config.unet.out_channels * 8 * 8;
  float *a = calloc(out_n, sizeof(float)), *b = calloc(out_n, sizeof(float));
  unet_on_gpu(gpu, &folder, a, out_n);
  unet_on_gpu(gpu, &single, b, out_n);
  double norm = 0;
  for (size_t i = 0; i < out_n; i++)
    norm += fabs(a[i]);
  CHECK(norm > 0, "the GPU UNet output is all zeros");
  CHECK(memcmp(a, b, out_n * sizeof(float)) == 0,
        "GPU UNet outputs differ between the folder and the single file");
  printf("  GPU UNet forward: folder and single file %s (mean |out| %.4f)\n",
         memcmp(a, b, out_n * sizeof(float)) == 0 ? "bit-identical" : "DIFFER", norm / out_n);
  free(a);
  free(b);
  os_checkpoint_close(&single);
  os_checkpoint_close(&folder);
  unlink(path);
}

static os_preview_decoder fit_on(os_backend *be, const char *model_dir, const char *cache,
                                 uint64_t *key)
{
  os_model_source src = open_ok(model_dir, NULL, be);
  os_vae *vae = os_vae_bind(&src.config.vae, src.vae);
  onestep_error err = {0};
  os_preview_decoder pd = {0};
  *key = os_checkpoint_decoder_hash(&src);
  CHECK(vae && os_preview_for_vae(&pd, vae, &src.config.vae, be, *key, cache, &err) == ONESTEP_OK,
        "preview fit: %s", err.message);
  os_vae_free(vae);
  os_checkpoint_close(&src);
  return pd;
}

static void check_preview_on_gpu(os_backend *gpu, os_backend *cpu, const char *model_dir,
                                 const char *tmp)
{
  char gpu_cache[512], cpu_cache[512];
  snprintf(gpu_cache, sizeof gpu_cache, "%s/gpu", tmp);
  snprintf(cpu_cache, sizeof cpu_cache, "%s/cpu", tmp);
  uint64_t key;
  os_preview_decoder g = fit_on(gpu, model_dir, gpu_cache, &key);
  os_preview_decoder c = fit_on(cpu, model_dir, cpu_cache, &key);
  if (!g.weight || !c.weight)
    return;
  size_t n = (size_t)3 * g.scale * g.scale * g.channels * g.kernel * g.kernel;
  double worst = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    worst = fmax(worst, fabs(g.weight[i] - c.weight[i]));
    scale = fmax(scale, fabs(c.weight[i]));
  }
  printf("  preview fit through the GPU VAE vs the CPU VAE: max weight difference %.3g "
         "(largest weight %.3g)\n",
         worst, scale);
  CHECK(worst <= 1e-2 * scale, "GPU and CPU preview fits differ by %.3g", worst);
  const char *dirs[2] = {gpu_cache, cpu_cache};
  for (int d = 0; d < 2; d++) {
    char file[700];
    snprintf(file, sizeof file, "%s/preview-%016llx-r%d-k%d.safetensors", dirs[d],
             (unsigned long long)key, c.scale, c.kernel);
    unlink(file);
    rmdir(dirs[d]);
  }
  os_preview_free(&g);
  os_preview_free(&c);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  onestep_error err = {0};
  os_backend *gpu = os_backend_cuda_new(ONESTEP_PRECISION_FP32, &err);
  if (!gpu) {
    printf("skipped: no usable CUDA backend (%s)\n", err.message);
    return 77;
  }
  os_backend *cpu = os_backend_cpu_new(0, &err);
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s/onestep-ckpt-cuda-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmp))
    return 2;
  check_single_file_on_gpu(gpu, argv[1], tmp);
  check_preview_on_gpu(gpu, cpu, argv[1], tmp);
  gpu->ops->destroy(gpu);
  cpu->ops->destroy(cpu);
  rmdir(tmp);
  return test_summary("checkpoints on CUDA");
}
