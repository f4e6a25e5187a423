/* osv_target.c: see osv_target.h. */
#include "osv_target.h"

#include <math.h>

#include "error.h"

void
os_osv_grid(int n, double sigma_min, double sigma_max, double rho, double *out)
{
  double hi = pow(sigma_max, 1.0 / rho), lo = pow(sigma_min, 1.0 / rho);
  for (int i = 0; i < n; i++) {
    double r = n > 1 ? (double)i / (n - 1) : 0.0;
    out[i] = pow(hi + r * (lo - hi), rho);
  }
}

os_denoise_input
os_osv_denoise_input(os_tape *tape, const os_osv_conditioning *c, const float *sigma)
{
  return (os_denoise_input){
    .B = c->B, .F = c->F, .h = c->h, .w = c->w, .sigma = sigma,
    .cond_latent = os_tape_leaf(tape, c->cond_latent, (size_t)c->B * 4 * c->h * c->w, NULL),
    .context = os_tape_leaf(tape, c->context, (size_t)c->B * c->cross_dim, NULL),
    .added_time_ids = c->added_time_ids,
  };
}

/* f(x, sigma) in the parameters' current view, nothing recorded, into out. */
static onestep_status
denoise_into(const os_unet *unet, os_train_params *params, os_tape *tape, const float *x,
             const os_osv_conditioning *c, const float *sigma, float *out, onestep_error *error)
{
  size_t n = (size_t)c->B * c->F * 4 * c->h * c->w;
  os_denoise_input in = os_osv_denoise_input(tape, c, sigma);
  os_tv y = os_train_denoise(unet, params, tape, os_tape_leaf(tape, x, n, NULL), &in, NULL);
  onestep_status status = os_tape_status(tape, error);
  if (status == ONESTEP_OK) {
    os_backend *be = os_tape_backend(tape);
    be->ops->copy(be, out, os_tape_data(tape, y), n * sizeof(float));
  }
  os_tape_reset(tape);
  return status;
}

onestep_status
os_osv_acd_target(const os_unet *unet, os_train_params *params, os_backend *be, const float *x_hi,
                  const os_acd_schedule *schedule, const os_osv_conditioning *c, float *target,
                  float *teacher_x, onestep_error *error)
{
  int B = c->B, F = c->F;
  size_t frame = (size_t)4 * c->h * c->w, n = (size_t)B * F * frame;
  os_tape *tape = os_tape_new(be);
  float *x = be->ops->alloc(be, n * sizeof(float));
  float *d_c = be->ops->alloc(be, n * sizeof(float));
  float *d_u = be->ops->alloc(be, n * sizeof(float));
  float *zero_latent = be->ops->alloc(be, (size_t)B * frame * sizeof(float));
  float *zero_context = be->ops->alloc(be, (size_t)B * c->cross_dim * sizeof(float));
  onestep_status status = ONESTEP_OK;
  if (!tape || !x || !d_c || !d_u || !zero_latent || !zero_context) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the teacher");
    goto done;
  }
  os_tape_set_recording(tape, false);
  be->ops->copy(be, x, x_hi, n * sizeof(float));
  be->ops->fill(be, zero_latent, 0.0f, (size_t)B * frame);
  be->ops->fill(be, zero_context, 0.0f, (size_t)B * c->cross_dim);
  os_osv_conditioning uncond = *c;
  uncond.cond_latent = zero_latent;
  uncond.context = zero_context;
  float sigma[OS_TAPE_MAX_ARGS];
  os_train_params_set_view(params, OS_TRAIN_VIEW_TEACHER);
  for (int j = 0; j < schedule->m && status == ONESTEP_OK; j++) {
    double a = schedule->grid[schedule->n + j], b = schedule->grid[schedule->n + j + 1];
    for (int i = 0; i < B; i++)
      sigma[i] = (float)a;
    status = denoise_into(unet, params, tape, x, c, sigma, d_c, error);
    if (status == ONESTEP_OK)
      status = denoise_into(unet, params, tape, x, &uncond, sigma, d_u, error);
    if (status != ONESTEP_OK)
      break;
    /* d_hat = d_u + w_f (d_c - d_u), frame by frame; then the Euler step
     * x += (b - a) (x - d_hat) / a. */
    be->ops->grad->axpy(be, d_c, d_u, -1.0f, n);
    for (int i = 0; i < B; i++)
      for (int f = 0; f < F; f++) {
        double w = F > 1 ? schedule->guidance_min + (schedule->guidance_max - schedule->guidance_min) *
                                                         f / (F - 1)
                         : schedule->guidance_min;
        size_t at = ((size_t)i * F + f) * frame;
        be->ops->grad->axpy(be, d_u + at, d_c + at, (float)w, frame);
      }
    float k = (float)((b - a) / a);
    be->ops->scale(be, x, x, 1.0f + k, n);
    be->ops->grad->axpy(be, x, d_u, -k, n);
  }
  if (status == ONESTEP_OK && teacher_x)
    be->ops->copy(be, teacher_x, x, n * sizeof(float));
  if (status == ONESTEP_OK) {
    os_train_params_set_view(params, OS_TRAIN_VIEW_EMA);
    for (int i = 0; i < B; i++)
      sigma[i] = (float)schedule->grid[schedule->n + schedule->m];
    status = denoise_into(unet, params, tape, x, c, sigma, target, error);
  }
done:
  os_train_params_set_view(params, OS_TRAIN_VIEW_STUDENT);
  float *buffers[] = {x, d_c, d_u, zero_latent, zero_context};
  for (int i = 0; i < 5; i++)
    if (buffers[i])
      be->ops->free(be, buffers[i]);
  os_tape_free(tape);
  return status;
}
