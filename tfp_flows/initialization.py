"""Data-dependent initialisation of every ActNorm in a flow, as one explicit call."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks
from tfp_flows.bijectors import walk
from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import conditional_shape_of, context_features

tfd = tfp.distributions

__all__ = ['initialize']


def initialize(flow, data, conditional_input=None):
    """Initialises every `ActNorm` of `flow` from `data`, in place (returns None).

    Walks the flow from data to latent (`tfp_flows.bijectors.walk`), setting each ActNorm from
    the data reaching it (`ActNorm.initialize`) before the data goes on. Idempotent: a second
    call, or one after a checkpoint restore, changes nothing.

    Several batches (more than a device holds) give each ActNorm the statistics of their
    concatenation (to float rounding): their walks advance in lockstep. Memory: one batch's
    activations, plus every batch's input to the current step. Eagerly or inside
    `tf.function` (a `tf.data.Dataset`: eagerly). Under a `tf.distribute` strategy, call it in
    cross-replica context with the same global data on every worker.

    Args:
      flow: a `tfd.TransformedDistribution` built by this package, or its `FlowBijector`.
      data: a batch [N, *event_shape], N >= 1, of floats in the flow's data range (a tensor or
        NumPy array, cast to the flow's dtype); or several: a `tf.data.Dataset` or a list of
        them, whose items may be (x, c) pairs for a conditional flow.
      conditional_input: the contexts [N, *conditional_shape] of one batch `data`, or None.

    A channel whose data is constant where it reaches an ActNorm gives a `UserWarning`.

    Raises (each before any ActNorm is set):
      TypeError: for a flow not of this package or with an ActNorm the walk cannot reach,
        integer data, or a dataset inside `tf.function` or not of batches.
      ValueError: for an empty batch, no batches, or a context the flow cannot take.
      tf.errors.InvalidArgumentError: for data with NaN or infinite values.
    """
    bijector = flow.bijector if isinstance(flow, tfd.Distribution) else flow
    if not isinstance(bijector, FlowBijector):
        raise TypeError(
            '`flow` must be a flow built by tfp_flows (or its bijector); got '
            f'{type(bijector).__name__}.'
        )
    _check_reachable(bijector)
    ndims = bijector.inverse_min_event_ndims
    walks = [
        walk.step(bijector, x, True, ndims, {} if c is None else {'conditional_input': c})
        for x, c in _checked_pairs(bijector, data, conditional_input)
    ]
    walk.drive(walks, _initialize_act_norms)


def _check_reachable(bijector):
    """`TypeError` if an ActNorm of the flow sits inside a step the walk cannot enter."""
    reached = {id(s) for s in walk.all_steps(bijector) if isinstance(s, ActNorm)}
    hidden = [
        m.name for m in bijector.submodules if isinstance(m, ActNorm) and id(m) not in reached
    ]
    if hidden:
        raise TypeError(
            f'`initialize` cannot reach the ActNorm step(s) {hidden} of the flow: they sit '
            'inside a step that does not say which steps it holds (tfp_flows.bijectors.walk). '
            'Initialise those ActNorms with their own `initialize(y)`.'
        )


def _checked_pairs(bijector, data, conditional_input):
    """[(batch, context)]: `data` as checked batches of the flow's dtype, with contexts."""
    several = isinstance(data, tf.data.Dataset) or (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(b, tf.Tensor | tf.Variable | np.ndarray | tuple) for b in data)
    )  # A tuple is one batch.
    conditional_shape = conditional_shape_of(bijector)
    if not several:
        pairs = [(data, conditional_input)]
    elif conditional_input is not None:
        raise ValueError(
            '`conditional_input` goes with one batch; for several batches pass (x, c) pairs; '
            f'got a context of shape {tf.convert_to_tensor(conditional_input).shape}.'
        )
    elif isinstance(data, tf.data.Dataset) and not tf.executing_eagerly():
        raise TypeError(
            '`initialize` reads a tf.data.Dataset eagerly; call it outside tf.function, or '
            'pass the batches as a list of tensors.'
        )
    else:
        conditional = conditional_shape is not None
        pairs = [e if conditional and isinstance(e, tuple) else (e, None) for e in data]
    if not pairs:
        raise ValueError('`initialize` needs at least one batch; got none.')
    checked = []
    for x, c in pairs:
        x = _batch(x, bijector.dtype)
        x = checks.check_values(x, tf.math.is_finite(x), '`data` must be finite; got')
        owner = f'The flow {bijector.name!r}'
        context_features(c, conditional_shape, x, bijector.inverse_min_event_ndims, owner)
        checked.append((x, c))
    return checked


def _initialize_act_norms(visits):
    """`initialize`'s answer to its walks' visits (`walk.drive`): set an ActNorm from every
    batch's input, then run the step."""
    first = visits[0].step
    if any(visit.step is not first for visit in visits):
        raise RuntimeError('The batches took different paths through the flow.')
    if walk.is_container(first):
        return [walk.DESCEND] * len(visits)
    if isinstance(first, ActNorm) and visits[0].inverse:
        if len(visits) == 1:
            first.initialize(visits[0].x)
        else:
            first.initialize_from_moments(*_merged_moments([visit.x for visit in visits]))
    return [walk.apply(visit) for visit in visits]


def _batch(data, flow_dtype):
    """`data` as a non-empty floating-point batch in the flow's dtype, or a clear error."""
    if isinstance(data, tuple | dict):
        raise TypeError(
            '`initialize` takes batches of data; got a batch that is a '
            f'{type(data).__name__} (a dataset of (x, label) pairs?). Map it to x first.'
        )
    if isinstance(data, tf.Tensor | tf.Variable):
        floating = data.dtype.is_floating
    else:
        data = np.asarray(data)
        floating = data.dtype.kind == 'f'
    if not floating:
        raise TypeError(
            "`initialize` needs data in the flow's range as floats (dequantize integer images "
            f'with `tfp_flows.uniform_dequantize`); got dtype {data.dtype.name}.'
        )
    data = tf.cast(data, flow_dtype)
    if data.shape.rank and data.shape[0] == 0:
        raise ValueError(
            f'`initialize` needs a non-empty batch; got an empty one of shape {data.shape}.'
        )
    return data


def _merged_moments(batches):
    """Per-channel mean and variance of all `batches` [..., C] together, merged in float64
    (Chan, Golub and LeVeque 1979)."""
    stats = []
    for y in batches:
        y = tf.cast(y, tf.float64)
        mean, variance = tf.nn.moments(y, axes=list(range(y.shape.rank - 1)))
        stats.append((tf.cast(tf.size(y) // tf.shape(y)[-1], tf.float64), mean, variance))
    count = tf.add_n([n for n, _, _ in stats])
    mean = tf.add_n([n * m for n, m, _ in stats]) / count
    variance = tf.add_n([n * (v + tf.square(m - mean)) for n, m, v in stats]) / count
    return mean, variance
