"""Tests of tfp_flows/data: packaged digits, 2-D toys, TFDS images and the batched pipeline."""

import numpy as np
import pytest
import sklearn.datasets
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_flows.data import (
    DatasetInfo,
    load_digits,
    load_images,
    make_dataset,
    toy_2d,
)

TOYS = ['checkerboard', 'eight_gaussians', 'moons', 'rings']


def as_array(dataset):
    """All batches of one pass over `dataset`, concatenated into one numpy array."""
    return np.concatenate(list(dataset.as_numpy_iterator()))


def to_pixels(x, num_bins):
    """The integer k of the cell [k, k + 1) / num_bins that each dequantized value lies in."""
    return np.floor(x.astype(np.float64) * num_bins)


def assert_dequantized(x, pixels, num_bins):
    """`x` is float32 in [0, 1) and lies in the cell [k, k + 1) / num_bins of each pixel k."""
    assert x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() < 1.0
    noise = x * num_bins - pixels
    assert noise.min() >= -1e-4 and noise.max() <= 1.0 + 1e-4


def test_load_digits_splits_are_fixed_disjoint_and_complete():
    splits = {split: load_digits(split) for split in ('train', 'validation', 'test')}
    assert {split: len(images) for split, images in splits.items()} == {
        'train': 1257,
        'validation': 180,
        'test': 360,
    }
    for images in splits.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 1)
        assert images.min() == 0 and images.max() == 16
    everything = sklearn.datasets.load_digits().images[..., np.newaxis]
    permuted = everything[np.random.RandomState(0).permutation(1797)]
    np.testing.assert_array_equal(np.concatenate(list(splits.values())), permuted)
    np.testing.assert_array_equal(load_digits('test'), splits['test'])


def test_make_dataset_digits_shapes_values_and_info():
    dataset, info = make_dataset('digits', 'validation', 64, shuffle=False, seed=0)
    assert info == DatasetInfo(
        'digits', (8, 8, 1), 17, {'train': 1257, 'validation': 180, 'test': 360}
    )
    batches = list(dataset.as_numpy_iterator())
    assert [batch.shape for batch in batches] == [(64, 8, 8, 1), (64, 8, 8, 1), (52, 8, 8, 1)]
    assert_dequantized(np.concatenate(batches), load_digits('validation'), num_bins=17)


def test_make_dataset_noise_is_fresh_every_epoch():
    dataset, _ = make_dataset('digits', 'validation', 64, shuffle=False, seed=0)
    first, second = as_array(dataset), as_array(dataset)
    assert not np.array_equal(first, second)
    assert_dequantized(second, load_digits('validation'), num_bins=17)


def test_make_dataset_seed_fixes_order_and_noise_of_every_epoch():
    dataset, _ = make_dataset('digits', 'validation', 32, shuffle=True, seed=1)
    first, second = as_array(dataset), as_array(dataset)
    pixels = to_pixels(first, 17).reshape(180, -1)
    assert not np.array_equal(pixels, to_pixels(second, 17).reshape(180, -1))
    assert sorted(map(tuple, pixels)) == sorted(
        map(tuple, load_digits('validation').reshape(180, -1))
    )
    again, _ = make_dataset('digits', 'validation', 32, shuffle=True, seed=1)
    np.testing.assert_array_equal(as_array(again), first)
    np.testing.assert_array_equal(as_array(again), second)
    other, _ = make_dataset('digits', 'validation', 32, shuffle=True, seed=2)
    assert not np.array_equal(as_array(other), first)


def test_make_dataset_epoch_makes_each_pass_a_function_of_seed_and_epoch():
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset, _ = make_dataset('digits', 'train', 64, shuffle=True, seed=3, epoch=epoch)
    assert int(dataset.cardinality()) == 20  # ceil(1257 / 64), known to Keras' progress bar.
    passes = {}
    for value in (2, 0, 2, 1):
        epoch.assign(value)
        passes.setdefault(value, []).append(as_array(dataset))
    np.testing.assert_array_equal(*passes[2])  # Epoch 2 again, after epoch 0: the same data.
    for value in (0, 1, 2):  # The same data as a new dataset built for that epoch only.
        alone, _ = make_dataset('digits', 'train', 64, shuffle=True, seed=3, epoch=value)
        np.testing.assert_array_equal(as_array(alone), passes[value][0])
    pixels = {value: to_pixels(passes[value][0], 17).reshape(1257, -1) for value in (0, 1)}
    assert not np.array_equal(pixels[0], pixels[1])  # Another order in another epoch.
    expected = sorted(map(tuple, load_digits('train').reshape(1257, -1)))
    assert sorted(map(tuple, pixels[1])) == expected  # A permutation of the split.
    assert_dequantized(passes[1][0], to_pixels(passes[1][0], 17), num_bins=17)
    other_seed, _ = make_dataset('digits', 'train', 64, shuffle=True, seed=4, epoch=0)
    assert not np.array_equal(as_array(other_seed), passes[0][0])


