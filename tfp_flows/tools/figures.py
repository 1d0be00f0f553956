"""The figure of a finished run, from its workdir alone (the README's pictures are made so).

    python -m tfp_flows.tools.figures --workdir=/tmp/glow_digits --out=docs/glow_digits_samples.png

Image data: samples of the run's best checkpoint at each temperature, side by side and
labelled (`images.sample_figure`; one row per class for a label-conditional run,
`latent.class_sample_figure`), from the run's seed and `config.train.sample_temperatures`
unless `--seed` or `--temperatures` is given: with neither, the same picture as the run's
last `samples/epoch_EEEE.png`. 2-D data: the learned density beside the test data, the same
picture as the run's `density.png`.
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
from tfp_flows.run.restore import restore_flow
from tfp_flows.tools import latent
from tfp_flows.tools import pictures as images
from tfp_flows.validation import Interval, check_int, check_number_list

__all__ = ['main', 'run_figure']


def run_figure(workdir, temperatures=None, seed=None):
    """The figure of the run in `workdir`, as uint8 RGB [H, W, 3].

    Args:
      workdir: a run's directory (`config.json` and `checkpoints/best` are read).
      temperatures: sample temperatures (image data); default the run's.
      seed: int seed of the samples (image data); default the run's `config.seed`.

    Raises:
      FileNotFoundError: `workdir` holds no run or no best checkpoint.
      ValueError: the checkpoint does not match the config, or the data is neither images
        nor unconditional 2-D points; before any work, `temperatures` is not None or a
        non-empty list of finite numbers > 0, or `seed` not None or an int in [0, 2**31).
    """
    if temperatures is not None:
        temperatures = images.check_temperatures(temperatures)
    check_int('seed', seed, low=0, high=2**31, allow_none=True)
    flow = restore_flow(workdir)
    with open(os.path.join(workdir, 'config.json')) as f:
        config = ml_collections.ConfigDict(json.load(f))
    event_shape = tuple(config.data.event_shape)
    conditional = conditional_shape_of(flow) is not None
    if len(event_shape) == 3:
        temperatures = temperatures or tuple(config.train.sample_temperatures)
        seed = config.seed if seed is None else seed
        figure_fn = latent.class_sample_figure if conditional else images.sample_figure
        figure, _ = figure_fn(flow, config.data.num_bins, temperatures, seed)
        return figure
    if event_shape != (2,) or conditional:
        raise ValueError(
            'A figure needs image data [H, W, C] or unconditional 2-D points; the run in '
            f'{workdir!r} has event_shape {list(event_shape)}'
            + (' and a conditional model.' if conditional else '.')
        )
    test_ds, _ = data.make_dataset(
        config.data.name,
        config.data.splits.test,
        1024,
        shuffle=False,
        data_dir=config.data.data_dir,
        image_size=config.data.image_size,
        columns=config.data.get('columns'),
    )
    points = np.concatenate([batch.numpy() for batch in test_ds])
    return images.density_figure(
        lambda x: flow.log_prob(tf.cast(x, flow.dtype)), points, points_label='test data'
    )


def main(argv=None):
    """The command line; returns the exit status (0, or 1 with a one-line error).

    The flags are checked before any work: `--temperatures` must be finite numbers > 0 and
    `--seed` an int in [0, 2**31); `--out` must not exist unless `--overwrite`.
    """
    parser = argparse.ArgumentParser(
        prog='python -m tfp_flows.tools.figures',
        description='Writes the figure of a finished run (samples at each temperature, or the '
        "learned 2-D density) as a PNG, from the run's workdir.",
    )
    parser.add_argument('--workdir', required=True, help="The run's --workdir.")
    parser.add_argument('--out', required=True, help='The PNG file to write.')
    parser.add_argument(
        '--temperatures',
        type=float,
        nargs='+',
        help="Sample temperatures, one panel each (default: the run's).",
    )
    parser.add_argument('--seed', type=int, help="Seed of the samples (default: the run's).")
    parser.add_argument('--overwrite', action='store_true', help='Replace --out if it exists.')
    args = parser.parse_args(argv)
    try:
        if args.temperatures is not None:
            check_number_list(
                '--temperatures',
                args.temperatures,
                Interval(low=0, low_open=True),
                images.TEMPERATURES,
            )
        if args.seed is not None:
            check_int('--seed', args.seed, low=0, high=2**31)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    if os.path.exists(args.out) and not args.overwrite:
        print(
            f'--out {args.out!r} already exists; pass --overwrite to replace it.', file=sys.stderr
        )
        return 1
    try:
        figure = run_figure(args.workdir, args.temperatures, args.seed)
        images.write_png(args.out, figure)
    except (OSError, ValueError) as error:  # A missing or unreadable workdir, a bad --out.
        print(error, file=sys.stderr)
        return 1
    print(f'Wrote {args.out} ({figure.shape[1]}x{figure.shape[0]} pixels).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
