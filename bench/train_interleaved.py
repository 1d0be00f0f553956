"""Training: tfp_flows' Glow against TFP's `tfb.Glow`, interleaved in one process.

The peers' digits architecture (bench/peers/protocol.py: 8x8x1, L=2, K=4, width 64, LU 1x1
conv, affine coupling, training batch 64, float32), both ActNorm-initialised on the same batch
(the first of the pool below). Entries, each training its library's one flow:

  {ours,tfp}_{graph,xla}_<optimizer>  one step per call, as the peers train: a `tf.function`
      (graph) or `tf.function(jit_compile=True)` (XLA) of a GradientTape on the batch's mean
      -log p, its gradients w.r.t. the flow's trainable variables and one Adam(1e-3) update by
      a Keras optimizer built on those variables first. The optimizer is the same for both
      libraries (`--optimizers`): `tf_keras` (`tf_keras.optimizers.Adam`, the peers' protocol,
      bench/peers/tfp_glow.py), `keras` (Keras 3's Adam), `fused` (tfp_flows' `FusedAdam`).
  ours_{graph,xla}_fit_spe8  `tfp_flows.training.trainer.FlowTrainer` (the protocol's Adam 1e-3 from
      `make_optimizer`, no clipping) as `fit` runs it with 8 steps per call into TF: Keras'
      compiled train function on an iterator of the same batches through `tf.data`
      (`trainer.make_train_function()`, `trainer.train_function(iterator)`), so each call is 8
      steps and each repeat times `--steps` / 8 calls.

Each step trains on the next batch of one pool of 8 batches made up front (the same pool and
order for every entry; ours gets them + 0.5, its input convention). The timing is
bench/inference.py's: after a first call and `--warmup` calls per entry, each repeat runs
every entry for `--steps` steps in a new random order; per repeat, the ratio of TFP's best
entry's time per image to ours' (each library's best by median), as median [min, max] over
the repeats, in wall time and in this process's CPU time. Ratios, each among some entries:
`train` (all), `one_step` (ours' one-step entries, every TFP entry), `fit_spe8` (ours'
FlowTrainer entries, every TFP entry), `same_step_<optimizer>` (the one-step entries with
that optimizer only).

    python bench/train_interleaved.py --out=bench/results/train_interleaved.json
    python bench/train_interleaved.py --intra_op_threads=1 \\
        --out=bench/results/train_interleaved_intra1.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402
from inference import Entry, compare, cpu_flags, time_interleaved  # noqa: E402

STEPS_PER_EXECUTION = 8
OPTIMIZERS = ('tf_keras', 'keras', 'fused')


def make_adam(name: str):
    """Adam(1e-3) of the named Keras flavour (see the module docstring)."""
    if name == 'tf_keras':
        import tf_keras

        return tf_keras.optimizers.Adam(learning_rate=P.LEARNING_RATE)
    if name == 'keras':
        import keras

        return keras.optimizers.Adam(learning_rate=P.LEARNING_RATE)
    from tfp_flows.training.optimizers import FusedAdam

    return FusedAdam(learning_rate=P.LEARNING_RATE)


def one_step_fn(tf, dist, optimizer, jit: bool):
    """The peers' training step on `dist`: mean -log p, gradients, one optimizer update."""
    tvars = dist.trainable_variables
    optimizer.build(tvars)
    keras3 = not type(optimizer).__module__.startswith('tf_keras')  # Keras 3: apply
    sig = [tf.TensorSpec([P.TRAIN_BATCH, *P.IMAGE_SHAPE], tf.float32)]

    @tf.function(input_signature=sig, jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(x))
        grads = tape.gradient(loss, tvars)
        if keras3:
            optimizer.apply(grads, tvars)
        else:
            optimizer.apply_gradients(zip(grads, tvars, strict=True))
        return loss

    return step


