"""The context of a conditional flow: its checks, and the features the conditioners see.

A conditional flow models p(x | c). Its steps take the context c as TFP's bijector kwarg
`conditional_input` (as `tfb.MaskedAutoregressiveFlow` and `tfb.RealNVP` do), of shape
[*batch, *conditional_shape], e.g. [N, 10] for one-hot labels. A step flattens it to K =
prod(conditional_shape) features (`context_features`) and broadcasts them to the batch of the
values it maps, so one context may serve a whole batch; a coupling on images whose context is
an image of the same height and width, conditional_shape [H, W, K], takes it as a map
instead (`context_map`), K more channels at every position.
"""

import math

import tensorflow as tf

from tfp_flows import checks
from tfp_flows.bijectors import walk
from tfp_flows.bijectors.chain import Container

__all__ = [
    'StandardizedContext',
    'check_conditional_shape',
    'conditional_shape_of',
    'context_features',
    'context_map',
]


def check_conditional_shape(conditional_shape):
    """Returns `conditional_shape` (an int or a shape) as a tuple of positive ints, or None.

    Raises `ValueError` naming the value otherwise.
    """
    if conditional_shape is None:
        return None
    if checks.POSITIVE_INT.contains(conditional_shape):
        return (int(conditional_shape),)
    try:
        return checks.check_shape('conditional_shape', conditional_shape)
    except ValueError:
        raise ValueError(
            '`conditional_shape` must be None or a non-empty shape of positive ints (e.g. (10,) '
            f'for one-hot labels of 10 classes); got {conditional_shape!r}.'
        ) from None


def _shape_text(shape):
    return '[' + ', '.join('?' if d is None else str(d) for d in shape) + ']'


