"""Peak memory and cost of one training step with and without memory-saving backprop.

Glow on 32x32x3 images, 3 levels, K = 4, 8, 16, 32 steps per level, coupling width 128, batch
32, float32, Adam; the step is one `tf.function` (graph mode) computing bits/dim, its gradient
and the Adam update, with `memory_saving` None (plain backprop), 'invert' or 'recompute'
(`tfp_flows.bijectors.backprop`).

Memory: each (K, mode) runs in a fresh process, which builds the model, runs the step twice
(tracing, first allocations), then measures three more steps and keeps the largest figures:

- `step_peak_mib`: TensorFlow's own allocator statistics on the CPU
  (`tf.config.experimental.get_memory_info('CPU:0')`, after `reset_memory_stats`): the peak
  bytes held by tensors during the step minus those held before it (variables, optimizer
  slots, the batch). This is what a step adds on top of the model's state: activations kept
  for backprop, gradients, temporaries. It does not depend on what else runs on the machine.
- `state_mib`: bytes of the flow's variables and the optimizer's, counted from their shapes.
- `total_peak_mib`: `state_mib` + `step_peak_mib` + the batch: what a device must hold.
- `rss_peak_mib`: the process's peak resident size, TensorFlow's runtime included (its size
  after the imports is `rss_after_import_mib`). TensorFlow's CPU allocator keeps freed memory
  for reuse, so the resident size only shows high-water marks, not a step's own peak.

Cost: one process builds the model once per K and traces the three modes' steps, then times
them interleaved (mode after mode, `--repeats` times `--steps_per_repeat` steps) and reports
per-mode medians of wall time and of this process's CPU time per step, and the ratios to plain
backprop with their spread over repeats. CPU time counts this process's threads only, so it
moves less than wall time when other processes share the machine; both are recorded with the
share of the CPU other processes took.

    python bench/memory.py --out=bench/results/memory.json            # ~25 min on 2 cores
    python bench/memory.py --steps=4,8 --what=memory                    # a part
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))

MODES = ('none', 'invert', 'recompute')
SHAPE = (32, 32, 3)
LEVELS = 3
WIDTH = 128
BATCH = 32


def _build(num_steps):
    """(flow, optimizer, batch, {mode: step function}) for one K."""
    import keras
    import numpy as np
    import tensorflow as tf

    import tfp_flows

    flow = tfp_flows.glow(
        SHAPE, num_levels=LEVELS, num_steps=num_steps, hidden_channels=WIDTH, loop=False
    )  # As measured: unrolled (bench/depth.py compares the layouts).
    rng = np.random.default_rng(0)
    batch = tf.constant(
        ((rng.integers(0, 256, (BATCH, *SHAPE)) + rng.uniform(size=(BATCH, *SHAPE))) / 256),
        tf.float32,
    )
    tfp_flows.initialize(flow, batch)
    variables = flow.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    num_dims = int(np.prod(SHAPE))

    def make_step(mode):
        kwargs = {} if mode == 'none' else {'bijector_kwargs': {'memory_saving': mode}}

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                loss = tfp_flows.bits_per_dim(flow.log_prob(x, **kwargs), num_dims, 256)
                loss = tf.reduce_mean(loss)
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        return step

    return flow, optimizer, batch, make_step


def _status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def memory_worker(num_steps, mode, repeats):
    import tensorflow as tf

    import tfp_flows  # noqa: F401 (imported before the baseline is read)

    rss_after_import = _status_kib('VmRSS') / 1024
    flow, optimizer, batch, make_step = _build(num_steps)
    step = make_step(mode)
    for _ in range(2):
        step(batch).numpy()
    state = sum(v.numpy().nbytes for v in [*flow.variables, *optimizer.variables])
    peaks = []
    for _ in range(repeats):
        tf.config.experimental.reset_memory_stats('CPU:0')
        before = tf.config.experimental.get_memory_info('CPU:0')['current']
        step(batch).numpy()
        peaks.append((tf.config.experimental.get_memory_info('CPU:0')['peak'] - before) / 2**20)
    return {
        'num_steps': num_steps,
        'mode': mode,
        'parameters': sum(int(v.shape.num_elements()) for v in flow.trainable_variables),
        'state_mib': state / 2**20,
        'step_peak_mib': max(peaks),
        'step_peak_mib_all': peaks,
        'total_peak_mib': (state + batch.numpy().nbytes) / 2**20 + max(peaks),
        'rss_after_import_mib': rss_after_import,
        'rss_peak_mib': _status_kib('VmHWM') / 1024,
    }


def cost_worker(num_steps, repeats, steps_per_repeat):
    import protocol as P

    flow, optimizer, batch, make_step = _build(num_steps)
    steps = {mode: make_step(mode) for mode in MODES}
    for step in steps.values():
        for _ in range(2):
            step(batch).numpy()
    wall = {mode: [] for mode in MODES}
    cpu = {mode: [] for mode in MODES}
    monitor = P.ContentionMonitor()
    for _ in range(repeats):
        for mode, step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps_per_repeat):
                step(batch).numpy()
            wall[mode].append((time.perf_counter() - t0) / steps_per_repeat)
            cpu[mode].append((time.process_time() - c0) / steps_per_repeat)
    contention = monitor.stop()
    result = {'num_steps': num_steps, 'others_cpu_frac': contention.get('others_cpu_frac')}
    for mode in MODES:
        result[mode] = {
            'wall_s_per_step': statistics.median(wall[mode]),
            'cpu_s_per_step': statistics.median(cpu[mode]),
            'wall_s_all': wall[mode],
            'cpu_s_all': cpu[mode],
        }
        for kind, values in (('wall', wall), ('cpu', cpu)):
            ratios = [m / p for m, p in zip(values[mode], values['none'], strict=True)]
            result[mode][f'{kind}_ratio_to_plain'] = {
                'median': statistics.median(ratios),
                'min': min(ratios),
                'max': max(ratios),
            }
    return result


def _run(args_list):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    out = subprocess.run(
        [sys.executable, __file__, *args_list], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=None)
    parser.add_argument('--steps', default='4,8,16,32')
    parser.add_argument('--modes', default=','.join(MODES))
    parser.add_argument('--what', default='memory,cost')
    parser.add_argument('--memory_repeats', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--steps_per_repeat', type=int, default=3)
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, num_steps, mode = args.worker.split(':')
        if kind == 'memory':
            result = memory_worker(int(num_steps), mode, args.memory_repeats)
        else:
            result = cost_worker(int(num_steps), args.repeats, args.steps_per_repeat)
        print(json.dumps(result))
        return
    import protocol as P

    steps = [int(k) for k in args.steps.split(',')]
    modes = args.modes.split(',')
    what = args.what.split(',')
    common = [
        f'--memory_repeats={args.memory_repeats}',
        f'--repeats={args.repeats}',
        f'--steps_per_repeat={args.steps_per_repeat}',
    ]
    memory, cost = [], []
    for num_steps in steps:
        if 'memory' in what:
            for mode in modes:
                memory.append(_run([f'--worker=memory:{num_steps}:{mode}', *common]))
                print(json.dumps(memory[-1]), flush=True)
        if 'cost' in what:
            cost.append(_run([f'--worker=cost:{num_steps}:all', *common]))
            print(json.dumps(cost[-1]), flush=True)
    config = dict(
        shape=SHAPE, levels=LEVELS, width=WIDTH, batch=BATCH, steps=steps, modes=modes,
        memory_repeats=args.memory_repeats,
        repeats=args.repeats, steps_per_repeat=args.steps_per_repeat,
    )  # fmt: skip
    P.write_result(
        args.out, peer='tfp_flows', figure='memory', config=config,
        metrics={'memory': memory, 'cost': cost},
    )  # fmt: skip


if __name__ == '__main__':
    main()
