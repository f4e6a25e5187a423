/* test-cuda-loader.c: os_backend_cuda_new() fails cleanly, with
 * ONESTEP_ERR_DEVICE and a message naming the cause, when the driver cannot
 * initialise, sees no GPU, or is not a real driver. Runs against
 * fake-libcuda.c (LD_LIBRARY_PATH set by meson), so it needs no GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static int failures;

static void
expect_failure(const char *mode, const char *needle)
{
  setenv("FAKE_CUDA_MODE", mode, 1);
  onestep_error error = { 0 };
  os_backend *be = os_backend_cuda_new(ONESTEP_PRECISION_FP32, &error);
  int ok = be == NULL && error.code == ONESTEP_ERR_DEVICE && strstr(error.message, needle);
  printf("%-4s driver '%s': %s\n", ok ? "ok" : "FAIL", mode, error.message);
  failures += !ok;
  if (be)
    be->ops->destroy(be);
}

int
main(void)
{
  expect_failure("uvm", "nvidia_uvm");
  expect_failure("none", "no NVIDIA GPU");
  /* The checks pass, so the module is loaded (when built) and its runtime
   * meets the fake driver; either way the result is a device error. */
  expect_failure("ok", "");
  return failures ? 1 : 0;
}
