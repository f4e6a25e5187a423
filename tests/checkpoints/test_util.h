/* test_util.h: the model-file opener shared by the checkpoint tests, with the
 * common check macro. */
#ifndef ONESTEP_TEST_UTIL_H
#define ONESTEP_TEST_UTIL_H

#include "safetensors.h"
#include "test_check.h"

/* MODEL_DIR/comp/file, opened; exits the test when that fails. */
os_safetensors *open_component(const char *model_dir, const char *comp, const char *file);

#endif
