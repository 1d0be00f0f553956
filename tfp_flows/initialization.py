"""Data-dependent initialisation of every ActNorm in a flow, as one explicit call."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.chain import apply_step
from tfp_flows.bijectors.context import conditional_shape_of, context_features
from tfp_flows.validation import assert_values

tfd = tfp.distributions

__all__ = ['initialize']


def initialize(flow, data, conditional_input=None):
    """Initialises every `ActNorm` of `flow` from a batch of `data`; returns the latent.

    Walks the flow once from data to latent (`inverse_and_log_det` with a step hook): each
    ActNorm that has not run yet is set so that its inverse maps the data reaching it to zero
    mean and unit variance per channel, and the data goes on through the initialised step.
    Idempotent: a second call, or a call after a checkpoint restore, changes nothing (each
    ActNorm's saved `initialized` flag).

    Works eagerly and inside `tf.function`. Under a `tf.distribute` strategy call it in
    cross-replica context (not inside `strategy.run`) with the same global batch on every
    worker: every replica then holds identical values.

    Args:
      flow: a `tfd.TransformedDistribution` built by this package, or its bijector (any
        `FlowBijector`, e.g. a `tfp_flows.bijectors.Chain`).
      data: a batch [N, *event_shape] of floats in the flow's data range (a tensor or a NumPy
        array of any float dtype; it is cast to the flow's dtype), N >= 1.
      conditional_input: the contexts [N, *conditional_shape] of `data` for a conditional
        flow (see `tfp_flows.glow`); None for an unconditional one.

    Returns:
      The latent of `data`, [N, *event_shape].

    Raises:
      TypeError: for a flow that is not one of this package's, or integer data.
      ValueError: for an empty batch, or a context the flow cannot take (given to an
        unconditional flow, missing for a conditional one, or of another shape), before any
        ActNorm is set.
      tf.errors.InvalidArgumentError: for data with NaN or infinite values (checked before
        any ActNorm is set; a NaN would be kept for good).
    """
    bijector = flow.bijector if isinstance(flow, tfd.Distribution) else flow
    if not isinstance(bijector, FlowBijector):
        raise TypeError(
            '`initialize` takes a flow built by tfp_flows (or its bijector); got '
            f'{type(bijector).__name__}.'
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
    data = tf.cast(data, bijector.dtype)
    if data.shape.rank is not None and data.shape.rank > 0 and data.shape[0] == 0:
        raise ValueError(
            f'`initialize` needs a non-empty batch; got an empty one of shape {data.shape}.'
        )
    data = assert_values('data', data, tf.math.is_finite(data), 'finite values')
    event_ndims = bijector.inverse_min_event_ndims
    # A context the flow cannot take fails here, before any ActNorm is set.
    context_features(
        conditional_input,
        conditional_shape_of(bijector),
        data,
        event_ndims,
        f'The flow {bijector.name!r}',
    )

    def initialize_act_norm(step, y, inverse):
        if inverse and isinstance(step, ActNorm):
            step.initialize(y)

    kwargs = {} if conditional_input is None else {'conditional_input': conditional_input}
    latent, _ = apply_step(bijector, data, True, event_ndims, kwargs, initialize_act_norm)
    return latent
