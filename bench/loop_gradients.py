"""What the loop body's own convolution gradients (`networks.loop_gradients`) cost or save.

Glow on 32x32x3 (L=3, K=8 looped, batch 4, float32, TF's default threads); one flow, two
gradient steps traced from it -- one as a `Loop` traces by default (the body's 3x3
convolutions take `dense_conv.conv3x3_same`'s gradients), one under `networks.loop_gradients(False)`
(TF's Conv2DBackprop ops) -- as `tf.function`, graph or XLA, timed interleaved in one process
(7 repeats of 3 steps after 2 warm-up calls; medians of CPU and wall seconds per step).
`FlowTrainer` takes the loop body's gradients with `jit_compile` only, from this.

    for a in "64 graph" "64 xla" "256 graph" "256 xla"; do python bench/loop_gradients.py $a; done
"""

import json
import os
import statistics
import sys
import time


def _timed(function, x):
    """(CPU seconds, wall seconds) per step, over 3 steps."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(3):
        function(x)[0].numpy()
    return (time.process_time() - cpu) / 3, (time.perf_counter() - wall) / 3


def main(width, mode):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import tensorflow as tf

    import tfp_flows
    from tfp_flows import networks

    x = tf.random.stateless_uniform([4, 32, 32, 3], [1, 2], 0.05, 0.95)
    flow = tfp_flows.glow((32, 32, 3), 3, 8, width, loop=True)
    tfp_flows.initialize(flow, x)

    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x))
        return loss, tape.gradient(loss, flow.trainable_variables)

    def with_tf_gradients(x):
        with networks.loop_gradients(False):
            return step(x)

    jit = mode == 'xla'
    functions = {
        'loop_gradients': tf.function(step, jit_compile=jit),
        'tf_gradients': tf.function(with_tf_gradients, jit_compile=jit),
    }
    times = {name: [] for name in functions}
    for function in functions.values():
        function(x), function(x)
    for repeat in range(7):  # Alternating which goes first.
        for name in sorted(functions, reverse=repeat % 2 == 1):
            times[name].append(_timed(functions[name], x))
    out = {'width': width, 'mode': mode, 'load': open('/proc/loadavg').read().split()[:3]}
    for name, pairs in times.items():
        out[name] = {
            'cpu_s': statistics.median(p[0] for p in pairs),
            'wall_s': statistics.median(p[1] for p in pairs),
        }
    for unit in ('cpu', 'wall'):
        ratio = out['loop_gradients'][f'{unit}_s'] / out['tf_gradients'][f'{unit}_s']
        out[f'ratio_{unit}'] = ratio
    print(json.dumps(out))


if __name__ == '__main__':
    main(int(sys.argv[1]), sys.argv[2])
