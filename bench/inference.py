"""log_prob and sample: tfp_flows' Glow against TFP's `tfb.Glow`, interleaved in one process.

The peers' digits architecture (bench/peers/protocol.py: 8x8x1, L=2, K=4, width 64, LU 1x1
conv, affine coupling, batch 256, float32), both ActNorm-initialised on the same batch. Every
function is a `tf.function` (graph) or `tf.function(jit_compile=True)` (XLA; ours traced in
`tfp_flows.networks.tap_products()`, as documented, and, as an A/B of that switch, without it
under XLA and with it in graph mode), plus our
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
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


@dataclasses.dataclass
class Entry:
    """One timed function of the comparison.

    `fn()` makes one call into TF and blocks until its result is on the host; one call handles
    `images` images; `calls`, if set, replaces the run's calls per repeat for this entry (so
    that an entry doing several steps per call does the same work per repeat as the others).
    """

    kind: str
    library: str
    fn: Callable[[], Any]
    images: int
    calls: int | None = None


OURS_MODES = [('graph', False, False), ('xla', True, True), ('xla_dense', True, False)]
OURS_MODES += [('graph_taps', False, True)]


def _ours_function(tf, tfp_flows, fn, jit, taps):
    """`fn` as a `tf.function`, traced in `tfp_flows.networks.tap_products(taps)`."""

    def call(*args):
        with tfp_flows.networks.tap_products(taps):
            return fn(*args)

    return tf.function(call, jit_compile=jit)


def build_entries(tf, tfp, tfp_flows, x_init):
    """{name: Entry}: log_prob and sample of both libraries, ours also as a SavedModel."""
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
    # Ours under XLA with products per tap, as `tap_products` asks; the A/B entries without
    # (`xla_dense`) and with them in graph mode (`graph_taps`).
    for mode, jit, taps in OURS_MODES:
        ours_lp = _ours_function(tf, tfp_flows, flow.log_prob, jit, taps)
        ours_s = _ours_function(tf, tfp_flows, lambda: flow.sample(n, seed=(1, 2)), jit, taps)
        entries[f'ours_{mode}_log_prob'] = Entry(
            'log_prob', 'ours', lambda f=ours_lp: f(x).numpy(), n
        )
        entries[f'ours_{mode}_sample'] = Entry('sample', 'ours', lambda f=ours_s: f().numpy(), n)
    for jit in (False, True):
        mode = 'xla' if jit else 'graph'
        theirs_lp = tf.function(theirs.log_prob, jit_compile=jit)
        theirs_s = tf.function(lambda: theirs.sample(n, seed=(1, 2)), jit_compile=jit)
        entries[f'tfp_{mode}_log_prob'] = Entry(
            'log_prob', 'tfp', lambda f=theirs_lp: f(x - 0.5).numpy(), n
        )  # fmt: skip
        entries[f'tfp_{mode}_sample'] = Entry('sample', 'tfp', lambda f=theirs_s: f().numpy(), n)
    seed = tf.constant([1, 2])  # int32, as the export takes integers
    for jit in (False, True):
        mode = 'savedmodel_xla' if jit else 'savedmodel'
        export_dir = os.path.join(tempfile.mkdtemp(), 'saved_model')
        tfp_flows.export.export_saved_model(flow, export_dir, jit_compile=jit)
        loaded = tf.saved_model.load(export_dir)
        entries[f'ours_{mode}_log_prob'] = Entry(
            'log_prob', 'ours', lambda m=loaded: m.log_prob(x)['log_prob'].numpy(), n
        )  # fmt: skip
        entries[f'ours_{mode}_sample'] = Entry(
            'sample', 'ours',
            lambda m=loaded: m.sample(tf.constant(n), tf.constant(1.0), seed)['x'].numpy(), n,
        )  # fmt: skip
    return entries


def time_interleaved(entries, *, repeats, warmup, calls):
    """Times every entry in turn, a new random order each repeat, after each entry's first call
    and `warmup` more untimed calls, so that load from other processes falls on all alike.

    Returns {'first_call_s': {name: s}, 'wall': {name: [s per call, one per repeat]}, 'cpu':
    (this process's CPU time, likewise), 'others_cpu_frac': the CPU share other processes
    took over the timed repeats, 'others_cpu_frac_per_repeat': [the same, per repeat]}.
    """
    first_call = {}
    for name, e in entries.items():
        t = time.perf_counter()
        e.fn()
        first_call[name] = time.perf_counter() - t
    for e in entries.values():
        for _ in range(warmup):
            e.fn()
    wall = {name: [] for name in entries}
    cpu = {name: [] for name in entries}
    per_repeat = []
    order = list(entries)
    monitor = P.ContentionMonitor()
    for repeat in range(repeats):
        random.Random(repeat).shuffle(order)
        repeat_monitor = P.ContentionMonitor()
        for name in order:
            fn, n = entries[name].fn, entries[name].calls or calls
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                fn()
            wall[name].append((time.perf_counter() - t0) / n)
            cpu[name].append((time.process_time() - c0) / n)
        per_repeat.append(repeat_monitor.stop().get('others_cpu_frac'))
    return {
        'first_call_s': first_call,
        'wall': wall,
        'cpu': cpu,
        'others_cpu_frac': monitor.stop().get('others_cpu_frac'),
        'others_cpu_frac_per_repeat': per_repeat,
    }


def compare(entries, timing):
    """Per entry its throughput; per kind and measure (wall, CPU) the ratio of TFP's best entry
    to ours (each library's best by median time per image), per repeat, as median, min, max.

    Returns (metrics, lines): the JSON's 'entries' and 'ratios', and printable lines.
    """
    metrics = {'entries': {}, 'ratios': {}}
    per_image = {
        measure: {n: [t / entries[n].images for t in timing[measure][n]] for n in entries}
        for measure in ('wall', 'cpu')
    }
    for name, e in entries.items():
        metrics['entries'][name] = {
            'kind': e.kind,
            'library': e.library,
            'images_per_call': e.images,
            'calls_per_repeat': e.calls,
            'first_call_s': timing['first_call_s'][name],
            'images_per_s': 1 / statistics.median(per_image['wall'][name]),
            'cpu_images_per_s': 1 / statistics.median(per_image['cpu'][name]),
            'wall_s_all': timing['wall'][name],
            'cpu_s_all': timing['cpu'][name],
        }
    lines = []
    kinds = list(dict.fromkeys(e.kind for e in entries.values()))
    for kind in kinds:
        for measure in ('wall', 'cpu'):
            times = per_image[measure]
            names = {
                lib: [n for n, e in entries.items() if e.kind == kind and e.library == lib]
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
                'all': ratios,
            }
            lines.append(
                f'{kind} ({measure}): {best["ours"]} / {best["tfp"]} = '
                f'{statistics.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}]'
            )
    for kind in kinds:  # Products per tap, A/B: the time without over the time with them.
        for jit, (without, with_) in (
            ('xla', ('xla_dense', 'xla')),
            ('graph', ('graph', 'graph_taps')),
        ):
            for measure in ('wall', 'cpu'):
                times = per_image[measure]
                ratios = [
                    a / b
                    for a, b in zip(
                        times[f'ours_{without}_{kind}'], times[f'ours_{with_}_{kind}'], strict=True
                    )
                ]
                metrics['ratios'][f'tap_products_{jit}_{kind}_{measure}'] = {
                    'median': statistics.median(ratios), 'min': min(ratios), 'max': max(ratios),
                    'all': ratios,
                }  # fmt: skip
                lines.append(
                    f'products per tap, {jit} {kind} ({measure}): {statistics.median(ratios):.2f}x '
                    f'[{min(ratios):.2f}, {max(ratios):.2f}] (> 1: faster with them)'
                )
    table = [
        f'{name:32s} {e["images_per_s"]:8.0f} img/s  (cpu {e["cpu_images_per_s"]:8.0f})  '
        f'first call {e["first_call_s"]:.2f} s'
        for name, e in metrics['entries'].items()
    ]
    return metrics, table + lines


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
    entries = build_entries(tf, tfp, tfp_flows, x_init)
    timing = time_interleaved(entries, repeats=args.repeats, warmup=args.warmup, calls=args.calls)
    metrics, lines = compare(entries, timing)
    metrics['others_cpu_frac'] = timing['others_cpu_frac']
    metrics['others_cpu_frac_per_repeat'] = timing['others_cpu_frac_per_repeat']
    print('\n'.join(lines))
    print(f'others_cpu_frac {metrics["others_cpu_frac"]:.2f}')
    P.write_result(
        args.out,
        peer='tfp_flows_vs_tfp_glow',
        figure='inference',
        config=dict(
            batch=P.EVAL_BATCH, repeats=args.repeats, warmup=args.warmup, calls=args.calls,
            tf_threads=threads, cpu_flags=cpu_flags(),
        ),
        metrics=metrics,
    )  # fmt: skip


def cpu_flags():
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
