"""Data-dependent initialisation of every ActNorm in a flow, as one explicit call."""

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.bijectors import chain as tfp_chain

from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.multiscale import FactorOut

tfd = tfp.distributions

__all__ = ['initialize']


def initialize(flow, data):
    """Initialises every `ActNorm` of `flow` from a batch of `data`; returns the latent.

    Walks the flow from data to latent: each ActNorm (that has not run yet) is set so its
    inverse maps the data reaching it to zero mean and unit variance per channel, and the
    data goes on through the initialised step. Idempotent: a second call, or a call after a
    checkpoint restore, changes nothing (each ActNorm's saved `initialized` flag).

    Works eagerly and inside `tf.function`. Under a `tf.distribute` strategy call it in
    cross-replica context (not inside `strategy.run`) with the same global batch on every
    worker: every replica then holds identical values.

    Args:
      flow: a `tfd.TransformedDistribution` built by this package, or its bijector.
      data: a batch [N, *event_shape] in the flow's data range.
    """
    bijector = flow.bijector if isinstance(flow, tfd.Distribution) else flow
    dtype = tf.as_dtype(getattr(data, 'dtype', tf.float32))
    if not dtype.is_floating:
        raise TypeError(
            "`initialize` needs data in the flow's range as floats (dequantize integer images "
            f'with `tfp_flows.uniform_dequantize`); got dtype {dtype.name}.'
        )
    data = tf.convert_to_tensor(data, bijector.dtype)
    if data.shape.rank is not None and data.shape.rank > 0 and data.shape[0] == 0:
        raise ValueError(
            f'`initialize` needs a non-empty batch; got an empty one of shape {data.shape}.'
        )
    return _initialize_inverse(bijector, data)


def _initialize_inverse(bijector, y):
    """Initialises the ActNorms of `bijector` on `y` and returns `bijector.inverse(y)`."""
    if isinstance(bijector, ActNorm):
        bijector.initialize(y)
        return bijector.inverse(y)
    if isinstance(bijector, tfp_chain._Chain):  # noqa: SLF001 (`tfb.Chain` of non-CT bijectors)
        for step in bijector.bijectors:  # A Chain's inverse runs its list front to back.
            y = _initialize_inverse(step, y)
        return y
    if isinstance(bijector, FactorOut):
        kept, factored = bijector.split(y)
        z_factored, _ = bijector.factored_inverse(kept, factored)
        return tf.concat([_initialize_inverse(bijector.inner, kept), z_factored], axis=-1)
    return bijector.inverse(y)
