"""Checks of arguments where they enter the library, one domain per kind of value.

Where a value is checked: docs/ARCHITECTURE.md. A bad value raises `ValueError` (`TypeError`
for a wrong kind of object) naming the argument, the value and what was expected:
'`num_channels` must be a positive int; got 0.' Nothing here imports TensorFlow at import
time, so the config of a run is checked before TensorFlow starts.
"""

import math
import numbers
import os

__all__ = [
    'BOOL',
    'COLUMN_NAMES',
    'COUPLINGS',
    'COUPLING_OPTIONS',
    'DROPOUT_ROWS',
    'FRACTION',
    'MIXTURE_COMPONENTS',
    'NON_NEGATIVE_INT',
    'NUMBERS',
    'POSITIVE_INT',
    'POSITIVE_NUMBER',
    'SEED',
    'SPLINE_BINS',
    'TEMPERATURES',
    'Domain',
    'check_dropout_rows',
    'check_float_dtype',
    'check_path',
    'check_shape',
    'check_values',
    'integer',
    'non_empty_list',
    'number',
    'one_of',
]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Domain:
    """The values an argument may take (`contains(value)`), the words for them in a message,
    and `convert(value)`, the value the caller keeps. `check(name, value)` returns the
    converted value or raises `ValueError` '`name` must be <description>; got <value>.'
    """

    def __init__(self, description, contains, convert=lambda value: value):
        self.description = description
        self.contains = contains
        self.convert = convert

    def check(self, name, value):
        if not self.contains(value):
            raise ValueError(f'`{name}` must be {self.description}; got {value!r}.')
        return self.convert(value)

    def or_none(self):
        """The same domain, also taking None."""
        return Domain(
            f'None or {self.description}',
            lambda value: value is None or self.contains(value),
            lambda value: None if value is None else self.convert(value),
        )

    def __repr__(self):
        return f'Domain({self.description!r})'


def _bound(value):
    """A bound as a message shows it: powers of two from 2**16 on as '2**k'."""
    if isinstance(value, int) and value >= 2**16 and value & (value - 1) == 0:
        return f'2**{value.bit_length() - 1}'
    return repr(value)


def integer(low=None, high=None):
    """Ints n with `low` <= n < `high` (either bound may be None); not bools."""
    if high is not None:
        description = f'an int in [{_bound(low)}, {_bound(high)})'
    elif low == 1:
        description = 'a positive int'
    else:
        description = 'an int' if low is None else f'an int >= {_bound(low)}'

    def contains(value):
        return _is_int(value) and (low is None or value >= low) and (high is None or value < high)

    return Domain(description, contains, int)


