"""The context of a conditional flow: its checks, and the features the conditioners see.

A conditional flow models p(x | c). Its steps take c as TFP's bijector kwarg
`conditional_input` (as `tfb.RealNVP` does), of shape [*batch, *conditional_shape], e.g.
[N, 10] for one-hot labels, flattened to K = prod(conditional_shape) features broadcast to the
batch (`context_features`), or, for a coupling on images, a map [H, W, K] (`context_map`).
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
    """`conditional_shape` (None, an int or a shape) as a tuple of positive ints or None, else
    `ValueError` naming it."""
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


def _context(conditional_input, conditional_shape, x, event_ndims, owner):
    """The context as a tensor of x's dtype (None if unconditional), checked as
    `context_features` says."""
    if conditional_shape is None:
        if conditional_input is None:
            return None
        shape = getattr(conditional_input, 'shape', None)
        raise ValueError(
            f'{owner} is unconditional (built without `conditional_shape`); got a '
            f'`conditional_input` of shape {_shape_text(shape) if shape is not None else "?"}. '
            'Build the flow with conditional_shape= to condition it on a context.'
        )
    expected = _shape_text(conditional_shape)[1:-1]
    if conditional_input is None:
        raise ValueError(
            f'{owner} is conditional (conditional_shape={conditional_shape}) and needs a context '
            f'of shape [batch, {expected}]: pass bijector_kwargs={{"conditional_input": c}} to '
            "log_prob/sample (or conditional_input=c to the bijector's methods); got no context."
        )
    try:
        context = tf.convert_to_tensor(conditional_input)
        got = f'dtype {context.dtype.name}'
    except (TypeError, ValueError):
        context, got = None, repr(conditional_input)
    if context is None or not (
        context.dtype.is_floating or context.dtype.is_integer or context.dtype == tf.bool
    ):
        raise TypeError(f'{owner} takes a numeric `conditional_input`; got {got}.')
    rank, shape = len(conditional_shape), context.shape
    if shape.rank is not None:
        if shape.rank < rank or not shape[-rank:].is_compatible_with(conditional_shape):
            raise ValueError(
                f'{owner} takes `conditional_input` of shape [..., {expected}] (batch dims, then '
                f'conditional_shape {conditional_shape}); got shape {_shape_text(shape)}.'
            )
        batch, x_batch = shape[:-rank], x.shape[:-event_ndims]
        if x.shape.rank is not None and not _broadcasts_to(batch, x_batch):
            raise ValueError(
                f'{owner}: `conditional_input` of shape {_shape_text(shape)} has batch shape '
                f'{_shape_text(batch)}, which does not broadcast to the batch shape '
                f'{_shape_text(x_batch)} of the values it conditions (shape '
                f'{_shape_text(x.shape)} at this step). Give one context per example, or one '
                'context for all.'
            )
    return tf.cast(context, x.dtype)


def _broadcasts_to(shape, target):
    """Whether static `shape` broadcasts to `target` (unknown dims are assumed to)."""
    pairs = zip(reversed(shape.as_list()), reversed(target.as_list()), strict=False)
    return shape.rank <= target.rank and all(t is None or d in (None, 1, t) for d, t in pairs)


def context_features(conditional_input, conditional_shape, x, event_ndims, owner):
    """The context as features [*batch, K] of x's dtype for a step mapping `x` [*batch, *event]
    (event of rank `event_ndims`), K = prod(conditional_shape); None for an unconditional step.

    `conditional_input` is [*c_batch, *conditional_shape] (any real, integer or bool dtype)
    with c_batch broadcastable to x's batch shape ([] for one context for all); `owner`
    describes the step in messages. `ValueError` for a context given to an unconditional step
    (`conditional_shape` None), a missing one, or one of another shape or a batch shape that
    does not broadcast (each message names both shapes); `TypeError` for one not of numbers.
    """
    context = _context(conditional_input, conditional_shape, x, event_ndims, owner)
    if context is None:
        return None
    size, rank = math.prod(conditional_shape), len(conditional_shape)
    context_batch = tf.shape(context)[: tf.rank(context) - rank]
    features = tf.reshape(context, tf.concat([context_batch, [size]], axis=0))
    x_batch = tf.shape(x)[: tf.rank(x) - event_ndims]
    return tf.broadcast_to(features, tf.concat([x_batch, [size]], axis=0))


def context_map(conditional_input, conditional_shape, x, owner):
    """The context [*c_batch, H, W, K] as a map [*batch, H, W, K] for images `x` [*batch, H, W,
    C], checked and cast as by `context_features`."""
    context = _context(conditional_input, conditional_shape, x, 3, owner)
    if context.shape[:-3].is_fully_defined() and context.shape[:-3] == x.shape[:-3]:
        return context  # One context per example already: no op to trace.
    return tf.broadcast_to(context, tf.concat([tf.shape(x)[:-3], conditional_shape], axis=0))


def conditional_shape_of(flow):
    """The conditional shape of a flow (or bijector) of this package, or None; `ValueError`
    if two of its steps (`walk.all_steps`) were built with different ones."""
    steps = walk.all_steps(flow.bijector if hasattr(flow, 'distribution') else flow)
    found = {tuple(s.conditional_shape) for s in steps if getattr(s, 'conditional_shape', None)}
    if len(found) > 1:
        raise ValueError(f'The steps of this flow have different conditional shapes: {found}.')
    return found.pop() if found else None


class StandardizedContext(Container):
    """`bijector`, given its context standardised: c -> (c - mean) / scale, then `bijector`.

    For a flow trained on standardised contexts whose users pass them in their own units (a
    table's columns, `tfp_flows.run.restore.standardize_flow`):
      forward(x, conditional_input=c) = bijector.forward(x, conditional_input=(c - mean) / scale)
    `mean` and `scale` are [K] (conditional_shape (K,)), e.g. non-trainable variables so
    checkpoints keep them. Other kwargs go to `bijector` unchanged.
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
            self._init_step(parameters, name, bijector.forward_min_event_ndims, bijector.dtype)

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
