"""Domain checks of Python arguments, each raising one message that names the argument.

Every message reads "`name` must be <what was expected>; got <value!r>." and is raised as a
`ValueError` before any work is done. Bools are not numbers here (`True` is not a step count).
"""

import math
import numbers

__all__ = ['check_int', 'check_number']


def check_int(name, value, minimum):
    """Returns `value` as an int; `ValueError` unless it is an int >= `minimum`.

    The message says "a positive int" for `minimum=1`, as the rest of the library does.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = 'a positive int' if minimum == 1 else f'an int >= {minimum}'
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')
    return int(value)


def check_number(name, value, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """Returns `value` as a float; `ValueError` unless it is a finite number in the interval.

    The interval is [low, high], with an open end where `low_open` / `high_open`; an infinite
    bound only says "no bound" (the value must be finite anyway).
    """
    if math.isinf(low) and math.isinf(high):
        expected = 'a finite number'
    elif math.isinf(high):
        expected = f'a finite number {">" if low_open else ">="} {low:g}'
    elif math.isinf(low):
        expected = f'a finite number {"<" if high_open else "<="} {high:g}'
    else:
        expected = (
            f'a finite number in {"(" if low_open else "["}{low:g}, {high:g}'
            f'{")" if high_open else "]"}'
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')
    number = float(value)
    if (
        not math.isfinite(number)
        or number < low
        or number > high
        or (low_open and number == low)
        or (high_open and number == high)
    ):
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')
    return number
