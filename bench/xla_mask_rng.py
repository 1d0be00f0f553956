"""Why XLA trains the default recipe slowly: its dropout masks' stateless draws (issue 20).

One [64, 8, 8, 64] uniform draw (a hidden map of the default recipe's first scale, batch 64)
per iteration of a `tf.while_loop` of 8, its seed derived as the recipe's masks derive it --
`stateless_fold_in(seed, step)`, then `stateless_fold_in(., layer)` (`chain`) -- or with one
fold-in (`one_fold`), or as a Philox key from integer arithmetic given to
`tf.raw_ops.StatelessRandomUniformV2` (`raw_key`, other values: a measurement only). Graph
mode against XLA, one thread per op; prints CPU ms per draw (5 calls after one warm-up).

    python bench/xla_mask_rng.py
"""

import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # noqa: E402

SHAPE = [64, 8, 8, 64]


def _draw(seed, step, kind):
    if kind == 'raw_key':
        words = [tf.cast(seed[1], tf.uint32), tf.cast(step, tf.uint32) * 7919 + 3]
        key = tf.bitcast(tf.stack(words), tf.uint64)[tf.newaxis]
        counter = tf.zeros([2], tf.uint64)
        return tf.raw_ops.StatelessRandomUniformV2(shape=SHAPE, key=key, counter=counter, alg=1)
    folded = tf.random.experimental.stateless_fold_in(seed, tf.cast(step, tf.int64))
    if kind == 'chain':
        folded = tf.random.experimental.stateless_fold_in(folded, 3)
    return tf.random.stateless_uniform(SHAPE, folded)


def _loop(seed, kind):
    def body(step, total):
        kept = tf.where(_draw(seed, step, kind) < 0.05, 0.0, 1.0)
        return step + 1, total + tf.reduce_sum(kept)

    return tf.while_loop(lambda step, _: step < 8, body, [tf.constant(0), tf.constant(0.0)])[1]


def main():
    tf.config.threading.set_intra_op_parallelism_threads(1)
    seed = tf.constant([1, 2], tf.int64)
    for kind in ('chain', 'one_fold', 'raw_key'):
        for jit in (False, True):
            function = tf.function(lambda s, kind=kind: _loop(s, kind), jit_compile=jit)
            function(seed).numpy()
            start = time.process_time()
            for _ in range(5):
                function(seed).numpy()
            per_draw = (time.process_time() - start) / 40 * 1e3
            print(f'{kind:8s} {"xla" if jit else "graph":5s} {per_draw:6.2f} CPU ms per draw')
    print(f'load {open("/proc/loadavg").read().split()[:3]}')


if __name__ == '__main__':
    main()
