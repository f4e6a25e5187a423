/* tape.c: see tape.h. */
#include "tape.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct {
  float *data;
  float *grad;
  size_t n;
  bool owns_data;  /* allocated by the tape (op outputs) */
  bool owns_grad;  /* intermediate gradient, allocated on first use */
  bool needs_grad; /* a leaf with a gradient buffer, or computed from one */
} tape_tensor;

/* A buffer kept for reuse: training allocates the same sizes every step,
 * and fresh memory costs a page fault per page on first touch. */
typedef struct {
  float *ptr;
  size_t n;
} spare_buffer;

struct os_tape {
  os_backend *be;
  spare_buffer *spares;
  int n_spares, spare_capacity;
  size_t spare_bytes;
  tape_tensor *tensors;
  int n_tensors, tensor_capacity;
  os_tape_node *nodes;
  int n_nodes, node_capacity;
  bool recording;
  onestep_error latched;
};

/* A buffer of n floats, a spare one of that size when there is one. */
static float *
take_buffer(os_tape *tape, size_t n)
{
  for (int i = tape->n_spares - 1; i >= 0; i--)
    if (tape->spares[i].n == n) {
      float *ptr = tape->spares[i].ptr;
      tape->spare_bytes -= n * sizeof(float);
      tape->spares[i] = tape->spares[--tape->n_spares];
      return ptr;
    }
  return tape->be->ops->alloc(tape->be, (n ? n : 1) * sizeof(float));
}

/* Keeps a buffer for reuse (frees it when the list cannot grow). */
static void
give_back(os_tape *tape, float *ptr, size_t n)
{
  if (tape->n_spares == tape->spare_capacity) {
    int capacity = tape->spare_capacity ? 2 * tape->spare_capacity : 1024;
    spare_buffer *grown = realloc(tape->spares, (size_t)capacity * sizeof *grown);
    if (!grown) {
      tape->be->ops->free(tape->be, ptr);
      return;
    }
    tape->spares = grown;
    tape->spare_capacity = capacity;
  }
  tape->spares[tape->n_spares++] = (spare_buffer){ptr, n};
  tape->spare_bytes += n * sizeof(float);
}

size_t
os_tape_spare_bytes(const os_tape *tape)
{
  return tape->spare_bytes;
}

os_tape *
os_tape_new(os_backend *be)
{
  os_tape *tape = calloc(1, sizeof *tape);
  if (tape) {
    tape->be = be;
    tape->recording = true;
  }
  return tape;
}

void
os_tape_reset(os_tape *tape)
{
  for (int i = 0; i < tape->n_tensors; i++) {
    tape_tensor *t = &tape->tensors[i];
    if (t->owns_data)
      give_back(tape, t->data, t->n);
    if (t->owns_grad)
      give_back(tape, t->grad, t->n);
  }
  for (int i = 0; i < tape->n_nodes; i++)
    free(tape->nodes[i].closure);
  tape->n_tensors = 0;
  tape->n_nodes = 0;
  tape->latched = (onestep_error){0};
}

void
os_tape_free(os_tape *tape)
{
  if (!tape)
    return;
  os_tape_reset(tape);
  for (int i = 0; i < tape->n_spares; i++)
    tape->be->ops->free(tape->be, tape->spares[i].ptr);
  free(tape->spares);
  free(tape->tensors);
  free(tape->nodes);
  free(tape);
}

os_backend *
os_tape_backend(const os_tape *tape)
{
  return tape->be;
}

void
os_tape_set_recording(os_tape *tape, bool recording)
{
  tape->recording = recording;
}

