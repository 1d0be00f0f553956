"""Working in a flow's latent space: interpolations, temperature sweeps, class directions.

The latent z = flow.bijector.inverse(x) is the standard Normal base value of x (with a learned
prior, before it: the prior is a step of the bijector), so linear paths and shifts in z decode
to images along the data manifold, as in Glow (Kingma and Dhariwal 2018, Sec. 5 and Fig. 5/6,
https://arxiv.org/abs/1807.03039). Each function takes an optional `conditional_input` for a
conditional flow, passed to the bijector with every example's latent.

The command writes the pictures of a finished run (image data):

    python -m tfp_flows.tools.latent --workdir=W --out_dir=D

D/interpolations.png  pairs of test images (one row each) and the decodings between them;
D/temperatures.png    the same base noise at each temperature (one panel each);
D/directions.png      (labelled data) one row per class: a test image moved along that class's
                      direction (mean latent of the class minus the rest) with each strength;
D/class_samples.png   (flows conditional on one-hot labels) one row of samples per class.
"""

import argparse
import json
import os
import sys

import ml_collections
import numpy as np
import tensorflow as tf

from tfp_flows import data
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.models import check_flow, check_temperature, sample_latent
from tfp_flows.run.restore import restore_flow
from tfp_flows.run.workdir import check_path
from tfp_flows.tools import pictures as images
from tfp_flows.validation import (
    Interval,
    check_int,
    check_number_list,
    check_one_of,
    check_positive_int,
)

__all__ = [
    'class_directions',
    'class_sample_figure',
    'class_samples',
    'decode',
    'encode',
    'interpolate',
    'main',
    'move',
    'temperature_sweep',
    'write_figures',
]

_PATHS = ('linear', 'spherical')


def _kwargs(conditional_input):
    return {} if conditional_input is None else {'conditional_input': conditional_input}


def encode(flow, x, conditional_input=None):
    """The latent of `x` [N, *E]: `flow.bijector.inverse(x)`, [N, *Z].

    Raises `TypeError` for a `flow` that is not a `tfd.TransformedDistribution`; the flow's
    steps refuse data of another shape and a context the flow cannot take (`ValueError`).
    """
    check_flow(flow)
    x = tf.convert_to_tensor(x, flow.dtype)
    return flow.bijector.inverse(x, **_kwargs(conditional_input))


def decode(flow, z, conditional_input=None):
    """The data of latent `z` [N, *Z]: `flow.bijector.forward(z)`, [N, *E].

    Errors as `encode`.
    """
    check_flow(flow)
    z = tf.convert_to_tensor(z, flow.dtype)
    return flow.bijector.forward(z, **_kwargs(conditional_input))


def interpolate(flow, x_start, x_end, num_points=8, conditional_input=None, path='linear'):
    """Decodings along a path in latent space between `x_start` and `x_end`.

    With z_0, z_1 the latents of the two ends and t = 0, 1 / (P - 1), ..., 1:
      'linear':     z_t = (1 - t) z_0 + t z_1                       (Glow's Fig. 5)
      'spherical':  z_t = (sin((1 - t) a) z_0 + sin(t a) z_1) / sin a,  cos a = <z_0, z_1> /
                    (|z_0| |z_1|), which keeps |z| near the typical radius of the Normal base.
    The ends are the reconstructions of `x_start` and `x_end`.

    Args:
      flow: an image or vector flow.
      x_start, x_end: [N, *E] (N pairs).
      num_points: P >= 2, points along each path, ends included.
      conditional_input: contexts [N, *K] (or one [*K]) of a conditional flow, used at every
        point of a path.
      path: 'linear' or 'spherical'.

    Returns:
      [N, P, *E] in the flow's dtype.
    """
    check_flow(flow)
    check_int('num_points', num_points, 2)
    check_one_of('path', path, _PATHS)
    x_start = tf.convert_to_tensor(x_start, flow.dtype)
    x_end = tf.convert_to_tensor(x_end, flow.dtype)
    if x_start.shape != x_end.shape:
        raise ValueError(
            f'`x_start` and `x_end` must have the same shape; got {x_start.shape} and '
            f'{x_end.shape}.'
        )
    z_start = encode(flow, x_start, conditional_input)
    z_end = encode(flow, x_end, conditional_input)
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
    decoded = decode(flow, latents, contexts)
    return tf.reshape(decoded, [count, num_points, *decoded.shape[1:]])


def _check_strengths(strengths):
    """`strengths` as a tuple of finite numbers (at least one); else `ValueError`."""
    return check_number_list(
        'strengths', strengths, Interval(), 'a non-empty list of finite numbers'
    )


