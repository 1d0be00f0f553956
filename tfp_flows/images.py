"""PNG pictures of a run: sample grids and, for 2-D data, the learned density."""

import math
import os

import numpy as np
import tensorflow as tf

__all__ = ['density_picture', 'image_grid', 'write_png']


def image_grid(images, num_bins=256, num_columns=None):
    """Tiles images [N, H, W, C] in [0, 1] into one uint8 picture with a 1-pixel gap.

    Values are quantized to the data's `num_bins` levels, then spread over 0..255.
    """
    images = np.clip(np.asarray(images, np.float64), 0.0, 1.0 - 1e-9)
    levels = np.floor(images * num_bins) / (num_bins - 1)
    count, height, width, channels = levels.shape
    num_columns = num_columns or math.ceil(math.sqrt(count))
    num_rows = math.ceil(count / num_columns)
    grid = np.ones(
        (num_rows * (height + 1) + 1, num_columns * (width + 1) + 1, channels), np.float64
    )
    for i, image in enumerate(levels):
        row, column = divmod(i, num_columns)
        top, left = 1 + row * (height + 1), 1 + column * (width + 1)
        grid[top : top + height, left : left + width] = image
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
    """Writes a uint8 picture [H, W, C] to `path` atomically (temp file, then rename)."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    temporary = f'{path}.tmp'
    tf.io.write_file(temporary, tf.io.encode_png(picture))
    os.replace(temporary, path)
