"""Invertible 1x1 convolutions (Glow): plain and LU-decomposed."""

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.shapes import check_channels

__all__ = ['InvertibleConv1x1', 'LUInvertibleConv1x1', 'random_rotation']


def random_rotation(num_channels, seed, dtype=tf.float32):
    """A random orthogonal [C, C] matrix: Q of the QR of a standard normal matrix, seeded."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((num_channels, num_channels)))
    q = q * np.sign(np.diag(r))  # Haar-distributed, as in Mezzadri (2007).
    return tf.constant(q, dtype)


def _apply_per_pixel(x, matrix):
    """Returns `matrix @ v` for every vector v on the last axis of `x` (a 1x1 convolution)."""
    shape = x.shape if x.shape.is_fully_defined() else tf.shape(x)  # Static: no ops to trace.
    flat = tf.reshape(x, [-1, shape[-1]])
    return tf.reshape(tf.matmul(flat, matrix, transpose_b=True), shape)


class _Conv1x1(FlowBijector):
    """What the 1x1 convolutions share; a subclass makes its variables (`_make_variables`) and
    gives W and W^-1 with log|det W| (`weights_and_log_det`, `inverse_weights_and_log_det`)."""

    def __init__(self, num_channels, seed, dtype, parameters, name):
        num_channels = checks.POSITIVE_INT.check('num_channels', num_channels)
        checks.SEED.check('seed', seed)
        dtype = checks.check_float_dtype('dtype', dtype)
        self._num_channels = num_channels
        with tf.name_scope(name) as name:
            self._make_variables(random_rotation(num_channels, seed, tf.float64), dtype)
            self._init_step(parameters, name, 1, dtype, constant_jacobian=True)

    @property
    def num_channels(self):
        return self._num_channels

    def _forward_and_log_det(self, x):
        check_channels(x, self._num_channels, type(self).__name__)
        weights, log_det = self.weights_and_log_det()
        return _apply_per_pixel(x, weights), log_det

    def _inverse_and_log_det(self, y):
        check_channels(y, self._num_channels, type(self).__name__)
        inverse_weights, log_det = self.inverse_weights_and_log_det()
        return _apply_per_pixel(y, inverse_weights), -log_det


class InvertibleConv1x1(_Conv1x1):
    """Invertible 1x1 convolution with an unconstrained weight matrix W.

    Acts on the last axis of size C; W has shape [C, C] and starts as a random rotation.
      forward (latent -> data):  y = W x          at every pixel
      inverse (data -> latent):  x = W^-1 y
      log|det dy/dx| = log|det W| per pixel (H * W * log|det W| for an [H, W, C] event),
                       from W's QR decomposition in float64 (XLA compiles it), O(C^3) a call.
    W may become singular in training (`validate_args` checks it); `LUInvertibleConv1x1` cannot.
    `ValueError` naming a bad `num_channels`, `seed` (`checks.SEED`) or `dtype`.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self, num_channels, seed=0, dtype=tf.float32, validate_args=False, name='conv_1x1'
    ):
        parameters = dict(locals())
        super().__init__(num_channels, seed, dtype, parameters, name)

    def _make_variables(self, rotation, dtype):
        self.weights = tf.Variable(tf.cast(rotation, dtype), name='weights')

    def _log_abs_det(self, weights64):
        """log|det W| = sum(log|diag(R)|) for W = QR."""
        diagonal = tf.abs(tf.linalg.diag_part(tf.linalg.qr(weights64).r))
        if self.validate_args:
            # Singular to float64 precision, the tolerance of `tf.linalg.matrix_rank`.
            tolerance = self._num_channels * np.finfo(np.float64).eps * tf.reduce_max(diagonal)
            singular = tf.debugging.assert_greater(
                tf.reduce_min(diagonal),
                tolerance,
                message='InvertibleConv1x1 weights are singular.',
            )
            with tf.control_dependencies([singular]):
                diagonal = tf.identity(diagonal)
        return tf.cast(tf.reduce_sum(tf.math.log(diagonal)), self.dtype)

    def weights_and_log_det(self):
        weights64 = tf.cast(self.weights, tf.float64)
        return tf.convert_to_tensor(self.weights), self._log_abs_det(weights64)

    def inverse_weights_and_log_det(self):
        weights64 = tf.cast(self.weights, tf.float64)
        inverse = tf.cast(tf.linalg.inv(weights64), self.dtype)
        return inverse, self._log_abs_det(weights64)