def _repeat_contexts(conditional_input, count, repeats):
    """Contexts of `count` examples, each repeated `repeats` times ([*K] stays as it is)."""
    if conditional_input is None:
        return None
    context = tf.convert_to_tensor(conditional_input)
    if context.shape.rank == 0 or context.shape[0] != count:
        return context
    return tf.repeat(context, repeats, axis=0)


def temperature_sweep(flow, temperatures, num_samples, seed, conditional_input=None):
    """Samples of one base noise at each temperature: [T, num_samples, *E].

    Row i is `tfp_flows.sample(flow, num_samples, temperatures[i], seed)`: the same z, scaled,
    so the rows differ by the temperature alone.

    Args:
      temperatures: finite numbers > 0.
      num_samples: int >= 1.
      seed: int seed (or a stateless seed [2]) of the base noise.
      conditional_input: contexts [num_samples, *K] (or one) of a conditional flow.
    """
    check_flow(flow)
    temperatures = images.check_temperatures(temperatures)
    check_positive_int('num_samples', num_samples)
    latent = sample_latent(flow, num_samples, 1.0, seed)
    rows = [
        decode(flow, check_temperature(t, flow.dtype) * latent, conditional_input)
        for t in temperatures
    ]
    return tf.stack(rows)


def class_directions(flow, x, labels, num_classes, conditional_input=None, batch_size=256):
    """For each class k, the mean latent of its examples minus the mean latent of the rest.

    Glow's attribute manipulation (Sec. 5, Fig. 6): d_k = mean(z | y = k) - mean(z | y != k).

    Args:
      x: examples [N, *E].
      labels: int class labels [N] in [0, num_classes).
      num_classes: int >= 2.
      conditional_input: contexts [N, *K] of a conditional flow (or one context).
      batch_size: examples encoded per call.

    Returns:
      [num_classes, *Z] in the flow's dtype.

    Raises:
      ValueError: labels outside [0, num_classes), of another length than `x`, or a class
        with no example (or every example).
    """
    check_flow(flow)
    check_int('num_classes', num_classes, 2)
    check_positive_int('batch_size', batch_size)
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
        latents.append(encode(flow, x[start : start + batch_size], part).numpy())
    latents = np.concatenate(latents).astype(np.float64)
    directions = [
        latents[labels == k].mean(axis=0) - latents[labels != k].mean(axis=0)
        for k in range(num_classes)
    ]
    return tf.constant(np.stack(directions), flow.dtype)


def move(flow, x, direction, strengths, conditional_input=None):
    """Decodings of latent(x) + s * direction for each strength s: [N, S, *E].

    Args:
      x: examples [N, *E].
      direction: [*Z], e.g. a row of `class_directions`.
      strengths: numbers (0 reconstructs x).
      conditional_input: contexts [N, *K] (or one) of a conditional flow.
    """
    check_flow(flow)
    strengths = tf.constant(_check_strengths(strengths), flow.dtype)
    z = encode(flow, x, conditional_input)
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
    decoded = decode(flow, moved, _repeat_contexts(conditional_input, count, num_strengths))
    return tf.reshape(decoded, [count, num_strengths, *decoded.shape[1:]])


def class_samples(flow, num_classes, num_per_class, temperature=1.0, seed=0):
    """Samples of a flow conditional on one-hot labels: [num_classes, num_per_class, *E].

    Row k decodes the same base noise as every other row, given the one-hot label k, so the
    rows differ by the class alone.

    Raises:
      ValueError: the flow is not conditional on a one-hot label of `num_classes` classes.
    """
    check_flow(flow)
    check_int('num_classes', num_classes, 1)
    check_positive_int('num_per_class', num_per_class)
    if conditional_shape_of(flow) != (num_classes,):
        raise ValueError(
            f'class_samples needs a flow conditional on one-hot labels of {num_classes} '
            f'classes (conditional_shape ({num_classes},)); got {conditional_shape_of(flow)}.'
        )
    latent = sample_latent(flow, num_per_class, temperature, seed)
    rows = [
        decode(flow, latent, tf.one_hot([k] * num_per_class, num_classes, dtype=flow.dtype))
        for k in range(num_classes)
    ]
    return tf.stack(rows)


