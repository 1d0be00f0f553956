"""Image grids: upscaling, separators, quantization, PNG files."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows import images


@pytest.mark.parametrize(
    'image_shape, grid_shape, expected',
    [
        ((8, 8), (6, 6), 8),  # Digits: 64-pixel images, a 398-pixel grid.
        ((28, 28), (6, 6), 3),  # MNIST: 84 pixels.
        ((32, 32), (6, 6), 2),  # CIFAR-10: 64 pixels.
        ((64, 64), (6, 6), 1),  # CelebA: shown as they are.
        ((8, 8), (10, 20), 6),  # A wide grid is capped at 1024 pixels: 20 * 50 + 2.
        ((256, 256), (6, 6), 1),  # Never shrunk, even past the cap.
    ],
)
def test_upscale_factor_shows_each_image_at_64_pixels_within_the_cap(
    image_shape, grid_shape, expected
):
    assert images.upscale_factor(image_shape, grid_shape) == expected


def test_image_grid_upscales_each_pixel_to_a_block_between_white_separators():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 17, size=(5, 4, 3, 1))
    drawn = (levels + 0.5) / 17  # Dequantized values in the middle of each bin.
    grid = images.image_grid(drawn, num_bins=17, num_columns=3, scale=4, separator=2)
    assert grid.shape == (2 * (4 * 4 + 2) + 2, 3 * (3 * 4 + 2) + 2, 1)
    assert grid.dtype == np.uint8
    expected = np.round(levels / 16 * 255).astype(np.uint8)
    for i in range(5):
        row, column = divmod(i, 3)
        top, left = 2 + row * 18, 2 + column * 14
        block = grid[top : top + 16, left : left + 12]
        np.testing.assert_array_equal(block, expected[i].repeat(4, axis=0).repeat(4, axis=1))
    separator_rows = [0, 1, 18, 19, 36, 37]
    separator_columns = [0, 1, 14, 15, 28, 29, 42, 43]
    assert np.all(grid[separator_rows] == 255)
    assert np.all(grid[:, separator_columns] == 255)
    assert np.all(grid[20:36, 30:42] == 255)  # The empty sixth cell stays white.


def test_image_grid_of_36_digits_is_398_pixels_square():
    drawn = np.random.default_rng(1).uniform(size=(36, 8, 8, 1))
    assert images.image_grid(drawn, num_bins=17, num_columns=6).shape == (398, 398, 1)


def test_image_grid_keeps_colour_channels():
    drawn = np.random.default_rng(2).uniform(size=(4, 16, 16, 3))
    assert images.image_grid(drawn).shape == (2 * (64 + 2) + 2, 2 * (64 + 2) + 2, 3)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(images=np.zeros((8, 8, 1))), r'shape \[N, H, W, C\], N >= 1; got \(8, 8, 1\)'),
        (dict(images=np.zeros((0, 8, 8, 1))), r'N >= 1; got \(0, 8, 8, 1\)'),
        (dict(images=np.zeros((2, 8, 8, 1)), scale=-1), r'`scale` must be a positive int; got -1'),
        (dict(images=np.zeros((2, 8, 8, 1)), separator=-2), r'`separator` must be >= 0 .* -2'),
        (
            dict(images=np.zeros((2, 8, 8, 1)), num_columns=-3),
            r'`num_columns` must be a positive int; got -3',
        ),
    ],
)
def test_bad_grid_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        images.image_grid(**kwargs)


def test_write_png_round_trips_and_leaves_no_temporary_file(tmp_path):
    picture = np.random.default_rng(3).integers(0, 256, size=(10, 12, 3)).astype(np.uint8)
    path = tmp_path / 'sub' / 'grid.png'
    images.write_png(str(path), picture)
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(str(path))), picture)
    assert [p.name for p in path.parent.iterdir()] == ['grid.png']
