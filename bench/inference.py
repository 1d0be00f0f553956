"""log_prob and sample: tfp_flows' Glow against TFP's `tfb.Glow`, interleaved in one process.

The peers' digits architecture (bench/peers/protocol.py: 8x8x1, L=2, K=4, width 64, LU 1x1
conv, affine coupling, batch 256, float32), both ActNorm-initialised on the same batch. Every
function is a `tf.function` (graph) or `tf.function(jit_compile=True)` (XLA), plus our
exported SavedModel's signatures (`tfp_flows.export`, with and without `jit_compile`, loaded
back with `tf.saved_model.load`).
After warm-up, each repeat times every entry in turn (`--calls` calls each, a different
order each repeat), so that load from other processes falls on all entries alike; each
ratio (ours / TFP's best, per repeat) is reported as median, min and max over the repeats.
Per call: wall time and this process's CPU time (less sensitive to other processes). TF's
threads: `--intra_op_threads` (0: TF's default), one setting per process, so run it twice to
give each library its best.

    python bench/inference.py --out=bench/results/inference.json
    python bench/inference.py --intra_op_threads=1 --out=bench/results/inference_intra1.json
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


def build_entries(tf, tfp, tfp_flows, x_init):
    """{name: (kind, library, zero-argument callable returning a host array)}."""
    from tfp_glow import glow_distribution

    flow = tfp_flows.glow(
        P.IMAGE_SHAPE,
        num_levels=P.GLOW_LEVELS,
        num_steps=P.GLOW_STEPS_PER_LEVEL,
        hidden_channels=P.GLOW_HIDDEN,
    )
    tfp_flows.initialize(flow, x_init)
    theirs, _ = glow_distribution(tfp, 0)
    theirs.log_prob(x_init - 0.5)  # TFP's ActNorm initialises itself on its first batch.
    n = P.EVAL_BATCH
    x = tf.constant(x_init)
    entries = {}
    for jit in (False, True):
        mode = 'xla' if jit else 'graph'
        ours_lp = tf.function(flow.log_prob, jit_compile=jit)
        ours_s = tf.function(lambda: flow.sample(n, seed=(1, 2)), jit_compile=jit)
        theirs_lp = tf.function(theirs.log_prob, jit_compile=jit)
        theirs_s = tf.function(lambda: theirs.sample(n, seed=(1, 2)), jit_compile=jit)
        entries[f'ours_{mode}_log_prob'] = ('log_prob', 'ours', lambda f=ours_lp: f(x).numpy())
        entries[f'ours_{mode}_sample'] = ('sample', 'ours', lambda f=ours_s: f().numpy())
        entries[f'tfp_{mode}_log_prob'] = (
            'log_prob', 'tfp', lambda f=theirs_lp: f(x - 0.5).numpy()
        )  # fmt: skip
        entries[f'tfp_{mode}_sample'] = ('sample', 'tfp', lambda f=theirs_s: f().numpy())
    seed = tf.constant([1, 2], tf.int64)
    for jit in (False, True):
        mode = 'savedmodel_xla' if jit else 'savedmodel'
        export_dir = os.path.join(tempfile.mkdtemp(), 'saved_model')
        tfp_flows.export.export_saved_model(flow, export_dir, jit_compile=jit)
        loaded = tf.saved_model.load(export_dir)
        entries[f'ours_{mode}_log_prob'] = (
            'log_prob', 'ours', lambda m=loaded: m.log_prob(x)['log_prob'].numpy()
        )  # fmt: skip
        entries[f'ours_{mode}_sample'] = (
            'sample', 'ours',
            lambda m=loaded: m.sample(tf.constant(n), tf.constant(1.0), seed)['x'].numpy(),
        )  # fmt: skip
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=None)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--calls', type=int, default=10)
    P.add_tf_thread_args(parser)
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_probability as tfp

    import tfp_flows

    threads = P.configure_tf_threads(tf, args)
    data = P.load_digits_split()
    x_init = P.fixed_batches(data['train'], 1, P.EVAL_BATCH, seed=11)[0] + np.float32(0.5)
    first_call = {}
    entries = build_entries(tf, tfp, tfp_flows, x_init)
    for name, (_, _, fn) in entries.items():
        t = time.perf_counter()
        fn()
        first_call[name] = time.perf_counter() - t
    for _, _, fn in entries.values():
        for _ in range(args.warmup):
            fn()
    wall = {name: [] for name in entries}
    cpu = {name: [] for name in entries}
    order = list(entries)
    monitor = P.ContentionMonitor()
    for repeat in range(args.repeats):
        random.Random(repeat).shuffle(order)
        for name in order:
            fn = entries[name][2]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                fn()
            wall[name].append((time.perf_counter() - t0) / args.calls)
            cpu[name].append((time.process_time() - c0) / args.calls)
    contention = monitor.stop()

    metrics = {'entries': {}, 'ratios': {}, 'others_cpu_frac': contention.get('others_cpu_frac')}
    for name, (kind, library, _) in entries.items():
        metrics['entries'][name] = {
            'kind': kind,
            'library': library,
            'first_call_s': first_call[name],
            'images_per_s': P.EVAL_BATCH / statistics.median(wall[name]),
            'cpu_images_per_s': P.EVAL_BATCH / statistics.median(cpu[name]),
            'wall_s_all': wall[name],
            'cpu_s_all': cpu[name],
        }
    lines = []
    for kind in ('log_prob', 'sample'):
        for measure, times in (('wall', wall), ('cpu', cpu)):
            names = {
                lib: [n for n, e in entries.items() if e[0] == kind and e[1] == lib]
                for lib in ('ours', 'tfp')
            }
            best = {
                lib: min(names[lib], key=lambda n: statistics.median(times[n])) for lib in names
            }
            ratios = [
                t / o for o, t in zip(times[best['ours']], times[best['tfp']], strict=True)
            ]  # Per repeat: TFP's best time / ours, > 1 when ours is faster.
            metrics['ratios'][f'{kind}_{measure}'] = {
                'ours': best['ours'],
                'tfp': best['tfp'],
                'median': statistics.median(ratios),
                'min': min(ratios),
                'max': max(ratios),
            }
            lines.append(
                f'{kind} ({measure}): {best["ours"]} / {best["tfp"]} = '
                f'{statistics.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}]'
            )
    for name, e in metrics['entries'].items():
        print(
            f'{name:28s} {e["images_per_s"]:8.0f} img/s  (cpu {e["cpu_images_per_s"]:8.0f})  '
            f'first call {e["first_call_s"]:.2f} s'
        )
    print('\n'.join(lines))
    print(f'others_cpu_frac {metrics["others_cpu_frac"]:.2f}')
    P.write_result(
        args.out,
        peer='tfp_flows_vs_tfp_glow',
        figure='inference',
        config=dict(
            batch=P.EVAL_BATCH, repeats=args.repeats, warmup=args.warmup, calls=args.calls,
            tf_threads=threads, cpu_flags=_cpu_flags(),
        ),
        metrics=metrics,
    )  # fmt: skip


def _cpu_flags():
    """The CPU's vector and matrix extensions, from /proc/cpuinfo."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = line.split(':', 1)[1].split()
                    return sorted(f for f in flags if f.startswith(('avx', 'amx', 'fma', 'f16c')))
    except OSError:
        pass
    return []


if __name__ == '__main__':
    main()
