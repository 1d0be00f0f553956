"""Bits/dim of discrete images under a flow: the one-sample bound and the importance-weighted
estimate, with uniform or learned dequantization noise (the math is in the package docstring).
"""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfp_flows import checks, sampling
from tfp_flows.dequantization.uniform import (
    _uniform_dequantize,
    check_num_bins,
    check_pixels,
    dequantize_with,
)
from tfp_flows.networks import check_stateless_seed

__all__ = [
    'bits_per_dim',
    'check_dequantizer',
    'dequantize',
    'dequantized_bits_per_dim',
    'importance_weighted_bits_per_dim',
    'importance_weighted_log_likelihood',
]


def bits_per_dim(log_prob, num_dims, num_bins):
    """Bits/dim on the discrete data, (-log_prob + D log(num_bins)) / (D log(2)), from
    `log_prob` (nats) of dequantized data in [0, 1)^D (minus log q(u | k) for a learned
    dequantizer); `num_dims` D = H W C, a positive int; `num_bins` an int >= 2."""
    num_dims = checks.POSITIVE_INT.check('num_dims', num_dims)
    num_bins = check_num_bins(num_bins)
    log_prob = tf.convert_to_tensor(log_prob)
    return (-log_prob + num_dims * math.log(num_bins)) / (num_dims * math.log(2.0))


def dequantize(pixels, num_bins, dequantizer=None, seed=None, dtype=tf.float32):
    """(x = (k + u) / B [N, *E] in [0, 1), log q(u | k) [N] in nats) of pixels k [N, *E]
    (`check_pixels`), u from `dequantizer` (None: uniform, log q = 0); `seed` a stateless seed
    [2] or None; `dtype` float32 or float64."""
    num_bins = check_num_bins(num_bins)
    dtype = checks.check_float_dtype('dtype', dtype)
    check_dequantizer(dequantizer, num_bins)
    seed = check_stateless_seed('seed', seed)
    pixels = check_pixels(pixels, num_bins, dtype)
    return _dequantize(pixels, num_bins, dequantizer, seed, dtype)


def check_dequantizer(dequantizer, num_bins, event_shape=None, dtype=None):
    """Raises unless `dequantizer` is None or a dequantizer (a `tf.Module` with
    `sample_and_log_prob`) built for `num_bins` levels and, where given, for images of
    `event_shape` (a tuple) and `dtype`: `TypeError` for another object, `ValueError` naming
    what differs (or for a dequantizer of continuous data, `num_bins` None)."""
    if dequantizer is None:
        return
    if not isinstance(dequantizer, tf.Module) or not callable(
        getattr(dequantizer, 'sample_and_log_prob', None)
    ):
        raise TypeError(
            '`dequantizer` must be None or a VariationalDequantizer (a tf.Module with '
            f'`sample_and_log_prob`); got {type(dequantizer).__name__}.'
        )
    if num_bins is None:
        raise ValueError('A `dequantizer` needs `num_bins` (discrete images); got None.')
    expected = dict(num_bins=num_bins, event_shape=event_shape, dtype=dtype)
    found = dict(
        num_bins=dequantizer.num_bins,
        event_shape=tuple(dequantizer.event_shape),
        dtype=tf.as_dtype(dequantizer.dtype),
    )
    differ = [key for key, value in expected.items() if value not in (None, found[key])]
    if differ:
        shown = ', '.join(f'{key} {expected[key]!r} (got {found[key]!r})' for key in differ)
        raise ValueError(f'The dequantizer must be built for the data: {shown}.')


def _dequantize(pixels, num_bins, dequantizer, seed, dtype):
    """`dequantize` of checked pixels (a `dtype` tensor)."""
    if dequantizer is None:
        return _uniform_dequantize(pixels, num_bins, seed), tf.zeros(tf.shape(pixels)[:1], dtype)
    noise, log_q = dequantizer.sample_and_log_prob(pixels, seed=seed)
    x = dequantize_with(tf.cast(pixels, noise.dtype), noise, num_bins)
    return tf.cast(x, dtype), tf.cast(log_q, dtype)


def _num_dims(flow):
    shape = flow.event_shape
    if not shape.is_fully_defined():
        raise ValueError(f'The flow needs a static event shape; got {shape}.')
    return int(shape.num_elements())


def _log_prob_kwargs(bijector_kwargs):
    return {} if bijector_kwargs is None else {'bijector_kwargs': bijector_kwargs}


