"""Trains a tiny Glow a few SGD steps under the strategy of this process; saves its variables.

Run by `tests/test_multi_worker.py`: with `TF_CONFIG` set, as one worker of a
`MultiWorkerMirroredStrategy`; without it, on one device (the test calls `main` in its own
process for that). Every process builds the same flow
(same seed), initialises ActNorm on the same global batch, fits on the same global batches and
writes `OUT.npz` holding the variables after initialisation (`init_0`, ...) and after training
(`final_0`, ...), in the order of `flow.variables`.

    python tests/scripts/fit_worker.py OUT.npz
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from tfp_flows.training import FlowTrainer

GLOBAL_BATCH = 8
NUM_STEPS = 3


def global_batches():
    """[NUM_STEPS, GLOBAL_BATCH, 8, 8, 1] dequantized digits-like images, the same everywhere."""
    pixels = np.random.default_rng(0).integers(0, 17, size=(NUM_STEPS, GLOBAL_BATCH, 8, 8, 1))
    return tfp_flows.uniform_dequantize(pixels, 17, seed=[0, 1]).numpy()


def main(out_path):
    if 'TF_CONFIG' in os.environ:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    batches = global_batches()
    with strategy.scope():
        flow = tfp_flows.glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8, seed=3)
        tfp_flows.initialize(flow, batches[0])  # Cross-replica context: the same global batch.
        trainer = FlowTrainer(flow, num_bins=17, clip_norm=0.5)  # Clipping is active here.
        trainer.compile(keras.optimizers.SGD(0.5))
    initial = [v.numpy() for v in flow.variables]
    dataset = tf.data.Dataset.from_tensor_slices(batches)  # Each element is a global batch.
    trainer.fit(dataset, epochs=1, verbose=0)
    final = [v.numpy() for v in flow.variables]
    arrays = {f'init_{i}': v for i, v in enumerate(initial)}
    arrays.update({f'final_{i}': v for i, v in enumerate(final)})
    np.savez(out_path, **arrays)
    print(f'Wrote {len(final)} variables to {out_path} ({strategy.num_replicas_in_sync} replicas).')


if __name__ == '__main__':
    main(sys.argv[1])