def test_make_dataset_fixed_epoch_gives_the_same_noise_every_pass():
    dataset, _ = make_dataset('digits', 'validation', 64, shuffle=False, seed=0, epoch=0)
    first, second = as_array(dataset), as_array(dataset)
    np.testing.assert_array_equal(first, second)
    assert_dequantized(first, load_digits('validation'), num_bins=17)
    points, _ = make_dataset('moons', 'validation', 500, shuffle=True, seed=0, epoch=0)
    np.testing.assert_array_equal(as_array(points), as_array(points))
    np.testing.assert_array_equal(
        np.sort(as_array(points), axis=0), np.sort(toy_2d('moons', 2_000, seed=1), axis=0)
    )


@pytest.mark.parametrize(
    'epoch, seed, message',
    [
        (
            lambda: 0,
            None,
            r'`epoch` needs a `seed`: each pass is drawn from \(seed, epoch\); got seed=None',
        ),
        (lambda: -1, 0, r'`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got -1'),
        (lambda: 1.0, 0, r'`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got 1.0'),
        (
            lambda: tf.Variable(0),
            0,
            r'`epoch` must be .* tf.Variable; got a variable of dtype int32 and shape \(\)',
        ),
    ],
)
def test_make_dataset_rejects_bad_epoch(epoch, seed, message):
    epoch = epoch()  # Made here: no TF variable at collection time.
    with pytest.raises(ValueError, match=message):
        make_dataset('digits', 'train', 8, shuffle=True, seed=seed, epoch=epoch)


def test_make_dataset_drop_remainder_and_image_size():
    dataset, _ = make_dataset('digits', 'validation', 64, shuffle=False, drop_remainder=True)
    assert len(list(dataset)) == 2 and int(dataset.cardinality()) == 2
    dataset, info = make_dataset(
        'digits', 'test', 100, shuffle=True, seed=0, drop_remainder=True, image_size=16
    )
    batches = list(dataset.repeat().take(5).as_numpy_iterator())
    assert info.event_shape == (16, 16, 1)
    assert all(batch.shape == (100, 16, 16, 1) for batch in batches)
    assert not np.array_equal(batches[0], batches[3])  # Another pass: another order.
    assert_dequantized(batches[0], to_pixels(batches[0], 17), num_bins=17)


