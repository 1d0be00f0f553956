"""A user's own data: a folder of images or a CSV table, in the splits `make_dataset` uses.

`tfp_flows.data.make_dataset('folder:PATH', ...)` and `make_dataset('csv:PATH', ...)` read
them through this module. Both are split by one fixed permutation (`numpy.random.RandomState(0)`)
into 'train' (80%), 'validation' (10%) and 'test' (10%, rounded), the same on every call.

- Folder: the .bmp, .gif, .jpeg, .jpg and .png files under PATH, read with Keras'
  `keras.utils.image_dataset_from_directory` (8-bit, `num_bins` = 256). With one subfolder per
  class, the subfolder names are the class labels (for a conditional model); without
  subfolders, the images are unlabelled. Every file is opened first (Pillow, which matplotlib
  installs), so an empty folder, an unreadable file, or images of different sizes without an
  `image_size` fail at once, naming the files. With `image_size`, each image is centre-cropped
  to a square and area-resized to image_size x image_size.
- CSV: a table with a header row. The chosen columns are the data x [D]; optional context
  columns are the context c [K] of a conditional model. Values stay in the CSV's units; the
  training split's mean and standard deviation of each column (`TableStatistics`) go into the
  model as saved steps (`standardize_flow`), so a trained or exported model takes and gives
  the CSV's own units.
"""

import csv
import dataclasses
import math
import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from tfp_flows.run.workdir import check_path
from tfp_flows.validation import check_bool, check_int, shape_tuple

__all__ = [
    'SPLIT_FRACTIONS',
    'TableStatistics',
    'csv_source',
    'folder_source',
    'load_folder',
    'read_csv',
    'split_indices',
    'table_statistics',
]

SPLIT_FRACTIONS = {'train': 0.8, 'validation': 0.1, 'test': 0.1}
IMAGE_EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png')  # What Keras' reader takes.
_GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'F')
_MISSING = ('', 'na', 'nan', 'n/a', 'null', 'none', '?')


def split_indices(count, split):
    """The indices of `split` among `count` examples: a fixed permutation, 80/10/10.

    Raises:
      ValueError: for an unknown split, or a `count` that is not an int >= 0.
    """
    check_int('count', count, 0)
    if not isinstance(split, str) or split not in SPLIT_FRACTIONS:
        raise ValueError(
            f'Unknown split {split!r} of your own data; expected one of '
            f'{", ".join(SPLIT_FRACTIONS)}.'
        )
    permutation = np.random.RandomState(0).permutation(count)
    num_validation = round(count * SPLIT_FRACTIONS['validation'])
    num_test = round(count * SPLIT_FRACTIONS['test'])
    num_train = count - num_validation - num_test
    ends = {'train': num_train, 'validation': num_train + num_validation, 'test': count}
    starts = {'train': 0, 'validation': num_train, 'test': num_train + num_validation}
    return np.sort(permutation[starts[split] : ends[split]])


def _check_names(name, value, allow_none):
    """`value` as a tuple of column names (strs); None (if `allow_none`) or () stay."""
    if value is None and allow_none:
        return None
    names = None if isinstance(value, str) else shape_tuple(value)
    if names is None or not all(isinstance(n, str) for n in names):
        expected = 'a list of column names (strs)'
        expected = f'None or {expected}' if allow_none else expected
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')
    return names


