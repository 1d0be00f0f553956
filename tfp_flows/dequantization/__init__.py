"""Discrete images <-> densities: dequantization, and bits/dim bounds and estimates.

A flow is a density p on continuous values. Images are discrete: each value is one of B =
`num_bins` integers k in {0, ..., B - 1}. Dequantization maps an image k [H, W, C] (D = H W C
values) to continuous data in [0, 1)^D,

    x = (k + u) / B,   u in [0, 1)^D,

and the discrete model is the mass p puts on the cell of k, P(k) = integral of p(x) over the
cell = integral over u of p((k + u) / B) B^-D du. For any density q(u | k) on [0, 1)^D, by
Jensen's inequality (Theis et al. 2016, https://arxiv.org/abs/1511.01844, for uniform q; Ho et
al. 2019, Flow++, eq. 9, https://arxiv.org/abs/1902.00275, for learned q):

    log P(k) >= E_{u ~ q}[log p(x) - log q(u | k)] - D log B.

Bits/dim on the discrete data is -log P(k) / (D log 2) (a code length); its upper bound from
one draw u ~ q is

    bits/dim = (-log p(x) + log q(u | k) + D log B) / (D log 2)       (`dequantized_bits_per_dim`)

which training minimises and evaluation reports, with q uniform (log q = 0, `uniform_dequantize`,
`dequantizer=None`) or learned (`tfp_flows.dequantization.variational.VariationalDequantizer`).
With S draws u_s ~ q, the importance-weighted estimate (Burda et al. 2016, IWAE,
https://arxiv.org/abs/1509.00519; the figure Flow++ reports)

    log P(k) ~ logsumexp_s [log p(x_s) - log q(u_s | k)] - log S - D log B

is a lower bound in expectation that tightens as S grows and converges to log P(k)
(`importance_weighted_log_likelihood`, `importance_weighted_bits_per_dim`). S = 1 is the
one-sample bound. `log p(x)` is the flow's `log_prob` on x in [0, 1)^D: every preprocessing
bijector inside the flow (logit, centring) is already part of that log-density.
"""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfp_flows import models
from tfp_flows.validation import (
    assert_op,
    assert_values,
    check_float_dtype,
    check_positive_int,
    check_stateless_seed,
    format_message,
)

__all__ = [
    'bits_per_dim',
    'dequantize',
    'dequantized_bits_per_dim',
    'importance_weighted_bits_per_dim',
    'importance_weighted_log_likelihood',
    'uniform_dequantize',
]


def check_num_bins(num_bins):
    """Raises `ValueError` unless `num_bins` is an int >= 2; returns it as an int."""
    if not isinstance(num_bins, numbers.Integral) or isinstance(num_bins, bool) or num_bins < 2:
        raise ValueError(f'`num_bins` must be an int >= 2; got {num_bins!r}.')
    return int(num_bins)


def below_one(dtype):
    """The largest `dtype` float below 1: x = (k + u) / B stays inside [0, 1)."""
    return np.nextafter(np.array(1, dtype.as_numpy_dtype), 0)


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
    check_num_bins(num_bins)
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
    return tf.minimum((pixels + noise) / num_bins, below_one(dtype))


def _check_pixels(pixels, num_bins):
    """`pixels` checked at run time to be integers in [0, num_bins - 1]."""
    if pixels.dtype.is_unsigned and num_bins > pixels.dtype.max:
        return pixels  # Every value of the dtype is a valid pixel.
    inside = (pixels >= 0) & (pixels <= tf.cast(num_bins - 1, pixels.dtype))
    if pixels.dtype.is_floating:
        inside &= tf.equal(pixels, tf.round(pixels))
    return assert_values('pixels', pixels, inside, f'integers in [0, {num_bins - 1}]')


