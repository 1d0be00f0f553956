"""The importance-weighted test bits/dim of a finished digits run from S noise draws per image.

How far the run's IW figure (`eval.iw_samples`, 32 draws) is from the model's likelihood: the
estimate falls towards it as S grows. Stateless seeds per batch, so a rerun repeats.

    python bench/iw_draws.py WORKDIR 32,128,512
"""

import sys
import time

import numpy as np
import tensorflow as tf

from tfp_flows import data
from tfp_flows.dequantization.likelihood import importance_weighted_bits_per_dim
from tfp_flows.run import restore


def main(workdir, draws):
    flow, dequantizer = restore.restore_flow_and_dequantizer(workdir)
    test, info = data.make_dataset('digits', 'test', 120, shuffle=False, dequantize=False)
    bits = tf.function(
        lambda pixels, s, seed: importance_weighted_bits_per_dim(
            flow, dequantizer, pixels, info.num_bins, s, seed
        ),
        reduce_retracing=True,
    )
    for s in draws:
        start = time.perf_counter()
        values = [bits(pixels, s, tf.constant([7, i])) for i, pixels in enumerate(test)]
        seconds = time.perf_counter() - start
        print(f'{s} draws: {np.mean(np.concatenate(values)):.4f} bits/dim ({seconds:.0f} s)')


if __name__ == '__main__':
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(',')])
