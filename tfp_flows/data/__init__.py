"""Datasets for training flows, as `tf.data.Dataset`s of dequantized images or 2-D points.

Three sources, chosen by name in `make_dataset`:

- 'digits': the 1,797 8x8 grey-scale digits that ship with scikit-learn (values 0..16, so
  `num_bins` = 17). No download. A fixed permutation (`numpy.random.RandomState(0)`) splits them
  into 'train' (1,257 images), 'validation' (180) and 'test' (360).
- 'moons', 'eight_gaussians', 'checkerboard', 'rings': continuous 2-D toy densities sampled with
  numpy. 'train' has 20,000 points, 'validation' 2,000 and 'test' 5,000, each split drawn with
  its own fixed seed.
- 'folder:PATH': the images in a folder (one subfolder per class for labels), resized to
  `image_size`; 'csv:PATH': the numeric columns of a CSV table. See `tfp_flows.data.own`.
- any other name: a TFDS image dataset read from `data_dir` (8-bit, so `num_bins` = 256). Nothing
  is downloaded; build it first with `tfds build NAME` on a machine with internet access.

With `conditional=True` every element is a pair (x, c) for a conditional flow: c is the one-hot
class label (digits, labelled TFDS datasets, folders with class subfolders) or the context
columns of a CSV table.

Images come out as float32 in [0, 1): `uniform_dequantize` adds uniform noise to every batch.
By default order and noise differ from pass to pass; with a `seed` and an `epoch`, each pass is
a pure function of the two (`make_dataset`), so a resumed run sees the data of an unbroken one
and evaluation sees the same noise every time.
"""

import dataclasses
import difflib
import functools
import math
import os

import numpy as np
import sklearn.datasets
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_flows.data import own as own_data
from tfp_flows.dequantization import uniform_dequantize
from tfp_flows.validation import (
    check_bool,
    check_int,
    check_positive_int,
    check_stateless_seed,
    shape_tuple,
)

__all__ = [
    'TOY_NAMES',
    'DatasetInfo',
    'augment_flip',
    'load_digits',
    'load_images',
    'make_dataset',
    'toy_2d',
]

_SPLITS = ('train', 'validation', 'test')
TOY_NAMES = ('checkerboard', 'eight_gaussians', 'moons', 'rings')  # Continuous 2-D data.

