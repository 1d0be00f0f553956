"""Data-dependent initialisation of every ActNorm in a flow, as one explicit call."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.chain import Chain, apply_step, direction
from tfp_flows.bijectors.context import conditional_shape_of, context_features
from tfp_flows.bijectors.multiscale import FactorOut
from tfp_flows.validation import assert_values

tfd = tfp.distributions

__all__ = ['initialize']


def initialize(flow, data, conditional_input=None):
    """Initialises every `ActNorm` of `flow` from `data`; returns the latent.

    Walks the flow from data to latent: each ActNorm that has not run yet is set so that its
    inverse maps the data reaching it to zero mean and unit variance per channel, and the
    data goes on through the initialised step. Idempotent: a second call, or a call after a
    checkpoint restore, changes nothing (each ActNorm's saved `initialized` flag).

    Several batches (a batch larger than one device holds): each ActNorm gets the statistics
    of all of them together, as one batch of their concatenation would give it (to float
    rounding; moments merged exactly in float64, Chan et al. 1979). An ActNorm's statistics
    depend on the ActNorms before it, so the walks of all batches advance together and pause
    at each ActNorm until it is set from every batch's data. Cost: one pass of the flow over
    each batch, as for one batch; memory: one batch's activations at a time, plus the flow's
    state at the current step for every batch (the size of the data).

    One batch works eagerly and inside `tf.function`; several batches given as tensors too,
    a `tf.data.Dataset` eagerly. Under a `tf.distribute` strategy call it in cross-replica
    context (not inside `strategy.run`) with the same global data on every worker: every
    replica then holds identical values.

    Args:
      flow: a `tfd.TransformedDistribution` built by this package, or its bijector (any
        `FlowBijector`, e.g. a `tfp_flows.bijectors.Chain`).
      data: a batch [N, *event_shape] of floats in the flow's data range (a tensor or a NumPy
        array of any float dtype; it is cast to the flow's dtype), N >= 1; or several such
        batches: a `tf.data.Dataset` of them or a list of tensors or arrays. For a
        conditional flow, a dataset's elements (or the list's items) may be (x, c) pairs.
      conditional_input: the contexts [N, *conditional_shape] of one batch `data` for a
        conditional flow (see `tfp_flows.glow`); None for an unconditional one or for several
        batches of (x, c) pairs.

    Returns:
      The latent of `data`, [N, *event_shape] (all batches concatenated).

    Raises:
      TypeError: for a flow that is not one of this package's, integer data, or a dataset
        read inside `tf.function` or whose elements are not batches.
      ValueError: for an empty batch, no batches, or a context the flow cannot take (given to
        an unconditional flow, missing for a conditional one, or of another shape), before
        any ActNorm is set.
      tf.errors.InvalidArgumentError: for data with NaN or infinite values (checked before
        any ActNorm is set; a NaN would be kept for good).
    """
    bijector = flow.bijector if isinstance(flow, tfd.Distribution) else flow
    if not isinstance(bijector, FlowBijector):
        raise TypeError(
            '`initialize` takes a flow built by tfp_flows (or its bijector); got '
            f'{type(bijector).__name__}.'
        )
    event_ndims = bijector.inverse_min_event_ndims
    conditional_shape = conditional_shape_of(bijector)
    if not _is_several(data):
        batch = _checked(bijector, _batch(data, bijector.dtype), conditional_input, event_ndims)
        kwargs = {} if conditional_input is None else {'conditional_input': conditional_input}
        latent, _ = apply_step(bijector, batch, True, event_ndims, kwargs, _initialize_act_norm)
        return latent
    if conditional_input is not None:
        raise ValueError(
            '`conditional_input` goes with one batch; for several batches pass (x, c) pairs; '
            f'got a context of shape {tf.convert_to_tensor(conditional_input).shape}.'
        )
    if isinstance(data, tf.data.Dataset) and not tf.executing_eagerly():
        raise TypeError(
            '`initialize` reads a tf.data.Dataset eagerly; call it outside tf.function, or '
            'pass the batches as a list of tensors.'
        )
    pairs = []
    for element in data:
        x, c = (
            element
            if conditional_shape is not None and isinstance(element, tuple)
            else (element, None)
        )
        x = _checked(bijector, _batch(x, bijector.dtype), c, event_ndims)
        pairs.append((x, c))
    if not pairs:
        raise ValueError('`initialize` needs at least one batch; got none.')
    return _initialize_from_batches(bijector, pairs, event_ndims)


def _checked(bijector, batch, conditional_input, event_ndims):
    """`batch` after checking its values are finite and its context fits the flow, before any
    ActNorm is set."""
    batch = assert_values('data', batch, tf.math.is_finite(batch), 'finite values')
    context_features(
        conditional_input,
        conditional_shape_of(bijector),
        batch,
        event_ndims,
        f'The flow {bijector.name!r}',
    )
    return batch


def _initialize_act_norm(step, y, inverse):
    if inverse and isinstance(step, ActNorm):
        step.initialize(y)


def _is_several(data):
    """Whether `data` is several batches: a dataset, or a list of batches (of tensors,
    arrays or, for a conditional flow, (x, c) pairs). A tuple is one batch."""
    if isinstance(data, tf.data.Dataset):
        return True
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(b, tf.Tensor | tf.Variable | np.ndarray | tuple) for b in data)
    )


def _batch(data, flow_dtype):
    """`data` as a non-empty floating-point batch in the flow's dtype, or a clear error."""
    if isinstance(data, tuple | dict):
        raise TypeError(
            '`initialize` takes batches of data; got a batch that is a '
            f'{type(data).__name__} (a dataset of (x, label) pairs?). Map it to x first.'
        )
    if isinstance(data, tf.Tensor | tf.Variable):
        dtype = data.dtype
    else:
        data = np.asarray(data)
        dtype = tf.as_dtype(data.dtype) if data.dtype.kind in 'fiub' else None
    if dtype is None or not dtype.is_floating:
        raise TypeError(
            "`initialize` needs data in the flow's range as floats (dequantize integer images "
            f'with `tfp_flows.uniform_dequantize`); got dtype {getattr(dtype, "name", dtype)}.'
        )
    data = tf.cast(data, flow_dtype)
    if data.shape.rank is not None and data.shape.rank > 0 and data.shape[0] == 0:
        raise ValueError(
            f'`initialize` needs a non-empty batch; got an empty one of shape {data.shape}.'
        )
    return data


