"""Working in a flow's latent space: interpolations, temperature sweeps, class directions.

The latent z = flow.bijector.inverse(x), [N, *Z], is the base value of x, so paths and shifts in
z decode to images along the data manifold, as in Glow (Kingma and Dhariwal 2018, Sec. 5,
https://arxiv.org/abs/1807.03039). A conditional flow takes `conditional_input`: contexts
[N, *K], one per example, or one for all. Every function raises `TypeError` for a `flow` that
is not a `tfd.TransformedDistribution` and `ValueError` naming an argument out of its domain.
"""

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.dequantization import check_num_bins
from tfp_flows.sampling import check_flow, sample_latent
from tfp_flows.tools import pictures

__all__ = [
    'class_directions',
    'class_sample_figure',
    'class_samples',
    'interpolate',
    'move',
    'temperature_sweep',
]

_PATH = checks.one_of('linear', 'spherical')


def _map(flow, inverse, value, conditional_input):
    """The latent of data `value` (`inverse`), or the data of latent `value`."""
    kwargs = {} if conditional_input is None else {'conditional_input': conditional_input}
    value = tf.convert_to_tensor(value, flow.dtype)
    return (flow.bijector.inverse if inverse else flow.bijector.forward)(value, **kwargs)


def interpolate(flow, x_start, x_end, num_points=8, conditional_input=None, path='linear'):
    """Decodings along a path in latent space between `x_start` and `x_end`.

    With z_0, z_1 the latents of the two ends and t = 0, 1 / (P - 1), ..., 1:
      'linear':     z_t = (1 - t) z_0 + t z_1                       (Glow's Fig. 5)
      'spherical':  z_t = (sin((1 - t) a) z_0 + sin(t a) z_1) / sin a,  cos a = <z_0, z_1> /
                    (|z_0| |z_1|), which keeps |z| near the typical radius of the Normal base.
    `x_start`, `x_end` [N, *E] are N pairs; the ends are their reconstructions; `num_points`
    P >= 2. Returns [N, P, *E] in the flow's dtype.
    """
    check_flow(flow)
    checks.integer(2).check('num_points', num_points)
    _PATH.check('path', path)
    x_start = tf.convert_to_tensor(x_start, flow.dtype)
    x_end = tf.convert_to_tensor(x_end, flow.dtype)
    if x_start.shape != x_end.shape:
        raise ValueError(
            f'`x_start` and `x_end` must have the same shape; got {x_start.shape} and '
            f'{x_end.shape}.'
        )
    z_start = _map(flow, True, x_start, conditional_input)
    z_end = _map(flow, True, x_end, conditional_input)
    count, latent_shape = z_start.shape[0], z_start.shape[1:]
    t = tf.reshape(tf.linspace(tf.zeros([], flow.dtype), 1, num_points), [1, -1, 1])
    flat_start = tf.reshape(z_start, [count, 1, -1])
    flat_end = tf.reshape(z_end, [count, 1, -1])
    if path == 'linear':
        flat = (1 - t) * flat_start + t * flat_end
    else:
        cosine = tf.reduce_sum(flat_start * flat_end, -1, keepdims=True) / (
            tf.norm(flat_start, axis=-1, keepdims=True) * tf.norm(flat_end, axis=-1, keepdims=True)
        )
        angle = tf.acos(tf.clip_by_value(cosine, -1 + 1e-7, 1 - 1e-7))
        flat = (tf.sin((1 - t) * angle) * flat_start + tf.sin(t * angle) * flat_end) / tf.sin(angle)
    latents = tf.reshape(flat, [count * num_points, *latent_shape])
    contexts = _repeat_contexts(conditional_input, count, num_points)
    decoded = _map(flow, False, latents, contexts)
    return tf.reshape(decoded, [count, num_points, *decoded.shape[1:]])


def _repeat_contexts(conditional_input, count, repeats):
    """Contexts of `count` examples, each repeated `repeats` times ([*K] stays as it is)."""
    if conditional_input is None:
        return None
    context = tf.convert_to_tensor(conditional_input)
    if context.shape.rank == 0 or context.shape[0] != count:
        return context
    return tf.repeat(context, repeats, axis=0)


def temperature_sweep(flow, temperatures, num_samples, seed, conditional_input=None):
    """Samples of one base noise at each temperature (finite numbers > 0): [T, num_samples, *E].

    Row i is `tfp_flows.sample(flow, num_samples, temperatures[i], seed)`: the same z, scaled,
    so the rows differ by the temperature alone. `seed`: an int or a stateless seed [2].
    """
    check_flow(flow)
    temperatures = checks.TEMPERATURES.check('temperatures', temperatures)
    checks.POSITIVE_INT.check('num_samples', num_samples)
    latent = sample_latent(flow, num_samples, 1.0, seed)
    rows = [
        _map(flow, False, tf.constant(t, flow.dtype) * latent, conditional_input)
        for t in temperatures
    ]
    return tf.stack(rows)


