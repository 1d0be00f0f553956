"""Static checks of the tensors a bijector receives (whose dtype `FlowBijector` checked), with
messages that name the value."""

import tensorflow as tf

__all__ = ['check_channels', 'check_event_shape', 'reduce_log_det']


def check_event_shape(x, event_shape, owner):
    """Raises `ValueError` unless the static trailing dims of `x` (where known) equal
    `event_shape`."""
    event_shape = tuple(event_shape)
    shape = x.shape
    if shape.rank is None:
        return
    expected = '[..., ' + ', '.join(str(d) for d in event_shape) + ']'
    if shape.rank < len(event_shape):
        raise ValueError(
            f'{owner} expects a tensor of shape {expected} (batch dims, then an event of rank '
            f'{len(event_shape)}); got rank {shape.rank}, shape {shape.as_list()}.'
        )
    trailing = shape[shape.rank - len(event_shape) :]
    if not trailing.is_compatible_with(tf.TensorShape(event_shape)):
        raise ValueError(
            f'{owner} expects a tensor of shape {expected}; got shape {shape.as_list()}, whose '
            f'event part is {trailing.as_list()}.'
        )


def check_channels(x, num_channels, owner):
    """Raises `ValueError` unless `x` has `num_channels` on its last axis (when known)."""
    if x.shape.rank == 0 or (x.shape.rank is not None and x.shape[-1] not in (None, num_channels)):
        raise ValueError(
            f'{owner} has {num_channels} channels (last axis); got a tensor of shape '
            f'{x.shape.as_list()}.'
        )


def reduce_log_det(log_det, x, min_event_ndims, event_ndims):
    """Sums a log-det computed at `min_event_ndims` over the further event dims of `x`.

    `log_det` has the shape of `x` without its last `min_event_ndims` axes, or is a scalar
    (a constant Jacobian, the same at every position): then it is multiplied by the number of
    positions, as TFP does.
    """
    extra = event_ndims - min_event_ndims  # >= 0: checked where `event_ndims` entered.
    if extra == 0:
        return log_det
    if log_det.shape.rank == 0:
        rank = x.shape.rank
        static = None if rank is None else x.shape[rank - event_ndims : rank - min_event_ndims]
        if static is not None and static.is_fully_defined():  # One op, none to trace.
            return log_det * static.num_elements()
        rank = tf.rank(x)
        positions = tf.shape(x)[rank - event_ndims : rank - min_event_ndims]
        return log_det * tf.cast(tf.reduce_prod(positions), log_det.dtype)
    return tf.reduce_sum(log_det, axis=list(range(-extra, 0)))
