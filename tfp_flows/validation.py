"""Checks of user arguments, with one message per argument: its name, its value and its domain.

Every message reads '`name` must be <domain>; got <value>.' A Python value is checked at once
(`ValueError`; `TypeError` for a tensor of a wrong dtype). A tensor is checked at run time,
eagerly and inside `tf.function` alike (`tf.errors.InvalidArgumentError`), with the same text:
numbers are shown as TensorFlow prints them, so `0.7` and `tf.constant(0.7)` read alike.
Under XLA (`jit_compile=True`) run-time checks are left out, as XLA leaves out every
TensorFlow assertion: it cannot compile the string formatting of a message.
"""

import math
import numbers

import numpy as np
import tensorflow as tf

# Private TF: whether the graph being built is compiled by XLA. `tf.function(jit_compile=True)`
# traces inside an XLA control-flow context, and XLA has no string ops (`StringFormat`), so
# `assert_op` must not build one there. No public API tells; tests/test_validation.py pins it.
from tensorflow.python.ops import control_flow_util

__all__ = [
    'Interval',
    'assert_op',
    'assert_values',
    'check_bool',
    'check_callable',
    'check_float_dtype',
    'check_image_event_shape',
    'check_int',
    'check_number',
    'check_number_list',
    'check_one_of',
    'check_positive_int',
    'check_sample_shape',
    'check_scalar',
    'check_stateless_seed',
    'format_message',
    'format_value',
    'shape_tuple',
]


def _bound(value):
    """A bound as a message shows it: powers of two from 2**16 on as '2**k'."""
    if isinstance(value, int) and value >= 2**16 and value & (value - 1) == 0:
        return f'2**{value.bit_length() - 1}'
    return repr(value)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


class Interval:
    """Ints, or finite numbers, between two optional bounds, and the words a message uses.

    Ints: `low` <= n < `high` (either bound may be None). Numbers: finite, and above `low`
    and below `high`, each bound closed unless `low_open` / `high_open`.
    """

    def __init__(self, integer=False, low=None, high=None, low_open=False, high_open=False):
        self.integer = integer
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open

    @property
    def description(self):
        """What a value must be, e.g. 'a positive int' or 'a finite number > 0'."""
        low, high = self.low, self.high
        if self.integer:
            if high is not None:
                return f'an int in [{_bound(low)}, {_bound(high)})'
            if low == 1:
                return 'a positive int'
            return 'an int' if low is None else f'an int >= {_bound(low)}'
        if low is not None and high is not None:
            left, right = '(' if self.low_open else '[', ')' if self.high_open else ']'
            return f'a number in {left}{low!r}, {high!r}{right}'
        if low is not None:
            return f'a finite number {">" if self.low_open else ">="} {low!r}'
        if high is not None:
            return f'a finite number {"<" if self.high_open else "<="} {high!r}'
        return 'a finite number'

    def contains(self, value):
        """Whether the Python number `value` is in the interval (of the right kind)."""
        if not (_is_int(value) if self.integer else _is_number(value)):
            return False
        if self.integer:
            value = int(value)
            return (self.low is None or value >= self.low) and (
                self.high is None or value < self.high
            )
        value = float(value)
        return math.isfinite(value) and self._between(value)

    def _between(self, value):
        above = (
            True if self.low is None else (value > self.low if self.low_open else value >= self.low)
        )
        below = (
            True
            if self.high is None
            else (value < self.high if self.high_open else value <= self.high)
        )
        return above & below

    def tensor_contains(self, tensor):
        """Elementwise: whether each value of the number tensor `tensor` is inside."""
        inside = tf.ones_like(tensor, tf.bool)
        if self.integer:
            if self.low is not None:
                inside &= tensor >= tf.cast(self.low, tensor.dtype)
            if self.high is not None and self.high <= tensor.dtype.max:
                inside &= tensor < tf.cast(self.high, tensor.dtype)
            return inside
        if tensor.dtype.is_floating:
            inside &= tf.math.is_finite(tensor)
        if self.low is not None:
            low = tf.cast(self.low, tensor.dtype)
            inside &= tensor > low if self.low_open else tensor >= low
        if self.high is not None:
            high = tf.cast(self.high, tensor.dtype)
            inside &= tensor < high if self.high_open else tensor <= high
        return inside


