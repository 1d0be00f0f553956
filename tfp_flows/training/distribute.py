"""Choosing a `tf.distribute` strategy by name, and TensorFlow's CPU thread pools."""

import tensorflow as tf
from absl import logging

__all__ = ['STRATEGIES', 'check_thread_count', 'configure_threads', 'make_strategy']

STRATEGIES = ('auto', 'one_device', 'mirrored', 'multi_worker')


def make_strategy(name='auto'):
    """Returns the strategy called `name`.

    'auto':         `MirroredStrategy` over all GPUs when there are several, else TF's default
                    strategy (no distribution overhead: `OneDeviceStrategy` makes each epoch
                    start ~2 s slower on CPU).
    'one_device':   `OneDeviceStrategy` on the first GPU, or the CPU.
    'mirrored':     `MirroredStrategy` over all GPUs; without GPUs, over all logical CPUs
                    (two logical CPUs stand in for two GPUs in the tests).
    'multi_worker': `MultiWorkerMirroredStrategy`; the cluster comes from `TF_CONFIG`. Make it
                    before TensorFlow runs anything (even listing devices or setting a seed):
                    it configures the collective ops, which fails once TF has started.
    """
    if name not in STRATEGIES:
        raise ValueError(f'strategy must be one of {STRATEGIES}; got {name!r}.')
    if name == 'multi_worker':
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices('GPU')
    if name == 'mirrored' or (name == 'auto' and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices('CPU')
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == 'auto':
        return tf.distribute.get_strategy()
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else '/cpu:0')


def check_thread_count(name, value):
    """Raises `ValueError` naming `name` unless `value` is a thread count (an int >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'{name} must be an int >= 0 (0: TF default); got {value!r}.')


def configure_threads(intra_op_threads=0, inter_op_threads=0):
    """Sizes TensorFlow's thread pools; 0 keeps TF's default (one thread per core).

    `intra_op_threads` is how many threads one op may split its work over, `inter_op_threads`
    how many ops may run side by side. A small flow is hundreds of small ops: with one thread
    per op and independent ops (the coupling nets' gradients, the optimizer's updates) run
    side by side, the default digits Glow trains 1.36x faster on 2 CPU cores than with TF's
    default (one step per call; bench/README.md). Large convolutions want several threads.

    The pools can only be sized before TensorFlow runs its first op. Called later, a setting
    equal to the current one is accepted silently; a different one is not applied and a
    warning names both.
    """
    for name, value, getter, setter in (
        (
            'intra_op_threads',
            intra_op_threads,
            tf.config.threading.get_intra_op_parallelism_threads,
            tf.config.threading.set_intra_op_parallelism_threads,
        ),
        (
            'inter_op_threads',
            inter_op_threads,
            tf.config.threading.get_inter_op_parallelism_threads,
            tf.config.threading.set_inter_op_parallelism_threads,
        ),
    ):
        check_thread_count(name, value)
        if value == 0 or value == getter():
            continue
        try:
            setter(value)
        except RuntimeError:
            logging.warning(
                '%s=%d not applied: TensorFlow already runs with %s=%d (0: its default). Set '
                'it before TensorFlow runs any op, as train.py does.',
                name,
                value,
                name,
                getter(),
            )