def class_directions(flow, x, labels, num_classes, conditional_input=None, batch_size=256):
    """For each class k, the mean latent of its examples minus the mean latent of the rest.

    Glow's attribute manipulation (Sec. 5, Fig. 6): d_k = mean(z | y = k) - mean(z | y != k),
    for examples `x` [N, *E] with int `labels` [N] in [0, num_classes), every class with
    examples in it and outside it; encoded `batch_size` at a time. Returns [num_classes, *Z]
    in the flow's dtype.
    """
    check_flow(flow)
    checks.integer(2).check('num_classes', num_classes)
    checks.POSITIVE_INT.check('batch_size', batch_size)
    labels = np.asarray(labels)
    x = np.asarray(x)
    if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f'`labels` must be ints of shape [{len(x)}] (one per example); got {labels.dtype} '
            f'of shape {labels.shape}.'
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f'`labels` must lie in [0, {num_classes}); got values from {labels.min()} to '
            f'{labels.max()}.'
        )
    counts = np.bincount(labels, minlength=num_classes)
    if np.any(counts == 0) or np.any(counts == len(x)):
        raise ValueError(
            f'Every class needs examples in it and outside it; got counts {counts.tolist()}.'
        )
    context = None if conditional_input is None else np.asarray(conditional_input)
    batched = context is not None and context.ndim > 0 and len(context) == len(x)
    latents = []
    for start in range(0, len(x), batch_size):
        part = (
            None if context is None else context[start : start + batch_size] if batched else context
        )
        latents.append(_map(flow, True, x[start : start + batch_size], part).numpy())
    latents = np.concatenate(latents).astype(np.float64)
    directions = [
        latents[labels == k].mean(axis=0) - latents[labels != k].mean(axis=0)
        for k in range(num_classes)
    ]
    return tf.constant(np.stack(directions), flow.dtype)


def move(flow, x, direction, strengths, conditional_input=None):
    """Decodings of latent(x) + s * direction for each strength s: [N, S, *E].

    `x`: examples [N, *E]; `direction`: [*Z], e.g. a row of `class_directions`; `strengths`:
    finite numbers (0 reconstructs x).
    """
    check_flow(flow)
    strengths = tf.constant(checks.NUMBERS.check('strengths', strengths), flow.dtype)
    z = _map(flow, True, x, conditional_input)
    direction = tf.convert_to_tensor(direction, flow.dtype)
    if direction.shape != z.shape[1:]:
        raise ValueError(
            f'`direction` must have the latent shape {z.shape[1:].as_list()}; got '
            f'{direction.shape.as_list()}.'
        )
    count, num_strengths = z.shape[0], strengths.shape[0]
    moved = (
        z[:, tf.newaxis] + tf.reshape(strengths, [1, -1, *[1] * direction.shape.rank]) * direction
    )
    moved = tf.reshape(moved, [count * num_strengths, *z.shape[1:]])
    decoded = _map(flow, False, moved, _repeat_contexts(conditional_input, count, num_strengths))
    return tf.reshape(decoded, [count, num_strengths, *decoded.shape[1:]])


def _class_samples(flow, num_classes, num_per_class, temperature, seed):
    latent = sample_latent(flow, num_per_class, temperature, seed)
    contexts = [
        tf.one_hot([k] * num_per_class, num_classes, dtype=flow.dtype) for k in range(num_classes)
    ]
    return tf.stack([_map(flow, False, latent, context) for context in contexts])


def class_samples(flow, num_classes, num_per_class, temperature=1.0, seed=0):
    """Samples of a flow conditional on one-hot labels of `num_classes` classes (its
    `conditional_shape`): [num_classes, num_per_class, *E]. Row k decodes the same base noise
    as every other row, given label k, so the rows differ by the class alone. `temperature`
    and `seed` are those of `tfp_flows.sample`."""
    check_flow(flow)
    checks.POSITIVE_INT.check('num_classes', num_classes)
    checks.POSITIVE_INT.check('num_per_class', num_per_class)
    if conditional_shape_of(flow) != (num_classes,):
        raise ValueError(
            f'class_samples needs a flow conditional on one-hot labels of {num_classes} '
            f'classes (conditional_shape ({num_classes},)); got {conditional_shape_of(flow)}.'
        )
    return _class_samples(flow, num_classes, num_per_class, temperature, seed)


def class_sample_figure(flow, num_bins, temperatures, seed, num_per_class=6):
    """`class_samples` of an image flow on one-hot labels as one labelled figure: a panel per
    temperature (of the same base noise, from `seed`), row k class k, `num_per_class` a row.
    Returns (the uint8 RGB figure, each temperature's uint8 grid), as `sample_figure`.
    """
    check_flow(flow)
    check_num_bins(num_bins)
    temperatures = checks.TEMPERATURES.check('temperatures', temperatures)
    checks.SEED.check('seed', seed)
    checks.POSITIVE_INT.check('num_per_class', num_per_class)
    shape = conditional_shape_of(flow)
    if shape is None or len(shape) != 1:
        raise ValueError(
            'class_sample_figure needs a flow conditional on one-hot labels (conditional_shape '
            f'(K,)); got conditional_shape {shape}.'
        )
    grids = [
        pictures.row_grid(_class_samples(flow, shape[0], num_per_class, t, seed), num_bins)
        for t in temperatures
    ]
    titles = [f'temperature {t}, row k: class k' for t in temperatures]
    return pictures.labelled_panels(grids, titles), grids