def _template(name, description):
    return f'`{name}` must be {description}; got {{}}.'


def check_int(name, value, low=1, high=None, *, allow_none=False):
    """`value` as an int in [`low`, `high`), or None if `allow_none`; else `ValueError`."""
    interval = Interval(integer=True, low=low, high=high)
    if value is None and allow_none:
        return None
    if not interval.contains(value):
        prefix = 'None or ' if allow_none else ''
        raise ValueError(_template(name, prefix + interval.description).format(repr(value)))
    return int(value)


def check_positive_int(name, value):
    """Raises `ValueError` unless `value` is an int >= 1 (not a bool)."""
    return check_int(name, value, low=1)


def check_number(
    name, value, low=None, high=None, *, low_open=False, high_open=False, allow_none=False
):
    """`value` as a finite float between the bounds (see `Interval`); else `ValueError`."""
    interval = Interval(low=low, high=high, low_open=low_open, high_open=high_open)
    if value is None and allow_none:
        return None
    if not interval.contains(value):
        prefix = 'None or ' if allow_none else ''
        raise ValueError(_template(name, prefix + interval.description).format(repr(value)))
    return float(value)


def check_number_list(name, values, interval, description):
    """`values` as a tuple, non-empty, each in `interval`; else `ValueError`, e.g.
    '`temperatures` must be <description>; got (0.7, inf).'"""
    items = None if isinstance(values, str) else shape_tuple(values)
    if not items or not all(interval.contains(v) for v in items):
        raise ValueError(_template(name, description).format(repr(values)))
    return items


def check_bool(name, value):
    """`value` as a bool; `ValueError` for anything but True and False (NumPy's too).

    A string such as 'False' is truthy, so an option given one would silently be on.
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f'`{name}` must be True or False; got {value!r}.')
    return bool(value)


def check_one_of(name, value, options):
    """Raises `ValueError` unless `value` is one of `options`."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f'`{name}` must be one of {tuple(options)}; got {value!r}.')
    return value


def check_callable(name, value, *, allow_none=False):
    """Raises `ValueError` unless `value` is callable (or None, if `allow_none`)."""
    if (value is None and allow_none) or callable(value):
        return value
    expected = 'None or a callable' if allow_none else 'a callable'
    raise ValueError(f'`{name}` must be {expected}; got {value!r}.')


def check_float_dtype(name, value, options=None):
    """`value` as a floating `tf.DType`, one of `options` if given; else `ValueError`."""
    try:
        dtype = tf.as_dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or not dtype.is_floating or (options and dtype not in options):
        expected = (
            ' or '.join(f'tf.{d.name}' for d in options) if options else 'a floating-point dtype'
        )
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')
    return dtype


