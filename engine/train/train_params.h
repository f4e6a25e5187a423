/* train_params.h: what a training run trains in a bound UNet.
 *
 * LoRA adapters on the Linear layers whose module names match the LoRA
 * globs (PEFT: y = W x + b + (alpha / rank) B A x), and tensors trained in
 * full whose names match the full globs. Each trained tensor carries its
 * value, gradient, Adam moments and EMA in backend memory. The graph asks for
 * every weight it reads through os_train_weight, which answers with the view
 * chosen: the student (trained values, gradients), the teacher (base values,
 * LoRA off) or the EMA target (EMA values). */
#ifndef ONESTEP_TRAIN_PARAMS_H
#define ONESTEP_TRAIN_PARAMS_H

#include "tape.h"
#include "weights.h"

typedef enum {
  OS_TRAIN_VIEW_STUDENT = 0,
  OS_TRAIN_VIEW_TEACHER,
  OS_TRAIN_VIEW_EMA,
} os_train_view;

typedef struct {
  char *name; /* "<module>.lora_A.weight", "<module>.lora_B.weight" or the tensor's own */
  int ndim;
  int64_t shape[OS_MAX_DIMS];
  size_t n;
  float *value, *grad, *m, *v, *ema; /* backend memory, n floats each */
  const float *base;                 /* full tensors: the frozen base value; LoRA: NULL */
} os_train_tensor;

typedef struct {
  const float *weight; /* the base Linear weight [out, in] */
  int a, b;            /* tensors: lora_A [rank, in], lora_B [out, rank] */
  int in, out;
} os_lora_adapter;

typedef struct {
  int rank;
  float alpha;
  const char *const *lora_targets; /* module-name globs (fnmatch) */
  int n_lora_targets;
  const char *const *full_targets; /* tensor-name globs */
  int n_full_targets;
  uint64_t seed; /* for new adapters' lora_A (kaiming-uniform, as PEFT) */
} os_train_spec;

typedef struct os_train_params os_train_params;

/* Every tensor of ws must be bound already (the UNet bound to it). A glob
 * that matches nothing, a rank below 1, or nothing to train is an error. */
os_train_params *os_train_params_new(os_weight_set *ws, const os_train_spec *spec,
                                     onestep_error *error);
void os_train_params_free(os_train_params *p);

os_backend *os_train_params_backend(const os_train_params *p);
int os_train_params_count(const os_train_params *p);
os_train_tensor *os_train_params_tensor(os_train_params *p, int i);
/* Index of the tensor of that name, or -1. */
int os_train_params_find(const os_train_params *p, const char *name);
int64_t os_train_params_numel(const os_train_params *p);
int os_train_params_lora_count(const os_train_params *p);
const os_lora_adapter *os_train_params_adapter(const os_train_params *p, int i);
/* The full-trained tensor whose base is w, or -1. */
int os_train_params_full_index(const os_train_params *p, const float *w);
float os_train_params_lora_scale(const os_train_params *p); /* alpha / rank */

void os_train_params_set_view(os_train_params *p, os_train_view view);
/* With frozen, the tensors trained in full take no gradient (OSV's stage 1
 * trains the adapters alone). */
void os_train_params_freeze_full(os_train_params *p, bool frozen);
/* A tape leaf for the weight w (n floats) as the current view sees it. */
os_tv os_train_weight(os_train_params *p, os_tape *tape, const float *w, size_t n);
/* A tape leaf for trained tensor i as the current view sees it (the
 * teacher's view of an adapter is never asked for). */
os_tv os_train_tensor_leaf(os_train_params *p, os_tape *tape, int i);
/* The adapter on the Linear weight w in the current view, or NULL. */
const os_lora_adapter *os_train_lora_for(const os_train_params *p, const float *w);

/* Sets the adapters' values (and EMA) from a PEFT adapter file
 * (base_model.model.<module>.lora_A.weight / lora_B.weight). The file must
 * hold exactly this run's adapters, with their shapes. */
onestep_status os_train_params_load_peft(os_train_params *p, const char *path,
                                         onestep_error *error);

/* A stage's fresh start (OSV): Adam moments to zero, the EMA to the values. */
void os_train_params_reset_moments(os_train_params *p);
void os_train_params_reset_ema(os_train_params *p);

/* Sets every gradient to zero. */
void os_train_params_zero_grad(os_train_params *p);

#endif
