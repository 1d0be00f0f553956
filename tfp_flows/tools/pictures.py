"""Pictures of a run as uint8 arrays: sample grids, labelled figures, the 2-D density; PNGs.

Drawn with matplotlib's object API and Agg (no pyplot). Every function refuses an argument out
of its domain with `ValueError` naming it, before any work.
"""

import math
import os

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfp_flows import checks
from tfp_flows.dequantization import check_num_bins
from tfp_flows.sampling import sample

__all__ = [
    'density_figure',
    'image_grid',
    'labelled_panels',
    'row_grid',
    'sample_figure',
    'upscale_factor',
    'write_png',
]

MIN_IMAGE_PIXELS = 64  # Each image of a grid is shown at least this many pixels high ...
MAX_GRID_PIXELS = 1024  # ... unless the grid would then be wider or higher than this.
_DPI = 100  # Figures are sized in pixels; 100 pixels per inch makes 13-point text ~18 pixels.


def _sequence(value):
    """`tuple(value)`, or None for a str or what is not iterable."""
    try:
        return None if isinstance(value, str) else tuple(value)
    except TypeError:
        return None


def _check_pair(name, value):
    pair = _sequence(value)
    if pair is None or len(pair) != 2 or not all(checks.POSITIVE_INT.contains(v) for v in pair):
        raise ValueError(f'`{name}` must be a pair of positive ints; got {value!r}.')
    return pair


