"""Datasets for training flows: `tf.data.Dataset`s of dequantized images, 2-D points or rows.

`make_dataset(name, split, batch_size, ...)` reads the source `name` names: 'digits' and the
2-D toys, which ship with the package (`builtin`); 'folder:PATH', a folder's images (one
subfolder per class for labels, `folder`); 'csv:PATH', a CSV table's numeric columns (`own`);
any other name, a TFDS image dataset read from `data_dir` (`tfds_images`).

With `conditional=True` every element is a pair (x, c): c the one-hot class label, or a CSV
table's context columns. Images come out as float32 in [0, 1), dequantized with uniform noise
in every batch, or as their levels with `dequantize=False`. Every pass draws its order, flips
and noise afresh; with a `seed` and an `epoch` each pass is a pure function of (seed, epoch)
(`tfp_flows.data.pipeline`), so a resumed run sees the data of an unbroken one.
"""

import dataclasses
import functools
import math

import tensorflow as tf

from tfp_flows import checks
from tfp_flows.data import builtin, folder, own, pipeline, tfds_images
from tfp_flows.data.builtin import TOY_NAMES, load_digits, toy_2d
from tfp_flows.data.tfds_images import load_images

__all__ = [
    'TOY_NAMES',
    'BatchSizeError',
    'DatasetInfo',
    'load_digits',
    'load_images',
    'make_dataset',
    'toy_2d',
]

_MAX_WINDOW = 10_000  # Examples shuffled together, for data that is not all in memory.
_AUGMENT = checks.one_of('flip').or_none()
# What each kind of source is called in messages, and the options it takes.
_KINDS = {
    'toy': ('2-D toy dataset', ()),
    'digits': ('dataset', ('image_size',)),  # Digits are not mirror-symmetric: no flips.
    'folder': ('image folder', ('image_size',)),
    'csv': ('CSV table', ('columns', 'context_columns')),
    'tfds': ('TFDS dataset', ('augment', 'data_dir', 'image_size')),
}


class BatchSizeError(ValueError):
    """A `batch_size` larger than a split, with `drop_remainder=True`: no batch at all.
    `num_examples` is the split's size, the largest batch that fits."""

    def __init__(self, message, num_examples):
        super().__init__(message)
        self.num_examples = num_examples


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset of `make_dataset`: `name`; `event_shape`
    ((H, W, C), (2,) or (D,)); `num_bins`, the images' levels (None for continuous data);
    `num_examples` per split (TFDS data, folders and tables: the loaded split only); with
    `conditional=True`, `conditional_shape` ((num_classes,) or (K,)) and a labelled dataset's
    `class_names` (one-hot position i is class i); a CSV table's `statistics`."""

    name: str
    event_shape: tuple
    num_bins: int | None
    num_examples: dict
    conditional_shape: tuple | None = None
    class_names: tuple | None = None
    statistics: own.TableStatistics | None = None