def _walk(step, x, inverse, event_ndims, kwargs):
    """`apply_step(step, x, inverse, event_ndims, kwargs)[0]` as a generator: yields
    (act_norm, input) before each ActNorm that runs its inverse, and returns the output.

    It follows `Chain` and `FactorOut` (tests check the latent is the flow's), so that the
    walks of several batches can pause together at each ActNorm.
    """
    bijector, run_inverse = direction(step, inverse)
    if isinstance(bijector, Chain):
        ndims = bijector.forward_min_event_ndims
        for inner in bijector.bijectors if run_inverse else reversed(bijector.bijectors):
            x = yield from _walk(inner, x, run_inverse, ndims, kwargs)
        return x
    if isinstance(bijector, FactorOut):
        first, second = bijector.split(x)
        inner_output = yield from _walk(bijector.inner, first, run_inverse, 3, kwargs)
        data_kept = first if run_inverse else inner_output
        # The factored half's map as FactorOut runs it, shared rather than repeated here.
        factored, _ = bijector._factored_map(  # noqa: SLF001
            data_kept, second, run_inverse, kwargs.get('conditional_input')
        )
        return tf.concat([inner_output, factored], axis=-1)
    if isinstance(bijector, ActNorm) and run_inverse:
        yield bijector, x
    return apply_step(step, x, inverse, event_ndims, kwargs)[0]


def _initialize_from_batches(bijector, pairs, event_ndims):
    """Walks every (batch, context) from data to latent, setting each ActNorm from all
    batches' data."""
    walks = [
        _walk(bijector, x, True, event_ndims, {} if c is None else {'conditional_input': c})
        for x, c in pairs
    ]
    latents = [None] * len(walks)

    def advance(i):
        """Runs walk i to its next ActNorm: (act_norm, input), or None at its end."""
        try:
            return next(walks[i])
        except StopIteration as end:
            latents[i] = end.value
            return None

    stops = [advance(i) for i in range(len(walks))]
    while stops[0] is not None:
        act_norm = stops[0][0]
        if any(stop is None or stop[0] is not act_norm for stop in stops):
            raise RuntimeError('The batches took different paths through the flow.')
        act_norm.initialize_from_moments(*_merged_moments([y for _, y in stops]))
        stops = [advance(i) for i in range(len(walks))]
    return tf.concat(latents, axis=0)


def _merged_moments(batches):
    """Per-channel mean and (population) variance of all `batches` [..., C] together.

    Each batch's mean and sum of squared deviations, merged pairwise in float64 (Chan, Golub
    and LeVeque 1979): the moments of the concatenation, to rounding.
    """
    count = mean = squares = None
    for y in batches:
        y = tf.cast(y, tf.float64)
        axes = list(range(y.shape.rank - 1))
        n = tf.cast(tf.size(y) // tf.shape(y)[-1], tf.float64)
        batch_mean = tf.reduce_mean(y, axis=axes)
        batch_squares = tf.reduce_sum(tf.square(y - batch_mean), axis=axes)
        if count is None:
            count, mean, squares = n, batch_mean, batch_squares
            continue
        total = count + n
        delta = batch_mean - mean
        mean += delta * (n / total)
        squares += batch_squares + tf.square(delta) * (count * n / total)
        count = total
    return mean, squares / count