def dequantized_bits_per_dim(flow, dequantizer, pixels, num_bins, seed=None, bijector_kwargs=None):
    """The one-sample bound on bits/dim of discrete images: the loss to train and evaluate.

    bits/dim = (-log p(x) + log q(u | k) + D log B) / (D log 2),  x = (k + u) / B, u ~ q(u | k)

    (Ho et al. 2019, Flow++, eq. 9-10, https://arxiv.org/abs/1902.00275); differentiable in
    both models' variables (u is reparameterised). Returns [N] in the flow's dtype. Arguments
    and errors as `dequantize`; `flow` a `tfd.TransformedDistribution` (else `TypeError`) on
    [0, 1]^D; `bijector_kwargs` go to `flow.log_prob` (e.g. {'training': True}).
    """
    sampling.check_flow(flow)
    x, log_q = dequantize(pixels, num_bins, dequantizer, seed, flow.dtype)
    log_prob = flow.log_prob(x, **_log_prob_kwargs(bijector_kwargs))
    return bits_per_dim(log_prob - log_q, _num_dims(flow), num_bins)


def _check_num_samples(num_samples):
    """A positive int, or an int scalar tensor checked at run time; as an int32 tensor."""
    if isinstance(num_samples, numbers.Integral) and not isinstance(num_samples, bool):
        return tf.constant(checks.POSITIVE_INT.check('num_samples', num_samples), tf.int32)
    if num_samples is None:
        raise ValueError('`num_samples` must be a positive int or an int scalar tensor; got None.')
    num_samples = tf.convert_to_tensor(num_samples)
    if not num_samples.dtype.is_integer or num_samples.shape.rank not in (None, 0):
        raise ValueError(
            '`num_samples` must be a positive int or an int scalar tensor; got a '
            f'{num_samples.dtype.name} tensor of shape {num_samples.shape}.'
        )
    num_samples = tf.cast(num_samples, tf.int32)
    return checks.check_values(
        num_samples, num_samples > 0, '`num_samples` must be a positive int; got'
    )


def _check_seed(seed):
    """An int in [0, 2**31) as the stateless seed [seed, 0], or an int tensor [2]."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return tf.constant([checks.SEED.check('seed', seed), 0], tf.int32)
    expected = '`seed` must be an int or a stateless seed (an int tensor of shape [2])'
    if seed is None:
        raise ValueError(f'{expected}; got None.')
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or not seed.shape.is_compatible_with([2]):
        raise ValueError(f'{expected}; got a {seed.dtype.name} tensor of shape {seed.shape}.')
    return seed


def importance_weighted_log_likelihood(
    flow, dequantizer, pixels, num_bins, num_samples, seed, bijector_kwargs=None
):
    """The importance-weighted estimate of log P(k) on discrete images, in nats, [N].

    log P(k) ~ logsumexp_s [log p(x_s) - log q(u_s | k)] - log S - D log B, with S =
    `num_samples` draws u_s ~ q(u | k) (IWAE, Burda et al. 2016,
    https://arxiv.org/abs/1509.00519), one after another in a `tf.while_loop` (memory does not
    grow with S), draw s with seed `stateless_fold_in(seed, s)`: a fixed seed, a fixed figure.
    S: a positive int or an int scalar tensor; `seed`: an int in [0, 2**31) or a stateless
    seed [2]; the rest as for `dequantized_bits_per_dim`.
    """
    sampling.check_flow(flow)
    num_bins = check_num_bins(num_bins)
    check_dequantizer(dequantizer, num_bins)
    num_samples = _check_num_samples(num_samples)
    seed = _check_seed(seed)
    pixels = check_pixels(pixels, num_bins, flow.dtype)
    kwargs = _log_prob_kwargs(bijector_kwargs)

    def body(s, total):
        draw_seed = tf.random.experimental.stateless_fold_in(seed, s)
        x, log_q = _dequantize(pixels, num_bins, dequantizer, draw_seed, flow.dtype)
        log_weight = flow.log_prob(x, **kwargs) - log_q
        return s + 1, tf.reduce_logsumexp(tf.stack([total, log_weight]), axis=0)

    start = tf.fill(tf.shape(pixels)[:1], tf.constant(-np.inf, flow.dtype))
    _, total = tf.while_loop(
        lambda s, _: s < num_samples, body, (tf.constant(0), start), parallel_iterations=1
    )
    log_num_samples = tf.math.log(tf.cast(num_samples, flow.dtype))
    return total - log_num_samples - _num_dims(flow) * math.log(num_bins)


def importance_weighted_bits_per_dim(
    flow, dequantizer, pixels, num_bins, num_samples, seed, bijector_kwargs=None
):
    """-log2 P(k) / D from `importance_weighted_log_likelihood` (same arguments): bits/dim,
    [N], in expectation an upper bound falling with S; S = 1 is `dequantized_bits_per_dim`."""
    log_likelihood = importance_weighted_log_likelihood(
        flow, dequantizer, pixels, num_bins, num_samples, seed, bijector_kwargs
    )
    return -log_likelihood / (_num_dims(flow) * math.log(2.0))
