/* cuda_loader.c: os_backend_cuda_new(), the engine's side of the CUDA backend.
 *
 * The backend lives in a separate module (libonestep-cuda.so) so that the
 * engine, the CLI and the app run on machines without NVIDIA drivers. The
 * driver is checked first through libcuda.so.1 (never linked, always
 * dlopen()ed: it belongs to the driver, not to the toolkit); only then is the
 * module loaded. Every failure is ONESTEP_ERR_DEVICE with the reason. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "error.h"

#ifndef ONESTEP_CUDA_MODULE_DIR
#error "engine/meson.build defines ONESTEP_CUDA_MODULE_DIR, the module's install folder"
#endif

#define MODULE_NAME "libonestep-cuda.so"
#define MODULE_ENTRY "os_cuda_backend_create"

/* cuda_module_paths.c (generated) */
extern const char os_cuda_build_root[];
extern const char os_cuda_build_module[];

/* The driver API entry points used here (CUresult is an int enum). */
typedef int (*cu_init_fn)(unsigned int flags);
typedef int (*cu_int_fn)(int *value);
typedef int (*cu_error_string_fn)(int result, const char **text);
typedef os_backend *(*module_entry_fn)(onestep_precision precision, onestep_error *error);

/* Loads libcuda.so.1 and checks that it initialises and sees a GPU. The
 * library stays loaded on success: the module's runtime uses it. */
static onestep_status
check_driver(onestep_error *error)
{
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return os_error_set(error, ONESTEP_ERR_DEVICE,
                        "no NVIDIA driver: libcuda.so.1 cannot be loaded (%s)", dlerror());

  cu_init_fn cu_init = (cu_init_fn)dlsym(lib, "cuInit");
  cu_int_fn device_count = (cu_int_fn)dlsym(lib, "cuDeviceGetCount");
  cu_int_fn driver_version = (cu_int_fn)dlsym(lib, "cuDriverGetVersion");
  cu_error_string_fn error_string = (cu_error_string_fn)dlsym(lib, "cuGetErrorString");
  onestep_status status = ONESTEP_OK;
  int rc, count = 0, version = 0;
  const char *why = NULL;

  if (!cu_init || !device_count || !driver_version) {
    status = os_error_set(error, ONESTEP_ERR_DEVICE,
                          "the NVIDIA driver's libcuda.so.1 lacks cuInit or cuDeviceGetCount");
  } else if ((rc = cu_init(0)) != 0) {
    if (error_string)
      error_string(rc, &why);
    /* 999 (unknown) is what a missing nvidia_uvm module looks like, e.g. in a sandbox */
    status = os_error_set(error, ONESTEP_ERR_DEVICE,
                          "the NVIDIA driver failed to initialise (cuInit: error %d, %s)%s", rc,
                          why ? why : "no description",
                          rc == 999 ? "; is the nvidia_uvm kernel module loaded?" : "");
  } else if ((rc = device_count(&count)) != 0) {
    status = os_error_set(error, ONESTEP_ERR_DEVICE,
                          "the NVIDIA driver cannot list GPUs (cuDeviceGetCount: error %d)", rc);
  } else if (count == 0) {
    status = os_error_set(error, ONESTEP_ERR_DEVICE, "no NVIDIA GPU found: the driver sees none");
  } else if (driver_version(&version) != 0) {
    status =
        os_error_set(error, ONESTEP_ERR_DEVICE, "the NVIDIA driver does not report its version");
  }
  if (status != ONESTEP_OK)
    dlclose(lib);
  return status;
}

/* True when the running program is inside this build tree (an uninstalled
 * build or its tests), whose module then takes precedence. */
static int
running_from_build_tree(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return 0;
  exe[n] = '\0';
  size_t root = strlen(os_cuda_build_root);
  return strncmp(exe, os_cuda_build_root, root) == 0 && exe[root] == '/';
}

/* dlopen()s the module: $ONESTEP_CUDA_MODULE if set (nothing else then), else
 * this build tree's module when running from it, the install folder, and last
 * the library search path (a Flatpak extension adds its lib/ there). */
static void *
open_module(onestep_error *error)
{
  const char *override = getenv("ONESTEP_CUDA_MODULE");
  if (override && *override) {
    void *handle = dlopen(override, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      os_error_set(error, ONESTEP_ERR_DEVICE,
                   "cannot load the CUDA backend ONESTEP_CUDA_MODULE=%s: %s", override, dlerror());
    return handle;
  }

  const char *candidates[2];
  int n = 0;
  if (running_from_build_tree())
    candidates[n++] = os_cuda_build_module;
  candidates[n++] = ONESTEP_CUDA_MODULE_DIR "/" MODULE_NAME;
  for (int i = 0; i < n; i++) {
    if (access(candidates[i], F_OK) != 0)
      continue;
    void *handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      os_error_set(error, ONESTEP_ERR_DEVICE, "cannot load the CUDA backend %s: %s", candidates[i],
                   dlerror());
    return handle;
  }
  void *handle = dlopen(MODULE_NAME, RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    os_error_set(error, ONESTEP_ERR_DEVICE,
                 "the CUDA backend is not installed: no %s in %s or on the library path (%s)",
                 MODULE_NAME, ONESTEP_CUDA_MODULE_DIR, dlerror());
  return handle;
}

os_backend *
os_backend_cuda_new(onestep_precision precision, onestep_error *error)
{
  if (check_driver(error) != ONESTEP_OK)
    return NULL;
  void *module = open_module(error);
  if (!module)
    return NULL;
  module_entry_fn create = (module_entry_fn)dlsym(module, MODULE_ENTRY);
  if (!create) {
    os_error_set(error, ONESTEP_ERR_DEVICE, "the CUDA backend module lacks %s: %s", MODULE_ENTRY,
                 dlerror());
    dlclose(module);
    return NULL;
  }
  /* The module stays loaded: its code runs for as long as any backend lives. */
  os_backend *be = create(precision, error);
  if (be)
    os_error_clear(error);
  return be;
}