def build_entries(tf, tfp, tfp_flows, pool, optimizers, steps):
    """{name: Entry} (see the module docstring), {name: last loss} (filled as they run) and
    {name: tracing count} of the one-step functions."""
    from tfp_glow import glow_distribution

    from tfp_flows.training.optimizers import make_optimizer
    from tfp_flows.training.trainer import FlowTrainer

    ours_pool = [tf.constant(x + np.float32(0.5)) for x in pool]
    tfp_pool = [tf.constant(x) for x in pool]
    flow = tfp_flows.glow(
        P.IMAGE_SHAPE,
        num_levels=P.GLOW_LEVELS,
        num_steps=P.GLOW_STEPS_PER_LEVEL,
        hidden_channels=P.GLOW_HIDDEN,
    )
    tfp_flows.initialize(flow, ours_pool[0])
    theirs, _ = glow_distribution(tfp, 0)
    theirs.log_prob(tfp_pool[0])  # TFP's ActNorm initialises itself on its first batch.
    last_loss = {}
    traces = {}  # name: zero-argument callable giving how often its tf.function was traced

    def stepper(name, step, batches):
        cycle = itertools.cycle(batches)

        def run():
            last_loss[name] = float(step(next(cycle)).numpy())

        return run

    entries = {}
    for opt_name in optimizers:
        for library, dist, batches in (('ours', flow, ours_pool), ('tfp', theirs, tfp_pool)):
            optimizer = make_adam(opt_name)  # One per library, shared by its graph and XLA step.
            for jit in (False, True):
                name = f'{library}_{"xla" if jit else "graph"}_{opt_name}'
                step = one_step_fn(tf, dist, optimizer, jit)
                traces[name] = step.experimental_get_tracing_count
                entries[name] = Entry('train', library, stepper(name, step, batches), P.TRAIN_BATCH)
    ds = tf.data.Dataset.from_tensor_slices(tf.stack(ours_pool)).repeat()
    for jit in (False, True):
        name = f'ours_{"xla" if jit else "graph"}_fit_spe{STEPS_PER_EXECUTION}'
        trainer = FlowTrainer(flow, num_bins=P.NUM_LEVELS)
        trainer.compile(
            make_optimizer('adam', P.LEARNING_RATE),
            jit_compile=jit,
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        trainer.make_train_function()
        iterator = iter(trainer.distribute_strategy.experimental_distribute_dataset(ds))

        def run(name=name, trainer=trainer, iterator=iterator):
            logs = trainer.train_function(iterator)
            last_loss[name] = float(logs[trainer.metric_name].numpy())  # bits/dim, running mean

        entries[name] = Entry(
            'train',
            'ours',
            run,
            STEPS_PER_EXECUTION * P.TRAIN_BATCH,
            calls=steps // STEPS_PER_EXECUTION,
        )
    return entries, last_loss, traces


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=None)
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=3, help='untimed calls per entry')
    parser.add_argument(
        '--steps',
        type=int,
        default=16,
        help='training steps per entry and repeat (a multiple of 8)',
    )
    parser.add_argument(
        '--optimizers',
        default=','.join(OPTIMIZERS),
        help=f'comma-separated, of {", ".join(OPTIMIZERS)}',
    )
    P.add_tf_thread_args(parser)
    args = parser.parse_args()
    optimizers = args.optimizers.split(',')
    if args.steps % STEPS_PER_EXECUTION or not set(optimizers) <= set(OPTIMIZERS):
        parser.error(f'--steps must be a multiple of 8, --optimizers of {OPTIMIZERS}')

    import tensorflow as tf
    import tensorflow_probability as tfp

    import tfp_flows

    threads = P.configure_tf_threads(tf, args)
    data = P.load_digits_split()
    pool = P.fixed_batches(data['train'], 8, P.TRAIN_BATCH)
    entries, last_loss, traces = build_entries(tf, tfp, tfp_flows, pool, optimizers, args.steps)
    timing = time_interleaved(entries, repeats=args.repeats, warmup=args.warmup, calls=args.steps)
    metrics, lines = compare(entries, timing)
    fit = f'fit_spe{STEPS_PER_EXECUTION}'
    groups = {  # ratio name: does an entry (library_mode_optimizer or ours_mode_fit_spe8) count
        'one_step': lambda lib, rest: lib == 'tfp' or rest != fit,
        fit: lambda lib, rest: lib == 'tfp' or rest == fit,
        **{f'same_step_{o}': lambda lib, rest, o=o: rest == o for o in optimizers},
    }
    for kind, counts in groups.items():
        subset = {
            n: dataclasses.replace(e, kind=kind)
            for n, e in entries.items()
            if counts(e.library, n.split('_', 2)[2])
        }
        m, extra = compare(subset, timing)
        metrics['ratios'].update(m['ratios'])
        lines += extra[len(subset) :]
    for name, e in metrics['entries'].items():
        e['steps_per_s'] = e['images_per_s'] / P.TRAIN_BATCH
        e['last_loss'] = last_loss[name]
        if name in traces:
            e['tracing_count'] = traces[name]()  # 1: traced once, never again
    metrics['last_loss_units'] = 'nats/image (one-step entries), bits/dim (fit entries)'
    metrics['all_losses_finite'] = all(math.isfinite(v) for v in last_loss.values())
    metrics['others_cpu_frac'] = timing['others_cpu_frac']
    metrics['others_cpu_frac_per_repeat'] = timing['others_cpu_frac_per_repeat']
    print('\n'.join(lines))
    print(
        f'others_cpu_frac {metrics["others_cpu_frac"]:.2f} (per repeat '
        + ' '.join(f'{v:.2f}' for v in timing['others_cpu_frac_per_repeat'])
        + f'); losses finite: {metrics["all_losses_finite"]}'
    )
    P.write_result(
        args.out,
        peer='tfp_flows_vs_tfp_glow',
        figure='train_interleaved',
        config=dict(
            batch=P.TRAIN_BATCH, learning_rate=P.LEARNING_RATE, repeats=args.repeats,
            warmup=args.warmup, steps=args.steps, steps_per_execution=STEPS_PER_EXECUTION,
            optimizers=optimizers, tf_threads=threads, cpu_flags=cpu_flags(),
        ),
        metrics=metrics,
    )  # fmt: skip


if __name__ == '__main__':
    main()
