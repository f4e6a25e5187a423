/* fake-libcuda.c: a stand-in libcuda.so.1 for test-cuda-loader, so that the
 * loader's failure paths run on any machine. FAKE_CUDA_MODE picks the
 * behaviour: "uvm" (cuInit fails with 999), "none" (no devices) or "ok"
 * (the driver checks pass; the CUDA runtime then finds no real driver). */
#include <stdlib.h>
#include <string.h>

static const char *
mode(void)
{
  const char *m = getenv("FAKE_CUDA_MODE");
  return m ? m : "ok";
}

int
cuInit(unsigned int flags)
{
  (void)flags;
  return strcmp(mode(), "uvm") == 0 ? 999 : 0;
}

int
cuDeviceGetCount(int *count)
{
  *count = strcmp(mode(), "none") == 0 ? 0 : 1;
  return 0;
}

int
cuDriverGetVersion(int *version)
{
  *version = 13000;
  return 0;
}

int
cuGetErrorString(int result, const char **text)
{
  *text = result == 999 ? "unknown error" : "fake error";
  return 0;
}
