"""Uniform dequantization of discrete images and bits/dim on the discrete data.

A flow is a density on continuous values. Images are discrete: each value is one of `num_bins`
integers k in {0, ..., num_bins - 1}. Uniform dequantization turns them into continuous data in
[0, 1):

    x = (k + u) / num_bins,   u ~ Uniform[0, 1)^D

For any density p on [0, 1)^D, the discrete model P(k) = integral of p over the cell of k obeys
(Jensen; Theis et al. 2016, https://arxiv.org/abs/1511.01844)

    log P(k) >= E_u[log p(x)] - D * log(num_bins)

so bits/dim on the discrete data, an upper bound on the discrete model's code length, is

    bits/dim = (-log p(x) + D * log(num_bins)) / (D * log(2))

where `log p(x)` is the flow's `log_prob` on x in [0, 1)^D: every preprocessing bijector inside
the flow (logit, centring) is already part of that log-density.
"""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfp_flows.validation import assert_values, check_float_dtype, check_stateless_seed

__all__ = ['bits_per_dim', 'uniform_dequantize']


def uniform_dequantize(pixels, num_bins, seed=None, dtype=tf.float32):
    """Returns `(pixels + u) / num_bins` with `u ~ Uniform[0, 1)`, a float in [0, 1).

    The result is clipped to the largest float below 1, which float rounding could reach.

    Args:
      pixels: integer-valued `Tensor` (any integer dtype, or a float dtype holding integers) with
        values in {0, ..., num_bins - 1}.
      num_bins: number of discrete levels of the data (256 for 8-bit images, 17 for the 8x8
        scikit-learn digits whose values are 0..16).
      seed: optional stateless seed (shape [2] int); without it the noise is stateful random.
      dtype: float dtype of the result.

    Raises:
      ValueError: for a bad `num_bins`, `seed` or `dtype`, naming it and its value.
      TypeError: for `pixels` that are not numbers (strings, bools), or a seed of floats.
      tf.errors.InvalidArgumentError: at run time, for pixels that are not integers in
        [0, num_bins - 1] (NaN included), with the count and the first of them.
    """
    _check_num_bins(num_bins)
    seed = check_stateless_seed('seed', seed)
    dtype = check_float_dtype('dtype', dtype)
    pixels = tf.convert_to_tensor(pixels)
    if not (pixels.dtype.is_integer or pixels.dtype.is_floating):
        raise TypeError(f'`pixels` must be integer-valued numbers; got dtype {pixels.dtype.name}.')
    pixels = _check_pixels(pixels, num_bins)
    pixels = tf.cast(pixels, dtype)
    shape = tf.shape(pixels)
    if seed is None:
        noise = tf.random.uniform(shape, dtype=dtype)
    else:
        noise = tf.random.stateless_uniform(shape, seed=seed, dtype=dtype)
    # In float32, 255 + u rounds up to 256 for u > 1 - 2**-17: keep x inside its cell, < 1.
    below_one = np.nextafter(np.array(1, dtype.as_numpy_dtype), 0)
    return tf.minimum((pixels + noise) / num_bins, below_one)


def _check_pixels(pixels, num_bins):
    """`pixels` checked at run time to be integers in [0, num_bins - 1]."""
    if pixels.dtype.is_unsigned and num_bins > pixels.dtype.max:
        return pixels  # Every value of the dtype is a valid pixel.
    inside = (pixels >= 0) & (pixels <= tf.cast(num_bins - 1, pixels.dtype))
    if pixels.dtype.is_floating:
        inside &= tf.equal(pixels, tf.round(pixels))
    return assert_values('pixels', pixels, inside, f'integers in [0, {num_bins - 1}]')


def _check_num_bins(num_bins):
    if not isinstance(num_bins, numbers.Integral) or isinstance(num_bins, bool) or num_bins < 2:
        raise ValueError(f'`num_bins` must be an int >= 2; got {num_bins!r}.')


def bits_per_dim(log_prob, num_dims, num_bins):
    """Bits per dimension on the discrete data, from the flow's log-density on [0, 1)^D.

    bits/dim = (-log_prob + D * log(num_bins)) / (D * log(2)),  D = `num_dims`.

    Args:
      log_prob: `Tensor` of log-densities of dequantized data in [0, 1)^D (nats).
      num_dims: D, the number of values per example (H * W * C for an image).
      num_bins: number of discrete levels the data was dequantized from.
    """
    if not isinstance(num_dims, numbers.Integral) or isinstance(num_dims, bool) or num_dims < 1:
        raise ValueError(f'`num_dims` must be a positive int; got {num_dims!r}.')
    _check_num_bins(num_bins)
    log_prob = tf.convert_to_tensor(log_prob)
    return (-log_prob + num_dims * math.log(num_bins)) / (num_dims * math.log(2.0))
