"""How big the recipes' optimizer step is and how long it takes to trace.

The default recipe's flow (Real NVP, 2 scales x 4 couplings, width 64, on 8x8 digits) and its
optimizer (`make_optimizer`: Adamax, linear warm-up then cosine decay, decoupled weight decay,
EMA weights): traces `optimizer.apply` on zero gradients as a `tf.function` (without running it)
and prints the number of variables, the ops of the traced step and the process's CPU seconds
for the trace. Keras' weight decay reads the learning rate once per variable; the fused
optimizers compute it once a step (one schedule graph, not one per variable).

    PYTHONPATH=$PWD python bench/optimizer_trace.py
"""

import time

import tensorflow as tf

import tfp_flows
from tfp_flows.training.optimizers import make_optimizer


def main():
    flow = tfp_flows.real_nvp((8, 8, 1), num_levels=2, num_steps=4, hidden_channels=64)
    variables = list(flow.trainable_variables)
    optimizer = make_optimizer(
        'adamax', 3e-3, warmup_steps=100, decay_steps=1140, weight_decay=0.01, ema_momentum=0.99
    )
    optimizer.build(variables)
    start = time.process_time()
    step = tf.function(lambda gradients: optimizer.apply(gradients, variables), autograph=False)
    graph = step.get_concrete_function([tf.zeros_like(v) for v in variables]).graph
    seconds = time.process_time() - start
    print(
        f'{len(variables)} variables; the optimizer step has {len(graph.get_operations())} ops; '
        f'traced in {seconds:.2f} s of CPU'
    )


if __name__ == '__main__':
    main()
