/* Consistency grid tables (checkpoints.md 1.5), NFE counts, and the cm / tts
 * samplers against denoisers whose results are known in closed form. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grid.h"
#include "philox.h"
#include "sampler.h"
#include "test_util.h"

static void check_rel(double got, double want, double tol, const char *what)
{
  double err = fabs(got - want) / fmax(fabs(want), 1e-30);
  CHECK(err <= tol, "%s: got %.7g, want %.7g (rel err %.2g > %.2g)", what, got, want, err, tol);
}

/* AnimateLCM-SVD's published sigma tables, k = 1..8 on its 40-point grid
 * (4 significant digits). */
static void test_animatelcm_tables(void)
{
  static const double table[8][8] = {
      {700},
      {700, 13.68},
      {700, 70.54, 2.269},
      {700, 128.6, 13.68, 0.4969},
      {700, 186.7, 36.58, 4.353, 0.2012},
      {700, 266.2, 86.66, 22.76, 4.353, 0.4969},
      {700, 315.7, 128.6, 45.85, 13.68, 3.167, 0.4969},
      {700, 315.7, 128.6, 45.85, 13.68, 3.167, 0.4969, 0.03975},
  };
  for (int k = 1; k <= 8; k++) {
    float sigmas[9];
    onestep_error err;
    CHECK(os_cm_schedule(OS_CM_GRID_ANIMATELCM, k, sigmas, &err) == ONESTEP_OK, "k=%d: %s", k,
          err.message);
    for (int i = 0; i < k; i++) {
      char what[64];
      snprintf(what, sizeof what, "k=%d sigma[%d]", k, i);
      check_rel(sigmas[i], table[k - 1][i], 6e-4, what);
    }
    CHECK(sigmas[k] == 0.0f, "k=%d: last sigma %g, want 0", k, sigmas[k]);
  }

  /* The six-digit float64 values for k = 4 and the extra k = 8 points. */
  static const double k4[4] = {700.000000, 128.563697, 13.678444, 0.496878};
  static const double k8_extra[4] = {315.737397, 45.850724, 3.166611, 0.039754};
  float s4[5], s8[9];
  os_cm_schedule(40, 4, s4, NULL);
  os_cm_schedule(40, 8, s8, NULL);
  for (int i = 0; i < 4; i++) {
    check_rel(s4[i], k4[i], 2e-6, "k=4 six-digit sigma");
    check_rel(s8[2 * i + 1], k8_extra[i], 2e-5, "k=8 six-digit sigma");
  }
  /* The preconditioning at those levels (k = 4 reference table). */
  static const double c_in[4] = {1.428570e-3, 7.778010e-3, 7.291314e-2, 8.955426e-1};
  static const double c_skip[4] = {2.040812e-6, 6.049744e-5, 5.316326e-3, 8.019965e-1};
  static const double c_out[4] = {-0.999999, -0.999970, -0.997338, -0.444976};
  static const double c_noise[4] = {1.637770, 1.214106, 0.653955, -0.174852};
  for (int i = 0; i < 4; i++) {
    check_rel(os_c_in(s4[i]), c_in[i], 2e-6, "c_in");
    check_rel(os_c_skip(s4[i]), c_skip[i], 2e-6, "c_skip");
    check_rel(os_c_out(s4[i]), c_out[i], 2e-6, "c_out");
    check_rel(os_c_noise(s4[i]), c_noise[i], 5e-6, "c_noise");
  }

  /* The full grid's ends. */
  float grid[40];
  os_cm_grid(40, grid);
  static const double head[4] = {700, 601.2, 514.6, 438.9};
  static const double tail[4] = {0.02104, 0.01045, 0.004799, 0.002};
  for (int i = 0; i < 4; i++) {
    check_rel(grid[i], head[i], 2e-4, "grid head");
    check_rel(grid[36 + i], tail[i], 6e-4, "grid tail");
  }
  /* k = 40 visits sigma_min; k > N is refused with a message. */
  float s40[41];
  os_cm_schedule(40, 40, s40, NULL);
  check_rel(s40[39], 0.002, 1e-6, "k=40 last level");
  onestep_error err;
  float s41[42];
  CHECK(os_cm_schedule(40, 41, s41, &err) == ONESTEP_ERR_INVALID_ARGUMENT &&
            strstr(err.message, "41 steps"),
        "k=41 on a 40-point grid must be refused, got '%s'", err.message);
  /* OSV's 100-point grid: 1 step at 700, the TTS mid level at index 50. */
  CHECK(os_cm_schedule_index(100, 2, 1) == 50, "2-step index on N=100");
}