def _check_picture(name, picture, channels):
    """`picture` as a uint8 array [H, W, C], C in `channels`; `ValueError` naming it if not."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[-1] not in channels:
        raise ValueError(
            f'`{name}` must be uint8 [H, W, C], C in {channels}; got dtype {picture.dtype}, '
            f'shape {picture.shape}.'
        )
    return picture


def _array(name, value, dtype, description):
    """`value` as a NumPy array of `dtype`; `ValueError` naming it if it does not convert."""
    try:
        return np.asarray(value, dtype)
    except (TypeError, ValueError):
        raise ValueError(f'`{name}` must be {description}; got {value!r}.') from None


def upscale_factor(image_shape, grid_shape, separator=2):
    """The int factor (>= 1) that shows each image of `image_shape` (height, width) at least
    `MIN_IMAGE_PIXELS` high, lowered while a grid of `grid_shape` (rows, columns) with
    `separator` pixels around the images would exceed `MAX_GRID_PIXELS`. 8x8 digits in a 6x6
    grid get 8 (398 pixels); 64x64 CelebA get 1.
    """
    height, width = _check_pair('image_shape', image_shape)
    rows, columns = _check_pair('grid_shape', grid_shape)
    checks.NON_NEGATIVE_INT.check('separator', separator)
    wanted = math.ceil(MIN_IMAGE_PIXELS / max(height, width))
    fits_rows = ((MAX_GRID_PIXELS - separator) // rows - separator) // height
    fits_columns = ((MAX_GRID_PIXELS - separator) // columns - separator) // width
    return max(1, min(wanted, fits_rows, fits_columns))


def image_grid(images, num_bins=256, num_columns=None, scale=None, separator=2):
    """`images` [N, H, W, C] (C = 1 or 3) in [0, 1] (clipped; NaN shows black), quantized to
    `num_bins` levels, tiled `num_columns` a row (default ceil(sqrt(N))), upscaled
    nearest-neighbour by `scale` (default `upscale_factor`), with `separator` white pixels
    around each. Returns uint8 [rows * (H * scale + separator) + separator, num_columns *
    (W * scale + separator) + separator, C]."""
    check_num_bins(num_bins)
    checks.POSITIVE_INT.or_none().check('num_columns', num_columns)
    checks.POSITIVE_INT.or_none().check('scale', scale)
    checks.NON_NEGATIVE_INT.check('separator', separator)
    images = _array('images', images, np.float64, 'numbers of shape [N, H, W, C], N >= 1')
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f'`images` must have shape [N, H, W, C], N >= 1; got {images.shape}.')
    count, height, width, channels = images.shape
    num_columns = num_columns or math.ceil(math.sqrt(count))
    num_rows = math.ceil(count / num_columns)
    scale = scale or upscale_factor((height, width), (num_rows, num_columns), separator)
    images = np.clip(np.nan_to_num(images, nan=0.0), 0.0, 1.0 - 1e-9)
    levels = np.floor(images * num_bins) / (num_bins - 1)
    levels = levels.repeat(scale, axis=1).repeat(scale, axis=2)
    cell_height, cell_width = height * scale + separator, width * scale + separator
    grid = np.ones(
        (num_rows * cell_height + separator, num_columns * cell_width + separator, channels)
    )
    for i, image in enumerate(levels):
        row, column = divmod(i, num_columns)
        top, left = separator + row * cell_height, separator + column * cell_width
        grid[top : top + height * scale, left : left + width * scale] = image
    return np.round(grid * 255).astype(np.uint8)


def row_grid(rows, num_bins):
    """An `image_grid` of images [R, C, H, W, ch] with one row of C images per entry of R."""
    rows = np.asarray(rows)
    return image_grid(rows.reshape([-1, *rows.shape[2:]]), num_bins, rows.shape[1])


def labelled_panels(pictures, titles, margin=12, gap=24, title_height=32):
    """`pictures` (uint8 [H_i, W_i, C], C = 1 or 3) side by side, each unchanged, under its
    title (`titles`: one str each); `margin`, `gap` and `title_height` are the white space in
    pixels around, between panels and for the titles. Returns uint8 RGB [2 * margin +
    title_height + max H_i, 2 * margin + sum W_i + gaps, 3]; picture i's top-left pixel is at
    row `margin + title_height`, column `margin + sum_{j<i} (W_j + gap)`."""
    for name, value in (('margin', margin), ('gap', gap), ('title_height', title_height)):
        checks.NON_NEGATIVE_INT.check(name, value)
    given, pictures, titles = titles, _sequence(pictures), _sequence(titles)
    if not pictures:
        raise ValueError('`pictures` must be a non-empty list of pictures; got none.')
    pictures = [_check_picture('pictures', p, (1, 3)) for p in pictures]
    if titles is None or len(pictures) != len(titles):
        raise ValueError(f'`titles` must be one str per picture ({len(pictures)}); got {given!r}.')
    for title in titles:
        if not isinstance(title, str):
            raise ValueError(f'`titles` must be strs; got {title!r}.')
    pictures = [np.broadcast_to(p, (*p.shape[:2], 3)) for p in pictures]
    width = 2 * margin + sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    height = 2 * margin + title_height + max(p.shape[0] for p in pictures)
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, facecolor='white')
    left = margin
    for picture, title in zip(pictures, titles, strict=True):
        # figimage's offsets count from the figure's bottom-left corner.
        figure.figimage(picture, xo=left, yo=height - margin - title_height - picture.shape[0])
        figure.text(
            (left + picture.shape[1] / 2) / width,
            1 - (margin + title_height / 2) / height,
            title,
            ha='center',
            va='center',
            fontsize=13,
        )
        left += picture.shape[1] + gap
    return _render(figure)


def sample_figure(flow, num_bins, temperatures, seed, num_samples=36, num_columns=6):
    """Samples of an image flow (data in [0, 1] of `num_bins` levels) at each temperature, as
    one labelled figure of `num_samples` images a panel, `num_columns` a row; every temperature
    scales the same base noise (stateless seed [seed, 0]). Returns (the uint8 RGB figure, each
    temperature's `image_grid`)."""
    check_num_bins(num_bins)
    temperatures = checks.TEMPERATURES.check('temperatures', temperatures)
    checks.SEED.check('seed', seed)
    checks.POSITIVE_INT.check('num_samples', num_samples)
    checks.POSITIVE_INT.check('num_columns', num_columns)
    grids = []
    for temperature in temperatures:
        drawn = sample(flow, num_samples, temperature=temperature, seed=tf.constant([seed, 0]))
        grids.append(image_grid(np.asarray(drawn), num_bins, num_columns=num_columns))
    titles = [f'temperature {temperature}' for temperature in temperatures]
    return labelled_panels(grids, titles), grids


def density_figure(
    log_prob_fn, points, points_label='data', extent=None, resolution=200, axis_names=None
):
    """The learned density of a 2-D flow (`log_prob_fn`: float32 points [N, 2] to nats [N])
    beside `points` [N, 2] titled `points_label`, axes named `axis_names` (two strs; default
    'x[0]', 'x[1]'), with a colour bar. Both panels show [-extent, extent]^2, or the points'
    bounding box widened by 15 % each side; the density is evaluated on resolution^2 cells.
    Returns uint8 RGB [420, 1000, 3]."""
    if not callable(log_prob_fn):
        raise ValueError(f'`log_prob_fn` must be a callable; got {log_prob_fn!r}.')
    points = _array('points', points, np.float64, 'finite numbers of shape [N, 2], N >= 1')
    if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] != 2:
        raise ValueError(f'`points` must have shape [N, 2], N >= 1; got {points.shape}.')
    if not np.all(np.isfinite(points)):
        raise ValueError(
            f'`points` must be finite numbers; got {np.sum(~np.isfinite(points))} that are not.'
        )
    if not isinstance(points_label, str):
        raise ValueError(f'`points_label` must be a str; got {points_label!r}.')
    checks.POSITIVE_NUMBER.or_none().check('extent', extent)
    checks.POSITIVE_INT.check('resolution', resolution)
    if axis_names is None:
        axis_names = ('x[0]', 'x[1]')
    elif not (isinstance(axis_names, tuple | list) and len(axis_names) == 2) or not all(
        isinstance(name, str) for name in axis_names
    ):
        raise ValueError(f'`axis_names` must be None or two strs; got {axis_names!r}.')
    if extent is None:
        low, high = points.min(axis=0), points.max(axis=0)
        margin = 0.15 * (high - low) + 0.5 * (high == low)
        low, high = low - margin, high + margin
    else:
        low, high = np.full(2, -extent), np.full(2, extent)
    centres = [np.linspace(a, b, resolution + 1)[:-1] + (b - a) / (2 * resolution)
               for a, b in zip(low, high, strict=True)]  # fmt: skip
    grid_x, grid_y = np.meshgrid(*centres)  # Row i has x[1] = centres[1][i].
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1).astype(np.float32)
    log_prob = np.asarray(log_prob_fn(tf.constant(grid)), np.float64)
    density = np.exp(log_prob).reshape(resolution, resolution)

    figure = Figure(figsize=(10, 4.2), dpi=_DPI, facecolor='white', layout='constrained')
    model_axes, data_axes = figure.subplots(1, 2, sharex=True, sharey=True)
    box = (low[0], high[0], low[1], high[1])
    shown = model_axes.imshow(density, extent=box, origin='lower', cmap='viridis', aspect='auto')
    figure.colorbar(shown, ax=model_axes, label='p(x)')
    model_axes.set_title('learned density p(x)')
    size = float(np.clip(3000 / len(points), 1, 16))  # Few points drawn larger, many lighter.
    alpha = float(np.clip(300 / len(points), 0.3, 0.9))
    data_axes.scatter(points[:, 0], points[:, 1], s=size, alpha=alpha, color='black', linewidths=0)
    data_axes.set_title(f'{points_label} ({len(points):,} points)')
    for axes in (model_axes, data_axes):
        axes.set_xlim(low[0], high[0])
        axes.set_ylim(low[1], high[1])
        axes.set_xlabel(axis_names[0])
    model_axes.set_ylabel(axis_names[1])
    return _render(figure)


def _render(figure):
    """The uint8 RGB pixels [H, W, 3] of a matplotlib `Figure`, drawn with Agg."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_png(path, picture):
    """Writes a uint8 picture [H, W, C] (C = 1, 3 or 4) to `path` atomically. `TypeError` for
    a `path` that is not a path, `ValueError` for another picture, before anything is written.
    """
    checks.check_path('path', path)
    picture = _check_picture('picture', picture, (1, 3, 4))
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    temporary = f'{path}.tmp'
    tf.io.write_file(temporary, tf.io.encode_png(picture))
    os.replace(temporary, path)
