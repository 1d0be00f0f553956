"""A learned Gaussian prior on the latent, as a bijector over a standard Normal base."""

import math

import tensorflow as tf

from tfp_flows import networks
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import check_conditional_shape, context_features
from tfp_flows.bijectors.scale import check_scale, log_scale
from tfp_flows.bijectors.shapes import check_event_shape
from tfp_flows.mixed_precision import check_dtype_policy
from tfp_flows.validation import check_bool, check_float_dtype, shape_tuple

__all__ = ['LearnedPrior']


class LearnedPrior(FlowBijector):
    """Shifts and scales a standard Normal latent: a learned, optionally conditional prior.

    Event z of shape E ([H, W, C] for the top latent of an image flow, [D] for vectors), with
    the last axis of size C. The mean and log-scale have shape E:
      (mean, raw) = (m, r)           if `learned` (variables of shape E, Glow's `learntop`)
                  + Linear(c)        if `conditional_shape` (Glow's `ycond`: a zero-initialised
                                     linear map of the flattened context c to 2C values, the
                                     same at every position of an image)
      log_scale = bound * tanh(raw / bound)
      forward (latent -> data):  y = z * exp(log_scale) + mean
      inverse (data -> latent):  z = (y - mean) * exp(-log_scale)
      log|det dy/dz| = sum of log_scale over the event
    Over the flow's standard Normal base this gives the value it maps the prior
    N(mean, exp(log_scale)^2), so the base stays a standard Normal and the model stays one
    `tfd.TransformedDistribution` with exact `log_prob` and `sample`. Every parameter starts
    at zero: a fresh prior is the identity (the model is unchanged).

    Glow's `learntop` is a zero-initialised 3x3 conv of a zero tensor: a per-channel value,
    plus a learned term on the border positions from its edge padding. The free mean and
    log-scale of every latent value here include that. The context is the bijector kwarg
    `conditional_input`, [*batch, *conditional_shape].

    Reference: Kingma and Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039 (the code's
    `prior` with `learntop` and `ycond`).
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
        """Creates the prior.

        Args:
          event_shape: E, the latent's event shape (positive ints).
          learned: learn a free mean and log-scale of shape E.
          conditional_shape: None, or the shape of one context c.
          log_scale_bound: clamp of the log-scale, a finite number > 0.
          dtype: a floating-point dtype.
          validate_args: True or False, as for every TFP bijector.
          name: the name scope.
          dtype_policy: None, 'mixed_bfloat16' or 'mixed_float16': the context's linear map
            computes in that Keras policy and returns float32 (`tfp_flows.mixed_precision`);
            the free mean and log-scale, the map and the log-det stay float32.

        Raises:
          ValueError: for an argument outside its domain, naming it, or neither `learned` nor
            a conditional shape (the prior would be the identity).
        """
        parameters = dict(locals())
        shape = shape_tuple(event_shape)
        if not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise ValueError(
                f'`event_shape` must be a non-empty shape of positive ints; got {event_shape!r}.'
            )
        event_shape = shape
        check_scale('tanh', log_scale_bound)
        self._conditional_shape = check_conditional_shape(conditional_shape)
        check_bool('learned', learned)
        dtype = check_float_dtype('dtype', dtype)
        check_bool('validate_args', validate_args)
        policy = check_dtype_policy(dtype_policy, dtype)
        if not learned and self._conditional_shape is None:
            raise ValueError(
                'A LearnedPrior needs learned=True or a `conditional_shape`; with neither it '
                'would be the identity.'
            )
        self._event_shape = event_shape
        self._log_scale_bound = log_scale_bound
        channels = event_shape[-1]
        with tf.name_scope(name) as name:
            if learned:
                self.mean = tf.Variable(tf.zeros(event_shape, dtype), name='mean')
                self.raw_log_scale = tf.Variable(tf.zeros(event_shape, dtype), name='log_scale')
            else:
                self.mean = self.raw_log_scale = None
            if self._conditional_shape is None:
                self.context_prior = None
            else:
                self.context_prior = networks.ZeroDense(
                    math.prod(self._conditional_shape),
                    2 * channels,
                    dtype,
                    name='context_prior',
                    dtype_policy=policy,
                )
            super().__init__(
                forward_min_event_ndims=len(event_shape),
                is_constant_jacobian=self._conditional_shape is None,
                dtype=dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def event_shape(self):
        return self._event_shape

    @property
    def conditional_shape(self):
        """The shape of one context (a tuple), or None."""
        return self._conditional_shape

    def structure(self):
        structure = {
            'class': 'LearnedPrior',
            'event_shape': list(self._event_shape),
            'learned': self.mean is not None,
            'log_scale_bound': self._log_scale_bound,
        }
        if self._conditional_shape is not None:
            structure['conditional_shape'] = list(self._conditional_shape)
        return structure

    def _params(self, x, conditional_input):
        """(mean, log_scale), each broadcastable to `x` [*batch, *E]."""
        owner = f'LearnedPrior {self.name!r}'
        check_event_shape(x, self._event_shape, 'LearnedPrior')
        rank = len(self._event_shape)
        context = context_features(conditional_input, self._conditional_shape, x, rank, owner)
        mean = raw = tf.zeros([], x.dtype)
        if self.mean is not None:
            mean, raw = self.mean, self.raw_log_scale
        if context is not None:
            params = self.context_prior(context)
            params = tf.reshape(
                params, tf.concat([tf.shape(params)[:-1], [1] * (rank - 1), [-1]], axis=0)
            )
            context_mean, context_raw = tf.split(params, 2, axis=-1)
            mean, raw = mean + context_mean, raw + context_raw
        return mean, log_scale(raw, 'tanh', self._log_scale_bound)

    def _log_det(self, scale, dtype):
        """sum of log_scale over the event: a scalar, or [*batch] with a context."""
        rank = len(self._event_shape)
        return tf.reduce_sum(scale + tf.zeros(self._event_shape, dtype), axis=list(range(-rank, 0)))

    def _forward_and_log_det(self, z, conditional_input=None):
        mean, scale = self._params(z, conditional_input)
        return z * tf.exp(scale) + mean, self._log_det(scale, z.dtype)

    def _inverse_and_log_det(self, y, conditional_input=None):
        mean, scale = self._params(y, conditional_input)
        return (y - mean) * tf.exp(-scale), -self._log_det(scale, y.dtype)
