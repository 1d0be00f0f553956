"""Preprocessing bijectors between dequantized data in [0, 1] and a flow's latent side."""

import math

import tensorflow as tf

from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.shapes import check_event_shape

__all__ = ['Centre', 'LogitTransform']


class _Preprocessing(FlowBijector):
    """Checks that data has the event shape (and, with `validate_args`, lies in [0, 1])."""

    def __init__(self, event_shape, dtype, validate_args, parameters, name):
        event_shape = tuple(event_shape)
        if not event_shape or not all(isinstance(d, int) and d > 0 for d in event_shape):
            raise ValueError(
                f'`event_shape` must be a tuple of positive ints; got {event_shape!r}.'
            )
        self._event_shape = event_shape
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=0,
                dtype=dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def event_shape(self):
        return self._event_shape

    def _check_data(self, x):
        check_event_shape(x, self._event_shape, type(self).__name__)
        if self.validate_args:
            x = tf.debugging.assert_all_finite(x, 'Data has NaN or inf values.')
            checks = [
                tf.debugging.assert_greater_equal(
                    x, tf.zeros([], x.dtype), message='Data must lie in [0, 1]; a value is < 0.'
                ),
                tf.debugging.assert_less_equal(
                    x, tf.ones([], x.dtype), message='Data must lie in [0, 1]; a value is > 1.'
                ),
            ]
            with tf.control_dependencies(checks):
                x = tf.identity(x)
        return x

    def _check_latent(self, z):
        check_event_shape(z, self._event_shape, type(self).__name__)
        return z


class Centre(_Preprocessing):
    """Glow's preprocessing: data x in [0, 1] is centred to z = x - 1/2.

    Elementwise on an event of `event_shape`:
      forward (latent -> data):  x = z + 1/2
      inverse (data -> latent):  z = x - 1/2
      log|det dx/dz| = 0
    It also checks the data's shape and dtype at the model's input.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """

    def __init__(self, event_shape, dtype=tf.float32, validate_args=False, name='centre'):
        parameters = dict(locals())
        super().__init__(event_shape, dtype, validate_args, parameters, name)

    def _forward_and_log_det(self, z):
        return self._check_latent(z) + 0.5, tf.zeros([], z.dtype)

    def _inverse_and_log_det(self, x):
        return self._check_data(x) - 0.5, tf.zeros([], x.dtype)


class LogitTransform(_Preprocessing):
    """Real NVP's preprocessing: data x in [0, 1] to logit space, away from the edges.

    Elementwise on an event of `event_shape`, with 0 <= alpha < 1/2 (the paper's 0.05):
      inverse (data -> latent):  z = logit(alpha + (1 - 2 alpha) x)
      forward (latent -> data):  x = (sigmoid(z) - alpha) / (1 - 2 alpha)
      log|det dx/dz| = log sigmoid(z) + log sigmoid(-z) - log(1 - 2 alpha)   per element
    The log-det makes `log_prob` a density of x, so bits/dim on the discrete data comes out
    right. Its support is the interval the forward map reaches, (-alpha, 1 + alpha) / (1 - 2
    alpha) per element, slightly wider than [0, 1]: the mass on [0, 1] is below 1, so the
    bits/dim on [0, 1] data is an upper bound (as in the paper), and samples can fall
    slightly outside [0, 1].

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """

    def __init__(
        self, event_shape, alpha=0.05, dtype=tf.float32, validate_args=False, name='logit'
    ):
        parameters = dict(locals())
        if not 0 <= alpha < 0.5:
            raise ValueError(f'`alpha` must be in [0, 0.5); got {alpha!r}.')
        self._alpha = alpha
        super().__init__(event_shape, dtype, validate_args, parameters, name)

    def _log_det(self, z):
        return tf.math.log_sigmoid(z) + tf.math.log_sigmoid(-z) - math.log1p(-2 * self._alpha)

    def _forward_and_log_det(self, z):
        z = self._check_latent(z)
        x = (tf.sigmoid(z) - self._alpha) / (1 - 2 * self._alpha)
        return x, self._log_det(z)

    def _inverse_and_log_det(self, x):
        x = self._check_data(x)
        p = self._alpha + (1 - 2 * self._alpha) * x
        z = tf.math.log(p) - tf.math.log1p(-p)
        return z, -self._log_det(z)
