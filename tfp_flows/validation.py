"""Checks of user arguments, with messages that name the argument, its value and the domain."""

import numbers

import tensorflow as tf

__all__ = [
    'assert_op',
    'check_image_event_shape',
    'check_one_of',
    'check_positive_int',
    'format_message',
]


def check_positive_int(name, value):
    """Raises `ValueError` unless `value` is an int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f'`{name}` must be a positive int; got {value!r}.')
    return int(value)


def check_one_of(name, value, options):
    """Raises `ValueError` unless `value` is one of `options`."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f'`{name}` must be one of {tuple(options)}; got {value!r}.')
    return value


def check_image_event_shape(event_shape, owner):
    """Returns `event_shape` as a tuple [H, W, C] of positive ints, or raises `ValueError`."""
    try:
        shape = tuple(event_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in shape
        )
    ):
        raise ValueError(
            f'{owner} on images needs `event_shape` [H, W, C] of positive ints; got '
            f'{event_shape!r}.'
        )
    return tuple(int(d) for d in shape)


def format_message(template, *values):
    """`template` with each '{}' replaced by a value, formatted as TensorFlow prints tensors.

    The same text for a Python number (checked at once) and a tensor (checked at run time by
    `assert_op`), so one argument always fails with one message.
    """
    return tf.strings.format(template, values).numpy().decode()


def assert_op(condition, template, *values):
    """An op raising `InvalidArgumentError` with the formatted message unless `condition`.

    Works eagerly and inside `tf.function`; the message is formatted only when it fails.
    """
    return tf.debugging.Assert(condition, [tf.strings.format(template, values)])