static void test_nfe(void)
{
  CHECK(os_sampler_nfe(ONESTEP_SAMPLER_TTS, 1, false) == 2, "tts 1 step = 2");
  CHECK(os_sampler_nfe(ONESTEP_SAMPLER_TTS, 3, false) == 6, "tts 3 steps = 6");
  CHECK(os_sampler_nfe(ONESTEP_SAMPLER_CM, 4, false) == 4, "cm 4 steps = 4");
  CHECK(os_sampler_nfe(ONESTEP_SAMPLER_EULER, 25, true) == 50, "euler 25 CFG = 50");
  CHECK(os_sampler_nfe(ONESTEP_SAMPLER_EULER, 25, false) == 25, "euler 25 no CFG = 25");
}

/* Network output F(x, s) = w x, so x0 = (c_skip(s) + c_out(s) w) x. */
typedef struct {
  double w;
  const float *point; /* when set: the ideal denoiser of a point mass, x0 = point */
  int calls;
  int fail_at; /* 1-based call that fails, 0 = never */
} test_denoiser;

static onestep_status denoise(void *self, const float *x, float sigma, float *x0,
                              float *model_out, onestep_error *error)
{
  test_denoiser *t = self;
  t->calls++;
  if (t->fail_at && t->calls == t->fail_at)
    return os_error_set(error, ONESTEP_ERR_ABORTED, "stopped at call %d", t->calls);
  for (size_t j = 0; j < 6; j++) {
    double F = t->point ? (t->point[j] - os_c_skip(sigma) * x[j]) / os_c_out(sigma) : t->w * x[j];
    double out = t->point ? t->point[j] : os_c_skip(sigma) * x[j] + os_c_out(sigma) * F;
    x0[j] = (float)out;
    if (model_out)
      model_out[j] = (float)F;
  }
  return ONESTEP_OK;
}

static const float eps0[6] = {0.3f, -1.2f, 0.8f, 2.1f, -0.4f, 0.05f};

static double g(double s, double w) { return os_c_skip(s) + os_c_out(s) * w; }

static void test_cm(void)
{
  float sigmas[5], out[6], out2[6];
  onestep_error err;
  test_denoiser t = {.w = 0.9};
  os_denoiser d = {denoise, &t, 6};

  /* 1 step: x0 = g(s0) sqrt(s0^2+1) eps0, one call. */
  os_cm_schedule(40, 1, sigmas, NULL);
  CHECK(os_sample_cm(&d, sigmas, 1, eps0, 7, out, &err) == ONESTEP_OK, "%s", err.message);
  CHECK(t.calls == 1, "cm 1 step: %d calls", t.calls);
  for (int j = 0; j < 6; j++) {
    double s0 = sigmas[0];
    check_rel(out[j], g(s0, t.w) * sqrt(s0 * s0 + 1) * eps0[j], 1e-5, "cm 1 step");
  }

  /* 2 steps: x0 of level 0, re-noised with stream OS_NOISE_STEP_BASE, denoised at s1. */
  os_cm_schedule(40, 2, sigmas, NULL);
  t.calls = 0;
  CHECK(os_sample_cm(&d, sigmas, 2, eps0, 7, out, &err) == ONESTEP_OK, "%s", err.message);
  CHECK(t.calls == 2, "cm 2 steps: %d calls", t.calls);
  float z[6];
  os_philox_normal(7, OS_NOISE_STEP_BASE, 0, z, 6);
  for (int j = 0; j < 6; j++) {
    double s0 = sigmas[0], s1 = sigmas[1];
    double x0 = g(s0, t.w) * sqrt(s0 * s0 + 1) * eps0[j];
    check_rel(out[j], g(s1, t.w) * (x0 + s1 * z[j]), 1e-5, "cm 2 steps");
  }

  /* Determinism, and the seed matters from the second step on. */
  os_sample_cm(&d, sigmas, 2, eps0, 7, out2, NULL);
  CHECK(memcmp(out, out2, sizeof out) == 0, "cm: same seed, different result");
  os_sample_cm(&d, sigmas, 2, eps0, 8, out2, NULL);
  CHECK(memcmp(out, out2, sizeof out) != 0, "cm: the seed has no effect");

  /* The ideal denoiser of a point mass returns the point for any k. */
  static const float point[6] = {0.5f, -0.25f, 1.0f, 0.0f, -1.5f, 0.125f};
  test_denoiser ideal = {.point = point};
  os_denoiser di = {denoise, &ideal, 6};
  os_cm_schedule(40, 4, sigmas, NULL);
  os_sample_cm(&di, sigmas, 4, eps0, 3, out, NULL);
  CHECK(ideal.calls == 4, "cm 4 steps: %d calls", ideal.calls);
  for (int j = 0; j < 6; j++)
    check_rel(out[j] + 10.0, point[j] + 10.0, 1e-6, "cm ideal denoiser");

  /* A failing denoiser's error comes through. */
  t.calls = 0;
  t.fail_at = 2;
  CHECK(os_sample_cm(&d, sigmas, 4, eps0, 7, out, &err) == ONESTEP_ERR_ABORTED &&
            strstr(err.message, "call 2"),
        "cm: denoiser error lost");
}

