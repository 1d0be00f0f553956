"""TFDS image datasets, read from a prepared `data_dir` (8-bit, so `num_bins` = 256).

Nothing is downloaded: build a dataset first with `tfds build NAME` on a machine with internet
access. 'celeb_a' gets the preprocessing of Real NVP (https://arxiv.org/abs/1605.08803).
"""

import difflib

import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_flows import checks
from tfp_flows.data.builtin import TOY_NAMES, resize

__all__ = ['load_images', 'tfds_source']

_NUM_BINS = 256
_CELEB_A_CROP_SIZE = 148
_CELEB_A_IMAGE_SIZE = 64


def _load(name, split, data_dir):
    """`tfds.load` without download: (dataset of feature dicts, builder info)."""
    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False, with_info=True)
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
        where = data_dir if data_dir is not None else tfds.core.constants.DATA_DIR
        raise FileNotFoundError(
            f'TFDS dataset {name!r} could not be found in data_dir {str(where)!r}, and nothing '
            f'is downloaded here. On a machine with internet access run `tfds build {name} '
            f'--data_dir=DIR` (or tfds.load({name!r}, data_dir=DIR)), copy DIR here and pass '
            "it as data_dir; or use the 'digits' dataset, which ships with scikit-learn."
        ) from error


def _image_of(name, spec, image_size):
    """The function that takes a TFDS example to its (cropped, resized) uint8 image."""
    if name == 'celeb_a':
        size = image_size or _CELEB_A_IMAGE_SIZE
        crop = _CELEB_A_CROP_SIZE  # The centre square (larger images are cropped).
        return lambda example: resize(
            tf.image.resize_with_crop_or_pad(example['image'], crop, crop), size
        )
    if image_size is not None:
        return lambda example: resize(example['image'], image_size)
    if not spec['image'].shape.is_fully_defined():
        raise ValueError(
            f'Images of TFDS dataset {name!r} vary in size (shape {spec["image"].shape}); pass '
            '`image_size` to resize them to one size.'
        )
    return lambda example: example['image']


def load_images(name, split, data_dir=None, image_size=None, labels=False):
    """A TFDS image dataset: a `tf.data.Dataset` of uint8 [H, W, C]; with `labels`, (dataset of
    (image, int64 label) pairs, class_names). 'celeb_a' images (218x178) are center-cropped to
    148x148 and area-resized to `image_size` (64 if None); others to `image_size` if given.
    `FileNotFoundError` if the dataset is not prepared in `data_dir` (None: TFDS's), `ValueError`
    for an argument out of its domain (before any data is read) or a dataset that is not 8-bit
    images (with `labels`: has no class label 'label')."""
    for argument, value in (('name', name), ('split', split)):
        if not isinstance(value, str) or not value:
            raise ValueError(f'`{argument}` must be a non-empty str; got {value!r}.')
    checks.check_path('data_dir', data_dir, allow_none=True)
    checks.POSITIVE_INT.or_none().check('image_size', image_size)
    checks.BOOL.check('labels', labels)
    dataset, builder_info = _load(name, split, data_dir)
    spec = dataset.element_spec
    if not isinstance(spec, dict) or 'image' not in spec or spec['image'].dtype != tf.uint8:
        features = ', '.join(sorted(spec)) if isinstance(spec, dict) else str(spec)
        raise ValueError(
            f'TFDS dataset {name!r} is not an 8-bit image dataset: expected a uint8 feature '
            f"'image'; got features {features}."
        )
    image_of = _image_of(name, spec, image_size)
    if not labels:
        return dataset.map(image_of, num_parallel_calls=tf.data.AUTOTUNE)
    label = builder_info.features['label'] if 'label' in spec else None
    if not isinstance(label, tfds.features.ClassLabel):
        raise ValueError(
            f"TFDS dataset {name!r} has no class label feature 'label', so it cannot give "
            f'labels for a conditional model; got features {", ".join(sorted(spec))}.'
        )
    labelled = dataset.map(
        lambda example: (image_of(example), example['label']), num_parallel_calls=tf.data.AUTOTUNE
    )
    return labelled, tuple(label.names)


def tfds_source(name, split, conditional, data_dir=None, image_size=None):
    """`make_dataset`'s TFDS data: (unbatched dataset of uint8 images, or (image, label) pairs
    with `conditional`; `DatasetInfo` fields). Errors as `load_images`."""
    fields = dict(num_bins=_NUM_BINS)
    if conditional:
        dataset, class_names = load_images(name, split, data_dir, image_size, labels=True)
        spec = dataset.element_spec[0]
        fields.update(conditional_shape=(len(class_names),), class_names=class_names)
    else:
        dataset = load_images(name, split, data_dir, image_size)
        spec = dataset.element_spec
    count = int(dataset.cardinality())
    if count < 0:  # Unknown: count them.
        count = int(dataset.reduce(0, lambda count, _: count + 1))
    fields.update(event_shape=tuple(spec.shape.as_list()), num_examples={split: count})
    return dataset, fields