def class_sample_figure(flow, num_bins, temperatures, seed, num_per_class=6):
    """Samples of a flow conditional on one-hot labels: one row per class, a panel per
    temperature, as one labelled figure (what a conditional image run writes each epoch).

    Every panel decodes the same base noise (`class_samples` with `seed`), scaled by its
    temperature; row k of each panel is class k, so rows differ by the class alone.

    Args:
      flow: an image flow with `conditional_shape` (K,), K classes.
      num_bins: levels of the data (17 for the digits, 256 for 8-bit images).
      temperatures: one panel each, finite numbers > 0.
      seed: int in [0, 2**31), the seed of the base noise.
      num_per_class: samples per row, a positive int.

    Returns:
      (figure, grids): the uint8 RGB figure (`images.labelled_panels`) and each temperature's
      uint8 grid [K rows of `num_per_class`].

    Raises:
      ValueError: before any sampling, for an argument outside its domain, or a flow that is
        not conditional on a one-hot label ([K]).
    """
    check_flow(flow)
    check_int('num_bins', num_bins, low=2)
    temperatures = images.check_temperatures(temperatures)
    check_int('seed', seed, low=0, high=2**31)
    check_positive_int('num_per_class', num_per_class)
    shape = conditional_shape_of(flow)
    if shape is None or len(shape) != 1:
        raise ValueError(
            'class_sample_figure needs a flow conditional on one-hot labels (conditional_shape '
            f'(K,)); got conditional_shape {shape}.'
        )
    grids = [
        _grid(class_samples(flow, shape[0], num_per_class, temperature, seed), num_bins)
        for temperature in temperatures
    ]
    titles = [f'temperature {t}, row k: class k' for t in temperatures]
    return images.labelled_panels(grids, titles), grids


def _grid(rows, num_bins):
    """An `image_grid` with one row per entry of `rows` [R, C, H, W, ch]."""
    rows = np.asarray(rows)
    return images.image_grid(rows.reshape([-1, *rows.shape[2:]]), num_bins, rows.shape[1])


def write_figures(
    flow,
    x,
    num_bins,
    out_dir,
    labels=None,
    class_names=None,
    conditional_input=None,
    temperatures=(0.2, 0.4, 0.6, 0.8, 1.0),
    strengths=(-2.0, -1.0, 0.0, 1.0, 2.0),
    num_points=8,
    num_rows=6,
    seed=0,
):
    """Writes the latent figures of an image flow as PNGs into `out_dir`; returns their paths.

    Args:
      flow: an image flow on data in [0, 1].
      x: test images [N, H, W, C] in [0, 1], N >= 2 * num_rows.
      num_bins: levels of the data (for the grids).
      out_dir: directory for the PNGs (created).
      labels, class_names: int labels [N] and the class names, for 'directions.png'.
      conditional_input: contexts [N, *K] of `x` for a conditional flow.
      temperatures, strengths, num_points, num_rows, seed: what the figures show.

    Raises (before any figure is computed):
      TypeError: a `flow` that is not a `tfd.TransformedDistribution`, an `out_dir` that is
        not a path.
      ValueError: `x` not at least 2 * num_rows images, `num_bins` not an int >= 2,
        `temperatures` not finite numbers > 0, `strengths` not finite numbers, `num_points`
        not an int >= 2, `num_rows` not a positive int, `seed` not an int in [0, 2**31),
        `labels` without `class_names` or the other way round; the flow's steps refuse a
        context it cannot take, `class_directions` labels that do not fit `x`.
    """
    check_flow(flow)
    check_int('num_bins', num_bins, low=2)
    check_path('out_dir', out_dir)
    if (labels is None) != (class_names is None):
        raise ValueError(
            '`labels` and `class_names` go together (the directions figure needs both); got '
            f'labels={"None" if labels is None else "..."}, class_names={class_names!r}.'
        )
    temperatures = images.check_temperatures(temperatures)
    strengths = _check_strengths(strengths)
    check_int('num_points', num_points, 2)
    check_positive_int('num_rows', num_rows)
    check_int('seed', seed, low=0, high=2**31)
    x = np.asarray(x)
    if x.ndim != 4 or len(x) < 2 * num_rows:
        raise ValueError(
            f'`x` must be at least {2 * num_rows} images [N, H, W, C]; got shape {x.shape}.'
        )
    context = None if conditional_input is None else np.asarray(conditional_input)
    written = {}
    pairs = interpolate(
        flow,
        x[:num_rows],
        x[num_rows : 2 * num_rows],
        num_points,
        None if context is None else context[:num_rows],
    )
    written['interpolations'] = _labelled_png(
        out_dir,
        'interpolations',
        [_grid(pairs, num_bins)],
        [f'interpolations, {num_points} points'],
    )
    sweep_context = None if context is None else context[:num_rows]
    sweep = np.asarray(temperature_sweep(flow, temperatures, num_rows, seed, sweep_context))
    written['temperatures'] = _labelled_png(
        out_dir,
        'temperatures',
        [images.image_grid(column, num_bins, 1) for column in sweep],
        [f'T={t:g}' for t in temperatures],
    )
    if labels is not None and class_names is not None:
        num_classes = len(class_names)
        directions = class_directions(flow, x, labels, num_classes, context)
        base = x[:1]
        base_context = None if context is None else context[:1]
        rows = [move(flow, base, d, strengths, base_context)[0] for d in directions]
        written['directions'] = _labelled_png(
            out_dir,
            'directions',
            [_grid(rows, num_bins)],
            [f'row k: class k, strength {strengths[0]:g} to {strengths[-1]:g}'],
        )
    shape = conditional_shape_of(flow)
    if class_names is not None and shape == (len(class_names),):
        samples = class_samples(flow, len(class_names), num_rows, 0.7, seed)
        written['class_samples'] = _labelled_png(
            out_dir,
            'class_samples',
            [_grid(samples, num_bins)],
            ['row k: class k, T=0.7'],
        )
    return written


