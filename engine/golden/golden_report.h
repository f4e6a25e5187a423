/* golden_report.h: comparing engine tensors with a case's recorded ones and
 * counting the results, for the training and OSV checks. */
#ifndef ONESTEP_GOLDEN_REPORT_H
#define ONESTEP_GOLDEN_REPORT_H

#include <stdbool.h>

#include "backend.h"
#include "config_json.h"
#include "safetensors.h"
#include "train_optim.h"
#include "train_params.h"

typedef struct {
  const char *name; /* the case folder's last component */
  os_json_file json;
  os_safetensors *st;
  double tolerance;
  int compared, failed;
  double worst;
  char worst_key[512];
} os_golden_report;

/* Counts one comparison; prints its row when asked or when it fails; returns rel. */
double os_golden_report_count(os_golden_report *c, const char *key, double rel, double max_abs,
                              bool print_row);
/* The case's tensor as float32 (n values expected, malloc'ed), or NULL. */
float *os_golden_report_reference(os_golden_report *c, const char *key, size_t n);
/* n backend floats against the case's tensor `key`; returns the relative error. */
double os_golden_report_tensor(os_golden_report *c, os_backend *be, const char *key,
                               const float *data, size_t n, bool print_row);
void os_golden_report_scalar(os_golden_report *c, const char *key, double value, double expected);

typedef enum { OS_TRAINED_VALUE, OS_TRAINED_GRAD, OS_TRAINED_EMA } os_trained_field;
/* One field of every trained tensor (with adapters_only, of the LoRA
 * tensors alone) against "PREFIX<name>"; one summary row. */
void os_golden_report_trained(os_golden_report *c, os_backend *be, os_train_params *p,
                              const char *prefix, os_trained_field field, bool adapters_only);
/* A backend copy of the case's tensor `key` (n values), or NULL after an error. */
float *os_golden_report_upload(os_golden_report *c, os_backend *be, const char *key, size_t n,
                               onestep_error *error);
/* A host copy (malloc'ed), or NULL after an error. */
float *os_golden_report_host(os_golden_report *c, const char *key, size_t n, onestep_error *error);

/* ---- a training case's settings ---- */

#define OS_GOLDEN_MAX_TARGETS 64

/* The case's "batch", "frames" and "latent_hw" ([h, w]). */
void os_golden_read_shape(os_json_file *j, int *B, int *F, int *h, int *w);
/* CASE_DIR/NAME, allocated. */
char *os_golden_case_path(const char *dir, const char *name);
/* The case's "lora" ({rank, alpha, targets}) and "full_targets"; lora and full
 * (OS_GOLDEN_MAX_TARGETS each) get globs pointing into the document. Returns
 * false when "lora" is missing. */
bool os_golden_read_spec(os_json_file *j, os_train_spec *spec, const char **lora,
                         const char **full);
/* An optimiser object: {lr, betas, eps, weight_decay (absent: 0)}. */
os_adam_config os_golden_read_adam(const cJSON *o);

#endif