class LUInvertibleConv1x1(_Conv1x1):
    """Invertible 1x1 convolution with LU-decomposed weights, W = P L (U + diag(s)).

    Acts on the last axis of size C. P is a fixed permutation (a non-trainable variable), L is
    unit lower triangular, U strictly upper triangular, and s = sign * exp(log_scale) with a
    fixed sign, so W is invertible for every parameter value.
      forward (latent -> data):  y = W x          at every pixel
      inverse (data -> latent):  x = W^-1 y,  W^-1 from two triangular solves once per call
      log|det dy/dx| = sum(log_scale) per pixel (H * W * sum(log_scale) for [H, W, C])
    Starts at the LU decomposition of a random rotation; arguments as `InvertibleConv1x1`'s.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self, num_channels, seed=0, dtype=tf.float32, validate_args=False, name='lu_conv_1x1'
    ):
        parameters = dict(locals())
        super().__init__(num_channels, seed, dtype, parameters, name)

    def _make_variables(self, rotation, dtype):
        lower_upper, permutation = tf.linalg.lu(rotation)
        diagonal = tf.linalg.diag_part(lower_upper)
        self.permutation = tf.Variable(permutation, trainable=False, name='permutation')
        self.sign = tf.Variable(tf.cast(tf.sign(diagonal), dtype), trainable=False, name='sign')
        self.log_scale = tf.Variable(
            tf.cast(tf.math.log(tf.abs(diagonal)), dtype), name='log_scale'
        )
        self.lower = tf.Variable(
            tf.cast(tf.linalg.band_part(lower_upper, -1, 0), dtype), name='lower'
        )  # Only the strictly lower part is used; the diagonal is 1.
        self.upper = tf.Variable(
            tf.cast(tf.linalg.band_part(lower_upper, 0, -1), dtype), name='upper'
        )  # Only the strictly upper part is used; the diagonal is sign * exp(log_scale).

    def _factors(self):
        """L (unit lower triangular) and U (upper, diagonal sign * exp(log_scale)), [C, C],
        built with constant masks: a handful of ops to trace."""
        channels, dtype = self._num_channels, self.dtype
        strictly_lower = tf.constant(np.tril(np.ones((channels, channels)), -1), dtype)
        identity = tf.constant(np.eye(channels), dtype)
        lower = self.lower * strictly_lower + identity
        diagonal = self.sign * tf.exp(self.log_scale)
        upper = self.upper * tf.transpose(strictly_lower) + identity * diagonal
        return lower, upper

    def weights_and_log_det(self):
        # tf.linalg.lu's convention: W's rows are those of L U in the order of the inverse of
        # `permutation` (what `tf.linalg.lu_reconstruct` computes).
        lower, upper = self._factors()
        weights = tf.gather(tf.matmul(lower, upper), tf.math.invert_permutation(self.permutation))
        return weights, tf.reduce_sum(self.log_scale)

    def inverse_weights_and_log_det(self):
        # W^-1 = U^-1 L^-1 P, with P the identity's rows in the order of `permutation`: two
        # triangular solves of a [C, C] matrix, once per call.
        lower, upper = self._factors()
        permuted = tf.gather(tf.constant(np.eye(self._num_channels), self.dtype), self.permutation)
        inverse = tf.linalg.triangular_solve(
            upper, tf.linalg.triangular_solve(lower, permuted, lower=True), lower=False
        )
        return inverse, tf.reduce_sum(self.log_scale)
