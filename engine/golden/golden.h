/* golden.h: the engine against a recorded reference case (golden.md). Every
 * run of the case is generated with its recorded noise, every recorded tensor
 * is compared by relative L2 error where the engine taps it, and a table with
 * the worst is printed. Plain C (cJSON, the engine's safetensors reader) so
 * that onestep-cli check-golden and test-golden-cuda, which runs on GPU
 * machines without GLib, share one check. Not part of the engine's API. */
#ifndef ONESTEP_GOLDEN_H
#define ONESTEP_GOLDEN_H

#include "onestep.h"

typedef struct os_golden_case os_golden_case;

typedef enum {
  OS_GOLDEN_KIND_INFERENCE = 0, /* "runs": pipeline calls (golden.md) */
  OS_GOLDEN_KIND_TRAINING,      /* "steps": optimiser steps (golden_train.h) */
  OS_GOLDEN_KIND_OSV,           /* "iterations": OSV's LGP and ACD iterations */
} os_golden_kind;

/* Which kind of case CASE_DIR/golden.json records. */
onestep_status os_golden_case_kind(const char *case_dir, os_golden_kind *kind,
                                   onestep_error *error);

/* Reads CASE_DIR/golden.json and CASE_DIR/golden.safetensors: every run's
 * parameters and noise, and every recorded tensor with the shape golden.json
 * gives. */
os_golden_case *os_golden_case_open(const char *case_dir, onestep_error *error);
void os_golden_case_free(os_golden_case *golden);

/* Gives the conditioning image at a run's size; *image must stay valid until
 * the next call or the end of the check. */
typedef onestep_status (*os_golden_image_fn)(int width, int height, onestep_image *image,
                                             void *user_data, onestep_error *error);

typedef struct {
  const char *model_dir;          /* NULL: CASE_DIR/model */
  onestep_context_params params;
  double tolerance;               /* the largest relative L2 error that passes */
  /* Give every stage the reference's inputs: each recorded tensor, once
   * compared, is replaced by the reference (the engine's tap allows it), so an
   * error measures its stage alone rather than everything upstream too. */
  bool stage_by_stage;
  os_golden_image_fn image_for;
  void *user_data;
  const char *program;            /* names the error messages on stderr */
} os_golden_options;

typedef enum {
  OS_GOLDEN_PASSED = 0,
  OS_GOLDEN_FAILED,    /* a tensor over the tolerance, never produced or shaped
                          otherwise, a run or the context failed */
  OS_GOLDEN_NO_DEVICE, /* the context failed with ONESTEP_ERR_DEVICE */
} os_golden_result;

/* Runs the check: "case NAME: model PATH on DEVICE", then a row per recorded
 * tensor and a summary with the worst on stdout; errors, each as
 * "PROGRAM: MESSAGE", on stderr. A failed run does not stop the others. */
os_golden_result os_golden_check(os_golden_case *golden, const os_golden_options *options);

#endif