def _context_tensor(conditional_input, conditional_shape, owner):
    """The context as a tensor, None for an unconditional step given none; else the error."""
    if conditional_shape is None:
        if conditional_input is None:
            return None
        shape = getattr(conditional_input, 'shape', None)
        raise ValueError(
            f'{owner} is unconditional (built without `conditional_shape`); got a '
            f'`conditional_input` of shape {_shape_text(shape) if shape is not None else "?"}. '
            'Build the flow with conditional_shape= to condition it on a context.'
        )
    if conditional_input is None:
        raise ValueError(
            f'{owner} is conditional (conditional_shape={conditional_shape}) and needs a context '
            f'of shape [batch, {_shape_text(conditional_shape)[1:-1]}]: pass '
            'bijector_kwargs={"conditional_input": c} to log_prob/sample (or '
            "conditional_input=c to the bijector's methods); got no context."
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
    return context


def _check_shape(context, conditional_shape, x, event_ndims, owner):
    """`ValueError` unless the static shape of `context` ends in `conditional_shape` after
    batch dims that broadcast to those of `x` (whose event has rank `event_ndims`)."""
    rank, shape = len(conditional_shape), context.shape
    if shape.rank is None:
        return
    trailing = shape[shape.rank - rank :] if shape.rank >= rank else None
    if trailing is None or not trailing.is_compatible_with(conditional_shape):
        expected = _shape_text(conditional_shape)[1:-1]
        raise ValueError(
            f'{owner} takes `conditional_input` of shape [..., {expected}] '
            f'(batch dims, then conditional_shape {conditional_shape}); got shape '
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
      A tensor [*batch, K] of x's dtype, K = prod(conditional_shape); None for an
      unconditional step.

    Raises:
      ValueError: for a context given to an unconditional step, a missing context, or a
        context whose shape does not end in `conditional_shape` or whose batch shape does not
        broadcast to x's; each message names both shapes.
      TypeError: for a context that is not numbers.
    """
    context = _context_tensor(conditional_input, conditional_shape, owner)
    if context is None:
        return None
    _check_shape(context, conditional_shape, x, event_ndims, owner)
    context = tf.cast(context, x.dtype)
    size, rank = math.prod(conditional_shape), len(conditional_shape)
    context_batch = tf.shape(context)[: tf.rank(context) - rank]
    features = tf.reshape(context, tf.concat([context_batch, [size]], axis=0))
    x_batch = tf.shape(x)[: tf.rank(x) - event_ndims]
    return tf.broadcast_to(features, tf.concat([x_batch, [size]], axis=0))


def context_map(conditional_input, conditional_shape, x, owner):
    """The context as a map [*batch, H, W, K] for a step mapping images `x` [*batch, H, W, C].

    `conditional_input` is [*c_batch, H, W, K] (`conditional_shape`), c_batch broadcastable
    to x's batch shape; it is cast to x's dtype. Errors as for `context_features`.
    """
    context = _context_tensor(conditional_input, conditional_shape, owner)
    _check_shape(context, conditional_shape, x, 3, owner)
    context = tf.cast(context, x.dtype)
    if context.shape[:-3].is_fully_defined() and context.shape[:-3] == x.shape[:-3]:
        return context  # One context per example already: no op to trace.
    return tf.broadcast_to(context, tf.concat([tf.shape(x)[:-3], conditional_shape], axis=0))


def _broadcasts_to(shape, target):
    """Whether `shape` broadcasts to `target` (unknown dims are assumed to)."""
    for dim, target_dim in zip(reversed(shape), reversed(target), strict=False):
        if dim not in (None, 1, target_dim) and target_dim is not None:
            return False
    return True


def conditional_shape_of(flow):
    """The conditional shape of a flow (or bijector) of this package, or None.

    Looks at every step the flow holds (`tfp_flows.bijectors.walk.all_steps`); every
    conditional step must agree.

    Raises:
      ValueError: if two steps were built with different conditional shapes.
    """
    steps = walk.all_steps(flow.bijector if hasattr(flow, 'distribution') else flow)
    found = {tuple(s.conditional_shape) for s in steps if getattr(s, 'conditional_shape', None)}
    if len(found) > 1:
        raise ValueError(f'The steps of this flow have different conditional shapes: {found}.')
    return found.pop() if found else None


class StandardizedContext(Container):
    """`bijector`, given its context standardised: c -> (c - mean) / scale, then `bijector`.

    For a conditional flow trained on standardised contexts whose users pass contexts in
    their own units (a CSV table's columns, `tfp_flows.run.restore.standardize_flow`). The map
    of x and its log-det are `bijector`'s at the standardised context:
      forward(x, conditional_input=c) = bijector.forward(x, conditional_input=(c - mean) / scale)
    `mean` and `scale` are [K] (conditional_shape (K,)), e.g. non-trainable variables so
    checkpoints keep them. Other kwargs (`training`, `memory_saving`, ...) go to `bijector`
    unchanged. A container (`tfp_flows.bijectors.walk`) holding `bijector`.
    """

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

    def held_steps(self):
        return (self.bijector,)

    def walk(self, x, inverse, kwargs):
        """`bijector`'s walk, given the standardised context."""
        features = context_features(
            kwargs.get('conditional_input'),
            self.conditional_shape,
            x,
            self.forward_min_event_ndims,
            f'StandardizedContext {self.name!r}',
        )
        standardized = (features - tf.cast(self.mean, x.dtype)) / tf.cast(self.scale, x.dtype)
        kwargs = {**kwargs, 'conditional_input': standardized}
        ndims = self.forward_min_event_ndims
        return (yield from walk.step(self.bijector, x, inverse, ndims, kwargs))

    # Memory saving is the wrapped flow's: the walk passes the kwarg `memory_saving` on.
    def _forward_and_log_det(self, x, **kwargs):
        return walk.run(self.walk(x, False, kwargs))

    def _inverse_and_log_det(self, y, **kwargs):
        return walk.run(self.walk(y, True, kwargs))

    def _forward_event_shape(self, input_shape):
        return self.bijector.forward_event_shape(input_shape)

    def _inverse_event_shape(self, output_shape):
        return self.bijector.inverse_event_shape(output_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return self.bijector.forward_event_shape_tensor(input_shape)

    def _inverse_event_shape_tensor(self, output_shape):
        return self.bijector.inverse_event_shape_tensor(output_shape)