def bits_per_dim(log_prob, num_dims, num_bins):
    """Bits per dimension on the discrete data, from the flow's log-density on [0, 1)^D.

    bits/dim = (-log_prob + D * log(num_bins)) / (D * log(2)),  D = `num_dims`.

    Args:
      log_prob: `Tensor` of log-densities of dequantized data in [0, 1)^D (nats); for a learned
        dequantizer, log p(x) - log q(u | k).
      num_dims: D, the number of values per example (H * W * C for an image).
      num_bins: number of discrete levels the data was dequantized from.
    """
    if not isinstance(num_dims, numbers.Integral) or isinstance(num_dims, bool) or num_dims < 1:
        raise ValueError(f'`num_dims` must be a positive int; got {num_dims!r}.')
    check_num_bins(num_bins)
    log_prob = tf.convert_to_tensor(log_prob)
    return (-log_prob + num_dims * math.log(num_bins)) / (num_dims * math.log(2.0))


def check_pixels(pixels, num_bins, dtype, event_shape=None):
    """`pixels` as a `dtype` tensor, checked to be integers in {0, ..., num_bins - 1}.

    NumPy arrays and Python lists are checked now (`ValueError`); tensors at run time, eagerly
    and inside `tf.function` alike (`InvalidArgumentError`), with the same message naming the
    first bad values. With `event_shape`, the static shape must be [N, *event_shape]
    (`ValueError`). Strings and booleans raise `TypeError`.
    """
    num_bins = check_num_bins(num_bins)
    template = f'`pixels` must be integers from 0 to {num_bins - 1}; got {{}}.'
    if not isinstance(pixels, tf.Tensor | tf.Variable):
        array = np.asarray(pixels)
        if array.dtype.kind not in 'iuf':
            raise TypeError(f'`pixels` must be integer-valued numbers; got dtype {array.dtype}.')
        bad = ~_is_pixel(array, num_bins, np)
        if np.any(bad):
            raise ValueError(format_message(template, array[bad][:5]))
        pixels = tf.constant(array)
    if not (pixels.dtype.is_integer or pixels.dtype.is_floating) or pixels.dtype == tf.bool:
        raise TypeError(f'`pixels` must be integer-valued numbers; got dtype {pixels.dtype.name}.')
    if event_shape is not None:
        expected = tf.TensorShape([None, *event_shape])
        if not pixels.shape.is_compatible_with(expected):
            raise ValueError(
                f'`pixels` must have shape [N, {", ".join(map(str, event_shape))}]; got '
                f'{pixels.shape}.'
            )
    values = tf.cast(pixels, dtype)
    good = _is_pixel(values, num_bins, tf.math)
    check = assert_op(tf.reduce_all(good), template, tf.boolean_mask(values, ~good)[:5])
    with tf.control_dependencies([check]):
        return tf.identity(values)


def _is_pixel(values, num_bins, ops):
    """Elementwise: an integer in [0, num_bins - 1] (`ops` is `np` or `tf.math`)."""
    return (values == ops.round(values)) & (values >= 0) & (values <= num_bins - 1)


def dequantize(pixels, num_bins, dequantizer=None, seed=None, dtype=tf.float32):
    """x = (k + u) / B and log q(u | k), with u from `dequantizer` (uniform if None).

    Args:
      pixels: k, [N, *E] integers in {0, ..., B - 1} (checked, see `check_pixels`).
      num_bins: B.
      dequantizer: None (u ~ Uniform[0, 1)^D, log q = 0) or an object with
        `sample_and_log_prob(pixels, seed) -> (u, log q(u | k))`, e.g. a
        `VariationalDequantizer` built with the same `num_bins`.
      seed: a stateless seed (an int tensor [2]) or None (stateful random).
      dtype: float dtype of x.

    Returns:
      (x [N, *E] in [0, 1), log q(u | k) [N] in nats).
    """
    num_bins = check_num_bins(num_bins)
    dtype = check_float_dtype('dtype', dtype)
    _check_dequantizer(dequantizer)
    if dequantizer is None:
        pixels = check_pixels(pixels, num_bins, dtype)
        x = uniform_dequantize(pixels, num_bins, seed=seed, dtype=dtype)
        return x, tf.zeros(tf.shape(x)[:1], dtype)
    if getattr(dequantizer, 'num_bins', num_bins) != num_bins:
        raise ValueError(
            f'The dequantizer was built for num_bins={dequantizer.num_bins}; got '
            f'num_bins={num_bins}.'
        )
    noise, log_q = dequantizer.sample_and_log_prob(pixels, seed=seed)
    pixels = check_pixels(pixels, num_bins, noise.dtype)
    x = tf.minimum((pixels + noise) / num_bins, below_one(noise.dtype))
    return tf.cast(x, dtype), tf.cast(log_q, dtype)


