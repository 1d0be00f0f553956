"""A user's own data: the splits of a folder of images or a CSV table, and CSV tables.

Both are split by one fixed permutation into 'train' (80%), 'validation' (10%) and 'test'
(10%; each rounded, at least one example), the same on every call (`split_indices`). A
CSV table has a header row; the chosen columns are the data x [D], optional context columns
the context c [K] of a conditional model. Values stay in the CSV's units; the training split's
mean and deviation of each column (`TableStatistics`) go into the model
(`tfp_flows.run.restore.standardize_flow`).
"""

import csv
import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.data.builtin import check_split

__all__ = [
    'SPLIT_FRACTIONS',
    'TableStatistics',
    'csv_source',
    'read_csv',
    'split_indices',
    'table_statistics',
]

SPLIT_FRACTIONS = {'train': 0.8, 'validation': 0.1, 'test': 0.1}
_MISSING = ('', 'na', 'nan', 'n/a', 'null', 'none', '?')


def split_indices(count, split):
    """The sorted indices of `split` among `count` examples: a fixed permutation, 80/10/10.

    Validation and test get round(count / 10) examples each, and at least one (so every split
    of at least 3 examples is non-empty); train gets the rest.
    Raises `ValueError` for an unknown split, or a `count` that is not an int >= 0.
    """
    checks.NON_NEGATIVE_INT.check('count', count)
    check_split(split, 'your own data')
    num_validation, num_test = (
        min(max(1, round(count * SPLIT_FRACTIONS[name])), count // 3)
        for name in ('validation', 'test')
    )
    ends = np.cumsum([0, count - num_validation - num_test, num_validation, num_test])
    index = list(SPLIT_FRACTIONS).index(split)
    permutation = np.random.RandomState(0).permutation(count)
    return np.sort(permutation[ends[index] : ends[index + 1]])


def _check_names(name, value):
    """`value` as a tuple of column names (`checks.COLUMN_NAMES`); None and () stay."""
    if value is None or (isinstance(value, tuple | list) and not value):
        return None if value is None else ()
    return checks.COLUMN_NAMES.or_none().check(name, value)


def csv_source(path, split, columns=None, context_columns=None, conditional=False):
    """`make_dataset`'s source 'csv:PATH': (unbatched dataset of float32 rows x [D], or (x, c)
    pairs with `conditional`; `DatasetInfo` fields). `conditional` must match having context
    columns (`ValueError` before the file is read); other errors as `read_csv`."""
    split_indices(0, split)  # Refuses an unknown split; `read_csv` checks `columns`.
    if checks.BOOL.check('conditional', conditional) != bool(
        _check_names('context_columns', context_columns)
    ):
        raise ValueError(
            'A CSV table is conditional exactly when it has context columns: pass '
            '`context_columns` with conditional=True (or neither); got '
            f'context_columns={context_columns!r}, conditional={conditional!r}.'
        )
    x, c, columns, context_columns = read_csv(path, columns, context_columns)
    statistics = table_statistics(path, x, c, columns, context_columns)
    chosen = split_indices(len(x), split)
    x, c = x[chosen].astype(np.float32), c[chosen].astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, c) if conditional else x)
    fields = dict(
        event_shape=(x.shape[1],),
        num_bins=None,
        num_examples={split: len(x)},
        conditional_shape=(c.shape[1],) if conditional else None,
        statistics=statistics,
    )
    return dataset, fields


@dataclasses.dataclass(frozen=True)
class TableStatistics:
    """The names of the data `columns` (x, [D]) and `context_columns` (c, [K]; () without), and
    the training split's `mean` and `scale` (standard deviation, ddof 0) of each, float64 [D]
    (and `context_mean`, `context_scale` [K] or None)."""

    columns: tuple
    mean: np.ndarray
    scale: np.ndarray
    context_columns: tuple = ()
    context_mean: np.ndarray | None = None
    context_scale: np.ndarray | None = None

    def __eq__(self, other):
        return isinstance(other, TableStatistics) and all(
            np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
            for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        )

    __hash__ = None


