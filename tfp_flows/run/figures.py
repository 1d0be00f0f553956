"""The figures of a finished run, from its workdir alone (the README's pictures are made so).

    python -m tfp_flows.run.figures --workdir=W --out=PNG        # the run's figure
    python -m tfp_flows.run.figures --workdir=W --out_dir=DIR    # latent figures (images)

`--out`: for image data, samples of the run's best checkpoint at each temperature, side by
side and labelled (one row per class for a label-conditional run), from the run's seed and
`config.train.sample_temperatures` unless `--seed` or `--temperatures` is given: with neither,
the same picture as the run's last `samples/epoch_EEEE.png`. For 2-D data, the learned density
beside the test data, as the run's `density.png`.

`--out_dir` (image data), from test images of the run's data (`tools.latent`):

    interpolations.png  pairs of test images (one row each) and the decodings between them;
    temperatures.png    the same base noise at each temperature (one panel each);
    directions.png      (labelled data) one row per class: a test image moved along that
                        class's direction (mean latent of the class minus the rest);
    class_samples.png   (flows conditional on one-hot labels) one row of samples per class.
"""

import argparse
import os
import sys

from tfp_flows import checks
from tfp_flows.run import cli
from tfp_flows.run import workdir as workdirs

__all__ = ['LATENT_FIGURES', 'latent_figures', 'main', 'run_figure']

LATENT_FIGURES = ('interpolations', 'temperatures', 'directions', 'class_samples')
_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)  # Of the latent figures.
_STRENGTHS = (-2.0, -1.0, 0.0, 1.0, 2.0)
_NUM_POINTS, _NUM_ROWS = 8, 6  # Points along an interpolation; rows of a latent figure.


def _read_run(workdir):
    """(flow of the best checkpoint, config) of the run in `workdir`."""
    import ml_collections

    from tfp_flows.run.restore import restore_flow

    flow = restore_flow(workdir)  # FileNotFoundError without a config.json.
    return flow, ml_collections.ConfigDict(workdirs.read_json(os.path.join(workdir, 'config.json')))


def run_figure(workdir, temperatures=None, seed=None):
    """The figure of the run in `workdir` (`--out`), uint8 RGB [H, W, 3]; `temperatures` and
    `seed` (image data) default to the run's. `FileNotFoundError` if `workdir` holds no run or
    no best checkpoint, `ValueError` for a checkpoint that does not match, data neither images
    nor unconditional 2-D points, or (before any work) arguments out of their domains."""
    from tfp_flows.bijectors.context import conditional_shape_of
    from tfp_flows.tools import latent, pictures

    if temperatures is not None:
        temperatures = checks.TEMPERATURES.check('temperatures', temperatures)
    checks.SEED.or_none().check('seed', seed)
    flow, config = _read_run(workdir)
    conditional = conditional_shape_of(flow) is not None
    if len(config.data.event_shape) == 3:
        if temperatures is None:
            temperatures = tuple(config.train.sample_temperatures)
        seed = config.seed if seed is None else seed
        figure_fn = latent.class_sample_figure if conditional else pictures.sample_figure
        return figure_fn(flow, config.data.num_bins, temperatures, seed)[0]
    if tuple(config.data.event_shape) != (2,) or conditional:
        raise ValueError(
            'A figure needs image data [H, W, C] or unconditional 2-D points; the run in '
            f'{workdir!r} has event_shape {list(config.data.event_shape)}'
            + (' and a conditional model.' if conditional else '.')
        )
    import numpy as np
    import tensorflow as tf

    test, info = _test_split(config, 1024, False)
    points = np.concatenate([batch.numpy() for batch in test])

    def log_prob(x):
        return flow.log_prob(tf.cast(x, flow.dtype))

    names = info.statistics and info.statistics.columns
    return pictures.density_figure(log_prob, points, points_label='test data', axis_names=names)