def _check_dequantizer(dequantizer):
    if dequantizer is not None and not callable(getattr(dequantizer, 'sample_and_log_prob', None)):
        raise TypeError(
            '`dequantizer` must be None or an object with `sample_and_log_prob(pixels, seed)` '
            f'(a VariationalDequantizer); got {type(dequantizer).__name__}.'
        )


def _num_dims(flow):
    shape = flow.event_shape
    if not shape.is_fully_defined():
        raise ValueError(f'The flow needs a static event shape; got {shape}.')
    return int(shape.num_elements())


def _log_weight(flow, dequantizer, pixels, num_bins, seed, bijector_kwargs):
    """log p(x) - log q(u | k) [N] for one draw u ~ q (nats)."""
    models.check_flow(flow)
    x, log_q = dequantize(pixels, num_bins, dequantizer, seed, flow.dtype)
    kwargs = {} if bijector_kwargs is None else {'bijector_kwargs': bijector_kwargs}
    return flow.log_prob(x, **kwargs) - log_q


def dequantized_bits_per_dim(flow, dequantizer, pixels, num_bins, seed=None, bijector_kwargs=None):
    """The one-sample bound on bits/dim of discrete images: the loss to train and evaluate.

    bits/dim = (-log p(x) + log q(u | k) + D log B) / (D log 2),  x = (k + u) / B, u ~ q(u | k)

    (Ho et al. 2019, Flow++, eq. 9-10, https://arxiv.org/abs/1902.00275; q uniform, log q = 0,
    when `dequantizer` is None: Theis et al. 2016). Its expectation over u is an upper bound
    on -log2 P(k) / D. Differentiable in the flow's and the dequantizer's variables (u is
    reparameterised), so training both on its mean trains the pair jointly.

    Args:
      flow: a `tfd.TransformedDistribution` on [0, 1]^D images, event shape E.
      dequantizer: None (uniform) or e.g. a `VariationalDequantizer` (see `dequantize`).
      pixels: k, [N, *E] integers in {0, ..., B - 1}.
      num_bins: B.
      seed: a stateless seed (an int tensor [2]) for the noise, or None (stateful random).
      bijector_kwargs: passed to `flow.log_prob` (e.g. {'training': True}); None passes none.

    Returns:
      bits/dim of each image, [N], in the flow's dtype.
    """
    log_weight = _log_weight(flow, dequantizer, pixels, num_bins, seed, bijector_kwargs)
    return bits_per_dim(log_weight, _num_dims(flow), num_bins)


def _check_num_samples(num_samples):
    if isinstance(num_samples, numbers.Integral) and not isinstance(num_samples, bool):
        return tf.constant(check_positive_int('num_samples', num_samples), tf.int32)
    num_samples = tf.convert_to_tensor(num_samples)
    if not num_samples.dtype.is_integer or num_samples.shape.rank not in (None, 0):
        raise ValueError(
            '`num_samples` must be a positive int or an int scalar tensor; got a '
            f'{num_samples.dtype.name} tensor of shape {num_samples.shape}.'
        )
    num_samples = tf.cast(num_samples, tf.int32)
    check = assert_op(
        num_samples >= 1, '`num_samples` must be a positive int; got {}.', num_samples
    )
    with tf.control_dependencies([check]):
        return tf.identity(num_samples)


