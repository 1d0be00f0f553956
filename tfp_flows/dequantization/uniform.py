"""Discrete pixels k and their cells: checking k, and uniform dequantization x = (k + u) / B.

B = `num_bins` levels; pixel k in {0, ..., B - 1} owns the cell [k, k + 1) / B of [0, 1), and
noise u in [0, 1) picks a point of it (`tfp_flows.dequantization` has the bounds this gives).
"""

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.networks import check_stateless_seed

__all__ = ['below_one', 'check_num_bins', 'check_pixels', 'dequantize_with', 'uniform_dequantize']

_NUM_BINS = checks.integer(2)


def check_num_bins(num_bins):
    """`num_bins` as an int >= 2; `ValueError` naming it otherwise."""
    return _NUM_BINS.check('num_bins', num_bins)


def below_one(dtype):
    """The largest `dtype` float below 1: x = (k + u) / B stays inside [0, 1)."""
    return np.nextafter(np.array(1, tf.as_dtype(dtype).as_numpy_dtype), 0)


def check_pixels(pixels, num_bins, dtype, event_shape=None):
    """`pixels` as a `dtype` tensor, checked to be integers in {0, ..., num_bins - 1} (NaN is
    not): arrays and lists now (`ValueError` naming the first bad values), tensors with
    `checks.check_values` (`InvalidArgumentError`). With `event_shape`, the static shape must be
    [N, *event_shape] (`ValueError`). Strings and booleans raise `TypeError`."""
    num_bins = check_num_bins(num_bins)
    expected = f'`pixels` must be integers from 0 to {num_bins - 1}; got'
    if not isinstance(pixels, tf.Tensor | tf.Variable):
        array = np.asarray(pixels)
        bad = ~_is_pixel(array, num_bins, np) if array.dtype.kind in 'iuf' else False
        if np.any(bad):
            raise ValueError(f'{expected} {array[bad][:5].tolist()}.')
        pixels = tf.convert_to_tensor(array)
    if not (pixels.dtype.is_integer or pixels.dtype.is_floating):
        raise TypeError(f'`pixels` must be integer-valued numbers; got dtype {pixels.dtype.name}.')
    if event_shape is not None and not pixels.shape.is_compatible_with([None, *event_shape]):
        shown = ', '.join(map(str, event_shape))
        raise ValueError(f'`pixels` must have shape [N, {shown}]; got {pixels.shape}.')
    values = tf.cast(pixels, dtype)
    return checks.check_values(values, _is_pixel(values, num_bins, tf.math), expected)


def _is_pixel(values, num_bins, ops):
    """Elementwise: an integer in [0, num_bins - 1] (`ops` is `np` or `tf.math`)."""
    return (values == ops.round(values)) & (values >= 0) & (values <= num_bins - 1)


def dequantize_with(pixels, noise, num_bins):
    """x = (k + u) / B for pixels k (not checked) and noise u in [0, 1) of one float dtype and
    shape, clipped below 1 (in float32, 255 + u rounds up to 256 for u > 1 - 2**-17)."""
    num_bins = check_num_bins(num_bins)
    return tf.minimum((pixels + noise) / num_bins, below_one(noise.dtype))


def uniform_dequantize(pixels, num_bins, seed=None, dtype=tf.float32):
    """x = (pixels + u) / num_bins with u ~ Uniform[0, 1): floats in [0, 1) of the shape of
    integer `pixels` (Theis et al. 2016, https://arxiv.org/abs/1511.01844); `seed` a stateless
    seed [2] or None (stateful); `dtype` float32 or float64. Errors as `check_pixels`, and
    `ValueError` for a bad `num_bins`, `seed` or `dtype`."""
    num_bins = check_num_bins(num_bins)
    dtype = checks.check_float_dtype('dtype', dtype)
    seed = check_stateless_seed('seed', seed)
    return _uniform_dequantize(check_pixels(pixels, num_bins, dtype), num_bins, seed)


def _uniform_dequantize(pixels, num_bins, seed):
    """`uniform_dequantize` of checked pixels (a float tensor, the dtype of the result)."""
    shape, dtype = tf.shape(pixels), pixels.dtype
    if seed is None:
        noise = tf.random.uniform(shape, dtype=dtype)
    else:
        noise = tf.random.stateless_uniform(shape, seed=seed, dtype=dtype)
    return dequantize_with(pixels, noise, num_bins)