_DIGITS_NUM_BINS = 17
_DIGITS_SPLIT_SIZES = {'train': 1257, 'validation': 180, 'test': 360}
_TOY_SPLIT_SIZES = {'train': 20_000, 'validation': 2_000, 'test': 5_000}
_TOY_SPLIT_SEEDS = {'train': 0, 'validation': 1, 'test': 2}
_IMAGE_NUM_BINS = 256
_CELEB_A_CROP_SIZE = 148
_CELEB_A_IMAGE_SIZE = 64
_MAX_SHUFFLE_BUFFER = 10_000
_AUGMENTATIONS = (None, 'flip')


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset made by `make_dataset`.

    Attributes:
      name: the dataset name passed to `make_dataset`.
      event_shape: shape of one example: (H, W, C) for images, (2,) for the 2-D toys.
      num_bins: number of discrete levels the images were dequantized from (17 for 'digits',
        256 for TFDS images), or None for the continuous 2-D toys.
      num_examples: number of examples per split, e.g. {'train': 1257, ...}. For TFDS datasets
        only the split that was loaded is listed.
      conditional_shape: with `conditional=True`, the shape of one context c: (num_classes,)
        for one-hot labels, (K,) for K context columns of a CSV table; else None.
      class_names: the names of the classes of a labelled dataset (index i is one-hot
        position i), or None.
      statistics: for a CSV table, its `own_data.TableStatistics` (the training split's mean
        and standard deviation of each column; `own_data.standardize_flow` puts them into a
        flow); else None.
    """

    name: str
    event_shape: tuple
    num_bins: int | None
    num_examples: dict
    conditional_shape: tuple | None = None
    class_names: tuple | None = None
    statistics: own_data.TableStatistics | None = None


def load_digits(split, labels=False):
    """Returns the scikit-learn 8x8 digits of one split: uint8 array [N, 8, 8, 1], values 0..16.

    The 1,797 images are permuted with `numpy.random.RandomState(0)`; the first 1,257 are 'train',
    the next 180 'validation' and the last 360 'test'. The split is the same on every call.
    With `labels`, returns (images, labels), labels int64 [N] in 0..9 (the digit).

    Raises:
      ValueError: for an unknown `split`, or `labels` not True or False.
    """
    _check_split(split, 'digits')
    check_bool('labels', labels)
    digits = sklearn.datasets.load_digits()
    images = digits.images.astype(np.uint8)[..., np.newaxis]
    permutation = np.random.RandomState(0).permutation(len(images))
    end = np.cumsum([_DIGITS_SPLIT_SIZES[name] for name in _SPLITS])
    start = end - _DIGITS_SPLIT_SIZES[split]
    index = _SPLITS.index(split)
    chosen = permutation[start[index] : end[index]]
    if labels:
        return images[chosen], digits.target[chosen].astype(np.int64)
    return images[chosen]


def _moons(rng, num_samples):
    """Two interleaved half circles (the scikit-learn moons, with uniform random angles)."""
    angle = rng.uniform(0.0, np.pi, num_samples)
    upper = rng.random(num_samples) < 0.5
    x = np.where(upper, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    return np.stack([x, y], axis=-1) + 0.05 * rng.standard_normal((num_samples, 2))


def _eight_gaussians(rng, num_samples):
    """Eight Gaussians (std 0.1) centred on the unit circle at angles k * pi / 4."""
    angle = rng.integers(0, 8, num_samples) * np.pi / 4
    centres = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    return centres + 0.1 * rng.standard_normal((num_samples, 2))


def _checkerboard(rng, num_samples):
    """Uniform on the 8 dark cells of a 4x4 checkerboard of unit cells covering [-2, 2]^2."""
    column = rng.integers(0, 4, num_samples)
    row = 2 * rng.integers(0, 2, num_samples) + column % 2
    cells = np.stack([column, row], axis=-1)
    return cells + rng.random((num_samples, 2)) - 2.0


def _rings(rng, num_samples):
    """Four concentric rings of radius 0.25, 0.5, 0.75 and 1, with radial noise of std 0.04."""
    radius = 0.25 * rng.integers(1, 5, num_samples) + 0.04 * rng.standard_normal(num_samples)
    angle = rng.uniform(0.0, 2 * np.pi, num_samples)
    return radius[:, np.newaxis] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


# Sampler, and the exact mean and standard deviation of each coordinate of its distribution.
_TOYS = {
    'moons': (_moons, (0.5, 0.25), np.sqrt([0.75 + 0.05**2, 0.5625 - 1 / np.pi + 0.05**2])),
    'eight_gaussians': (_eight_gaussians, (0.0, 0.0), np.sqrt([0.5 + 0.1**2] * 2)),
    'checkerboard': (_checkerboard, (0.0, 0.0), np.sqrt([4 / 3] * 2)),
    'rings': (_rings, (0.0, 0.0), np.sqrt([(30 / 64 + 0.04**2) / 2] * 2)),
}


def toy_2d(name, num_samples, seed):
    """Returns `num_samples` points of a 2-D toy density: float32 array [num_samples, 2].

    `name` is one of 'moons', 'eight_gaussians', 'checkerboard' or 'rings'. The points are
    standardised with the exact mean and standard deviation of each coordinate under the
    generating distribution (not of the sample), so every split and seed goes through the same
    affine map and each coordinate has mean 0 and variance 1 in expectation.

    Args:
      name: which toy density.
      num_samples: number of points, a positive int.
      seed: int >= 0, the seed of the `numpy.random.default_rng` that draws the points.

    Raises:
      ValueError: for an unknown `name`, or a `num_samples` or `seed` outside its domain.
    """
    if not isinstance(name, str) or name not in _TOYS:
        raise ValueError(f'`name` must be one of {", ".join(TOY_NAMES)}; got {name!r}.')
    check_positive_int('num_samples', num_samples)
    check_int('seed', seed, low=0)
    sample, mean, std = _TOYS[name]
    points = sample(np.random.default_rng(seed), num_samples)
    return ((points - mean) / std).astype(np.float32)


def augment_flip(images, seed=None):
    """Flips each image left-right with probability 0.5; the values stay the same integers.

    Apply it before dequantization. Not for 'digits', which are not mirror-symmetric.

    Args:
      images: `Tensor` [H, W, C] or a batch [B, H, W, C]; each image of a batch is flipped or not
        independently.
      seed: optional stateless seed (shape [2] int); without it the flips are stateful random.
        A seed of another shape or dtype raises `ValueError` or `TypeError`.
    """
    seed = check_stateless_seed('seed', seed)
    if seed is None:
        return tf.image.random_flip_left_right(images)
    return tf.image.stateless_random_flip_left_right(images, seed)


def _check_split(split, name):
    if not isinstance(split, str) or split not in _SPLITS:
        raise ValueError(
            f'Unknown split {split!r} for dataset {name!r}; expected one of {", ".join(_SPLITS)}.'
        )


def _check_column_names(name, value):
    """None, or a non-empty list of column names (strs); else `ValueError` naming it."""
    if value is None:
        return
    names = None if isinstance(value, str) else shape_tuple(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f'`{name}` must be None or a non-empty list of column names (strs); got {value!r}.'
        )


def _check_image_size(image_size):
    check_int('image_size', image_size, low=1, allow_none=True)


def _check_tfds_arguments(name, split, data_dir):
    """Checks what `load_images` hands to TFDS: a name, a split and a directory."""
    for argument, value in (('name', name), ('split', split)):
        if not isinstance(value, str) or not value:
            raise ValueError(f'`{argument}` must be a non-empty str; got {value!r}.')
    if data_dir is not None and not isinstance(data_dir, str | os.PathLike):
        raise ValueError(f'`data_dir` must be None, a str or a path; got {data_dir!r}.')


def _resize(images, image_size):
    """Area-resizes [..., H, W, C] integer images to image_size x image_size, rounding to ints."""
    resized = tf.image.resize(images, [image_size, image_size], method='area')
    return tf.cast(tf.round(resized), images.dtype)


def _center_crop(image, size):
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    return tf.image.crop_to_bounding_box(
        image, (height - size) // 2, (width - size) // 2, size, size
    )


def _not_found_message(name, data_dir):
    where = data_dir if data_dir is not None else tfds.core.constants.DATA_DIR
    return (
        f'TFDS dataset {name!r} could not be found in data_dir {str(where)!r}, and nothing is '
        'downloaded here. On a machine with internet access run `tfds build '
        f'{name} --data_dir=DIR` (or tfds.load({name!r}, data_dir=DIR)), copy DIR here and pass '
        "it as data_dir; or use the 'digits' dataset, which ships with scikit-learn."
    )


def load_images(name, split, data_dir=None, image_size=None, labels=False):
    """Returns a TFDS image dataset without labels: a `tf.data.Dataset` of uint8 [H, W, C].

    With `labels`, returns (dataset, class_names): the dataset yields (image, label) pairs,
    label an int64 class index of the TFDS 'label' feature, named by `class_names`.

    The data must already be prepared in `data_dir`: this never downloads (`download=False`).
    'celeb_a' images (218x178) are center-cropped to 148x148 and area-resized to `image_size`
    (64 if None), the preprocessing of Real NVP (https://arxiv.org/abs/1605.08803). For other
    datasets, an `image_size` area-resizes the images to image_size x image_size. Resized values
    are rounded back to integers, so the images stay 8-bit.

    Args:
      name: TFDS name, e.g. 'mnist', 'cifar10' or 'celeb_a'.
      split: TFDS split, e.g. 'train' or 'train[:90%]'.
      data_dir: TFDS data directory; None means the TFDS default (~/tensorflow_datasets or
        $TFDS_DATA_DIR).
      image_size: optional side length of the square images returned.
      labels: also return the class labels (see above).

    Raises:
      ValueError: `name` is not a TFDS dataset, or has no uint8 'image' feature, or its images
        vary in size and `image_size` is None; with `labels`, it has no class label 'label'; or
        an argument is outside its domain (`name` and `split` non-empty strs, `data_dir` None
        or a path, `image_size` None or a positive int, `labels` True or False).
      FileNotFoundError: the dataset is not prepared in `data_dir`.
    """
    _check_tfds_arguments(name, split, data_dir)
    _check_image_size(image_size)
    check_bool('labels', labels)
    try:
        dataset, builder_info = tfds.load(
            name, split=split, data_dir=data_dir, download=False, with_info=True
        )
    except tfds.core.DatasetNotFoundError as error:
        close = difflib.get_close_matches(
            name, tfds.list_builders(with_community_datasets=False), n=3
        )
        hint = f' Close names: {", ".join(close)}.' if close else ''
        raise ValueError(
            f'Unknown dataset {name!r}: it is not digits, a 2-D toy ({", ".join(TOY_NAMES)}) '
            f'or a TFDS dataset.{hint}'
        ) from error
    except AssertionError as error:  # What TFDS raises when the data is not in data_dir.
        raise FileNotFoundError(_not_found_message(name, data_dir)) from error
    spec = dataset.element_spec
    if not isinstance(spec, dict) or 'image' not in spec or spec['image'].dtype != tf.uint8:
        features = ', '.join(sorted(spec)) if isinstance(spec, dict) else str(spec)
        raise ValueError(
            f'TFDS dataset {name!r} is not an 8-bit image dataset: expected a uint8 feature '
            f"'image'; got features {features}."
        )
    if name == 'celeb_a':
        size = image_size or _CELEB_A_IMAGE_SIZE

        def image_of(example):
            return _resize(_center_crop(example['image'], _CELEB_A_CROP_SIZE), size)

    elif image_size is not None:

        def image_of(example):
            return _resize(example['image'], image_size)

    elif not spec['image'].shape.is_fully_defined():
        raise ValueError(
            f'Images of TFDS dataset {name!r} vary in size (shape {spec["image"].shape}); pass '
            '`image_size` to resize them to one size.'
        )
    else:

        def image_of(example):
            return example['image']

    if not labels:
        return dataset.map(image_of, num_parallel_calls=tf.data.AUTOTUNE)
    label = builder_info.features['label'] if 'label' in spec else None
    if not isinstance(label, tfds.features.ClassLabel):
        raise ValueError(
            f"TFDS dataset {name!r} has no class label feature 'label', so it cannot give "
            f'labels for a conditional model; got features {", ".join(sorted(spec))}.'
        )
    labelled = dataset.map(
        lambda example: (image_of(example), example['label']),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return labelled, tuple(label.names)


def _num_examples(dataset):
    count = int(dataset.cardinality())
    if count >= 0:
        return count
    return int(dataset.reduce(0, lambda count, _: count + 1))


def make_dataset(
    name,
    split,
    batch_size,
    *,
    shuffle,
    seed=None,
    epoch=None,
    data_dir=None,
    image_size=None,
    augment=None,
    repeat=False,
    drop_remainder=False,
    conditional=False,
    columns=None,
    context_columns=None,
    dequantize=True,
):
    """Returns a batched training or evaluation dataset and its `DatasetInfo`.

    Images come out as float32 [batch_size, H, W, C] in [0, 1), dequantized with uniform noise
    in every batch; 2-D toys as float32 [batch_size, 2]; CSV tables as float32 [batch_size, D]
    in the table's units. The pipeline is: load, cache the integer data, shuffle (buffer =
    split size, at most 10,000), repeat, batch, flip (if `augment='flip'`), dequantize,
    prefetch. With `conditional`, each batch is a pair (x, c): c the one-hot labels float32
    [batch_size, num_classes], or a table's context columns float32 [batch_size, K].

    Args:
      name: 'digits', one of the 2-D toys ('moons', 'eight_gaussians', 'checkerboard', 'rings'),
        'folder:PATH' or 'csv:PATH' (your own data, see `tfp_flows.data.own`), or a TFDS image
        dataset (see `load_images`).
      split: 'train', 'validation' or 'test' for digits, toys, folders and tables; any TFDS
        split otherwise.
      batch_size: examples per batch, a positive int.
      shuffle: whether to shuffle the examples (again every pass).
      seed: optional int; with it the order, flips and noise are the same on every run (and
        still differ from pass to pass, unless `epoch` says otherwise).
      epoch: optional int >= 0, or a scalar int64 `tf.Variable` that the caller sets before
        each pass (`train_and_evaluate` sets it at the start of every epoch); needs `seed`.
        Each pass is then a pure function of (seed, epoch): epoch e's order, flips and noise
        are the same in every process, whatever passes came before, so a resumed run sees the
        data of an unbroken one; an int epoch gives the same data on every pass (fixed noise
        for evaluation). The examples are shuffled in windows, each window by a permutation
        drawn from (seed, epoch): one window of the whole split for digits and the 2-D toys,
        windows of 10,000 consecutive examples for TFDS data. With `repeat`, every repetition
        is the data of the epoch the variable holds when the repetition starts.
      data_dir: TFDS data directory (TFDS datasets only).
      image_size: optional side length to area-resize images to (not for 2-D toys).
      augment: None, or 'flip' for random left-right flips (TFDS images only).
      repeat: whether to repeat the data forever.
      drop_remainder: whether to drop the last, smaller batch. Without `repeat`, `batch_size`
        must then be at most the number of examples of the split.
      conditional: yield (x, c) pairs for a conditional flow (see above); needs labels
        (digits, TFDS datasets with a 'label', folders with class subfolders) or
        `context_columns` (CSV).
      columns: the data columns of a CSV table (None: every column not a context column).
      context_columns: the context columns of a CSV table; only with `conditional`.
      dequantize: add uniform noise to images (True); False gives the discrete pixels as
        float32 integers in {0, ..., num_bins - 1}, for a trainer that dequantizes them
        itself (`FlowTrainer(dequantizer=...)`). No effect on continuous data.

    Raises:
      ValueError: for an argument outside its domain, naming it and its value (also a
        non-bool `shuffle`, `repeat`, `drop_remainder` or `conditional`, a `seed` that is not
        None or an int >= 0, `columns` or `context_columns` that are not None or lists of
        column names), before any data is read; for a dataset without labels or
        context columns and `conditional`; see also `load_images` and `tfp_flows.data.own`.
    """
    _check_tfds_arguments(name, split, data_dir)
    check_positive_int('batch_size', batch_size)
    for option, value in (
        ('shuffle', shuffle),
        ('repeat', repeat),
        ('drop_remainder', drop_remainder),
        ('dequantize', dequantize),
    ):
        check_bool(option, value)
    check_int('seed', seed, low=0, allow_none=True)
    if augment not in _AUGMENTATIONS:
        raise ValueError(f"`augment` must be None or 'flip'; got {augment!r}.")
    _check_image_size(image_size)
    _check_epoch(epoch, seed)
    is_csv = isinstance(name, str) and name.startswith('csv:')
    check_bool('conditional', conditional)
    _check_column_names('columns', columns)
    _check_column_names('context_columns', context_columns)
    if not is_csv and (columns is not None or context_columns is not None):
        raise ValueError(
            '`columns` and `context_columns` choose columns of a CSV table (name='
            f"'csv:PATH'); got them for dataset {name!r}."
        )
    if is_csv and bool(context_columns) != conditional:
        raise ValueError(
            'A CSV table is conditional exactly when it has context columns: pass '
            '`context_columns` with conditional=True (or neither); got '
            f'context_columns={context_columns!r}, conditional={conditional!r}.'
        )
    if conditional and name in TOY_NAMES:
        raise ValueError(f'2-D toy dataset {name!r} has no labels for conditional=True.')
    if name in TOY_NAMES:
        _check_split(split, name)
        if augment is not None or image_size is not None:
            raise ValueError(
                f'2-D toy dataset {name!r} is not images: `augment` and `image_size` must be '
                f'None; got augment={augment!r}, image_size={image_size!r}.'
            )
        points = toy_2d(name, _TOY_SPLIT_SIZES[split], seed=_TOY_SPLIT_SEEDS[split])
        dataset = tf.data.Dataset.from_tensor_slices(points)
        info = DatasetInfo(name, (2,), None, dict(_TOY_SPLIT_SIZES))
    elif name == 'digits':
        if augment is not None:
            raise ValueError(
                f"`augment` must be None for 'digits', which are not mirror-symmetric; "
                f'got {augment!r}.'
            )
        images, labels = load_digits(split, labels=True)
        if image_size is not None:
            images = _resize(images, image_size).numpy()
        dataset = tf.data.Dataset.from_tensor_slices((images, labels) if conditional else images)
        info = DatasetInfo(name, images.shape[1:], _DIGITS_NUM_BINS, dict(_DIGITS_SPLIT_SIZES))
        if conditional:
            class_names = tuple(str(digit) for digit in range(10))
            info = dataclasses.replace(info, conditional_shape=(10,), class_names=class_names)
    elif isinstance(name, str) and name.startswith('folder:'):
        if augment is not None:
            raise ValueError(f'`augment` is for TFDS images only; got {augment!r} for {name!r}.')
        _check_split(split, name)
        dataset, fields = own_data.folder_source(
            name[len('folder:') :], split, image_size, conditional
        )
        info = DatasetInfo(name, num_bins=_IMAGE_NUM_BINS, **fields)
    elif is_csv:
        if augment is not None or image_size is not None:
            raise ValueError(
                f'CSV table {name!r} is not images: `augment` and `image_size` must be None; '
                f'got augment={augment!r}, image_size={image_size!r}.'
            )
        _check_split(split, name)
        path = name[len('csv:') :]
        dataset, fields = own_data.csv_source(path, split, columns, context_columns, conditional)
        info = DatasetInfo(name, num_bins=None, **fields)
    elif conditional:
        dataset, class_names = load_images(
            name, split, data_dir=data_dir, image_size=image_size, labels=True
        )
        event_shape = tuple(dataset.element_spec[0].shape.as_list())
        info = DatasetInfo(
            name,
            event_shape,
            _IMAGE_NUM_BINS,
            {split: _num_examples(dataset)},
            conditional_shape=(len(class_names),),
            class_names=class_names,
        )
    else:
        dataset = load_images(name, split, data_dir=data_dir, image_size=image_size)
        event_shape = tuple(dataset.element_spec.shape.as_list())
        info = DatasetInfo(name, event_shape, _IMAGE_NUM_BINS, {split: _num_examples(dataset)})

    num_examples = info.num_examples[split]
    if num_examples == 0:
        raise ValueError(f'Split {split!r} of dataset {name!r} has no examples.')
    if drop_remainder and not repeat and batch_size > num_examples:
        raise ValueError(
            f'`batch_size` ({batch_size}) is larger than the {num_examples} examples of split '
            f'{split!r} of {name!r}, so drop_remainder=True would leave no batch; use a smaller '
            'batch_size or drop_remainder=False.'
        )
    if conditional and info.class_names is not None:  # Labels -> one-hot contexts.
        num_classes = len(info.class_names)
        dataset = dataset.map(
            lambda images, labels: (images, tf.one_hot(labels, num_classes, dtype=tf.float32))
        )
    dataset = dataset.cache()
    prepare = functools.partial(
        _flip_and_dequantize,
        num_bins=info.num_bins if dequantize else None,
        augment=augment,
    )
    if epoch is not None:
        in_memory = name in TOY_NAMES or name == 'digits' or name.startswith(('folder:', 'csv:'))
        window = num_examples if in_memory else min(num_examples, _MAX_SHUFFLE_BUFFER)
        one_pass = functools.partial(
            _one_pass,
            dataset,
            key=tf.constant(_seed_pair(seed), tf.int64),
            window=window if shuffle else None,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            dequantize=prepare if info.num_bins is not None else None,
        )
        if isinstance(epoch, tf.Variable):  # Read once per pass, when the pass starts.
            dataset = tf.data.Dataset.from_tensors(0).flat_map(lambda _: one_pass(epoch.value()))
        else:
            dataset = one_pass(tf.constant(epoch, tf.int64))
        rounding = math.floor if drop_remainder else math.ceil
        num_batches = rounding(num_examples / batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
        if repeat:
            dataset = dataset.repeat()
        return dataset.prefetch(tf.data.AUTOTUNE), info

    shuffle_seed, noise_seed = (None, None) if seed is None else _seed_pair(seed)
    if shuffle:
        buffer_size = min(num_examples, _MAX_SHUFFLE_BUFFER)
        dataset = dataset.shuffle(buffer_size, seed=shuffle_seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if info.num_bins is not None:
        # One stateless seed per batch, drawn anew each time the dataset is iterated (each epoch).
        batch_seeds = tf.data.Dataset.random(seed=noise_seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, batch_seeds.batch(2))
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE), info


def _seed_pair(seed):
    """Two independent int seeds drawn from the int `seed`."""
    return tuple(int(s) for s in np.random.SeedSequence(seed).generate_state(2))


def _check_epoch(epoch, seed):
    if epoch is None:
        return
    if isinstance(epoch, tf.Variable):
        if epoch.dtype != tf.int64 or epoch.shape.rank != 0:
            raise ValueError(
                '`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got a variable of '
                f'dtype {epoch.dtype.name} and shape {epoch.shape}.'
            )
    elif isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(
            f'`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got {epoch!r}.'
        )
    if seed is None:
        raise ValueError(
            '`epoch` needs a `seed`: each pass is drawn from (seed, epoch); got seed=None.'
        )


def _flip_and_dequantize(batch, batch_seed, num_bins, augment):
    """Flips (with `augment='flip'`) and dequantizes a batch of images, or of (images, context)
    pairs (the context passes through); `batch_seed` is a [2] int seed. With `num_bins` None
    the images stay discrete, as float32."""
    images, context = batch if isinstance(batch, tuple) else (batch, None)
    flip_seed, dequantize_seed = tf.unstack(tf.random.split(batch_seed, 2))
    if augment == 'flip':
        images = augment_flip(images, flip_seed)
    if num_bins is None:
        images = tf.cast(images, tf.float32)
    else:
        images = uniform_dequantize(images, num_bins, seed=dequantize_seed)
    return images if context is None else (images, context)


def _one_pass(examples, epoch, key, window, batch_size, drop_remainder, dequantize):
    """One pass over the cached `examples`, a function of ([2] int64 `key`, int64 `epoch`).

    With `window`, each window of that many consecutive examples is permuted by sorting
    stateless uniform keys; batch i gets the stateless seed fold_in(noise key, i) for its flips
    and noise (`dequantize`, None for continuous data).
    """
    epoch_key = tf.random.experimental.stateless_fold_in(key, epoch)
    shuffle_key, noise_key = tf.unstack(tf.random.experimental.stateless_split(epoch_key, 2))
    if window is not None:

        def permute(index, window_examples):
            seed = tf.random.experimental.stateless_fold_in(shuffle_key, index)
            size = tf.shape(tf.nest.flatten(window_examples)[0])[:1]
            order = tf.argsort(tf.random.stateless_uniform(size, seed))
            return tf.nest.map_structure(lambda t: tf.gather(t, order), window_examples)

        examples = examples.batch(window).enumerate().map(permute).unbatch()
    batches = examples.batch(batch_size, drop_remainder=drop_remainder)
    if dequantize is None:
        return batches
    return batches.enumerate().map(
        lambda index, batch: dequantize(
            batch, tf.random.experimental.stateless_fold_in(noise_key, index)
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