def number(low=None, high=None, low_open=False, high_open=False):
    """Finite real numbers between the bounds, each closed unless `*_open`; not bools."""
    if low is not None and high is not None:
        left, right = '(' if low_open else '[', ')' if high_open else ']'
        description = f'a number in {left}{low!r}, {high!r}{right}'
    elif low is not None:
        description = f'a finite number {">" if low_open else ">="} {low!r}'
    elif high is not None:
        description = f'a finite number {"<" if high_open else "<="} {high!r}'
    else:
        description = 'a finite number'

    def contains(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        return math.isfinite(value) and above and below

    return Domain(description, contains, float)


def one_of(*options):
    """One of the str `options`."""
    shown = ', '.join(repr(o) for o in options)
    return Domain(f'one of ({shown})', lambda value: isinstance(value, str) and value in options)


def non_empty_list(domain, description):
    """Non-empty sequences (not a str) of values of `domain` (`description`: the words for
    them), kept as a tuple."""

    def contains(value):
        try:
            items = () if isinstance(value, str) else tuple(value)
        except TypeError:
            return False
        return bool(items) and all(domain.contains(v) for v in items)

    return Domain(f'a non-empty list of {description}', contains, tuple)


BOOL = Domain('True or False', lambda value: type(value).__name__ in ('bool', 'bool_'), bool)
POSITIVE_INT = integer(1)
NON_NEGATIVE_INT = integer(0)
POSITIVE_NUMBER = number(0, low_open=True)
FRACTION = number(0, 1, high_open=True)  # Rates: dropout, EMA momentum.
# Every seed of the library and of a run: initial weights, permutations, data order, noise.
SEED = integer(0, 2**31)
NUMBERS = non_empty_list(number(), 'finite numbers')
TEMPERATURES = non_empty_list(POSITIVE_NUMBER, 'finite numbers > 0')


def _is_row(value):
    if _is_int(value):
        return 0 <= value < 2**31
    import tensorflow as tf  # Only the flows pass tensors, with TensorFlow loaded.

    return tf.is_tensor(value) and value.dtype.is_integer and value.shape.rank in (None, 0)


# The bijector kwarg `dropout_rows` (`tfp_flows.networks.ConvNet.__call__`).
DROPOUT_ROWS = Domain(
    'None or a pair (offset, total) of ints in [0, 2**31) or int scalar tensors',
    lambda rows: (
        rows is None or isinstance(rows, tuple) and len(rows) == 2 and all(map(_is_row, rows))
    ),
)


def check_dropout_rows(rows, seeded, count):
    """The bijector kwarg `dropout_rows` checked: in `DROPOUT_ROWS`, given with a dropout seed
    (`seeded`), and as ints holding a batch of `count` examples where that is known (None: not
    static). `ValueError` naming it otherwise."""
    rows = DROPOUT_ROWS.check('dropout_rows', rows)
    if rows is not None and not seeded:
        raise ValueError(f'`dropout_rows` {rows!r} needs a `dropout_seed` (masks per row).')
    if rows is not None and count is not None and all(map(_is_int, rows)):
        if rows[0] + count > rows[1]:
            raise ValueError(
                f"`dropout_rows` (offset, total) = {rows!r} must hold the batch's {count} "
                f'examples: offset + {count} <= total.'
            )
    return rows


def _split_names(value):
    """Names from a list of strs, each a name or several separated by commas ('a,b')."""
    items = [value] if isinstance(value, str) else value
    return tuple(name.strip() for item in items for name in item.split(','))


def _is_name_list(value):
    if not isinstance(value, str | list | tuple) or not all(isinstance(v, str) for v in value):
        return False
    names = _split_names(value)
    return bool(names) and all(names) and len(set(names)) == len(names)


# The coupling kinds and their options' domains, the builders' and the config's.
COUPLINGS = one_of('affine', 'additive', 'spline', 'logistic_mixture')
SPLINE_BINS = integer(2, 1000)  # 1000 bins of the minimum size fill [-B, B].
MIXTURE_COMPONENTS = integer(1, 1000)

# The builders' and the config's options of one coupling kind, {option: kind}: a model of
# another kind refuses them but at their defaults.
COUPLING_OPTIONS = {
    'scale': 'affine',
    'spline_bins': 'spline',
    'spline_bound': 'spline',
    'mixture_components': 'logistic_mixture',
}

# Table columns: ('a', 'b'), ['a', 'b'], 'a,b' (as a command line gives them) or ('a,b',).
COLUMN_NAMES = Domain(
    'a non-empty list of distinct column names (or one str of them separated by commas)',
    _is_name_list,
    _split_names,
)


def check_shape(name, value, ranks=None):
    """`value` as a tuple of positive ints (an event shape), of a length in `ranks` if given;
    else `ValueError` naming `name`."""
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    if (
        shape is None
        or isinstance(value, str)
        or not shape
        or (ranks is not None and len(shape) not in ranks)
        or not all(_is_int(d) and d > 0 for d in shape)
    ):
        kind = {(1,): '[D]', (3,): '[H, W, C]', (1, 3): '[H, W, C] or [D]'}.get(
            tuple(ranks or ()), 'a shape'
        )
        raise ValueError(f'`{name}` must be {kind} of positive ints; got {value!r}.')
    return tuple(int(d) for d in shape)


def check_float_dtype(name, value, options=('float32', 'float64')):
    """`value` (a `tf.DType`, NumPy dtype or its name) as a `tf.DType` named in `options`;
    else `ValueError` naming `name`."""
    import tensorflow as tf  # Only the flows call this, with TensorFlow loaded.

    try:
        dtype = tf.as_dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in options:
        expected = ' or '.join(f'tf.{o}' for o in options)
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')
    return dtype


def check_path(name, value, allow_none=False):
    """Raises `TypeError` unless `value` is a str or a path (or None, if `allow_none`)."""
    if (value is None and allow_none) or isinstance(value, str | os.PathLike):
        return value
    expected = 'None, a str or a path' if allow_none else 'a str or a path'
    raise TypeError(f'`{name}` must be {expected}; got {value!r}.')


def check_values(tensor, inside, message):
    """`tensor`, checked to have every value `inside` (a bool tensor of its shape).

    Otherwise `tf.errors.InvalidArgumentError` '<message> <the first values outside>', e.g.
    '`temperature` must be a finite number > 0; got [-1.0]': eagerly at once, in a graph when
    it runs (`tf.debugging.Assert`, which XLA leaves out as it does every assertion).
    """
    import tensorflow as tf

    outside = tf.reshape(tf.logical_not(inside), [-1])
    if tf.executing_eagerly():
        if bool(tf.reduce_any(outside)):
            values = tf.boolean_mask(tf.reshape(tensor, [-1]), outside)[:5].numpy().tolist()
            raise tf.errors.InvalidArgumentError(None, None, f'{message} {values}')
        return tensor
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(outside)),
        [message, tf.boolean_mask(tf.reshape(tensor, [-1]), outside)[:5]],
    )
    with tf.control_dependencies([check]):
        return tf.identity(tensor)