os_tv
os_tape_fail(os_tape *tape, const char *what)
{
  if (tape->latched.code == ONESTEP_OK)
    os_error_set(&tape->latched, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for %s", what);
  return OS_TAPE_NONE;
}

onestep_status
os_tape_status(const os_tape *tape, onestep_error *error)
{
  if (tape->latched.code != ONESTEP_OK && error)
    *error = tape->latched;
  return tape->latched.code;
}

static os_tv
add_tensor(os_tape *tape, tape_tensor t)
{
  if (tape->n_tensors == tape->tensor_capacity) {
    int capacity = tape->tensor_capacity ? 2 * tape->tensor_capacity : 1024;
    tape_tensor *grown = realloc(tape->tensors, (size_t)capacity * sizeof *grown);
    if (!grown)
      return os_tape_fail(tape, "the tape's tensor list");
    tape->tensors = grown;
    tape->tensor_capacity = capacity;
  }
  tape->tensors[tape->n_tensors] = t;
  return tape->n_tensors++;
}

os_tv
os_tape_leaf(os_tape *tape, const float *data, size_t n, float *grad)
{
  if (tape->latched.code != ONESTEP_OK)
    return OS_TAPE_NONE;
  bool needs_grad = grad != NULL && tape->recording;
  return add_tensor(tape, (tape_tensor){.data = (float *)data, .grad = needs_grad ? grad : NULL,
                                        .n = n, .needs_grad = needs_grad});
}

os_tv
os_tape_alloc(os_tape *tape, size_t n)
{
  if (tape->latched.code != ONESTEP_OK)
    return OS_TAPE_NONE;
  float *data = take_buffer(tape, n);
  if (!data)
    return os_tape_fail(tape, "an activation");
  os_tv v = add_tensor(tape, (tape_tensor){.data = data, .n = n, .owns_data = true});
  if (v == OS_TAPE_NONE)
    give_back(tape, data, n);
  return v;
}

float *
os_tape_data(const os_tape *tape, os_tv v)
{
  return v == OS_TAPE_NONE ? NULL : tape->tensors[v].data;
}

size_t
os_tape_size(const os_tape *tape, os_tv v)
{
  return v == OS_TAPE_NONE ? 0 : tape->tensors[v].n;
}

bool
os_tape_requires_grad(const os_tape *tape, os_tv v)
{
  return v != OS_TAPE_NONE && tape->tensors[v].needs_grad;
}

float *
os_tape_grad_for(os_tape *tape, os_tv v)
{
  if (v == OS_TAPE_NONE || !tape->tensors[v].needs_grad)
    return NULL;
  tape_tensor *t = &tape->tensors[v];
  if (!t->grad) {
    t->grad = take_buffer(tape, t->n);
    if (!t->grad) {
      os_tape_fail(tape, "a gradient");
      return NULL;
    }
    t->owns_grad = true;
    tape->be->ops->fill(tape->be, t->grad, 0.0f, t->n);
  }
  return t->grad;
}

static os_tape_node *
add_node(os_tape *tape, os_tape_backward_fn backward, os_tv out, int n_in, const os_tv *in)
{
  if (tape->n_nodes == tape->node_capacity) {
    int capacity = tape->node_capacity ? 2 * tape->node_capacity : 1024;
    os_tape_node *grown = realloc(tape->nodes, (size_t)capacity * sizeof *grown);
    if (!grown) {
      os_tape_fail(tape, "the tape's node list");
      return NULL;
    }
    tape->nodes = grown;
    tape->node_capacity = capacity;
  }
  os_tape_node *node = &tape->nodes[tape->n_nodes++];
  memset(node, 0, sizeof *node);
  node->backward = backward;
  node->out = out;
  for (int i = 0; i < OS_TAPE_MAX_INPUTS; i++)
    node->in[i] = i < n_in ? in[i] : OS_TAPE_NONE;
  tape->tensors[out].needs_grad = true;
  return node;
}

os_tape_node *
os_tape_record(os_tape *tape, os_tape_backward_fn backward, os_tv out, int n_in, const os_tv *in)
{
  if (!tape->recording || out == OS_TAPE_NONE)
    return NULL;
  bool any = false;
  for (int i = 0; i < n_in; i++)
    any |= os_tape_requires_grad(tape, in[i]);
  return any ? add_node(tape, backward, out, n_in, in) : NULL;
}

/* Runs a segment on a tape of its own, with the given inputs as leaves
 * (grads: where their gradients go, or NULL). */
static os_tv
run_segment(os_tape *sub, const os_tape_node *node, os_tape *parent, float *const *grads)
{
  os_tv leaves[OS_TAPE_MAX_INPUTS];
  for (int i = 0; i < OS_TAPE_MAX_INPUTS; i++)
    leaves[i] = node->in[i] == OS_TAPE_NONE
                    ? OS_TAPE_NONE
                    : os_tape_leaf(sub, os_tape_data(parent, node->in[i]),
                                   os_tape_size(parent, node->in[i]), grads ? grads[i] : NULL);
  return node->segment(sub, leaves, node->closure);
}

static void
segment_backward(os_tape *tape, const os_tape_node *node, const float *dy)
{
  float *grads[OS_TAPE_MAX_INPUTS];
  for (int i = 0; i < OS_TAPE_MAX_INPUTS; i++)
    grads[i] = os_tape_grad_for(tape, node->in[i]);
  os_tape *sub = os_tape_new(tape->be);
  if (!sub) {
    os_tape_fail(tape, "a checkpointed segment");
    return;
  }
  os_tv y = run_segment(sub, node, tape, grads);
  onestep_error error = {0};
  if (y != OS_TAPE_NONE && os_tape_backward(sub, y, dy, &error) != ONESTEP_OK &&
      tape->latched.code == ONESTEP_OK)
    tape->latched = error;
  if (y == OS_TAPE_NONE && tape->latched.code == ONESTEP_OK)
    os_tape_status(sub, &tape->latched);
  os_tape_free(sub);
}

os_tv
os_tape_checkpoint(os_tape *tape, os_tape_segment_fn fn, int n_in, const os_tv *in,
                   const void *closure, size_t closure_size)
{
  if (tape->latched.code != ONESTEP_OK || n_in > OS_TAPE_MAX_INPUTS)
    return OS_TAPE_NONE;
  /* The forward runs on a scratch tape so that its activations go with it. */
  os_tape_node probe = {.segment = fn, .closure = (void *)closure};
  for (int i = 0; i < OS_TAPE_MAX_INPUTS; i++)
    probe.in[i] = i < n_in ? in[i] : OS_TAPE_NONE;
  os_tape *sub = os_tape_new(tape->be);
  if (!sub)
    return os_tape_fail(tape, "a checkpointed segment");
  sub->recording = false;
  os_tv y_sub = run_segment(sub, &probe, tape, NULL);
  os_tv y = OS_TAPE_NONE;
  if (y_sub == OS_TAPE_NONE) {
    os_tape_status(sub, &tape->latched);
  } else if ((y = os_tape_alloc(tape, os_tape_size(sub, y_sub))) != OS_TAPE_NONE) {
    tape->be->ops->copy(tape->be, os_tape_data(tape, y), os_tape_data(sub, y_sub),
                        os_tape_size(sub, y_sub) * sizeof(float));
  }
  os_tape_free(sub);
  if (y == OS_TAPE_NONE || !tape->recording)
    return y;
  /* Trained weights inside may need gradients even when no input does. */
  void *copy = malloc(closure_size ? closure_size : 1);
  os_tape_node *node = copy ? add_node(tape, segment_backward, y, n_in, in) : NULL;
  if (!node) {
    free(copy);
    return os_tape_fail(tape, "a checkpointed segment");
  }
  memcpy(copy, closure, closure_size);
  node->segment = fn;
  node->closure = copy;
  return y;
}

void
os_tape_seed(os_tape *tape, os_tv v, const float *d)
{
  float *grad = os_tape_grad_for(tape, v);
  if (grad)
    tape->be->ops->grad->axpy(tape->be, grad, d, 1.0f, tape->tensors[v].n);
}

onestep_status
os_tape_backward(os_tape *tape, os_tv out, const float *dout, onestep_error *error)
{
  if (tape->latched.code != ONESTEP_OK)
    return os_tape_status(tape, error);
  os_tape_seed(tape, out, dout);
  for (int i = tape->n_nodes - 1; i >= 0 && tape->latched.code == ONESTEP_OK; i--) {
    const os_tape_node *node = &tape->nodes[i];
    tape_tensor *y = &tape->tensors[node->out];
    if (!y->grad)
      continue; /* nothing downstream depends on it */
    node->backward(tape, node, y->grad);
    /* An intermediate's gradient is complete once its producer has used it. */
    if (y->owns_grad) {
      give_back(tape, y->grad, y->n);
      y->grad = NULL;
      y->owns_grad = false;
    }
  }
  return os_tape_status(tape, error);
}
