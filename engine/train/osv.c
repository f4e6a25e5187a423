/* osv.c: see osv.h. */
#include "osv.h"

#include "error.h"

static void
notify(os_osv_watch watch, void *user_data, const char *point, float *data, size_t n)
{
  if (watch)
    watch(point, data, n, user_data);
}

/* The generator's step: its loss's two terms seeded, one backward, clip, Adam.
 * fake_out (backend, n floats) keeps the student's output for the
 * discriminator's step. */
static onestep_status
generator_step(os_osv_players *pl, os_backend *be, os_tape *tape, const float *x_noisy,
               float sigma, const float *target, float huber_weight,
               const os_osv_conditioning *c, float *fake_out, float *scratch,
               os_osv_watch watch, void *user_data, os_osv_stats *stats, onestep_error *error)
{
  int B = c->B, F = c->F;
  size_t n = (size_t)B * F * 4 * c->h * c->w;
  float sigmas[OS_TAPE_MAX_ARGS];
  for (int b = 0; b < B; b++)
    sigmas[b] = sigma;
  os_denoise_input in = os_osv_denoise_input(tape, c, sigmas);
  os_tv fake = os_train_denoise(pl->unet, pl->student, tape, os_tape_leaf(tape, x_noisy, n, NULL),
                                &in, NULL);
  onestep_status status = os_tape_status(tape, error);
  if (status != ONESTEP_OK)
    return status;
  be->ops->copy(be, fake_out, os_tape_data(tape, fake), n * sizeof(float));
  notify(watch, user_data, "student_x0", fake_out, n);

  os_tv logits;
  os_tv embeds = os_tape_leaf(tape, c->context, (size_t)B * c->cross_dim, NULL);
  status = os_disc_forward(pl->disc, tape, fake, embeds, B, F, c->h, c->w, false, &logits, error);
  if (status != ONESTEP_OK)
    return status;
  size_t n_logits = os_tape_size(tape, logits);
  notify(watch, user_data, "logits_fake_g", os_tape_data(tape, logits), n_logits);
  /* d(huber)/d(fake), then d(adversarial)/d(logits): one backward for both. */
  os_loss_config huber = {.kind = OS_LOSS_PSEUDO_HUBER, .huber_c = pl->huber_c};
  be->ops->fill(be, scratch, 0.0f, n);
  stats->huber = os_train_batch_loss(be, fake_out, target, NULL, 1, n, &huber, scratch);
  be->ops->scale(be, scratch, scratch, huber_weight, n);
  os_tape_seed(tape, fake, scratch);
  float *dlogits = be->ops->alloc(be, n_logits * sizeof(float));
  if (!dlogits)
    return os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for the logits");
  be->ops->fill(be, dlogits, 0.0f, n_logits);
  stats->adv_g = os_disc_hinge(be, os_tape_data(tape, logits), n_logits, 1.0f, pl->lambda_adv,
                               dlogits);
  stats->loss_g = pl->lambda_adv * stats->adv_g + huber_weight * stats->huber;
  os_train_params_zero_grad(pl->student);
  status = os_tape_backward(tape, logits, dlogits, error);
  be->ops->free(be, dlogits);
  if (status != ONESTEP_OK)
    return status;
  stats->grad_norm_g = os_train_grad_norm(pl->student);
  os_train_clip_grads(pl->student, stats->grad_norm_g, pl->max_grad_norm_g);
  notify(watch, user_data, "grad_g", NULL, 0);
  os_train_adam_step(pl->student, &pl->adam_g, ++pl->step_g);
  notify(watch, user_data, "param_g", NULL, 0);
  return ONESTEP_OK;
}

static onestep_status
discriminator_step(os_osv_players *pl, os_backend *be, os_tape *tape, const float *real,
                   const float *fake, const os_osv_conditioning *c, os_osv_watch watch,
                   void *user_data, os_osv_stats *stats, onestep_error *error)
{
  int B = c->B, F = c->F;
  size_t n = (size_t)B * F * 4 * c->h * c->w;
  os_train_params *dp = os_disc_params(pl->disc);
  os_tv logits_real, logits_fake;
  os_train_params_zero_grad(dp);
  onestep_status status = os_disc_backward_d(
      pl->disc, tape, os_tape_leaf(tape, real, n, NULL), os_tape_leaf(tape, fake, n, NULL),
      os_tape_leaf(tape, c->context, (size_t)B * c->cross_dim, NULL), B, F, c->h, c->w,
      &stats->loss_d, &logits_real, &logits_fake, error);
  if (status != ONESTEP_OK)
    return status;
  notify(watch, user_data, "logits_real", os_tape_data(tape, logits_real),
         os_tape_size(tape, logits_real));
  notify(watch, user_data, "logits_fake_d", os_tape_data(tape, logits_fake),
         os_tape_size(tape, logits_fake));
  stats->grad_norm_d = os_train_grad_norm(dp);
  os_train_clip_grads(dp, stats->grad_norm_d, pl->max_grad_norm_d);
  notify(watch, user_data, "grad_d", NULL, 0);
  os_train_adam_step(dp, &pl->adam_d, ++pl->step_d);
  notify(watch, user_data, "disc", NULL, 0);
  return ONESTEP_OK;
}

onestep_status
os_osv_iteration(os_osv_players *pl, os_backend *be, const float *x_noisy, float sigma,
                 const float *target, float huber_weight, const os_osv_conditioning *c,
                 os_osv_watch watch, void *user_data, os_osv_stats *stats, onestep_error *error)
{
  size_t n = (size_t)c->B * c->F * 4 * c->h * c->w;
  os_tape *tape = os_tape_new(be);
  float *fake = be->ops->alloc(be, n * sizeof(float));
  float *scratch = be->ops->alloc(be, n * sizeof(float));
  onestep_status status;
  if (!tape || !fake || !scratch || c->B > OS_TAPE_MAX_ARGS) {
    status = os_error_set(error, ONESTEP_ERR_OUT_OF_MEMORY, "out of memory for an OSV iteration");
    goto done;
  }
  status = generator_step(pl, be, tape, x_noisy, sigma, target, huber_weight, c, fake, scratch,
                          watch, user_data, stats, error);
  os_tape_reset(tape);
  if (status == ONESTEP_OK)
    status = discriminator_step(pl, be, tape, target, fake, c, watch, user_data, stats, error);
  if (status == ONESTEP_OK)
    status = be->ops->sync(be, error);
done:
  os_tape_free(tape);
  if (fake)
    be->ops->free(be, fake);
  if (scratch)
    be->ops->free(be, scratch);
  return status;
}
