"""A folder of images as a dataset: `make_dataset('folder:PATH', ...)`.

The .bmp, .gif, .jpeg, .jpg and .png files under PATH, read with Keras'
`keras.utils.image_dataset_from_directory` (8-bit, `num_bins` = 256), in the 80/10/10 splits of
`tfp_flows.data.own.split_indices`. With one subfolder per class, the subfolder names are the
class labels; without subfolders, the images are unlabelled. Every file is opened first
(Pillow), so a bad folder fails at once, naming the files.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from tfp_flows import checks
from tfp_flows.data.own import split_indices

__all__ = ['IMAGE_EXTENSIONS', 'folder_source']

IMAGE_EXTENSIONS = ('.bmp', '.gif', '.jpeg', '.jpg', '.png')  # What Keras' reader takes.
_GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'F')
_NUM_BINS = 256  # 8-bit images.


def _image_files(directory):
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found += [
            os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return found


def _class_folders(path):
    """The class subfolders of `path` (None without), after checking the layout."""
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
    empty = [s for s in subfolders if not _image_files(os.path.join(path, s))]
    if empty:
        raise ValueError(
            f'Class subfolder(s) {", ".join(empty)} of folder:{path} hold no images; remove '
            'them or add images (each subfolder is one class).'
        )
    return tuple(subfolders) or None


def _scan_folder(path, image_size):
    """Opens every image file under `path`; returns (class_names or None, (H, W, C), count)."""
    class_names = _class_folders(path)
    files = _image_files(path)
    if not files:
        raise ValueError(
            f'folder:{path} holds no images (files ending in {", ".join(IMAGE_EXTENSIONS)}).'
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
    return class_names, (height, width, 1 if grey else 3), len(files)


def folder_source(path, split, image_size=None, conditional=False):
    """`make_dataset`'s source 'folder:PATH': (unbatched dataset of uint8 images [H, W, C], or
    with `conditional` (image, int64 index into `class_names`) pairs; `DatasetInfo` fields).
    With `image_size`, each image is centre-cropped and area-resized to that square; without,
    every image must have the same size.
    Raises `FileNotFoundError` if `path` is not a directory (`TypeError` if not a str or path),
    `ValueError` for an argument out of its domain (before any file is read) and for a folder
    that does not fit (naming why).
    """
    split_indices(0, split)  # Refuses an unknown split.
    checks.check_path('path', path)
    checks.POSITIVE_INT.or_none().check('image_size', image_size)
    checks.BOOL.check('conditional', conditional)
    class_names, shape, count = _scan_folder(path, image_size)
    if conditional and class_names is None:
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
    fields = dict(event_shape=shape, num_bins=_NUM_BINS, num_examples={split: int(chosen.sum())})
    if conditional:
        fields.update(conditional_shape=(len(class_names),), class_names=class_names)
    chosen = tf.constant(chosen)

    def example(image, label=None):  # Keras reads floats, and labels whenever there are classes.
        image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
        return (image, tf.cast(label, tf.int64)) if conditional else image

    dataset = dataset.map(example).enumerate().filter(lambda i, _: chosen[i])
    return dataset.map(lambda _, example: example), fields
