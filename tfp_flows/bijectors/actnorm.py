"""ActNorm: per-channel affine map with data-dependent initialisation (Glow)."""

import warnings

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.bijectors.affine import affine
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.shapes import check_channels

__all__ = ['ActNorm']


class ActNorm(FlowBijector):
    """Per-channel affine map with a learned shift and log-scale.

    Acts on the last axis of size C (of an image [H, W, C], or a vector [C]); `shift` and
    `log_scale` have shape [C].
      forward (latent -> data):  y = x * exp(log_scale) + shift
      inverse (data -> latent):  x = (y - shift) * exp(-log_scale)
      log|det dy/dx| = sum(log_scale) per vector (H * W * sum(log_scale) for [H, W, C])
    Data-dependent initialisation, once (`initialized` is saved: a restored model is never
    initialised again): `initialize(y)` sets shift = mean(y), log_scale = log(max(std(y),
    min_std)) per channel, so the inverse maps `y` to zero mean and unit variance. A whole
    flow: `tfp_flows.initialize`.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self, num_channels, min_std=1e-3, dtype=tf.float32, validate_args=False, name='act_norm'
    ):
        """An ActNorm over `num_channels` (a positive int), at first the identity. `min_std`
        (> 0) floors the std in `initialize`; `dtype` is tf.float32 or tf.float64;
        `validate_args` checks that inputs are finite. `ValueError` naming a bad argument."""
        num_channels = checks.POSITIVE_INT.check('num_channels', num_channels)
        min_std = checks.POSITIVE_NUMBER.check('min_std', min_std)
        dtype = checks.check_float_dtype('dtype', dtype)
        parameters = dict(locals())
        self._num_channels = num_channels
        self._min_std = min_std
        with tf.name_scope(name) as name:
            self.shift = tf.Variable(tf.zeros([num_channels], dtype), name='shift')
            self.log_scale = tf.Variable(tf.zeros([num_channels], dtype), name='log_scale')
            self.initialized = tf.Variable(
                False,
                trainable=False,
                name='initialized',
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self._init_step(parameters, name, 1, dtype, constant_jacobian=True)

    @property
    def num_channels(self):
        return self._num_channels

    def _check(self, x):
        check_channels(x, self._num_channels, type(self).__name__)
        if self.validate_args:
            x = tf.debugging.assert_all_finite(x, f'{type(self).__name__} input has NaN or inf.')
        return x

    def _forward_and_log_det(self, x):
        return affine(self._check(x), self.shift, self.log_scale, False, 1)

    def _inverse_and_log_det(self, y):
        return affine(self._check(y), self.shift, self.log_scale, True, 1)

    def initialize(self, y):
        """Sets shift and log-scale from data `y` [..., C] unless already initialised; eagerly,
        in `tf.function`, or in cross-replica context with the global batch.
        `tf.errors.InvalidArgumentError` for a `y` that is not finite."""
        y = self._check(tf.convert_to_tensor(y, self.dtype))
        y = checks.check_values(y, tf.math.is_finite(y), '`y` must be finite; got')
        axes = list(range(y.shape.rank - 1))
        self.initialize_from_moments(*tf.nn.moments(y, axes=axes))

    def _warn_if_constant(self, variance):
        """A `UserWarning` for channels whose data is (nearly) constant: their scale is capped
        at 1 / min_std, and the density of any other data becomes extreme."""
        constant = np.flatnonzero(np.sqrt(variance.numpy()) < self._min_std)
        if constant.size:
            warnings.warn(
                f'ActNorm {self.name!r}: channel(s) {constant.tolist()[:10]} of the data '
                f'reaching it are constant (standard deviation < min_std={self._min_std}), so '
                f'their scale is capped at 1/min_std and log_prob of other data is extreme. '
                'Initialise from data that varies in every channel (dequantized images do).',
                stacklevel=4,
            )

    def initialize_from_moments(self, mean, variance):
        """`initialize` given the data's moments, [C] each (`ValueError` otherwise);
        `tf.errors.InvalidArgumentError`, nothing assigned, unless finite (variance >= 0)."""
        mean = tf.cast(mean, self.dtype)
        variance = tf.cast(variance, self.dtype)
        for name, value in (('mean', mean), ('variance', variance)):
            if not value.shape.is_compatible_with([self._num_channels]):
                raise ValueError(
                    f'`{name}` must have shape [{self._num_channels}] (one value per channel); '
                    f'got shape {value.shape.as_list()}.'
                )
        mean = checks.check_values(mean, tf.math.is_finite(mean), '`mean` must be finite; got')
        variance = checks.check_values(
            variance,
            tf.math.is_finite(variance) & (variance >= 0),
            '`variance` must be finite and >= 0; got',
        )
        std = tf.maximum(tf.sqrt(variance), tf.cast(self._min_std, self.dtype))
        done = self.initialized
        if tf.executing_eagerly() and not done.numpy():
            self._warn_if_constant(variance)
        updates = [
            self.shift.assign(tf.where(done, self.shift, mean)),
            self.log_scale.assign(tf.where(done, self.log_scale, tf.math.log(std))),
        ]
        with tf.control_dependencies(updates):  # In a graph, only once `y` passed its check.
            self.initialized.assign(True)
