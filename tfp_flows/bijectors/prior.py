"""A learned Gaussian prior on the latent, as a bijector over a standard Normal base; and the
(mean, log-scale) of the priors that `LearnedPrior` and the split prior of `FactorOut` share."""

import math

import tensorflow as tf

from tfp_flows import checks, networks
from tfp_flows.bijectors.affine import LOG_SCALE_BOUND, affine, log_scale
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import check_conditional_shape, context_features
from tfp_flows.bijectors.shapes import check_event_shape

__all__ = ['LearnedPrior', 'context_prior', 'prior_parameters']


def context_prior(conditional_shape, num_channels, dtype, dtype_policy):
    """The zero-initialised linear map of a flattened context to a prior's term, 2 values
    per channel (Glow's `ycond`); None for an unconditional prior."""
    if conditional_shape is None:
        return None
    return networks.ZeroDense(
        math.prod(conditional_shape),
        2 * num_channels,
        dtype,
        name='context_prior',
        dtype_policy=dtype_policy,
    )


def prior_parameters(prior, x, params, conditional_input, event_rank):
    """(mean, log_scale) of the Gaussian `prior` (a `LearnedPrior` or `FactorOut`) puts on
    `x`'s batch: (mean, raw) = `params` [..., 2C] (or None) + the context's Linear(c), the same
    at every position of the event (of rank `event_rank`); log_scale = bound * tanh(raw / bound).
    """
    owner = f'{type(prior).__name__} {prior.name!r}'
    features = context_features(conditional_input, prior.conditional_shape, x, event_rank, owner)
    if features is not None:
        term = prior.context_prior(features)
        term = term[(Ellipsis, *[tf.newaxis] * (event_rank - 1), slice(None))]  # [*batch, 1.., 2C]
        params = term if params is None else params + term
    mean, raw = tf.split(params, 2, axis=-1)
    return mean, log_scale(raw, 'tanh', prior.log_scale_bound)


class LearnedPrior(FlowBijector):
    """Shifts and scales a standard Normal latent: a learned, optionally conditional prior.

    Event z of shape E ([H, W, C] or [D]), last axis C; mean and log-scale of shape E:
      (mean, raw) = (m, r)           if `learned` (free variables of shape E; Glow's `learntop`)
                  + Linear(c)        if `conditional_shape` (Glow's `ycond`: a zero-initialised
                                     linear map of the flattened context c, kwarg
                                     `conditional_input`, the same at every position)
      log_scale = bound * tanh(raw / bound)
      forward (latent -> data):  y = z * exp(log_scale) + mean
      inverse (data -> latent):  z = (y - mean) * exp(-log_scale)
      log|det dy/dz| = sum of log_scale over the event
    Over the flow's standard Normal base this is the prior N(mean, exp(log_scale)^2). Every
    parameter starts at zero: at first, the identity.

    Reference: Kingma and Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    kwarg_names = ('conditional_input',)

    def __init__(
        self,
        event_shape,
        learned=True,
        conditional_shape=None,
        log_scale_bound=2.0,
        dtype=tf.float32,
        validate_args=False,
        name='learned_prior',
        dtype_policy=None,
    ):
        """The prior on events E = `event_shape`; other arguments as `AffineCoupling`'s
        (`dtype_policy`: the context map's). `ValueError` naming an argument outside its
        domain, or for neither `learned` nor a conditional shape (the identity)."""
        parameters = dict(locals())
        self._event_shape = checks.check_shape('event_shape', event_shape)
        self._log_scale_bound = LOG_SCALE_BOUND.check('log_scale_bound', log_scale_bound)
        self._conditional_shape = check_conditional_shape(conditional_shape)
        learned = checks.BOOL.check('learned', learned)
        dtype = networks.check_arguments(dtype, dtype_policy)['dtype']
        if not learned and self._conditional_shape is None:
            raise ValueError(
                'A LearnedPrior needs learned=True or a `conditional_shape`; with neither it '
                'would be the identity.'
            )
        with tf.name_scope(name) as name:
            if learned:
                self.mean = tf.Variable(tf.zeros(self._event_shape, dtype), name='mean')
                self.raw_log_scale = tf.Variable(
                    tf.zeros(self._event_shape, dtype), name='log_scale'
                )
            else:
                self.mean = self.raw_log_scale = None
            self.context_prior = context_prior(
                self._conditional_shape, self._event_shape[-1], dtype, dtype_policy
            )
            self._init_step(
                parameters,
                name,
                len(self._event_shape),
                dtype,
                constant_jacobian=self._conditional_shape is None,
            )

    def structure(self):
        return {**super().structure(), 'learned': self.mean is not None}

    def _map(self, x, inverse, conditional_input):
        check_event_shape(x, self._event_shape, 'LearnedPrior')
        params = None
        if self.mean is not None:
            params = tf.concat([self.mean, self.raw_log_scale], axis=-1)
        rank = len(self._event_shape)
        mean, scale = prior_parameters(self, x, params, conditional_input, rank)
        return affine(x, mean, scale, inverse, rank)

    def _forward_and_log_det(self, z, conditional_input=None):
        return self._map(z, False, conditional_input)

    def _inverse_and_log_det(self, y, conditional_input=None):
        return self._map(y, True, conditional_input)