@pytest.mark.parametrize('name', TOYS)
def test_toy_2d_is_seeded_finite_and_standardised(name):
    points = toy_2d(name, 20_000, seed=0)
    assert points.dtype == np.float32 and points.shape == (20_000, 2)
    assert np.isfinite(points).all()
    np.testing.assert_allclose(points.mean(axis=0), [0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(points.std(axis=0), [1.0, 1.0], atol=0.05)
    np.testing.assert_array_equal(toy_2d(name, 10, seed=3), toy_2d(name, 10, seed=3))
    assert not np.array_equal(toy_2d(name, 10, seed=3), toy_2d(name, 10, seed=4))


def test_make_dataset_toy_splits():
    dataset, info = make_dataset('moons', 'validation', 500, shuffle=True, seed=0)
    assert info == DatasetInfo(
        'moons', (2,), None, {'train': 20_000, 'validation': 2_000, 'test': 5_000}
    )
    points = as_array(dataset)
    assert points.dtype == np.float32 and points.shape == (2_000, 2)
    validation = np.sort(points, axis=0)
    np.testing.assert_array_equal(validation, np.sort(toy_2d('moons', 2_000, seed=1), axis=0))
    test, _ = make_dataset('moons', 'test', 5_000, shuffle=False)
    assert not set(map(tuple, as_array(test))) & set(map(tuple, points))


def test_load_images_under_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        dataset = load_images('mnist', 'train', data_dir=tmp_path)
        assert dataset.element_spec == tf.TensorSpec([28, 28, 1], tf.uint8)
        assert len(list(dataset)) == 6
        resized = load_images('mnist', 'train', data_dir=tmp_path, image_size=14)
        assert resized.element_spec == tf.TensorSpec([14, 14, 1], tf.uint8)
        celeb_a = load_images('celeb_a', 'train', data_dir=tmp_path)
        assert celeb_a.element_spec == tf.TensorSpec([64, 64, 3], tf.uint8)
        small = load_images('celeb_a', 'train', data_dir=tmp_path, image_size=32)
        assert small.element_spec == tf.TensorSpec([32, 32, 3], tf.uint8)
        assert next(iter(small)).shape == (32, 32, 3)


def test_make_dataset_tfds_under_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        pixels = as_array(load_images('mnist', 'train', data_dir=tmp_path).batch(10))
        dataset, info = make_dataset('mnist', 'train', 4, shuffle=False, seed=0, data_dir=tmp_path)
        flipped, _ = make_dataset(
            'mnist', 'train', 4, shuffle=True, seed=0, data_dir=tmp_path, augment='flip'
        )
        assert info == DatasetInfo('mnist', (28, 28, 1), 256, {'train': 10})
        batches = list(dataset.as_numpy_iterator())
        assert [batch.shape for batch in batches] == [(4, 28, 28, 1)] * 2 + [(2, 28, 28, 1)]
        assert_dequantized(np.concatenate(batches), pixels, num_bins=256)
        assert as_array(flipped).shape == (10, 28, 28, 1)


@pytest.mark.parametrize('batch_size', [0, -1, 2.0])
def test_make_dataset_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match=r'`batch_size` must be a positive int; got '):
        make_dataset('digits', 'train', batch_size, shuffle=False)


def test_make_dataset_rejects_batch_larger_than_split_when_dropping_remainder():
    with pytest.raises(ValueError, match=r'`batch_size` \(200\) is larger than the 180 examples'):
        make_dataset('digits', 'validation', 200, shuffle=False, drop_remainder=True)
    dataset, _ = make_dataset('digits', 'validation', 200, shuffle=False)
    assert next(iter(dataset)).shape == (180, 8, 8, 1)


def test_make_dataset_rejects_empty_split(tmp_path):
    with tfds.testing.mock_data(num_examples=0):
        with pytest.raises(ValueError, match=r"Split 'train' of dataset 'mnist' has no examples"):
            make_dataset('mnist', 'train', 4, shuffle=False, data_dir=tmp_path)


@pytest.mark.parametrize('name', ['digits', 'rings'])
def test_make_dataset_rejects_unknown_split(name):
    with pytest.raises(
        ValueError,
        match=rf"`split` must be one of train, validation, test for dataset '{name}'; got 'valid'",
    ):
        make_dataset(name, 'valid', 8, shuffle=False)


def test_make_dataset_rejects_unknown_augment():
    with pytest.raises(ValueError, match=r"`augment` must be None or one of \('flip'\); got 'rot"):
        make_dataset('digits', 'train', 8, shuffle=False, augment='rotate')


@pytest.mark.parametrize(
    'name, options',
    [
        ('digits', dict(augment='flip')),  # The digits are not mirror-symmetric.
        ('digits', dict(data_dir='/tmp')),
        ('moons', dict(augment='flip')),  # Points, not images.
        ('moons', dict(image_size=16)),
        ('rings', dict(columns=['x'])),
    ],
)
def test_make_dataset_refuses_options_the_source_does_not_take(name, options):
    (option,) = options
    with pytest.raises(ValueError, match=rf"`{option}` does not apply to .*'{name}', which takes"):
        make_dataset(name, 'train', 8, shuffle=False, **options)


@pytest.mark.parametrize('image_size', [0, 16.0])
def test_rejects_bad_image_size(image_size):
    with pytest.raises(ValueError, match=r'`image_size` must be None or a positive int; got '):
        make_dataset('digits', 'train', 8, shuffle=False, image_size=image_size)
    with pytest.raises(ValueError, match=r'`image_size` must be None or a positive int; got '):
        load_images('mnist', 'train', image_size=image_size)


def test_toy_2d_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"`name` must be one of checkerboard, .*; got 'spiral'"):
        toy_2d('spiral', 10, seed=0)
    with pytest.raises(ValueError, match=r'`num_samples` must be a positive int; got 0'):
        toy_2d('moons', 0, seed=0)


