"""What depth costs: Glow with its K steps per level unrolled or looped (`glow(loop=True)`).

Glow on 32x32x3 images (L=3 levels, coupling width 64, batch 2, float32, LU 1x1 conv, affine
couplings), K = 4, 8, 16, 32 steps per level, unrolled and looped, each in its own fresh
process (one after another). For each: the ops in the traced `log_prob` and training-step
graphs, the first `log_prob` call (trace and run), ActNorm's data-dependent init, the first
training step through Keras (`FlowTrainer.train_on_batch`: trace and run), training steps/s
after it (median of 3 repeats of 10 steps) and the process's peak RSS after all that.

    nice python bench/depth.py --out=bench/results/depth.json      # ~10 min on 2 cores
    python bench/depth.py --depths=4,8 --layouts=looped              # a subset
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

IMAGE, LEVELS, WIDTH, BATCH = (32, 32, 3), 3, 64, 2


def worker(num_steps, loop):
    """Runs in a fresh process: one flow's figures, as a dict."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import resource
    import statistics

    import keras
    import tensorflow as tf

    import tfp_flows
    from tfp_flows.training import FlowTrainer

    x = tf.random.stateless_uniform([BATCH, *IMAGE], [1, 2], 0.05, 0.95)
    start = time.perf_counter()
    flow = tfp_flows.glow(IMAGE, LEVELS, num_steps, WIDTH, loop=loop)
    out = {'K': num_steps, 'layout': 'looped' if loop else 'unrolled'}
    out['build_s'] = time.perf_counter() - start
    log_prob = tf.function(flow.log_prob)
    start = time.perf_counter()
    log_prob(x).numpy()
    out['first_log_prob_s'] = time.perf_counter() - start
    out['log_prob_ops'] = len(log_prob.get_concrete_function(x).graph.get_operations())
    start = time.perf_counter()
    tfp_flows.initialize(flow, x)
    out['initialize_s'] = time.perf_counter() - start
    trainer = FlowTrainer(flow, 256)
    trainer.compile(keras.optimizers.Adam(1e-4))
    start = time.perf_counter()
    trainer.train_on_batch(x)
    out['first_train_step_s'] = time.perf_counter() - start
    graph = tf.function(trainer.train_step).get_concrete_function((x,)).graph
    out['train_step_ops'] = len(graph.get_operations())
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(10):
            trainer.train_on_batch(x)
        rates.append(10 / (time.perf_counter() - start))
    out['steps_per_s'] = statistics.median(rates)
    out['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _machine():
    model = next(
        (line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if 'model name' in line),
        platform.processor(),
    )
    return {'cpu': model, 'cores': os.cpu_count()}


def _load():
    return open('/proc/loadavg').read().split()[:3]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--depths', default='4,8,16,32')
    parser.add_argument('--layouts', default='unrolled,looped')
    parser.add_argument('--out', default=None)
    parser.add_argument('--worker', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1] == 'looped')))
        return
    rows = []
    for num_steps in map(int, args.depths.split(',')):
        for layout in args.layouts.split(','):
            before = _load()
            command = [sys.executable, __file__, '--worker', str(num_steps), layout]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            row['load_before'], row['load_after'] = before, _load()
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump({'machine': _machine(), 'rows': rows}, file, indent=1)


if __name__ == '__main__':
    main()