def _parse_number(text, path, row, column):
    value = text.strip()
    if value.lower() in _MISSING:
        raise ValueError(
            f'{path}: missing value in column {column!r}, row {row} (counting the header as row '
            f'1); got {text!r}. Fill or drop the rows with missing values first.'
        )
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f'{path}: column {column!r} is not numeric: row {row} (counting the header as row '
            f'1) holds {text!r}. Choose numeric columns (`columns`, `context_columns`).'
        ) from None
    if not math.isfinite(number):
        raise ValueError(
            f'{path}: column {column!r}, row {row} holds {text!r}, not a finite number.'
        )
    return number


def _check_columns(path, header, columns, context_columns):
    """Raises `ValueError` for a column not in `header`, named twice, or data and context."""
    for kind, names in (('columns', columns), ('context_columns', context_columns)):
        unknown = [name for name in names if name not in header]
        if unknown:
            raise ValueError(
                f'csv:{path} has no column(s) {", ".join(map(repr, unknown))} (`{kind}`); its '
                f'columns are {", ".join(map(repr, header))}.'
            )
    both = sorted(set(columns) & set(context_columns))
    if both:
        raise ValueError(f'Column(s) {both} are both data and context columns of csv:{path}.')
    if not columns:
        raise ValueError(f'csv:{path}: no data columns chosen; its columns are {header}.')


def read_csv(path, columns=None, context_columns=()):
    """Reads the `columns` (None: all but the `context_columns`) and `context_columns` of the
    CSV table `path`, which has a header row: (x [N, D], c [N, K], columns, context_columns),
    float64 arrays (K may be 0) and the names in that order.
    Raises `FileNotFoundError` for no such file, `ValueError` for an argument out of its
    domain (before the file is read) and for a table that does not fit (fewer than four rows;
    else naming the column, row and value).
    """
    checks.check_path('path', path)
    columns = _check_names('columns', columns)
    context_columns = _check_names('context_columns', context_columns) or ()
    if not os.path.isfile(path):
        raise FileNotFoundError(f'csv:{path}: no such file.')
    with open(path, newline='') as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise ValueError(f'csv:{path} is empty; it needs a header row and data rows.')
    header = [name.strip() for name in rows[0]]
    if columns is None:
        columns = tuple(name for name in header if name not in context_columns)
    _check_columns(path, header, columns, context_columns)
    if len(rows) < 5:
        raise ValueError(
            f'csv:{path} has {len(rows) - 1} data row(s); it needs at least 4: one each for '
            'the validation and test splits and two to train on (80/10/10, each at least one).'
        )
    index = {name: header.index(name) for name in (*columns, *context_columns)}
    values = np.empty([len(rows) - 1, len(index)])
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ValueError(
                f'csv:{path}: row {r + 2} has {len(row)} fields; the header has {len(header)}.'
            )
        for j, name in enumerate(index):
            values[r, j] = _parse_number(row[index[name]], path, r + 2, name)
    return values[:, : len(columns)], values[:, len(columns) :], columns, context_columns


def table_statistics(path, x, c, columns, context_columns):
    """The `TableStatistics` of the training split of `read_csv`'s outputs (taken as they are):
    `x` [N, D], `c` [N, K], `columns` and `context_columns` (`path` named in messages).
    `ValueError` for a column constant on the training split."""
    train = split_indices(len(x), 'train')

    def moments(values, names):
        mean, scale = values[train].mean(axis=0), values[train].std(axis=0)
        constant = [name for name, s in zip(names, scale, strict=True) if not s > 0]
        if constant:
            raise ValueError(
                f'Column(s) {constant} of csv:{path} are constant on the training split; a '
                'density of a constant has no scale. Drop them.'
            )
        return mean, scale

    data = moments(x, columns)
    context = moments(c, context_columns) if context_columns else (None, None)
    return TableStatistics(columns, *data, context_columns, *context)