def test_load_images_explains_missing_data(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_images('mnist', 'train', data_dir=tmp_path)
    message = str(error.value)
    assert f"TFDS dataset 'mnist' could not be found in data_dir '{tmp_path}'" in message
    assert '`tfds build mnist --data_dir=DIR`' in message
    assert "use the 'digits' dataset, which ships with scikit-learn" in message


def test_load_images_rejects_unknown_name_with_close_names(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown dataset 'mnistt'.* Close names: mnist"):
        make_dataset('mnistt', 'train', 8, shuffle=False, data_dir=tmp_path)


def test_load_images_rejects_datasets_without_images(tmp_path):
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(
            ValueError,
            match=r"'imdb_reviews' is not an 8-bit image dataset: .*got features label, text",
        ):
            load_images('imdb_reviews', 'train', data_dir=tmp_path)


def test_load_images_rejects_images_of_varying_size(tmp_path):
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match=r"'oxford_flowers102' vary in size .*`image_size`"):
            load_images('oxford_flowers102', 'train', data_dir=tmp_path)
        resized = load_images('oxford_flowers102', 'train', data_dir=tmp_path, image_size=8)
        assert resized.element_spec == tf.TensorSpec([8, 8, 3], tf.uint8)


def test_conditional_digits_give_one_hot_labels():
    images, labels = load_digits('validation', labels=True)
    np.testing.assert_array_equal(images, load_digits('validation'))
    everything = sklearn.datasets.load_digits()
    permuted = everything.target[np.random.RandomState(0).permutation(1797)]
    np.testing.assert_array_equal(labels, permuted[1257 : 1257 + 180])
    dataset, info = make_dataset('digits', 'validation', 64, shuffle=True, seed=0, conditional=True)
    assert info.conditional_shape == (10,) and info.class_names == tuple('0123456789')
    batches = list(dataset.as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    c = np.concatenate([b[1] for b in batches])
    assert c.dtype == np.float32 and c.shape == (180, 10) and np.all(c.sum(axis=1) == 1)
    pixels = to_pixels(x, 17).reshape(180, -1)
    by_image = {tuple(p): label for p, label in zip(images.reshape(180, -1), labels, strict=True)}
    assert [by_image[tuple(p)] for p in pixels] == list(c.argmax(axis=1))


def test_conditional_tfds_images_under_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        labelled, names = load_images('mnist', 'train', data_dir=tmp_path, labels=True)
        assert names == tuple(str(i) for i in range(10))
        assert labelled.element_spec[1].dtype == tf.int64
        dataset, info = make_dataset(
            'mnist', 'train', 4, shuffle=False, data_dir=tmp_path, conditional=True
        )
        assert info.conditional_shape == (10,) and info.event_shape == (28, 28, 1)
        x, c = next(iter(dataset))
        assert x.shape == (4, 28, 28, 1) and c.shape == (4, 10)
        expected = [label.numpy() for _, label in labelled.take(4)]
        np.testing.assert_array_equal(np.argmax(c, axis=1), expected)
        with pytest.raises(ValueError, match=r"'celeb_a' has no class label feature 'label'"):
            make_dataset('celeb_a', 'train', 4, shuffle=False, data_dir=tmp_path, conditional=True)


def test_conditional_needs_labels():
    with pytest.raises(ValueError, match=r"2-D toy dataset 'moons' has no labels"):
        make_dataset('moons', 'train', 4, shuffle=False, conditional=True)
    with pytest.raises(ValueError, match=r'`conditional` must be True or False; got 1'):
        make_dataset('digits', 'train', 4, shuffle=False, conditional=1)


@pytest.mark.parametrize('epoch', [None, 0])
def test_images_stay_discrete_without_dequantization(epoch):
    kwargs = dict(shuffle=False, seed=0, epoch=epoch)
    pixels_ds, info = make_dataset('digits', 'validation', 32, dequantize=False, **kwargs)
    x_ds, _ = make_dataset('digits', 'validation', 32, **kwargs)
    pixels, x = next(iter(pixels_ds)), next(iter(x_ds))
    assert pixels.dtype == tf.float32
    np.testing.assert_array_equal(pixels, np.round(pixels))
    assert 0 <= np.min(pixels) and np.max(pixels) == info.num_bins - 1
    np.testing.assert_array_equal(np.floor(x * info.num_bins), pixels)  # The same images.