def check_image_event_shape(event_shape, owner):
    """Returns `event_shape` as a tuple [H, W, C] of positive ints, or raises `ValueError`."""
    try:
        shape = tuple(event_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(_is_int(d) and d > 0 for d in shape):
        raise ValueError(
            f'{owner} on images needs `event_shape` [H, W, C] of positive ints; got '
            f'{event_shape!r}.'
        )
    return tuple(int(d) for d in shape)


def shape_tuple(value):
    """`tuple(value)`, or None if `value` is not iterable (a shape argument to check)."""
    try:
        return tuple(value)
    except TypeError:
        return None


def _printable(value):
    """A tensor for `tf.strings.format` to print (Python floats in float64, not float32, which
    would round 123456789.0 to 123456792), or the text of a value that is not a number."""
    if _is_int(value):
        return tf.constant(int(value), tf.int64) if -(2**63) <= value < 2**63 else str(value)
    if _is_number(value):
        return tf.constant(float(value), tf.float64)
    if isinstance(value, tf.Tensor | tf.Variable | np.ndarray | np.generic):
        return value
    return repr(value)


_PLACEHOLDER = '\x00'  # Of the string-format op: a text value may contain '{}'.


def _format(template, values):
    """The string tensor of `template` with each '{}' replaced by a value (see `_printable`)."""
    parts = template.split('{}')
    if len(parts) != len(values) + 1:
        raise ValueError(
            f'{template!r} has {len(parts) - 1} placeholders for {len(values)} values.'
        )
    text, tensors = parts[0], []
    for value, part in zip(values, parts[1:], strict=True):
        printable = _printable(value)
        if isinstance(printable, str):
            text += printable + part
        else:
            text += _PLACEHOLDER + part
            tensors.append(printable)
    return tf.strings.format(text, tensors, placeholder=_PLACEHOLDER)


def format_value(value):
    """The text a message shows for `value`: a number or an array as TensorFlow prints it
    (`tf.strings.format`), so a Python number and a tensor holding it read alike; anything
    else by its repr. Only eagerly."""
    return format_message('{}', value)


def format_message(template, *values):
    """`template` with each '{}' replaced by a value, formatted as TensorFlow prints tensors.

    The same text for a Python number (checked at once) and a tensor (checked at run time by
    `assert_op`), so one argument always fails with one message. Values that are not numbers
    or arrays are shown by their repr.
    """
    return _format(template, values).numpy().decode()


def _in_xla_context():
    return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph()
    )


def assert_op(condition, template, *values):
    """An op raising `InvalidArgumentError` with the formatted message unless `condition`.

    Eagerly it checks at once and raises with exactly `format_message(template, *values)`;
    inside `tf.function` the op checks at run time with the same text, formatted only when it
    fails. Under XLA it is a no-op (XLA compiles assertions out). Use it as
    `with tf.control_dependencies([assert_op(...)]): ...`. A value may be a function of no
    arguments returning it, to compute it only when the check fails.
    """
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(condition)):
            shown = [v() if callable(v) else v for v in values]
            raise tf.errors.InvalidArgumentError(None, None, format_message(template, *shown))
        return tf.no_op()
    if _in_xla_context():
        return tf.no_op()

    def fail():
        shown = [v() if callable(v) else v for v in values]
        return tf.debugging.Assert(False, [_format(template, shown)])

    # In a branch of its own, the message is formatted only when the check fails (an Assert
    # of strings alone would format it on every call).
    return tf.cond(tf.reduce_all(condition), tf.no_op, fail)


def _checked(tensor, *checks):
    with tf.control_dependencies(list(checks)):
        return tf.identity(tensor)


def _number_tensor(name, value, description, integer):
    """`value` converted to a tensor of integer (or number) dtype; `TypeError` otherwise."""
    tensor = tf.convert_to_tensor(value)
    if not (tensor.dtype.is_integer or (tensor.dtype.is_floating and not integer)):
        raise TypeError(_template(name, description).format(f'a {tensor.dtype.name} tensor'))
    return tensor


def check_scalar(name, value, interval, dtype=None):
    """`value` as a scalar tensor (of `dtype` if given), checked to lie in `interval`.

    A Python number is checked now (`ValueError`); a tensor or NumPy value at run time
    (`InvalidArgumentError`; its rank statically when known, `ValueError`), with the same
    message '`name` must be <interval>; got <value>.'. Anything else (a str, a list, None)
    raises `ValueError`, a tensor of another kind (strings, bools) `TypeError`.
    """
    template = _template(name, interval.description)
    if _is_number(value):
        if not interval.contains(value):
            if interval.integer and not _is_int(value):  # 2.0, not TensorFlow's '2'.
                raise ValueError(template.format(repr(value)))
            raise ValueError(format_message(template, value))
        return tf.constant(value, dtype)
    if not isinstance(value, tf.Tensor | tf.Variable | np.ndarray | np.generic):
        raise ValueError(template.format(repr(value)))
    tensor = _number_tensor(name, value, interval.description, interval.integer)
    rank = tensor.shape.rank
    if rank is not None and rank != 0:
        shown = format_value(tensor) if tf.executing_eagerly() else f'shape {tensor.shape}'
        raise ValueError(template.format(shown))
    if dtype is not None:
        tensor = tf.cast(tensor, dtype)
    valid = tf.reduce_all(interval.tensor_contains(tensor))
    if rank is None:
        valid = tf.logical_and(tf.equal(tf.rank(tensor), 0), valid)
    tensor = _checked(tensor, assert_op(valid, template, tensor))
    tensor.set_shape([])  # Static only: a run-time op could fail before the check.
    return tensor


