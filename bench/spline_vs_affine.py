"""Forward+log-det and log_prob throughput: spline vs affine Glow at the bench size, interleaved.

Digits-sized Glow (8x8x1, L=2, K=4, width 64), batch 256, float32, one process; each model's
functions traced once (trace time reported), then `--repeats` rounds, each timing `--calls`
calls of every (model, pass) in turn. Images/s: median [min, max] over rounds.
"""

import argparse
import json
import os
import platform
import statistics
import time

parser = argparse.ArgumentParser()
parser.add_argument('--intra_op_threads', type=int, default=1)
parser.add_argument('--jit_compile', action='store_true')
parser.add_argument('--repeats', type=int, default=7)
parser.add_argument('--calls', type=int, default=5)
parser.add_argument(
    '--num_bins', type=int, nargs='*', default=[8], help='spline bins, one model each'
)
args = parser.parse_args()

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
import tfp_flows  # noqa: E402

BATCH, SHAPE = 256, (8, 8, 1)
data = tf.random.stateless_uniform([BATCH, *SHAPE], [1, 2], 0.02, 0.98)
latent = tf.random.stateless_normal([BATCH, *SHAPE], [1, 3])
entries, traces = {}, {}
for coupling in ['affine'] + [f'spline K={k}' for k in args.num_bins]:
    options = dict(coupling='spline', num_bins=int(coupling[9:])) if coupling != 'affine' else {}
    flow = tfp_flows.glow(SHAPE, num_levels=2, num_steps=4, hidden_channels=64, **options)
    tfp_flows.initialize(flow, data)
    for variable in flow.trainable_variables:  # Away from the identity init.
        variable.assign_add(0.01 * tf.random.stateless_normal(variable.shape, [4, 5]))
    forward = tf.function(
        lambda z, f=flow: f.bijector.forward_and_log_det(z, 3), jit_compile=args.jit_compile
    )
    log_prob = tf.function(lambda x, f=flow: f.log_prob(x), jit_compile=args.jit_compile)
    for name, fn, arg in (('forward_and_log_det', forward, latent), ('log_prob', log_prob, data)):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn(arg))
        traces[f'{coupling} {name}'] = time.perf_counter() - start
        entries[f'{coupling} {name}'] = (fn, arg)
rates = {key: [] for key in entries}
for _ in range(args.repeats):
    for key, (fn, arg) in entries.items():
        start = time.perf_counter()
        for _ in range(args.calls):
            out = fn(arg)
        tf.nest.map_structure(lambda t: t.numpy(), out)
        rates[key].append(BATCH * args.calls / (time.perf_counter() - start))
summary = {
    key: dict(median=statistics.median(v), min=min(v), max=max(v), trace_s=traces[key])
    for key, v in rates.items()
}
for key, s in summary.items():
    print(
        f'{key:28s} {s["median"]:8.0f} img/s [{s["min"]:.0f}, {s["max"]:.0f}]',
        f'first call {s["trace_s"]:.1f} s',
    )
for k in args.num_bins:
    for name in ('forward_and_log_det', 'log_prob'):
        ratio = summary[f'spline K={k} ' + name]['median'] / summary['affine ' + name]['median']
        print(f'spline K={k} / affine, {name}: {ratio:.2f}')
print(
    json.dumps(
        dict(
            args=vars(args),
            loadavg=os.getloadavg(),
            tf=tf.__version__,
            python=platform.python_version(),
            summary=summary,
        )
    )
)
