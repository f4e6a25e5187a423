/* tape.h: reverse-mode differentiation over backend buffers.
 *
 * Training code builds a model's forward from the tape's ops (tape_ops.h):
 * each op computes its output with the backend's forward op and, when one of
 * its inputs needs a gradient, records a node whose backward calls the
 * backend's backward ops (backend_grad.h). os_tape_backward then walks the
 * nodes in reverse. Tensors are flat float buffers in backend memory; ops
 * take their shapes explicitly, as the backend's ops do.
 *
 * Leaves wrap buffers the caller owns (weights, inputs) with an optional
 * gradient buffer, also the caller's, into which gradients accumulate. Every
 * other tensor, and every intermediate gradient, belongs to the tape and is
 * freed by os_tape_reset.
 *
 * Errors (out of memory) latch: later ops do nothing and return
 * OS_TAPE_NONE; os_tape_status reports the first. */
#ifndef ONESTEP_TAPE_H
#define ONESTEP_TAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

typedef struct os_tape os_tape;
typedef int os_tv; /* a tensor on the tape */
#define OS_TAPE_NONE (-1)

os_tape *os_tape_new(os_backend *be);
void os_tape_free(os_tape *tape);
/* Forgets every tensor and node; the tape keeps the buffers it owned for the
 * next forward (training allocates the same sizes every step), and frees
 * them with the tape. */
void os_tape_reset(os_tape *tape);
os_backend *os_tape_backend(const os_tape *tape);
/* Bytes of the buffers kept for reuse (allocated, but holding nothing). */
size_t os_tape_spare_bytes(const os_tape *tape);

/* With recording off, ops compute only (no nodes, no gradients): for
 * teachers, targets and evaluation. */
void os_tape_set_recording(os_tape *tape, bool recording);

/* A caller's buffer of n floats; grad (n floats, caller-owned, may be NULL
 * for a constant) receives its gradient. */
os_tv os_tape_leaf(os_tape *tape, const float *data, size_t n, float *grad);
/* A new tape-owned tensor of n floats (uninitialised), for op outputs. */
os_tv os_tape_alloc(os_tape *tape, size_t n);

float *os_tape_data(const os_tape *tape, os_tv v);
size_t os_tape_size(const os_tape *tape, os_tv v);
bool os_tape_requires_grad(const os_tape *tape, os_tv v);

/* The gradient buffer of v for a backward to accumulate into: NULL when v
 * needs none; allocated and zeroed on first use. */
float *os_tape_grad_for(os_tape *tape, os_tv v);

/* ONESTEP_OK or the first latched error (filled into error). */
onestep_status os_tape_status(const os_tape *tape, onestep_error *error);
/* Latches an out-of-memory error naming what failed; returns OS_TAPE_NONE. */
os_tv os_tape_fail(os_tape *tape, const char *what);

/* ---- gradient checkpointing ---- */

/* A piece of a model: computes its output on `tape` from `inputs` (tensors
 * on that tape) and whatever closure holds (weights are read through the
 * training parameters, so their gradients reach the same buffers on any
 * tape). Must compute the same every time it runs. */
typedef os_tv (*os_tape_segment_fn)(os_tape *tape, const os_tv *inputs, void *closure);

/* Runs fn as a checkpointed segment: its activations are freed at once and
 * only its output is kept; the backward runs it again, recording, and
 * back-propagates through it. closure (closure_size bytes) is copied. The
 * gradients are bit-identical to running fn directly. */
os_tv os_tape_checkpoint(os_tape *tape, os_tape_segment_fn fn, int n_in, const os_tv *in,
                         const void *closure, size_t closure_size);

/* ---- nodes (for tape_ops.c) ---- */

typedef struct os_tape_node os_tape_node;
typedef void (*os_tape_backward_fn)(os_tape *tape, const os_tape_node *node, const float *dy);

#define OS_TAPE_MAX_INPUTS 4
#define OS_TAPE_MAX_ARGS 16

struct os_tape_node {
  os_tape_backward_fn backward;
  os_tv in[OS_TAPE_MAX_INPUTS];
  os_tv out;
  union {
    int i[OS_TAPE_MAX_ARGS];
    os_conv2d_shape conv;
  } shape;
  float f[OS_TAPE_MAX_ARGS];
  /* checkpointed segments only */
  os_tape_segment_fn segment;
  void *closure; /* owned by the tape */
};

/* Records a node for out when recording and one of its inputs needs a
 * gradient (out then needs one too); returns the node to fill, or NULL. */
os_tape_node *os_tape_record(os_tape *tape, os_tape_backward_fn backward, os_tv out, int n_in,
                             const os_tv *in);

/* Adds d (v's size, backend memory) to v's gradient ahead of a backward:
 * for a loss of several terms, seed each term's tensor, then run the backward
 * from one of them. */
void os_tape_seed(os_tape *tape, os_tv v, const float *d);

/* Seeds out's gradient with dout (n floats, backend memory) and runs every
 * recorded node in reverse; leaves' gradients accumulate. */
onestep_status os_tape_backward(os_tape *tape, os_tv out, const float *dout,
                                onestep_error *error);

#endif
