"""The context of a conditional flow: its checks, and the features the conditioners see.

A conditional flow models p(x | c). Its steps take the context c as TFP's bijector kwarg
`conditional_input` (as `tfb.MaskedAutoregressiveFlow` and `tfb.RealNVP` do), of shape
[*batch, *conditional_shape], e.g. [N, 10] for one-hot labels. Each step flattens it to K =
prod(conditional_shape) features and broadcasts them to the batch of the values it maps, so
one context may serve a whole batch.
"""

import math
import numbers

import tensorflow as tf

from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.chain import apply_step

__all__ = [
    'StandardizedContext',
    'check_conditional_shape',
    'conditional_shape_of',
    'context_features',
]


def check_conditional_shape(conditional_shape):
    """Returns `conditional_shape` as a tuple of positive ints, or None; else `ValueError`."""
    if conditional_shape is None:
        return None
    if isinstance(conditional_shape, numbers.Integral) and not isinstance(conditional_shape, bool):
        shape = (conditional_shape,)
    else:
        try:
            shape = tuple(conditional_shape)
        except TypeError:
            shape = ()
    if not shape or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            '`conditional_shape` must be None or a non-empty shape of positive ints (e.g. (10,) '
            f'for one-hot labels of 10 classes); got {conditional_shape!r}.'
        )
    return tuple(int(d) for d in shape)


def _shape_text(shape):
    return '[' + ', '.join('?' if d is None else str(d) for d in shape) + ']'


def context_features(conditional_input, conditional_shape, x, event_ndims, owner):
    """The context as features [*batch, K] for a step mapping `x` [*batch, *event].

    Args:
      conditional_input: the context, [*c_batch, *conditional_shape] with c_batch
        broadcastable to x's batch shape (e.g. [] for one context for all); any real or
        integer dtype (cast to x's dtype). None when the step got no context.
      conditional_shape: the step's tuple, or None for an unconditional step.
      x: the values the step maps.
      event_ndims: rank of x's event.
      owner: the step's description for messages.

    Returns:
      A tensor [*batch, K] of x's dtype, K = prod(conditional_shape).

    Raises:
      ValueError: for a context given to an unconditional step, a missing context, or a
        context whose shape does not end in `conditional_shape` or whose batch shape does not
        broadcast to x's; each message names both shapes.
      TypeError: for a context that is not numbers.
    """
    if conditional_shape is None:
        if conditional_input is None:
            return None
        shape = getattr(conditional_input, 'shape', None)
        raise ValueError(
            f'{owner} is unconditional (built without `conditional_shape`); got a '
            f'`conditional_input` of shape {_shape_text(shape) if shape is not None else "?"}. '
            'Build the flow with conditional_shape= to condition it on a context.'
        )
    expected = _shape_text(conditional_shape)
    if conditional_input is None:
        raise ValueError(
            f'{owner} is conditional (conditional_shape={conditional_shape}) and needs a context '
            f'of shape [batch, {expected[1:-1]}]: pass bijector_kwargs={{"conditional_input": '
            "c} to log_prob/sample (or conditional_input=c to the bijector's methods); got no "
            'context.'
        )
    try:
        context = tf.convert_to_tensor(conditional_input)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f'{owner} takes a numeric `conditional_input`; got {conditional_input!r}.'
        ) from error
    if not (context.dtype.is_floating or context.dtype.is_integer or context.dtype == tf.bool):
        raise TypeError(
            f'{owner} takes a numeric `conditional_input`; got dtype {context.dtype.name}.'
        )
    context = tf.cast(context, x.dtype)
    rank = len(conditional_shape)
    shape = context.shape
    if shape.rank is not None:
        trailing = shape[shape.rank - rank :] if shape.rank >= rank else None
        if trailing is None or not trailing.is_compatible_with(conditional_shape):
            raise ValueError(
                f'{owner} takes `conditional_input` of shape [..., {expected[1:-1]}] (batch '
                f'dims, then conditional_shape {conditional_shape}); got shape '
                f'{_shape_text(shape)}.'
            )
        context_batch = shape[: shape.rank - rank]
        x_batch = x.shape[: x.shape.rank - event_ndims] if x.shape.rank is not None else None
        if x_batch is not None and (
            context_batch.rank > x_batch.rank
            or not _broadcasts_to(context_batch.as_list(), x_batch.as_list())
        ):
            raise ValueError(
                f'{owner}: `conditional_input` of shape {_shape_text(shape)} has batch shape '
                f'{_shape_text(context_batch)}, which does not broadcast to the batch shape '
                f'{_shape_text(x_batch)} of the values it conditions (shape '
                f'{_shape_text(x.shape)} at this step). Give one context per example, or one '
                'context for all.'
            )
    size = math.prod(conditional_shape)
    context_batch = tf.shape(context)[: tf.rank(context) - rank]
    features = tf.reshape(context, tf.concat([context_batch, [size]], axis=0))
    x_batch = tf.shape(x)[: tf.rank(x) - event_ndims]
    return tf.broadcast_to(features, tf.concat([x_batch, [size]], axis=0))