/* osv-method.md section 2, step by step in double precision. */
static double tts_one_level(double x, double e, double s, double sm, double w)
{
  double F1 = w * x, f1 = os_c_skip(s) * x + os_c_out(s) * F1;
  double e1 = (e + (x - f1) / s) / 2;
  double xm = f1 + sm * e1;
  double F2 = w * xm, f2 = os_c_skip(sm) * xm + os_c_out(sm) * F2;
  double e2 = (e + (xm - f2) / sm) / 2;
  return os_c_skip(s) * (f2 + s * e2) + os_c_out(s) * F2;
}

static void test_tts(void)
{
  float grid[100], out[6], out2[6];
  onestep_error err;
  os_cm_grid(100, grid);
  test_denoiser t = {.w = 0.9};
  os_denoiser d = {denoise, &t, 6};

  CHECK(os_sample_tts(&d, grid, 100, 1, eps0, out, &err) == ONESTEP_OK, "%s", err.message);
  CHECK(t.calls == 2, "tts 1 step: %d calls, want 2", t.calls);
  double sT = grid[0], sM = grid[50];
  check_rel(sT, 700, 1e-6, "tts top level");
  for (int j = 0; j < 6; j++)
    check_rel(out[j], tts_one_level(sT * eps0[j], eps0[j], sT, sM, t.w), 1e-4, "tts 1 step");

  /* k = 2: levels at indices 0 and 50, interleaved levels 33 and 66; the second
   * level starts from x0 + s1 eps0. */
  t.calls = 0;
  CHECK(os_sample_tts(&d, grid, 100, 2, eps0, out, &err) == ONESTEP_OK, "%s", err.message);
  CHECK(t.calls == 4, "tts 2 steps: %d calls, want 4", t.calls);
  for (int j = 0; j < 6; j++) {
    double x0 = tts_one_level(grid[0] * eps0[j], eps0[j], grid[0], grid[33], t.w);
    double want = tts_one_level(x0 + grid[50] * eps0[j], eps0[j], grid[50], grid[66], t.w);
    check_rel(out[j], want, 1e-4, "tts 2 steps");
  }
  os_sample_tts(&d, grid, 100, 2, eps0, out2, NULL);
  CHECK(memcmp(out, out2, sizeof out) == 0, "tts is not deterministic");

  CHECK(os_sample_tts(&d, grid, 100, 100, eps0, out, &err) == ONESTEP_ERR_INVALID_ARGUMENT,
        "tts with k = N must be refused");
  t.fail_at = t.calls + 2;
  CHECK(os_sample_tts(&d, grid, 100, 1, eps0, out, &err) == ONESTEP_ERR_ABORTED,
        "tts: denoiser error lost");
}

int main(void)
{
  test_animatelcm_tables();
  test_nfe();
  test_cm();
  test_tts();
  return test_summary("samplers");
}
