"""Drawing from a flow: `sample` at a temperature, `sample_latent`, and their checks.

`tfp_flows.models` re-exports these names (where 0.2 had them).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks
from tfp_flows.networks import check_stateless_seed

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['check_flow', 'check_temperature', 'sample', 'sample_latent']


def _checked_tensor(value, expected, ranks, condition, integer=False):
    """`value` as a tensor of ints (or, unless `integer`, reals) of a static rank in `ranks` whose
    values pass `condition` at run time; else the error, with `expected` and the value."""
    tensor = tf.convert_to_tensor(value)
    if not (tensor.dtype.is_integer or (tensor.dtype.is_floating and not integer)):
        raise TypeError(f'{expected}; got a {tensor.dtype.name} tensor.')
    if tensor.shape.rank not in (None, *ranks):
        raise ValueError(f'{expected}; got a tensor of shape {tensor.shape}.')
    return checks.check_values(tensor, condition(tensor), f'{expected}; got')


def check_temperature(temperature, dtype):
    """`temperature` as a scalar `dtype` tensor, checked to be finite and > 0: a Python number
    now (`ValueError`), a tensor at run time (`tf.errors.InvalidArgumentError`; `ValueError`
    for a static shape other than [], `TypeError` for strings or bools)."""
    if not isinstance(temperature, tf.Tensor | tf.Variable | np.ndarray | np.generic):
        return tf.constant(checks.POSITIVE_NUMBER.check('temperature', temperature), dtype)
    expected = '`temperature` must be a finite number > 0'
    checked = _checked_tensor(
        temperature, expected, [0], lambda t: tf.math.is_finite(tf.cast(t, dtype)) & (t > 0)
    )
    return tf.ensure_shape(tf.cast(checked, dtype), [])


def _sample_shape(sample_shape):
    """`sample_shape` checked (an int >= 0, a list of them, or an int tensor of rank 0 or 1)."""
    expected = '`sample_shape` must be an int >= 0 or a list of ints >= 0'
    if isinstance(sample_shape, tf.TensorShape):
        sample_shape = sample_shape.as_list()
    values = sample_shape if isinstance(sample_shape, list | tuple) else [sample_shape]
    if all(checks.NON_NEGATIVE_INT.contains(v) for v in values):
        return sample_shape
    if not isinstance(sample_shape, tf.Tensor | tf.Variable | np.ndarray):
        raise ValueError(f'{expected}; got {sample_shape!r}.')
    return _checked_tensor(sample_shape, expected, [0, 1], lambda t: t >= 0, integer=True)


def check_flow(flow):
    """Raises `TypeError` unless `flow` is a `tfd.TransformedDistribution`-like flow."""
    bijector = getattr(flow, 'bijector', None)
    if not isinstance(flow, tfd.Distribution) or not isinstance(bijector, tfb.Bijector):
        raise TypeError(
            '`flow` must be a `tfd.TransformedDistribution` (as built by `tfp_flows.glow` or '
            f'`tfp_flows.real_nvp`); got {type(flow).__name__}.'
        )


def sample(flow, sample_shape=(), temperature=1.0, seed=None, conditional_input=None):
    """Samples `flow` with its base noise scaled by `temperature`: [*sample_shape, *event].

    x = flow.bijector.forward(temperature * z, conditional_input=c),  z ~ flow.distribution.
    Temperature 1 is `flow.sample`; lower temperatures (Glow uses 0.7) trade diversity for
    quality (with a learned prior: mean + exp(log_scale) * temperature * z, as in Glow).

    Args:
      flow: a `tfd.TransformedDistribution` (else `TypeError`), e.g. from `glow`.
      sample_shape: an int >= 0, a list of them, or an int tensor of rank 0 or 1.
      temperature: finite number > 0, or a scalar tensor (`check_temperature`).
      seed: an int in [0, 2**31) (the same samples on every call), a stateless seed (an int
        tensor [2]), or None (new samples each call).
      conditional_input: the context c [*c_batch, *conditional_shape] of a conditional flow,
        c_batch broadcastable to `sample_shape`.

    `ValueError` for a bad temperature, sample shape, seed or context (a tensor's values:
    `tf.errors.InvalidArgumentError`).
    """
    latent = sample_latent(flow, sample_shape, temperature, seed)  # Checks `flow` first.
    kwargs = {} if conditional_input is None else {'conditional_input': conditional_input}
    return flow.bijector.forward(latent, **kwargs)


def sample_latent(flow, sample_shape=(), temperature=1.0, seed=None):
    """temperature * z with z ~ flow.distribution: the latent `sample` decodes.

    Arguments and errors as for `sample`; returns [*sample_shape, *latent event shape].
    """
    check_flow(flow)
    sample_shape = _sample_shape(sample_shape)
    temperature = check_temperature(temperature, flow.dtype)
    seed = check_stateless_seed('seed', seed, ints=True)
    return flow.distribution.sample(sample_shape, seed=seed) * temperature