def _image_files(directory):
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found += [
            os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return found


def _scan_folder(path, image_size):
    """Checks every image file under `path`; returns (class_names or None, (H, W, C), count)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f'folder:{path}: {path!r} is not a directory.')
    subfolders = sorted(e.name for e in os.scandir(path) if e.is_dir())
    top_level = [
        e.path
        for e in os.scandir(path)
        if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    if subfolders and top_level:
        raise ValueError(
            f'folder:{path} has images both directly in it ({os.path.basename(top_level[0])}, ...) '
            f'and in subfolders ({", ".join(subfolders[:3])}, ...): put every image in one '
            'subfolder per class (its name is the label), or none in subfolders.'
        )
    files = _image_files(path)
    if not files:
        raise ValueError(
            f'folder:{path} holds no images (files ending in {", ".join(IMAGE_EXTENSIONS)}).'
        )
    if subfolders:
        empty = [s for s in subfolders if not _image_files(os.path.join(path, s))]
        if empty:
            raise ValueError(
                f'Class subfolder(s) {", ".join(empty)} of folder:{path} hold no images; remove '
                'them or add images (each subfolder is one class).'
            )
    sizes, grey = {}, True
    for file in files:
        try:
            with Image.open(file) as image:
                image.verify()
            with Image.open(file) as image:
                size, mode = image.size, image.mode
        except (OSError, UnidentifiedImageError, SyntaxError) as error:
            raise ValueError(f'Cannot read image {file!r}: {error}') from error
        sizes.setdefault(size, file)
        grey = grey and mode in _GREY_MODES
    if image_size is None and len(sizes) > 1:
        (size_a, file_a), (size_b, file_b) = list(sizes.items())[:2]
        raise ValueError(
            f'Images of folder:{path} differ in size: {file_a!r} is {size_a[0]}x{size_a[1]} and '
            f'{file_b!r} is {size_b[0]}x{size_b[1]} (width x height). Set an image size '
            '(`image_size`, config.data.image_size) to centre-crop and resize them all.'
        )
    width, height = next(iter(sizes)) if image_size is None else (image_size, image_size)
    return (tuple(subfolders) or None), (height, width, 1 if grey else 3), len(files)


def load_folder(path, split, image_size=None, labels=False):
    """The images of `split` of a folder: a `tf.data.Dataset` of uint8 [H, W, C].

    Args:
      path: the folder; its class subfolders (if any) name the labels.
      split: 'train', 'validation' or 'test' (80/10/10 of a fixed permutation).
      image_size: None (every image must have the same size), or the side length to
        centre-crop and area-resize every image to.
      labels: yield (image, label) pairs, label an int64 index into the class names.

    Returns:
      (dataset, class_names, count): class_names is a tuple of the subfolder names (None
      without subfolders); count is the number of examples of the split.

    Raises:
      FileNotFoundError: `path` is not a directory.
      ValueError: no images, an unreadable file, images of different sizes without
        `image_size`, images both in the folder and in subfolders, an empty class subfolder,
        or `labels` for a folder without class subfolders; before any file is read, an
        unknown `split`, an `image_size` that is not None or a positive int, `labels` not
        True or False.
      TypeError: `path` is not a str or a path.
    """
    check_path('path', path)
    split_indices(0, split)  # Refuses an unknown split.
    check_int('image_size', image_size, 1, allow_none=True)
    check_bool('labels', labels)
    class_names, shape, count = _scan_folder(path, image_size)
    if labels and class_names is None:
        raise ValueError(
            f'folder:{path} has no class subfolders, so it gives no labels for a conditional '
            'model; put the images of each class in a subfolder named after it.'
        )
    dataset = keras.utils.image_dataset_from_directory(
        path,
        labels='inferred' if class_names else None,
        label_mode='int',
        color_mode='grayscale' if shape[-1] == 1 else 'rgb',
        batch_size=None,
        image_size=shape[:2],
        shuffle=False,
        interpolation='area',
        crop_to_aspect_ratio=True,
        verbose=False,
    )
    chosen = np.zeros(count, bool)
    chosen[split_indices(count, split)] = True
    chosen = tf.constant(chosen)

    def to_uint8(image):
        return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)

    if class_names:
        dataset = dataset.map(lambda image, label: (to_uint8(image), tf.cast(label, tf.int64)))
    else:
        dataset = dataset.map(to_uint8)
    if not labels and class_names:
        dataset = dataset.map(lambda image, label: image)
    dataset = dataset.enumerate().filter(lambda i, _: chosen[i]).map(lambda _, example: example)
    return dataset, class_names, int(np.sum(chosen))


def folder_source(path, split, image_size, conditional):
    """`make_dataset`'s source 'folder:PATH': (unbatched dataset, `DatasetInfo` fields).

    The dataset yields uint8 images [H, W, C], or (image, label) pairs with `conditional`.
    Errors: as `load_folder` (`conditional` is its `labels`), before any file is read.
    """
    check_bool('conditional', conditional)
    dataset, class_names, count = load_folder(path, split, image_size, labels=conditional)
    spec = dataset.element_spec[0] if conditional else dataset.element_spec
    fields = dict(event_shape=tuple(spec.shape.as_list()), num_examples={split: count})
    if conditional:
        fields.update(conditional_shape=(len(class_names),), class_names=class_names)
    return dataset, fields


def csv_source(path, split, columns, context_columns, conditional):
    """`make_dataset`'s source 'csv:PATH': (unbatched dataset, `DatasetInfo` fields).

    The dataset yields float32 rows x [D] in the table's units, or (x, c) pairs with
    `conditional` (c [K], the context columns); the fields include the `TableStatistics`.
    Errors: as `read_csv`; before the file is read, an unknown `split` or a `conditional`
    that is not True or False.
    """
    split_indices(0, split)  # Refuses an unknown split.
    check_bool('conditional', conditional)
    x, c, columns, context_columns = read_csv(path, columns, context_columns)
    statistics = table_statistics(path, x, c, columns, context_columns)
    chosen = split_indices(len(x), split)
    x, c = x[chosen].astype(np.float32), c[chosen].astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, c) if conditional else x)
    fields = dict(
        event_shape=(x.shape[1],),
        num_examples={split: len(x)},
        conditional_shape=(c.shape[1],) if conditional else None,
        statistics=statistics,
    )
    return dataset, fields


@dataclasses.dataclass(frozen=True)
class TableStatistics:
    """Column names and the training split's mean and standard deviation of each column.

    Attributes:
      columns: names of the data columns (x, [D]).
      mean, scale: float64 arrays [D]: mean and standard deviation (ddof 0) of each column.
      context_columns: names of the context columns (c, [K]); () without.
      context_mean, context_scale: float64 arrays [K], or None.
    """

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


def read_csv(path, columns=None, context_columns=()):
    """Reads the chosen columns of a CSV table with a header row.

    Args:
      path: the CSV file.
      columns: names of the data columns, or None for every column not in `context_columns`.
      context_columns: names of the context columns (a conditional model's c), or ().

    Returns:
      (x, c, columns, context_columns): float64 arrays [N, D] and [N, K] (K may be 0), and the
      column names in that order.

    Raises:
      FileNotFoundError: no such file.
      ValueError: an empty table, an unknown or repeated column, a column both data and
        context, fewer than two data rows, a missing value or a non-numeric value (naming the
        column, row and value); before the file is read, `columns` that are not None or a
        list of strs, `context_columns` not a list of strs (or None).
      TypeError: `path` is not a str or a path.
    """
    check_path('path', path)
    columns = _check_names('columns', columns, allow_none=True)
    context_columns = _check_names('context_columns', context_columns, allow_none=True) or ()
    if not os.path.isfile(path):
        raise FileNotFoundError(f'csv:{path}: no such file.')
    with open(path, newline='') as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise ValueError(f'csv:{path} is empty; it needs a header row and data rows.')
    header = [name.strip() for name in rows[0]]
    columns = (
        tuple(name for name in header if name not in context_columns)
        if columns is None
        else tuple(columns)
    )
    for kind, names in (('columns', columns), ('context_columns', context_columns)):
        unknown = [name for name in names if name not in header]
        if unknown:
            raise ValueError(
                f'csv:{path} has no column(s) {", ".join(map(repr, unknown))} (`{kind}`); its '
                f'columns are {", ".join(map(repr, header))}.'
            )
        if len(set(names)) != len(names):
            raise ValueError(f'`{kind}` names a column twice; got {names!r}.')
    both = sorted(set(columns) & set(context_columns))
    if both:
        raise ValueError(f'Column(s) {both} are both data and context columns of csv:{path}.')
    if not columns:
        raise ValueError(f'csv:{path}: no data columns chosen; its columns are {header}.')
    if len(rows) < 3:
        raise ValueError(f'csv:{path} has {len(rows) - 1} data row(s); it needs at least 2.')
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
    """The `TableStatistics` of the training split of the table read by `read_csv`.

    Args:
      path: the table's path, named in messages.
      x, c: what `read_csv` returned, arrays [N, D] and [N, K] of the same N.
      columns, context_columns: their column names, D and K of them.

    Raises:
      ValueError: a column is constant on the training split (it cannot be standardised), or
        `x`, `c` and the names do not fit together (naming their shapes).
    """
    x, c = np.asarray(x, np.float64), np.asarray(c, np.float64)
    columns = _check_names('columns', columns, allow_none=False)
    context_columns = _check_names('context_columns', context_columns, allow_none=False)
    if (
        x.ndim != 2
        or c.ndim != 2
        or len(x) != len(c)
        or x.shape[1] != len(columns)
        or c.shape[1] != len(context_columns)
    ):
        raise ValueError(
            '`x` [N, D] and `c` [N, K] must have the same N, D columns and K context_columns; '
            f'got shapes {x.shape} and {c.shape} with {len(columns)} and '
            f'{len(context_columns)} names.'
        )
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

    mean, scale = moments(x, columns)
    if not context_columns:
        return TableStatistics(tuple(columns), mean, scale)
    context_mean, context_scale = moments(c, context_columns)
    return TableStatistics(
        tuple(columns), mean, scale, tuple(context_columns), context_mean, context_scale
    )