def _check_seed(seed):
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= seed < 2**31:
            raise ValueError(
                f'`seed` must be an int in [0, 2**31) or an int tensor [2]; got {seed!r}.'
            )
        return tf.constant([int(seed), 0], tf.int32)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (None, 2):
        raise ValueError(
            '`seed` must be an int or a stateless seed (an int tensor of shape [2]); got a '
            f'{seed.dtype.name} tensor of shape {seed.shape}.'
        )
    return seed


def importance_weighted_log_likelihood(
    flow, dequantizer, pixels, num_bins, num_samples, seed, bijector_kwargs=None
):
    """The importance-weighted estimate of log P(k) on discrete images, in nats.

    log P(k) ~ logsumexp_s [log p(x_s) - log q(u_s | k)] - log S - D log B,
    x_s = (k + u_s) / B, u_s ~ q(u | k) for s = 1..S (S = `num_samples`), q uniform when
    `dequantizer` is None. For every S its expectation is at most log P(k), it grows with S,
    and it converges to log P(k) as S -> infinity (Burda et al. 2016, IWAE, Theorem 1,
    https://arxiv.org/abs/1509.00519; used for Flow++'s reported figures, Ho et al. 2019,
    https://arxiv.org/abs/1902.00275). S = 1 gives the one-sample bound.

    The draws run one after another (a `tf.while_loop` over s, each a pass of the flow on the N
    images), so memory does not grow with S. Draw s uses the stateless seed
    `tf.random.experimental.stateless_fold_in(seed, s)`: a fixed seed gives a fixed figure.

    Args:
      flow: a `tfd.TransformedDistribution` on [0, 1]^D images, event shape E.
      dequantizer: None (uniform) or e.g. a `VariationalDequantizer` (see `dequantize`).
      pixels: k, [N, *E] integers in {0, ..., B - 1}.
      num_bins: B.
      num_samples: S, a positive int or an int scalar tensor (checked at run time).
      seed: an int in [0, 2**31) or a stateless seed (an int tensor [2]).
      bijector_kwargs: passed to `flow.log_prob`; None passes none.

    Returns:
      The estimate of log P(k) for each image, [N], nats, in the flow's dtype.
    """
    models.check_flow(flow)
    _check_dequantizer(dequantizer)
    num_bins = check_num_bins(num_bins)
    num_samples = _check_num_samples(num_samples)
    seed = _check_seed(seed)
    pixels = check_pixels(pixels, num_bins, flow.dtype)
    num_dims = _num_dims(flow)

    def body(s, total):
        log_weight = _log_weight(
            flow,
            dequantizer,
            pixels,
            num_bins,
            tf.random.experimental.stateless_fold_in(seed, s),
            bijector_kwargs,
        )
        return s + 1, tf.reduce_logsumexp(tf.stack([total, log_weight]), axis=0)

    start = tf.fill(tf.shape(pixels)[:1], tf.constant(-np.inf, flow.dtype))
    _, total = tf.while_loop(
        lambda s, _: s < num_samples, body, (tf.constant(0), start), parallel_iterations=1
    )
    log_num_samples = tf.math.log(tf.cast(num_samples, flow.dtype))
    return total - log_num_samples - num_dims * math.log(num_bins)


def importance_weighted_bits_per_dim(
    flow, dequantizer, pixels, num_bins, num_samples, seed, bijector_kwargs=None
):
    """-log2 P(k) / D from `importance_weighted_log_likelihood`: bits/dim, [N].

    In expectation an upper bound on the discrete model's bits/dim that falls with S towards
    it; S = 1 is `dequantized_bits_per_dim`. Arguments as for
    `importance_weighted_log_likelihood`.
    """
    log_likelihood = importance_weighted_log_likelihood(
        flow, dequantizer, pixels, num_bins, num_samples, seed, bijector_kwargs
    )
    return -log_likelihood / (_num_dims(flow) * math.log(2.0))
