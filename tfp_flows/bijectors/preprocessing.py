"""Preprocessing steps between dequantized data in [0, 1] and the rest of a flow.

Both are elementwise TFP bijectors (`tfb.Shift`, `tfb.Sigmoid`) with the checks a flow's data
side needs: the event shape and dtype always; with `validate_args`, finite values in the
step's data range (`tf.errors.InvalidArgumentError` naming the values outside it).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.shapes import check_event_shape, reduce_log_det

tfb = tfp.bijectors

__all__ = ['Centre', 'LogitTransform']

ALPHA = checks.number(0, 0.5, high_open=True)


class _Preprocessing(FlowBijector):
    """Applies the elementwise TFP bijector `transform` (forward: latent -> data) to events
    of `event_shape` (its min event ndims: log-dets are per event); data must lie in [0, 1],
    or (0, 1) if `_open_range`."""

    _open_range = False

    def __init__(self, event_shape, transform, dtype, parameters, name):
        self._event_shape = checks.check_shape('event_shape', event_shape)
        self.transform = transform
        with tf.name_scope(name) as name:
            self._init_step(parameters, name, len(self._event_shape), dtype)

    def _check_data(self, x):
        check_event_shape(x, self._event_shape, type(self).__name__)
        if not self.validate_args:
            return x
        if self._open_range:
            inside = (x > 0) & (x < 1)
            where = f'(0.0, 1.0) (the open support of alpha={self._alpha}'
        else:
            inside, where = (x >= 0) & (x <= 1), '[0.0, 1.0] (dequantized images'
        outside = tf.boolean_mask(x, ~inside)
        message = tf.strings.format(
            f'{type(self).__name__} {self.name!r} takes data in {where}; NaN is outside); '
            'got {} value(s) outside it, the first: {}. Integer pixels k in [0, B) go in '
            'dequantized, x = (k + u) / B (`tfp_flows.uniform_dequantize(pixels, B)`).',
            (tf.size(outside), outside[:5]),
        )
        check = tf.debugging.Assert(tf.reduce_all(inside), [message])
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def _forward_and_log_det(self, z):
        check_event_shape(z, self._event_shape, type(self).__name__)
        return self.transform.forward(z), self._per_event(
            self.transform.forward_log_det_jacobian(z, 0), z
        )

    def _inverse_and_log_det(self, x):
        x = self._check_data(x)
        return self.transform.inverse(x), self._per_event(
            self.transform.inverse_log_det_jacobian(x, 0), x
        )

    def _per_event(self, log_det, x):
        """An elementwise log-det (or a constant scalar) summed over the event."""
        return reduce_log_det(log_det, x, 0, len(self._event_shape))


class Centre(_Preprocessing):
    """Glow's preprocessing: data x in [0, 1] is centred to z = x - 1/2 (`tfb.Shift(0.5)`).

    Elementwise on inputs [..., *event_shape], log-dets one per event:
      forward (latent -> data):  x = z + 1/2,  inverse (data -> latent):  z = x - 1/2
      log|det dx/dz| = 0
    With `validate_args`, data outside [0, 1] (or NaN) raises `InvalidArgumentError` naming the
    values. `ValueError` for a bad `event_shape`, `dtype` (float32 or float64) or `validate_args`.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """

    def __init__(self, event_shape, dtype=tf.float32, validate_args=False, name='centre'):
        parameters = dict(locals())
        dtype = checks.check_float_dtype('dtype', dtype)
        shift = tfb.Shift(tf.constant(0.5, dtype), name='shift')
        super().__init__(event_shape, shift, dtype, parameters, name)


class LogitTransform(_Preprocessing):
    """Real NVP's preprocessing: data x in [0, 1] to logit space, away from the edges.

    Elementwise (as `Centre`), with 0 <= alpha < 1/2 (the paper's 0.05), `tfb.Sigmoid(low, high)`:
      low = -alpha / (1 - 2 alpha),  high = (1 - alpha) / (1 - 2 alpha)
      inverse (data -> latent):  z = logit(alpha + (1 - 2 alpha) x) = log(x - low) - log(high - x)
      forward (latent -> data):  x = low + (high - low) sigmoid(z)
      log|det dx/dz| = log(high - low) - softplus(-z) - softplus(z)   per element
    The support (low, high) is slightly wider than [0, 1] for alpha > 0 (so bits/dim on [0, 1]
    data is an upper bound), (0, 1) for alpha = 0. Never NaN: outside it `log_prob` is -inf
    (with `validate_args`, `InvalidArgumentError` naming the values), and `forward` stays
    strictly inside, so a float32 sample scores finite. Arguments checked as `Centre`'s, and
    `alpha`.

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """

    def __init__(
        self, event_shape, alpha=0.05, dtype=tf.float32, validate_args=False, name='logit'
    ):
        parameters = dict(locals())
        dtype = checks.check_float_dtype('dtype', dtype)
        self._alpha = ALPHA.check('alpha', alpha)
        self._open_range = self._alpha == 0
        width = 1.0 - 2.0 * self._alpha
        self._low, self._high = -self._alpha / width, (1.0 - self._alpha) / width
        sigmoid = tfb.Sigmoid(
            low=tf.constant(self._low, dtype), high=tf.constant(self._high, dtype), name='sigmoid'
        )
        super().__init__(event_shape, sigmoid, dtype, parameters, name)

    @property
    def alpha(self):
        return self._alpha

    @property
    def support(self):
        """(low, high): `log_prob` is finite on this open interval and -inf outside it."""
        return self._low, self._high

    def structure(self):
        return {**super().structure(), 'alpha': self._alpha}

    def _forward_and_log_det(self, z):
        x, log_det = super()._forward_and_log_det(z)
        dtype = x.dtype.as_numpy_dtype
        low = np.nextafter(np.array(self._low, dtype), np.array(self._high, dtype))
        high = np.nextafter(np.array(self._high, dtype), np.array(self._low, dtype))
        return tf.clip_by_value(x, low, high), log_det

    def _inverse_and_log_det(self, x):
        x = self._check_data(x)
        low, high = tf.constant(self._low, x.dtype), tf.constant(self._high, x.dtype)
        inside = (x > low) & (x < high)
        safe = tf.where(inside, x, tf.constant((self._low + self._high) / 2, x.dtype))
        z = self.transform.inverse(safe)
        log_det = self.transform.inverse_log_det_jacobian(safe, 0)
        log_det = tf.where(inside, log_det, tf.constant(-np.inf, x.dtype))
        return z, self._per_event(log_det, x)
