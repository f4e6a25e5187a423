/* test_pipeline_units.c: the pipeline's model-free parts against tiny-a's
 * recorded reference: Karras sigmas of every run and the CLIP preprocessing. */
#include <cjson/cJSON.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "clip_preprocess.h"
#include "sampler.h"
#include "safetensors.h"
#include "test_util.h"
#include "unet_denoiser.h"

static char *read_text(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  size_t got = fread(text, 1, (size_t)n, f);
  text[got] = '\0';
  fclose(f);
  return text;
}

/* Every run's sigma list in golden.json equals os_karras_sigmas with the
 * case's scheduler config (700, 0.002, rho 7) to the last float bit. */
static void test_karras_sigmas(const char *case_dir)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/golden.json", case_dir);
  char *text = read_text(path);
  CHECK(text != NULL, "cannot read %s", path);
  if (!text)
    return;
  cJSON *root = cJSON_Parse(text);
  cJSON *run;
  int runs = 0;
  cJSON_ArrayForEach(run, cJSON_GetObjectItem(root, "runs"))
  {
    int n = cJSON_GetObjectItem(run, "num_inference_steps")->valueint;
    cJSON *ref = cJSON_GetObjectItem(run, "sigmas");
    float sigmas[64];
    CHECK(cJSON_GetArraySize(ref) == n + 1, "run with %d steps lists %d sigmas", n,
          cJSON_GetArraySize(ref));
    os_karras_sigmas(0.002f, 700.0f, 7.0f, n, sigmas);
    for (int i = 0; i <= n && i < cJSON_GetArraySize(ref); i++) {
      float expected = (float)cJSON_GetArrayItem(ref, i)->valuedouble;
      CHECK(sigmas[i] == expected, "n=%d sigma[%d] = %.9g, reference %.9g", n, i, sigmas[i],
            expected);
    }
    runs++;
  }
  CHECK(runs == 3, "expected 3 runs, found %d", runs);
  cJSON_Delete(root);
  free(text);
}

static void test_clip_preprocess(const char *case_dir)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/input.png", case_dir);
  GdkPixbuf *pixbuf = gdk_pixbuf_new_from_file(path, NULL);
  CHECK(pixbuf != NULL && !gdk_pixbuf_get_has_alpha(pixbuf), "cannot read %s as RGB", path);
  if (!pixbuf)
    return;
  onestep_image image = {gdk_pixbuf_get_width(pixbuf), gdk_pixbuf_get_height(pixbuf),
                         gdk_pixbuf_get_rowstride(pixbuf), gdk_pixbuf_read_pixels(pixbuf)};
  snprintf(path, sizeof path, "%s/golden.safetensors", case_dir);
  onestep_error error = {0};
  os_safetensors *st = os_safetensors_open(path, &error);
  CHECK(st != NULL, "%s", error.message);
  const os_st_tensor *ref = st ? os_safetensors_find(st, "s1_cfg.clip.pixel_values") : NULL;
  CHECK(ref != NULL && ref->dtype == OS_DTYPE_F32 && ref->shape[2] == 224,
        "s1_cfg.clip.pixel_values missing or not F32 [1,3,224,224]");
  if (ref) {
    const os_preprocess_config pre = {{0.48145466f, 0.4578275f, 0.40821073f},
                                      {0.26862954f, 0.26130258f, 0.27577711f}};
    size_t n = 3 * 224 * 224;
    float *out = malloc(n * sizeof(float));
    CHECK(os_clip_preprocess(&image, 224, &pre, out, 2, &error) == ONESTEP_OK, "%s", error.message);
    double rel = relative_l2(out, ref->data, n);
    printf("clip.pixel_values rel err %.3e\n", rel);
    CHECK(rel < 1e-6, "clip.pixel_values rel err %.3e >= 1e-6", rel);
    free(out);
  }
  os_safetensors_close(st);
  g_object_unref(pixbuf);
}

/* The guidance ramp is torch.linspace's, which fills its second half from the end. */
static void test_linspace(void)
{
  float g[5];
  os_linspace(1.0f, 3.0f, 2, g);
  CHECK(g[0] == 1.0f && g[1] == 3.0f, "linspace(1,3,2) = %g %g", g[0], g[1]);
  os_linspace(1.0f, 2.5f, 1, g);
  CHECK(g[0] == 1.0f, "linspace(1,2.5,1) = %g", g[0]);
  os_linspace(1.0f, 3.0f, 5, g);
  CHECK(g[0] == 1.0f && g[2] == 2.0f && g[4] == 3.0f && fabsf(g[3] - 2.5f) < 1e-7f,
        "linspace(1,3,5) = %g %g %g %g %g", g[0], g[1], g[2], g[3], g[4]);
}

/* EDM preconditioning identities and one exact Euler step on a known denoiser. */
static onestep_status half_denoiser(void *self, const float *x, float sigma, float *x0,
                                    float *model_out, onestep_error *error)
{
  const size_t *n = self;
  for (size_t i = 0; i < *n; i++)
    x0[i] = 0.5f * x[i];
  return ONESTEP_OK;
}

static void test_euler(void)
{
  float sigma = 2.0f;
  CHECK(fabsf(os_c_skip(sigma) - 0.2f) < 1e-7f, "c_skip(2) = %g", os_c_skip(sigma));
  CHECK(fabsf(os_c_in(sigma) * sqrtf(5.0f) - 1.0f) < 1e-6f, "c_in(2) = %g", os_c_in(sigma));
  CHECK(fabsf(os_c_out(sigma) + 2.0f / sqrtf(5.0f)) < 1e-6f, "c_out(2) = %g", os_c_out(sigma));
  CHECK(fabsf(os_c_noise(700.0f) - 1.6377701f) < 1e-6f, "c_noise(700) = %g", os_c_noise(700.0f));
  size_t n = 2;
  os_denoiser d = {half_denoiser, &n, n};
  float sigmas[3] = {2.0f, 1.0f, 0.0f};
  float x[2] = {4.0f, -2.0f};
  onestep_error error = {0};
  CHECK(os_sample_euler(&d, sigmas, 2, x, &error) == ONESTEP_OK, "%s", error.message);
  /* Step 1: x0 = 2, d = (4-2)/2 = 1, x = 4 - 1 = 3; step 2 lands on x0 = 1.5. */
  CHECK(x[0] == 1.5f && x[1] == -0.75f, "euler result %g %g", x[0], x[1]);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE_DIR\n", argv[0]);
    return 2;
  }
  test_karras_sigmas(argv[1]);
  test_clip_preprocess(argv[1]);
  test_linspace();
  test_euler();
  return test_summary("pipeline-units");
}
