"""Trace+first call and per-step time of loss and gradients, spline vs affine Glow (bench size)."""

import statistics
import time

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import tfp_flows  # noqa: E402

x = tf.random.stateless_uniform([256, 8, 8, 1], [1, 2], 0.02, 0.98)
steps = {}
for coupling in ('affine', 'spline'):
    flow = tfp_flows.glow(
        (8, 8, 1), num_levels=2, num_steps=4, hidden_channels=64, coupling=coupling
    )
    tfp_flows.initialize(flow, x)

    @tf.function
    def step(x, flow=flow):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x))
        return loss, tape.gradient(loss, flow.trainable_variables)

    start = time.perf_counter()
    step(x)[0].numpy()
    first = time.perf_counter() - start
    steps[coupling] = (step, first, [])
for _ in range(7):
    for step, _, times in steps.values():
        start = time.perf_counter()
        for _ in range(3):
            out = step(x)
        out[0].numpy()
        times.append((time.perf_counter() - start) / 3)
for coupling, (_, first, times) in steps.items():
    print(
        f'{coupling}: trace+first call {first:.1f} s, step',
        f'{1e3 * statistics.median(times):.0f} ms [{1e3 * min(times):.0f}, {1e3 * max(times):.0f}]',
    )
