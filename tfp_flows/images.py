"""Pixels of a run's pictures: upscaled image grids as uint8 arrays, and PNG files.

Labelled figures (titles, axes, colour bars) are drawn from these in `tfp_flows.figures`.
"""

import math
import os

import numpy as np
import tensorflow as tf

__all__ = ['density_picture', 'image_grid', 'upscale_factor', 'write_png']

MIN_IMAGE_PIXELS = 64  # Each image of a grid is shown at least this many pixels high ...
MAX_GRID_PIXELS = 1024  # ... unless the grid would then be wider or higher than this.


def upscale_factor(image_shape, grid_shape, separator=2):
    """The integer factor that shows each image at >= 64 pixels, the grid at <= 1024.

    Args:
      image_shape: (height, width) of one image, in pixels.
      grid_shape: (rows, columns) of images in the grid.
      separator: pixels between neighbouring images (and around the grid).

    Returns:
      The smallest int factor that makes the larger image side at least `MIN_IMAGE_PIXELS`,
      lowered while the grid would exceed `MAX_GRID_PIXELS` on either side; at least 1 (images
      are never shrunk). 8x8 digits in a 6x6 grid get 8 (398 pixels); 64x64 CelebA get 1.
    """
    height, width = image_shape
    rows, columns = grid_shape
    factor = max(1, math.ceil(MIN_IMAGE_PIXELS / max(height, width)))
    while (
        factor > 1
        and max(
            rows * (height * factor + separator) + separator,
            columns * (width * factor + separator) + separator,
        )
        > MAX_GRID_PIXELS
    ):
        factor -= 1
    return factor


def image_grid(images, num_bins=256, num_columns=None, scale=None, separator=2):
    """Tiles images into one uint8 picture, upscaled nearest-neighbour, with white separators.

    Args:
      images: [N, H, W, C] values in [0, 1] (C is 1 or 3), e.g. samples of an image flow.
      num_bins: levels of the data; values are quantized to them, then spread over 0..255.
      num_columns: images per row; default ceil(sqrt(N)). Row r holds images
        r * num_columns ... (r + 1) * num_columns - 1 (a grid with one row per class or per
        interpolation is the images in that order).
      scale: int upscaling factor; default `upscale_factor` (each image >= 64 pixels).
      separator: width in pixels of the white lines between images and around the grid.

    Returns:
      uint8 [rows * (H * scale + separator) + separator,
             num_columns * (W * scale + separator) + separator, C].

    Raises:
      ValueError: `images` is not [N, H, W, C], or `scale`, `num_columns` or `separator` is
        out of range.
    """
    images = np.asarray(images, np.float64)
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f'`images` must have shape [N, H, W, C], N >= 1; got {images.shape}.')
    count, height, width, channels = images.shape
    num_columns = num_columns or math.ceil(math.sqrt(count))
    if num_columns < 1:
        raise ValueError(f'`num_columns` must be a positive int; got {num_columns!r}.')
    if separator < 0:
        raise ValueError(f'`separator` must be >= 0 pixels; got {separator!r}.')
    num_rows = math.ceil(count / num_columns)
    scale = scale or upscale_factor((height, width), (num_rows, num_columns), separator)
    if scale < 1:
        raise ValueError(f'`scale` must be a positive int; got {scale!r}.')
    images = np.clip(images, 0.0, 1.0 - 1e-9)
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


def density_picture(log_prob_fn, points, extent=4.0, resolution=200):
    """Learned density beside a histogram of `points` [N, 2], as one uint8 picture.

    Both panels cover [-extent, extent]^2; each is scaled to its own maximum.
    """
    edges = np.linspace(-extent, extent, resolution + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    grid_x, grid_y = np.meshgrid(centres, centres[::-1])
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1).astype(np.float32)
    density = np.exp(np.asarray(log_prob_fn(tf.constant(grid)))).reshape(resolution, resolution)
    histogram, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=[edges, edges])
    panels = [density, histogram[::-1]]
    panels = [p / max(float(p.max()), 1e-12) for p in panels]
    gap = np.ones((resolution, 4))
    picture = np.concatenate([panels[0], gap, panels[1]], axis=1)
    return np.round((1.0 - picture) * 255).astype(np.uint8)[..., np.newaxis]


def write_png(path, picture):
    """Writes a uint8 picture [H, W, C] (C = 1, 3 or 4) to `path` atomically."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    temporary = f'{path}.tmp'
    tf.io.write_file(temporary, tf.io.encode_png(picture))
    os.replace(temporary, path)