def make_dataset(
    name,
    split,
    batch_size,
    *,
    shuffle,
    seed=None,
    epoch=None,
    augment=None,
    drop_remainder=False,
    dequantize=True,
    data_dir=None,
    image_size=None,
    conditional=False,
    columns=None,
    context_columns=None,
):
    """A batched dataset of one split and its `DatasetInfo` (sources, seeds: module docstring):
    float32 images [B, H, W, C], points [B, 2] or rows [B, D]; or (x, c [B, K]) pairs.

    Args:
      name: 'digits', a 2-D toy (`TOY_NAMES`), 'folder:PATH', 'csv:PATH' or a TFDS name.
      split: 'train', 'validation' or 'test'; for TFDS data, any TFDS split.
      batch_size, drop_remainder: examples per batch (a positive int); drop the last, smaller.
      shuffle: shuffle the examples anew every pass (in windows of 10,000 for TFDS data).
      seed, epoch: None or a seed (order, flips and noise the same every run); None, an int
        >= 0 or a scalar int64 `tf.Variable` set before each pass, with `seed`: each pass is a
        pure function of (seed, epoch).
      augment: None, or 'flip' for random left-right flips (TFDS images only).
      dequantize: add uniform noise to images (True), or keep their levels as float32 (False).
      data_dir, image_size: TFDS's data directory; None or the side to resize images to.
      conditional: (x, c) pairs of one-hot labels, or of a table's context columns.
      columns, context_columns: the data and the context columns of a CSV table.

    `ValueError` naming an argument outside its domain or that the source does not take, before
    any data is read; for a split without examples, or with fewer than `batch_size` with
    `drop_remainder`; as the source. `FileNotFoundError`: TFDS data not prepared in `data_dir`,
    or no such folder or table.
    """
    checks.POSITIVE_INT.check('batch_size', batch_size)
    checks.BOOL.check('shuffle', shuffle)
    checks.BOOL.check('drop_remainder', drop_remainder)
    checks.BOOL.check('dequantize', dequantize)
    checks.BOOL.check('conditional', conditional)
    seed = checks.SEED.or_none().check('seed', seed)
    pipeline.check_epoch(epoch, seed)
    _AUGMENT.check('augment', augment)
    options = dict(augment=augment, data_dir=data_dir, image_size=image_size)
    options.update(columns=columns, context_columns=context_columns)
    examples, info = _read(name, split, conditional, options)
    num_batches = _num_batches(info, split, batch_size, drop_remainder)
    batch = functools.partial(
        tf.data.Dataset.batch, batch_size=batch_size, drop_remainder=drop_remainder
    )
    window = _window(name, info.num_examples[split]) if shuffle else None
    prepare = pipeline.preparation(info.num_bins, dequantize, augment)
    dataset = pipeline.passes(examples, pipeline.pass_keys(seed, epoch), window, batch, prepare)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    return dataset.prefetch(tf.data.AUTOTUNE), info


def _kind(name):
    """Which source `name` names: 'toy', 'digits', 'folder', 'csv' or 'tfds'."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'`name` must be a non-empty str; got {name!r}.')
    if name in TOY_NAMES:
        return 'toy'
    if name.startswith(('folder:', 'csv:')):
        return name.partition(':')[0]
    return 'digits' if name == 'digits' else 'tfds'


def _read(name, split, conditional, options):
    """(unbatched examples of `split`, `DatasetInfo`), with `conditional` paired with their
    one-hot label or context. An option ({name: value}) the source does not take must be None."""
    kind = _kind(name)
    described, taken = _KINDS[kind]
    for option, value in options.items():
        if value is not None and option not in taken:
            raise ValueError(
                f'`{option}` does not apply to {described} {name!r}, which takes '
                f'{", ".join(taken) or "no options"}; got {option}={value!r}.'
            )
    given = {option: options[option] for option in taken if option != 'augment'}
    if kind == 'toy':
        examples, fields = builtin.toy_source(name, split, conditional)
    elif kind == 'digits':
        examples, fields = builtin.digits_source(split, conditional, **given)
    elif kind == 'tfds':
        examples, fields = tfds_images.tfds_source(name, split, conditional, **given)
    else:
        source = folder.folder_source if kind == 'folder' else own.csv_source
        examples, fields = source(name.partition(':')[2], split, conditional=conditional, **given)
    info = DatasetInfo(name, **fields)
    if conditional and info.class_names is not None:  # Labels -> one-hot contexts.
        num_classes = len(info.class_names)
        examples = examples.map(
            lambda x, label: (x, tf.one_hot(label, num_classes, dtype=tf.float32))
        )
    return examples, info


def _num_batches(info, split, batch_size, drop_remainder):
    """The number of batches of a pass; `ValueError` if there is none."""
    num_examples = info.num_examples[split]
    if num_examples == 0:
        raise ValueError(f'Split {split!r} of dataset {info.name!r} has no examples.')
    if drop_remainder and batch_size > num_examples:
        raise BatchSizeError(
            f'`batch_size` ({batch_size}) is larger than the {num_examples} examples of split '
            f'{split!r} of {info.name!r}, so drop_remainder=True would leave no batch; use a '
            f'batch_size of at most {num_examples} or drop_remainder=False.',
            num_examples,
        )
    rounding = math.floor if drop_remainder else math.ceil
    return rounding(num_examples / batch_size)


def _window(name, num_examples):
    """Examples shuffled together: the whole split when it is in memory (all but TFDS)."""
    return min(num_examples, _MAX_WINDOW) if _kind(name) == 'tfds' else num_examples
