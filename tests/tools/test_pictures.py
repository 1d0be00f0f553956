"""Pictures: upscaled grids, labelled sample figures, the 2-D density figure, PNG files."""

import checks
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.tools import pictures as images


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
        (
            dict(images=np.zeros((2, 8, 8, 1)), scale=-1),
            r'`scale` must be None or a positive int; got -1',
        ),
        (
            dict(images=np.zeros((2, 8, 8, 1)), separator=-2),
            r'`separator` must be an int >= 0; got -2',
        ),
        (
            dict(images=np.zeros((2, 8, 8, 1)), num_columns=-3),
            r'`num_columns` must be None or a positive int; got -3',
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


def test_labelled_panels_places_each_picture_unchanged_under_its_title():
    rng = np.random.default_rng(4)
    grey = rng.integers(0, 256, size=(40, 200, 1)).astype(np.uint8)
    colour = rng.integers(0, 256, size=(50, 180, 3)).astype(np.uint8)
    figure = images.labelled_panels([grey, colour], ['temperature 0.7', 'temperature 1.0'])
    margin, gap, title_height = 12, 24, 32
    assert figure.shape == (2 * margin + title_height + 50, 2 * margin + 200 + gap + 180, 3)
    assert figure.dtype == np.uint8
    top, left = margin + title_height, margin + 200 + gap
    np.testing.assert_array_equal(
        figure[top : top + 40, margin : margin + 200], np.broadcast_to(grey, (40, 200, 3))
    )
    np.testing.assert_array_equal(figure[top : top + 50, left : left + 180], colour)
    # Each title is drawn in the band above its own panel, centred on it.
    columns = np.nonzero((figure[margin:top].min(axis=-1) < 128).any(axis=0))[0]
    first, second = columns[columns < left - gap / 2], columns[columns > left - gap / 2]
    assert first.min() > margin and second.max() < left + 180
    for drawn, centre in ((first, margin + 100), (second, left + 90)):
        assert abs((drawn.min() + drawn.max()) / 2 - centre) < 3


def test_labelled_panels_needs_one_title_per_picture():
    with pytest.raises(
        ValueError, match=r"`titles` must be one str per picture \(2\); got \['only"
    ):
        images.labelled_panels([np.zeros((4, 4, 1), np.uint8)] * 2, ['only one'])
    with pytest.raises(ValueError, match='`pictures` must be a non-empty list'):
        images.labelled_panels([], [])


@pytest.fixture(scope='module')
def digits_flow():
    flow = tfp_flows.glow(event_shape=(8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    tfp_flows.initialize(flow, tf.random.stateless_uniform([32, 8, 8, 1], seed=[0, 1]))
    checks.randomize_variables(flow, seed=2)
    return flow


def test_sample_figure_shows_each_temperature_as_a_labelled_upscaled_panel(digits_flow):
    figure, grids = images.sample_figure(digits_flow, 17, (0.5, 1.0), seed=3)
    assert [grid.shape for grid in grids] == [(398, 398, 1)] * 2
    assert figure.shape == (12 + 32 + 398 + 12, 12 + 398 + 24 + 398 + 12, 3)
    for grid, left in zip(grids, (12, 12 + 398 + 24), strict=True):
        np.testing.assert_array_equal(
            figure[44 : 44 + 398, left : left + 398], np.broadcast_to(grid, (398, 398, 3))
        )
    assert not np.array_equal(grids[0], grids[1])
    again, _ = images.sample_figure(digits_flow, 17, (0.5, 1.0), seed=3)
    np.testing.assert_array_equal(figure, again)  # A seed gives the same figure every time.


def test_density_figure_draws_the_density_the_right_way_up():
    def log_prob(x):  # A narrow bump at (1.5, -1.5): the lower right of the left panel.
        return -tf.reduce_sum((x - [1.5, -1.5]) ** 2, axis=-1) / (2 * 0.3**2)

    points = np.random.default_rng(5).normal(size=(500, 2)).astype(np.float32)
    picture = images.density_figure(log_prob, points, extent=3.0)
    assert picture.shape == (420, 1000, 3)
    red, green, blue = np.moveaxis(picture[:, :440].astype(int), -1, 0)  # Left of the bar.
    rows, columns = np.nonzero((red > 200) & (green > 200) & (blue < 100))  # viridis' top.
    assert rows.size and rows.min() > 210 and columns.min() > 250  # Lower right.
    dark = picture.max(axis=-1) < 100
    assert dark[:, 600:].sum() > 200  # The scatter of the points in the right panel.


def test_image_grid_shows_nan_as_black():
    drawn = np.full((1, 2, 2, 1), np.nan)
    grid = images.image_grid(drawn, num_bins=17, scale=1, separator=1)
    np.testing.assert_array_equal(grid[1:3, 1:3, 0], 0)


def test_row_grid_gives_each_entry_a_row():
    rows = np.random.default_rng(6).uniform(size=(3, 4, 8, 8, 1))
    grid = images.row_grid(rows, num_bins=17)
    np.testing.assert_array_equal(grid, images.image_grid(rows.reshape(12, 8, 8, 1), 17, 4))
    assert grid.shape == (3 * (64 + 2) + 2, 4 * (64 + 2) + 2, 1)


def test_a_tables_density_figure_is_in_its_units_with_its_column_names():
    """A table's points far from 0 and few (a 10 % test split): the density and the points
    are both in view, the points plainly visible, and the axes carry the column names."""
    centre = np.array([170.0, 70.0])  # height, weight

    def log_prob(x):
        return -tf.reduce_sum(((x - centre) / [10.0, 15.0]) ** 2, axis=-1) / 2

    points = centre + np.random.default_rng(5).normal(size=(30, 2)) * [10.0, 15.0]
    picture = images.density_figure(log_prob, points, axis_names=('height', 'weight'))
    red, green, blue = np.moveaxis(picture[:, :440].astype(int), -1, 0)
    assert ((red > 200) & (green > 200) & (blue < 100)).sum() > 100  # The bump is in view.
    assert (picture[:, 600:].max(axis=-1) < 100).sum() > 30 * 20  # 30 points, each visible.
    default = images.density_figure(log_prob, points)
    named_as_default = images.density_figure(log_prob, points, axis_names=('x[0]', 'x[1]'))
    np.testing.assert_array_equal(default, named_as_default)
    assert not np.array_equal(default, picture)  # The names are drawn.
    with pytest.raises(ValueError, match=r'`axis_names` must be None or two strs'):
        images.density_figure(log_prob, points, axis_names='height')