def _labelled_png(out_dir, name, pictures, titles):
    """`images.labelled_panels(pictures, titles)` written to out_dir/name.png; its path."""
    path = os.path.join(out_dir, f'{name}.png')
    images.write_png(path, images.labelled_panels(pictures, titles))
    return path


def _test_images(config, num_examples, conditional):
    """Up to `num_examples` test images of the run's data, with labels if there are any."""
    kwargs = dict(
        shuffle=True,
        seed=config.seed,
        data_dir=config.data.get('data_dir'),
        image_size=config.data.get('image_size'),
    )
    try:
        dataset, info = data.make_dataset(
            config.data.name, config.data.splits.test, num_examples, conditional=True, **kwargs
        )
        x, one_hot = next(iter(dataset))
        return x.numpy(), np.argmax(one_hot, axis=-1), info.class_names, info.num_bins
    except ValueError:
        if conditional:
            raise
    dataset, info = data.make_dataset(
        config.data.name, config.data.splits.test, num_examples, **kwargs
    )
    return next(iter(dataset)).numpy(), None, None, info.num_bins


def main(argv=None):
    """The command line; returns the exit status (0, or 1 with a one-line error)."""
    parser = argparse.ArgumentParser(
        prog='python -m tfp_flows.tools.latent',
        description='Writes latent-space figures of a finished image run: interpolations, a '
        'temperature sweep, class directions and per-class samples (labelled data).',
    )
    parser.add_argument('--workdir', required=True, help="The run's --workdir.")
    parser.add_argument('--out_dir', required=True, help='Directory for the PNGs.')
    parser.add_argument('--num_examples', type=int, default=256, help='Test images to use.')
    parser.add_argument('--temperatures', type=float, nargs='+', default=[0.2, 0.4, 0.6, 0.8, 1.0])
    parser.add_argument('--strengths', type=float, nargs='+', default=[-2, -1, 0, 1, 2])
    parser.add_argument('--seed', type=int, default=0, help='Seed of the samples.')
    parser.add_argument('--overwrite', action='store_true', help='Replace existing PNGs.')
    args = parser.parse_args(argv)
    names = ('interpolations', 'temperatures', 'directions', 'class_samples')
    existing = [n for n in names if os.path.exists(os.path.join(args.out_dir, f'{n}.png'))]
    if existing and not args.overwrite:
        print(
            f'--out_dir {args.out_dir!r} already holds {", ".join(existing)} (.png); pass '
            '--overwrite to replace them.',
            file=sys.stderr,
        )
        return 1
    try:
        flow = restore_flow(args.workdir)
        with open(os.path.join(args.workdir, 'config.json')) as f:
            config = ml_collections.ConfigDict(json.load(f))
        if len(config.data.event_shape) != 3:
            raise ValueError(
                f'The latent figures need image data; the run in {args.workdir!r} has '
                f'event_shape {list(config.data.event_shape)}.'
            )
        conditional = conditional_shape_of(flow) is not None
        x, labels, class_names, num_bins = _test_images(config, args.num_examples, conditional)
        context = None
        if conditional:
            context = tf.one_hot(labels, len(class_names), dtype=flow.dtype).numpy()
        written = write_figures(
            flow,
            x,
            num_bins,
            args.out_dir,
            labels=labels,
            class_names=class_names,
            conditional_input=context,
            temperatures=args.temperatures,
            strengths=args.strengths,
            seed=args.seed,
        )
    except (OSError, ValueError) as error:  # A missing or unreadable workdir, a bad --out.
        print(error, file=sys.stderr)
        return 1
    for path in written.values():
        print(f'Wrote {path}.')
    if class_names is not None:
        print(f'Row k of the class figures is class k of: {", ".join(class_names)}.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