def _broadcasts_to(shape, target):
    """Whether `shape` broadcasts to `target` (unknown dims are assumed to)."""
    for dim, target_dim in zip(reversed(shape), reversed(target), strict=False):
        if dim not in (None, 1, target_dim) and target_dim is not None:
            return False
    return True


def conditional_shape_of(flow):
    """The conditional shape of a flow (or bijector) of this package, or None.

    Walks chains, `tfb.Invert` and factor-outs; every conditional step must agree.

    Raises:
      ValueError: if two steps were built with different conditional shapes.
    """
    found = set()

    def visit(step):
        shape = getattr(step, 'conditional_shape', None)
        if shape is not None:
            found.add(tuple(shape))
        for child in (
            *getattr(step, 'bijectors', ()),
            getattr(step, 'bijector', None),
            getattr(step, 'inner', None),
        ):
            if child is not None and child is not step:
                visit(child)

    visit(flow.bijector if hasattr(flow, 'distribution') else flow)
    if len(found) > 1:
        raise ValueError(f'The steps of this flow have different conditional shapes: {found}.')
    return found.pop() if found else None


class StandardizedContext(FlowBijector):
    """`bijector`, given its context standardised: c -> (c - mean) / scale, then `bijector`.

    For a conditional flow trained on standardised contexts whose users pass contexts in
    their own units (a CSV table's columns, `tfp_flows.data.own.standardize_flow`). The map
    of x and its log-det are `bijector`'s at the standardised context:
      forward(x, conditional_input=c) = bijector.forward(x, conditional_input=(c - mean) / scale)
    `mean` and `scale` are [K] (conditional_shape (K,)), e.g. non-trainable variables so
    checkpoints keep them. Other kwargs (`training`, ...) pass through unchanged.
    """

    kwarg_names = ('conditional_input', 'training', 'dropout_seed', 'step_hook', 'memory_saving')

    def __init__(self, bijector, mean, scale, validate_args=False, name='standardized_context'):
        parameters = dict(locals())
        if mean.shape.rank != 1 or mean.shape != scale.shape:
            raise ValueError(
                f'`mean` and `scale` must both have shape [K]; got {mean.shape} and {scale.shape}.'
            )
        self.bijector = bijector
        self.mean = mean
        self.scale = scale
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=bijector.forward_min_event_ndims,
                dtype=bijector.dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def conditional_shape(self):
        return (int(self.mean.shape[0]),)

    def structure(self):
        return {'class': 'StandardizedContext', 'conditional_shape': list(self.conditional_shape)}

    def _kwargs(self, x, conditional_input, kwargs):
        features = context_features(
            conditional_input,
            self.conditional_shape,
            x,
            self.forward_min_event_ndims,
            f'StandardizedContext {self.name!r}',
        )
        standardized = (features - tf.cast(self.mean, x.dtype)) / tf.cast(self.scale, x.dtype)
        return {**kwargs, 'conditional_input': standardized}

    def _forward_and_log_det(self, x, conditional_input=None, step_hook=None, **kwargs):
        kwargs = self._kwargs(x, conditional_input, kwargs)
        ndims = self.forward_min_event_ndims
        return apply_step(self.bijector, x, False, ndims, kwargs, step_hook)

    def _inverse_and_log_det(self, y, conditional_input=None, step_hook=None, **kwargs):
        kwargs = self._kwargs(y, conditional_input, kwargs)
        ndims = self.forward_min_event_ndims
        return apply_step(self.bijector, y, True, ndims, kwargs, step_hook)

    def _forward_event_shape(self, input_shape):
        return self.bijector.forward_event_shape(input_shape)

    def _inverse_event_shape(self, output_shape):
        return self.bijector.inverse_event_shape(output_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return self.bijector.forward_event_shape_tensor(input_shape)

    def _inverse_event_shape_tensor(self, output_shape):
        return self.bijector.inverse_event_shape_tensor(output_shape)
