"""Which digits model is best by validation bits/dim: one candidate recipe per run.

A candidate is the default recipe (configs/default.py) with config overrides (`--set
SECTION.KEY=VALUE`, e.g. `--set model.family='real_nvp' --set model.preprocessing='logit'`),
and optionally a variational dequantizer (`--set dequantizer.kind='variational'`, see
`tfp_flows.variational_dequantization.VariationalDequantizer`). The flow is built by
`tfp_flows.experiment.build_flow` and the optimizer by `tfp_flows.optimizers.make_optimizer`, as
`train_and_evaluate` does; the loop is a plain `tf.function` over each epoch's batches
(GradientTape, global-norm clipping as `FlowTrainer`, the Keras optimizer) on the loss that
both training and evaluation share, `tfp_flows.dequantization.dequantized_bits_per_dim`, so the
flow and the dequantizer train jointly. (`FlowTrainer` does not train a dequantizer yet.)

Selection and figures: after every epoch, validation bits/dim (one-sample bound, one fixed
noise draw per image); the best epoch's weights are kept. Reported for them: validation and
test one-sample bound (fixed noise) and the importance-weighted estimate with
`--iw_samples` draws (`importance_weighted_bits_per_dim`), the training time (wall clock and
this process's CPU seconds) and the CPU share other processes took meanwhile.

    python bench/digits_recipes.py --out results.jsonl --set train.epochs=60
    python bench/digits_recipes.py --out results.jsonl --set dequantizer.kind="'variational'"

Each run appends one JSON line to --out.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # `configs` and this checkout's `tfp_flows`.

import ml_collections  # noqa: E402
from glow_ablation import _cpu_jiffies, apply_overrides  # noqa: E402


def dequantizer_config():
    config = ml_collections.ConfigDict()
    config.kind = 'uniform'  # 'uniform' or 'variational'.
    config.num_steps = 4
    config.hidden_channels = 32
    config.context_channels = 8
    return config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='Appends one JSON line per run.')
    parser.add_argument('--set', action='append', default=[], metavar='SECTION.KEY=VALUE')
    parser.add_argument('--iw_samples', type=int, default=128)
    parser.add_argument('--label', default='', help='A name for the run in the output.')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from configs import default

    config = default.get_config()
    config.dequantizer = dequantizer_config()
    apply_overrides(config, args.set)

    import keras
    import numpy as np
    import tensorflow as tf

    from tfp_flows import data, experiment
    from tfp_flows.dequantization import (
        dequantized_bits_per_dim,
        importance_weighted_bits_per_dim,
        uniform_dequantize,
    )
    from tfp_flows.distribute import configure_threads
    from tfp_flows.initialization import initialize
    from tfp_flows.optimizers import make_optimizer
    from tfp_flows.variational_dequantization import VariationalDequantizer

    configure_threads(config.train.intra_op_threads, config.train.inter_op_threads)
    keras.utils.set_random_seed(config.seed)
    num_bins, event_shape = 17, (8, 8, 1)
    train, validation, test = (data.load_digits(s) for s in ('train', 'validation', 'test'))
    batch_size = config.train.batch_size
    steps_per_epoch = len(train) // batch_size
    dataset = (
        tf.data.Dataset.from_tensor_slices(train)
        .shuffle(len(train), seed=config.seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(2)
    )

    flow = experiment.build_flow(config.model, event_shape)
    dequantizer = None
    if config.dequantizer.kind == 'variational':
        dequantizer = VariationalDequantizer(
            event_shape,
            num_bins,
            num_steps=config.dequantizer.num_steps,
            hidden_channels=config.dequantizer.hidden_channels,
            context_channels=config.dequantizer.context_channels,
            seed=config.seed,
        )
    elif config.dequantizer.kind != 'uniform':
        raise SystemExit(
            f'dequantizer.kind must be uniform or variational; got {config.dequantizer.kind!r}'
        )
    # ActNorm from the first batch, dequantized as q does it at initialisation (uniformly).
    first = next(iter(dataset))
    initialize(flow, uniform_dequantize(first, num_bins, seed=[config.seed, 0]))
    variables = [
        *flow.trainable_variables,
        *(dequantizer.trainable_variables if dequantizer else ()),
    ]
    optimizer = make_optimizer(
        config.train.optimizer,
        config.train.learning_rate,
        warmup_steps=config.train.warmup_steps,
        decay_steps=config.train.epochs * steps_per_epoch if config.train.cosine_decay else None,
        weight_decay=config.train.weight_decay,
    )
    optimizer.build(variables)
    clip_norm = config.train.clip_norm

    @tf.function
    def train_step(batch, seed):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                dequantized_bits_per_dim(flow, dequantizer, batch, num_bins, seed)
            )
        gradients = tape.gradient(loss, variables)
        if clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
        optimizer.apply(gradients, variables)
        return loss

    def train_epoch(epoch):
        # One call into TF per step: a loop over the dataset inside one tf.function ran 5x
        # slower here (measured), as does Keras' `fit`'s speed.
        losses = [
            train_step(batch, tf.constant([epoch, step + 1])) for step, batch in enumerate(dataset)
        ]
        return float(np.mean(losses))

    @tf.function
    def bound(pixels, seed):
        return tf.reduce_mean(dequantized_bits_per_dim(flow, dequantizer, pixels, num_bins, seed))

    @tf.function
    def importance_weighted(pixels, seed):
        return tf.reduce_mean(
            importance_weighted_bits_per_dim(
                flow, dequantizer, pixels, num_bins, args.iw_samples, seed
            )
        )

    validation_seed, test_seed = tf.constant([10_001, 1]), tf.constant([10_002, 1])
    best = (math.inf, -1, None)
    history = []
    jiffies, cpu, start = _cpu_jiffies(), time.process_time(), time.monotonic()
    for epoch in range(config.train.epochs):
        train_bits = train_epoch(epoch)
        validation_bits = float(bound(validation, validation_seed))
        history.append((round(train_bits, 4), round(validation_bits, 4)))
        if not math.isfinite(train_bits):
            break
        if validation_bits < best[0]:
            best = (validation_bits, epoch, [v.numpy() for v in variables])
    train_wall, train_cpu = time.monotonic() - start, time.process_time() - cpu
    after = _cpu_jiffies()
    for variable, value in zip(variables, best[2], strict=True):
        variable.assign(value)
    figures = {
        'validation_bits_per_dim': float(bound(validation, validation_seed)),
        'test_bits_per_dim': float(bound(test, test_seed)),
        'validation_bits_per_dim_iw': float(importance_weighted(validation, validation_seed)),
        'test_bits_per_dim_iw': float(importance_weighted(test, test_seed)),
    }
    busy, total = after[0] - jiffies[0], after[1] - jiffies[1]
    record = {
        'label': args.label,
        'date_utc': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'overrides': args.set,
        'iw_samples': args.iw_samples,
        **figures,
        'best_epoch': best[1] + 1,
        'epochs': len(history),
        'steps': len(history) * steps_per_epoch,
        'train_wall_s': round(train_wall, 1),
        'train_cpu_s': round(train_cpu, 1),
        'others_cpu_frac': round(max(0.0, busy - train_cpu) / total, 3) if total else None,
        'num_parameters': int(sum(np.prod(v.shape) for v in variables)),
        'dequantizer_parameters': int(
            sum(np.prod(v.shape) for v in dequantizer.trainable_variables) if dequantizer else 0
        ),
        'history': history,
    }
    with open(args.out, 'a') as f:
        f.write(json.dumps(record) + '\n')
    summary = {k: v for k, v in record.items() if k != 'history'}
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