def _test_split(config, batch_size, shuffle, conditional=False):
    """The run's test split: (dataset of batches of `batch_size`, `DatasetInfo`)."""
    from tfp_flows import data

    return data.make_dataset(
        config.data.name,
        config.data.splits.test,
        batch_size,
        shuffle=shuffle,
        seed=config.seed,
        data_dir=config.data.get('data_dir'),
        image_size=config.data.get('image_size'),
        conditional=conditional,
        columns=config.data.get('columns'),
    )


def _test_images(config, num_examples, conditional):
    """(x [N, H, W, C], int labels [N] or None, `DatasetInfo`): `num_examples` shuffled test
    images of the run, with their labels if the data has labels."""
    import numpy as np

    try:
        dataset, info = _test_split(config, num_examples, True, conditional=True)
        x, one_hot = next(iter(dataset))
        return x.numpy(), np.argmax(one_hot, axis=-1), info
    except ValueError:  # Data without labels.
        if conditional:
            raise
    dataset, info = _test_split(config, num_examples, True)
    return next(iter(dataset)).numpy(), None, info


def _latent_pictures(flow, test, temperatures, strengths, seed):
    """{name: picture} of the latent figures of `test` = (x, labels, contexts, `DatasetInfo`)."""
    import numpy as np

    from tfp_flows.tools import latent, pictures

    x, labels, context, info = test
    rows, num_bins = _NUM_ROWS, info.num_bins

    def first(count):  # The contexts of the first `count` images, or None.
        return None if context is None else context[:count]

    pairs = latent.interpolate(flow, x[:rows], x[rows : 2 * rows], _NUM_POINTS, first(rows))
    sweep = np.asarray(latent.temperature_sweep(flow, temperatures, rows, seed, first(rows)))
    panels = {
        'interpolations': (
            [pictures.row_grid(pairs, num_bins)],
            [f'interpolations, {_NUM_POINTS} points'],
        ),
        'temperatures': (
            [pictures.image_grid(column, num_bins, 1) for column in sweep],
            [f'T={t:g}' for t in temperatures],
        ),
    }
    if labels is not None:  # One row per class: the first image moved along its direction.
        num_classes = len(info.class_names)
        directions = latent.class_directions(flow, x, labels, num_classes, context)
        moved = [latent.move(flow, x[:1], d, strengths, first(1))[0] for d in directions]
        title = f'row k: class k, strength {strengths[0]:g} to {strengths[-1]:g}'
        panels['directions'] = ([pictures.row_grid(moved, num_bins)], [title])
    if context is not None:  # A flow conditional on the one-hot labels.
        samples = latent.class_samples(flow, len(info.class_names), rows, 0.7, seed)
        panels['class_samples'] = (
            [pictures.row_grid(samples, num_bins)],
            ['row k: class k, T=0.7'],
        )
    return {name: pictures.labelled_panels(*panel) for name, panel in panels.items()}


