"""The data that ships with the package: the 8x8 digits and four 2-D toy densities.

- 'digits': the 1,797 8x8 grey-scale digits of scikit-learn (values 0..16, so `num_bins` =
  17). No download. A fixed permutation (`numpy.random.RandomState(0)`) splits them into
  'train' (1,257 images), 'validation' (180) and 'test' (360).
- 'moons', 'eight_gaussians', 'checkerboard', 'rings': continuous 2-D toy densities sampled with
  numpy. 'train' has 20,000 points, 'validation' 2,000 and 'test' 5,000, each split drawn with
  its own fixed seed.
"""

import numpy as np
import sklearn.datasets
import tensorflow as tf

from tfp_flows import checks

__all__ = [
    'SPLITS',
    'TOY_NAMES',
    'check_split',
    'digits_source',
    'load_digits',
    'resize',
    'toy_2d',
    'toy_source',
]

SPLITS = ('train', 'validation', 'test')
TOY_NAMES = ('checkerboard', 'eight_gaussians', 'moons', 'rings')  # Continuous 2-D data.

_DIGITS_NUM_BINS = 17
_DIGITS_SPLIT_SIZES = {'train': 1257, 'validation': 180, 'test': 360}
_TOY_SPLIT_SIZES = {'train': 20_000, 'validation': 2_000, 'test': 5_000}
_TOY_SPLIT_SEEDS = {'train': 0, 'validation': 1, 'test': 2}


def check_split(split, data):
    """Raises `ValueError` unless `split` is 'train', 'validation' or 'test' (of `data`)."""
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f'`split` must be one of {", ".join(SPLITS)} for {data}; got {split!r}.')


def resize(images, image_size):
    """Area-resizes integer images [..., H, W, C] to image_size x image_size, rounding to ints."""
    resized = tf.image.resize(images, [image_size, image_size], method='area')
    return tf.cast(tf.round(resized), images.dtype)


def load_digits(split, labels=False):
    """The scikit-learn 8x8 digits of one split (module docstring): uint8 [N, 8, 8, 1], values
    0..16; with `labels`, (images, labels), labels int64 [N] in 0..9 (the digit).

    Raises `ValueError` for an unknown `split`, or `labels` not True or False.
    """
    check_split(split, "dataset 'digits'")
    checks.BOOL.check('labels', labels)
    digits = sklearn.datasets.load_digits()
    images = digits.images.astype(np.uint8)[..., np.newaxis]
    permutation = np.random.RandomState(0).permutation(len(images))
    end = np.cumsum([_DIGITS_SPLIT_SIZES[name] for name in SPLITS])[SPLITS.index(split)]
    chosen = permutation[end - _DIGITS_SPLIT_SIZES[split] : end]
    if labels:
        return images[chosen], digits.target[chosen].astype(np.int64)
    return images[chosen]


def digits_source(split, conditional, image_size=None):
    """`make_dataset`'s 'digits': (unbatched dataset of uint8 [8, 8, 1] images, or (image,
    label) pairs with `conditional`; `DatasetInfo` fields). `image_size` resizes them."""
    checks.POSITIVE_INT.or_none().check('image_size', image_size)
    images, labels = load_digits(split, labels=True)
    if image_size is not None:
        images = resize(images, image_size).numpy()
    fields = dict(
        event_shape=images.shape[1:],
        num_bins=_DIGITS_NUM_BINS,
        num_examples=dict(_DIGITS_SPLIT_SIZES),
    )
    if conditional:
        fields.update(conditional_shape=(10,), class_names=tuple(str(d) for d in range(10)))
        return tf.data.Dataset.from_tensor_slices((images, labels)), fields
    return tf.data.Dataset.from_tensor_slices(images), fields


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
    """`num_samples` points of the 2-D toy density `name` (in `TOY_NAMES`): float32 [N, 2],
    standardised with the distribution's exact mean and deviation (every split and seed gets
    the same affine map), drawn by `numpy.random.default_rng(seed)`. `ValueError` naming an
    argument out of its domain.
    """
    if not isinstance(name, str) or name not in _TOYS:
        raise ValueError(f'`name` must be one of {", ".join(TOY_NAMES)}; got {name!r}.')
    checks.POSITIVE_INT.check('num_samples', num_samples)
    checks.SEED.check('seed', seed)
    sample, mean, std = _TOYS[name]
    points = sample(np.random.default_rng(seed), num_samples)
    return ((points - mean) / std).astype(np.float32)


def toy_source(name, split, conditional):
    """`make_dataset`'s 2-D toys: (unbatched dataset of float32 points [2]; `DatasetInfo`
    fields). Raises `ValueError` for an unknown split, or `conditional` (they have no labels)."""
    check_split(split, f'dataset {name!r}')
    if conditional:
        raise ValueError(f'2-D toy dataset {name!r} has no labels for conditional=True.')
    points = toy_2d(name, _TOY_SPLIT_SIZES[split], seed=_TOY_SPLIT_SEEDS[split])
    fields = dict(event_shape=(2,), num_bins=None, num_examples=dict(_TOY_SPLIT_SIZES))
    return tf.data.Dataset.from_tensor_slices(points), fields
