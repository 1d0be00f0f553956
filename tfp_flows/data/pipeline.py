"""The passes of `make_dataset`: order, batches, flips and dequantization, from one key a pass.

Everything random in a pass comes from its stateless key [2]: the order (each window permuted
by sorting stateless uniform keys) and batch i's flips and noise (fold_in(noise key, i)). The
key is fold_in(key of `seed`, epoch) with an `epoch`, so the pass is a pure function of (seed,
epoch); without one, a fresh draw of a (seeded or unseeded) random stream each iteration.
"""

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.dequantization import uniform_dequantize

__all__ = ['check_epoch', 'pass_keys', 'passes', 'preparation']


def check_epoch(epoch, seed):
    """Raises `ValueError` unless `epoch` is None, or an int >= 0 or a scalar int64
    `tf.Variable` given with a `seed`."""
    if epoch is None:
        return
    if isinstance(epoch, tf.Variable):
        bad = epoch.dtype != tf.int64 or epoch.shape.rank != 0
        shown = f'a variable of dtype {epoch.dtype.name} and shape {epoch.shape}'
    else:
        bad, shown = not checks.NON_NEGATIVE_INT.contains(epoch), repr(epoch)
    if bad:
        raise ValueError(f'`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got {shown}.')
    if seed is None:
        raise ValueError(
            '`epoch` needs a `seed`: each pass is drawn from (seed, epoch); got seed=None.'
        )


def pass_keys(seed, epoch):
    """A dataset of one element, the key [2] int64 of the pass that iterates it."""
    if epoch is None:
        return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(1)
    # Two independent ints from the int seed.
    key = tf.constant(np.random.SeedSequence(seed).generate_state(2).astype(np.int64))
    if isinstance(epoch, tf.Variable):  # Read when the pass starts.
        return tf.data.Dataset.from_tensors(0).map(
            lambda _: tf.random.experimental.stateless_fold_in(key, epoch)
        )
    epoch = tf.constant(epoch, tf.int64)  # The dtype of the folded-in key.
    return tf.data.Dataset.from_tensors(tf.random.experimental.stateless_fold_in(key, epoch))


def _one_pass(examples, key, window, batch, prepare):
    """The batches of one pass over `examples`, a function of the int64 `key` [2]: each
    `window` of examples permuted (None: kept in order), `batch`ed, then `prepare`d."""
    shuffle_key, noise_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if window is not None:

        def permute(index, window_examples):
            seed = tf.random.experimental.stateless_fold_in(shuffle_key, index)
            size = tf.shape(tf.nest.flatten(window_examples)[0])[:1]
            order = tf.argsort(tf.random.stateless_uniform(size, seed))
            return tf.nest.map_structure(lambda t: tf.gather(t, order), window_examples)

        examples = examples.batch(window).enumerate().map(permute).unbatch()
    batches = batch(examples)
    if prepare is None:
        return batches
    return batches.enumerate().map(
        lambda index, batch: prepare(
            batch, tf.random.experimental.stateless_fold_in(noise_key, index)
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def passes(examples, keys, window, batch, prepare):
    """The batches of `examples` (cached), one pass per key of `keys` (see `_one_pass`)."""
    examples = examples.cache()
    return keys.flat_map(lambda key: _one_pass(examples, key, window, batch, prepare))


def preparation(num_bins, dequantize, augment):
    """`prepare(batch, seed)` for images of `num_bins` levels: flipped left-right with
    probability 0.5 each if `augment` is 'flip', then uniformly dequantized to [0, 1) (or,
    without `dequantize`, cast to float32 integers); None for continuous data (no `num_bins`).
    A batch is images [B, H, W, C] or (images, context) pairs; the context passes through."""
    if num_bins is None:
        return None

    def prepare(batch, seed):
        images, context = batch if isinstance(batch, tuple) else (batch, None)
        flip_seed, noise_seed = tf.unstack(tf.random.split(seed, 2))
        if augment == 'flip':
            images = tf.image.stateless_random_flip_left_right(images, flip_seed)
        if dequantize:
            images = uniform_dequantize(images, num_bins, seed=noise_seed)
        else:
            images = tf.cast(images, tf.float32)
        return images if context is None else (images, context)

    return prepare
