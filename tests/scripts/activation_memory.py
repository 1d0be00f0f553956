"""Prints, as JSON, the activation bytes of a Glow's traced log_prob + gradient step per memory-
saving mode and depth, measured in this fresh process (tests/bijectors/test_backprop.py).

A process that ran other tests first holds another allocator and executor state, which moved
these figures (in a full suite run, plain backprop's peak at K = 8 fell from ~125 to 98 MB and
'recompute''s rose from ~31 to 37 MB); a fresh process gives the step's own.

    python tests/scripts/activation_memory.py   # {"plain": {"2": ..., "8": ...}, ...}
"""

import json

import tensorflow as tf

import tfp_flows


def activation_bytes(num_steps, memory_saving):
    """Bytes a traced log_prob + gradient step (the gradients reduced to a scalar as they come)
    holds at its peak in TensorFlow's CPU allocator per 96 examples: its peak at a batch of 128
    minus its peak at a batch of 32, each beyond what was held before the call.

    What does not grow with the batch (variables, gradients, the allocator's rounding to 1 MiB
    chunks) cancels. Each peak is the least of 3 calls after a first one: the order in which
    the executor runs independent ops (which a loaded machine changes) can only add to it.
    """
    flow = tfp_flows.glow((16, 16, 1), num_levels=1, num_steps=num_steps, hidden_channels=64)

    def data(batch):
        return tf.random.stateless_uniform([batch, 16, 16, 1], [1, 0], 0.05, 0.95)

    small = data(32)
    tfp_flows.initialize(flow, small)
    variables = flow.trainable_variables
    kwargs = {'bijector_kwargs': {'memory_saving': memory_saving}} if memory_saving else {}

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 1])])  # One trace, two sizes.
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x, **kwargs))
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, variables)])

    def peak(x):
        tf.config.experimental.reset_memory_stats('CPU:0')
        before = tf.config.experimental.get_memory_info('CPU:0')['current']
        step(x).numpy()
        return tf.config.experimental.get_memory_info('CPU:0')['peak'] - before

    step(small)  # Traced and optimised: what that holds once is not measured.
    large = data(128)
    return min(peak(large) for _ in range(3)) - min(peak(small) for _ in range(3))


if __name__ == '__main__':
    figures = {
        'plain': {k: activation_bytes(k, None) for k in (2, 8)},
        'invert': {k: activation_bytes(k, 'invert') for k in (2, 8)},
        'recompute': {8: activation_bytes(8, 'recompute')},
    }
    print(json.dumps(figures))
