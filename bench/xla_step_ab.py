"""Our digits-Glow train step, graph against XLA, interleaved in one process (issue 20).

Entries (`--entries`): one step per call (a GradientTape and `FusedAdam`), graph (`graph1`)
and XLA (`xla1`), and the same traced within `networks.tap_products()` (`graph1t`, `xla1t`);
`FlowTrainer` with 8 steps per call, graph (`graph8`) and XLA (`xla8`, in tap products).
`--variants 'name=XLA flags;...'` adds XLA entries compiled under other `XLA_FLAGS` in the
same process (`--xla_flags_reset=true` makes XLA read them again for each compile; a flag
keeps its value in later variants that do not name it, so give one variant per run). Prints CPU
ms per step, median [min, max] over the repeats, and per-repeat ratios of CPU time. Run it
from the repository root with PYTHONPATH=$PWD so that it times this checkout:

    PYTHONPATH=$PWD python bench/xla_step_ab.py --repeats=20
    PYTHONPATH=$PWD python bench/xla_step_ab.py --entries=graph1,graph1t,xla1,xla1t
    PYTHONPATH=$PWD python bench/xla_step_ab.py --entries=xla1,xla8 \\
        --variants='o=--xla_cpu_experimental_onednn_custom_call=true'
"""

import argparse
import os
import random
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--steps', type=int, default=32)
    parser.add_argument('--entries', default='graph1,xla1,graph8,xla8')
    parser.add_argument('--intra', type=int, default=1)
    parser.add_argument(
        '--variants', default='', help='name=XLA flags;... : XLA entries per flag set (in-process)'
    )
    args = parser.parse_args()
    import tensorflow as tf

    import tfp_flows
    from tfp_flows.networks import tap_products
    from tfp_flows.training.optimizers import FusedAdam, make_optimizer
    from tfp_flows.training.trainer import FlowTrainer

    tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    data = P.load_digits_split()
    pool = [tf.constant(x + np.float32(0.5)) for x in P.fixed_batches(data['train'], 8, 64)]
    flow = tfp_flows.glow(P.IMAGE_SHAPE, num_levels=2, num_steps=4, hidden_channels=64)
    tfp_flows.initialize(flow, pool[0])
    tvars = flow.trainable_variables
    entries = {}
    wanted = args.entries.split(',')
    variants = [('', '')] + [tuple(v.split('=', 1)) for v in args.variants.split(';') if v]
    for jit, (vname, flags) in [(False, ('', ''))] + [(True, v) for v in variants]:
        os.environ['XLA_FLAGS'] = '--xla_flags_reset=true ' + flags
        mode = ('xla' + vname) if jit else 'graph'
        kind = 'xla' if jit else 'graph'
        for suffix, taps in (('1', False), ('1t', True)):
            if f'{kind}{suffix}' not in wanted:
                continue
            opt = FusedAdam(learning_rate=1e-3)
            opt.build(tvars)

            @tf.function(jit_compile=jit, reduce_retracing=True)
            def step(x, opt=opt, taps=taps):
                with tf.GradientTape() as tape, tap_products(taps):
                    loss = -tf.reduce_mean(flow.log_prob(x))
                opt.apply(tape.gradient(loss, tvars), tvars)
                return loss

            def run(step=step, state={'i': 0}):  # noqa: B006
                state['i'] += 1
                step(pool[state['i'] % 8]).numpy()

            run()
            entries[f'{mode}{suffix}'] = (run, 1)
        if f'{kind}8' in wanted:
            ds = tf.data.Dataset.from_tensor_slices(tf.stack(pool)).repeat()
            trainer = FlowTrainer(flow, num_bins=256)
            trainer.compile(make_optimizer('adam', 1e-3), jit_compile=jit, steps_per_execution=8)
            trainer.make_train_function()
            it = iter(trainer.distribute_strategy.experimental_distribute_dataset(ds))

            def run8(trainer=trainer, it=it):
                trainer.train_function(it)[trainer.metric_name].numpy()

            run8()
            entries[f'{mode}8'] = (run8, 8)
    for fn, _ in entries.values():
        for _ in range(4):
            fn()
    cpu = {n: [] for n in entries}
    wall = {n: [] for n in entries}
    order = list(entries)
    monitor = P.ContentionMonitor()
    for r in range(args.repeats):
        random.Random(r).shuffle(order)
        for name in order:
            fn, per = entries[name]
            calls = args.steps // per
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            cpu[name].append((time.process_time() - c0) / args.steps * 1e3)
            wall[name].append((time.perf_counter() - t0) / args.steps * 1e3)
    others = monitor.stop().get('others_cpu_frac')
    for name in entries:
        c, w = cpu[name], wall[name]
        print(
            f'{name:7s} cpu ms/step {statistics.median(c):6.2f} [{min(c):.2f}, {max(c):.2f}]'
            f'  wall {statistics.median(w):6.2f} [{min(w):.2f}, {max(w):.2f}]'
        )
    for k in ('1', '8'):
        for vname, flags in variants:
            if f'graph{k}' not in entries or f'xla{vname}{k}' not in entries:
                continue
            for base in ('graph', 'xla') if vname else ('graph',):
                ratio = [
                    g / x for g, x in zip(cpu[f'{base}{k}'], cpu[f'xla{vname}{k}'], strict=True)
                ]
                print(
                    f'{base}{k} / xla{vname}{k} cpu: {statistics.median(ratio):.3f} '
                    f'[{min(ratio):.3f}, {max(ratio):.3f}]  {flags}'
                )
    for base in ('graph1', 'xla1'):
        if base in entries and f'{base}t' in entries:
            ratio = [d / t for d, t in zip(cpu[base], cpu[f'{base}t'], strict=True)]
            low, high = min(ratio), max(ratio)
            print(f'{base} / {base}t cpu: {statistics.median(ratio):.3f} [{low:.3f}, {high:.3f}]')
    print(f'others_cpu_frac {others:.2f}')


if __name__ == '__main__':
    main()