def latent_figures(
    workdir, num_examples=256, temperatures=_TEMPERATURES, strengths=_STRENGTHS, seed=0
):
    """The latent figures of the image run in `workdir` (`--out_dir`), from `num_examples`
    (>= 12) encoded test images; `strengths`: how far an image moves along each class
    direction. Returns ({name: uint8 RGB picture} of the `LATENT_FIGURES` the run has, the
    class names or None). Raises as `run_figure`, and `ValueError` for data not images."""
    import numpy as np

    from tfp_flows.bijectors.context import conditional_shape_of

    checks.integer(2 * _NUM_ROWS).check('num_examples', num_examples)
    temperatures = checks.TEMPERATURES.check('temperatures', temperatures)
    strengths = checks.NUMBERS.check('strengths', strengths)
    checks.SEED.check('seed', seed)
    flow, config = _read_run(workdir)
    if len(config.data.event_shape) != 3:
        raise ValueError(
            f'The latent figures need image data; the run in {workdir!r} has event_shape '
            f'{list(config.data.event_shape)}.'
        )
    conditional = conditional_shape_of(flow) is not None
    x, labels, info = _test_images(config, num_examples, conditional)
    context = None
    if conditional:  # One-hot labels.
        context = np.eye(len(info.class_names), dtype=flow.dtype.as_numpy_dtype)[labels]
    test = (x, labels, context, info)
    return _latent_pictures(flow, test, temperatures, strengths, seed), info.class_names


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m tfp_flows.run.figures',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--workdir', required=True, help="The run's --workdir.")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument('--out', help="The PNG file of the run's figure.")
    out.add_argument('--out_dir', help='The directory of the latent figures (PNG files).')
    parser.add_argument(
        '--temperatures',
        type=float,
        nargs='+',
        help="Sample temperatures, one panel each (default: the run's for --out; "
        f'{" ".join(f"{t:g}" for t in _TEMPERATURES)} for --out_dir).',
    )
    parser.add_argument(
        '--seed',
        type=int,
        help="Seed of the samples (default: the run's for --out, 0 for --out_dir).",
    )
    parser.add_argument(
        '--strengths',
        type=float,
        nargs='+',
        default=list(_STRENGTHS),
        help='--out_dir: how far to move an image along each class direction.',
    )
    parser.add_argument(
        '--num_examples', type=int, default=256, help='--out_dir: test images to encode.'
    )
    parser.add_argument('--overwrite', action='store_true', help='Replace existing PNGs.')
    return parser


def _check_flags(args):
    """Raises `ValueError` for a flag outside its domain or an output that exists, before
    TensorFlow is imported."""
    if args.temperatures is not None:
        checks.TEMPERATURES.check('--temperatures', args.temperatures)
    checks.NUMBERS.check('--strengths', args.strengths)
    checks.SEED.or_none().check('--seed', args.seed)
    checks.integer(2 * _NUM_ROWS).check('--num_examples', args.num_examples)
    if args.out is not None and os.path.exists(args.out) and not args.overwrite:
        raise ValueError(f'--out {args.out!r} already exists; pass --overwrite to replace it.')
    if args.out_dir is not None and not args.overwrite:
        existing = [n for n in LATENT_FIGURES if os.path.exists(_png(args.out_dir, n))]
        if existing:
            raise ValueError(
                f'--out_dir {args.out_dir!r} already holds {", ".join(existing)} (.png); pass '
                '--overwrite to replace them.'
            )


def _png(out_dir, name):
    return os.path.join(out_dir, f'{name}.png')


def _write(args):
    """Computes and writes the figures the flags ask for; returns the lines to print."""
    from tfp_flows.tools import pictures

    if args.out is not None:
        figure = run_figure(args.workdir, args.temperatures, args.seed)
        pictures.write_png(args.out, figure)
        return [f'Wrote {args.out} ({figure.shape[1]}x{figure.shape[0]} pixels).']
    temperatures = args.temperatures or _TEMPERATURES
    seed = 0 if args.seed is None else args.seed
    figures, class_names = latent_figures(
        args.workdir, args.num_examples, temperatures, args.strengths, seed
    )
    lines = []
    for name, figure in figures.items():
        pictures.write_png(_png(args.out_dir, name), figure)
        lines.append(f'Wrote {_png(args.out_dir, name)}.')
    if class_names is not None:
        lines.append(f'Row k of the class figures is class k of: {", ".join(class_names)}.')
    return lines


def main(argv=None):
    """The command line; returns the exit status: 0, or 1 with a one-line error (argparse
    exits with 2 for a usage error). TensorFlow loads after the flags are checked."""
    args = _parser().parse_args(argv)
    try:
        _check_flags(args)
    except ValueError as error:
        print(f'Error: {cli.error_line(error)}', file=sys.stderr)
        return 1
    cli.quiet_tensorflow()  # As train.py, before TensorFlow loads.
    try:
        lines = _write(args)
    except (OSError, ValueError) as error:  # A missing or unreadable workdir, a bad --out.
        print(f'Error: {cli.error_line(error)}', file=sys.stderr)
        return 1
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