def check_sample_shape(name, value):
    """`value` as a sample shape: an int >= 0 or a list of them, or an int tensor of rank 0
    or 1 (its values checked at run time). Returns it unchanged (a tensor checked)."""
    description = 'an int >= 0 or a list of ints >= 0'
    template = _template(name, description)
    if isinstance(value, tf.TensorShape):
        value = value.as_list()
    if _is_int(value) or (
        isinstance(value, list | tuple) and all(_is_int(v) or v is None for v in value)
    ):
        values = [value] if _is_int(value) else value
        if all(v is not None and v >= 0 for v in values):
            return value
        raise ValueError(template.format(repr(value)))
    if not isinstance(value, tf.Tensor | tf.Variable | np.ndarray | np.generic):
        raise ValueError(template.format(repr(value)))
    tensor = tf.convert_to_tensor(value)
    if not tensor.dtype.is_integer:
        raise TypeError(template.format(f'a {tensor.dtype.name} tensor'))
    rank = tensor.shape.rank
    if rank is not None and rank > 1:
        raise ValueError(template.format(f'a tensor of shape {tensor.shape}'))
    valid = tf.reduce_all(tensor >= 0)
    if rank is None:
        valid = tf.logical_and(tf.rank(tensor) <= 1, valid)
    return _checked(tensor, assert_op(valid, template, tensor))


def check_stateless_seed(name, value, *, allow_none=True, description=None):
    """`value` as a stateless seed, an int tensor of shape [2] (any values), or None.

    A wrong dtype raises `TypeError`, a wrong static shape `ValueError`, with one message
    whose domain is `description` when the caller accepts more (e.g. Python ints) and checks
    those itself. A shape unknown until run time is left to TensorFlow's stateless random ops,
    which fail with 'seed must have shape [2]' (their shape inference runs before any check).
    """
    if description is None:
        description = 'an int tensor of shape [2] (a stateless seed)'
        if allow_none:
            description = 'None or ' + description
    template = _template(name, description)
    if value is None and allow_none:
        return None
    if isinstance(value, str | bool) or value is None:
        raise ValueError(template.format(repr(value)))
    try:
        tensor = tf.convert_to_tensor(value)
    except (TypeError, ValueError):
        raise ValueError(template.format(repr(value))) from None
    if not tensor.dtype.is_integer:
        raise TypeError(template.format(f'a {tensor.dtype.name} tensor'))
    if not tensor.shape.is_compatible_with([2]):
        shown = format_value(tensor) if tf.executing_eagerly() else f'shape {tensor.shape}'
        raise ValueError(template.format(shown))
    return tensor


def assert_values(name, tensor, inside, description):
    """`tensor` checked at run time to have every value `inside` (a bool tensor of its shape).

    Fails with `InvalidArgumentError`: '`name` must be <description>; got N value(s) outside
    it, the first: [...]' (NaN counts as outside when `inside` says so).
    """
    template = f'`{name}` must be {description}; got {{}} value(s) outside it, the first: {{}}.'

    def first_outside():
        return tf.boolean_mask(tensor, tf.logical_not(inside))[:5]

    def count():
        return tf.reduce_sum(tf.cast(tf.logical_not(inside), tf.int64))

    return _checked(tensor, assert_op(tf.reduce_all(inside), template, count, first_outside))
