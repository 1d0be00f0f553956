"""Choosing a `tf.distribute` strategy by name, and TensorFlow's CPU thread pools."""

import tensorflow as tf
from absl import logging

from tfp_flows import checks

__all__ = ['STRATEGIES', 'configure_threads', 'make_strategy']

STRATEGIES = ('auto', 'one_device', 'mirrored', 'multi_worker')


def make_strategy(name='auto'):
    """Returns the strategy called `name`.

    'auto':         `MirroredStrategy` over all GPUs when there are several, else TF's default
                    strategy (`OneDeviceStrategy` makes each epoch start ~2 s slower on CPU).
    'one_device':   `OneDeviceStrategy` on the first GPU, or the CPU.
    'mirrored':     `MirroredStrategy` over all GPUs, or else all logical CPUs.
    'multi_worker': `MultiWorkerMirroredStrategy`, its cluster from `TF_CONFIG`; make it before
                    TensorFlow runs anything (even listing devices or setting a seed).
    """
    if checks.one_of(*STRATEGIES).check('name', name) == 'multi_worker':
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices('GPU')
    if name == 'mirrored' or (name == 'auto' and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices('CPU')
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == 'auto':
        return tf.distribute.get_strategy()
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else '/cpu:0')


def configure_threads(intra_op_threads=0, inter_op_threads=0):
    """Sizes TensorFlow's thread pools (0 keeps TF's default, one thread per core): the threads
    one op may split its work over, and the ops run side by side. The pools can only be sized
    before TensorFlow runs its first op: later, a different setting is not applied and a
    warning names both.
    """
    requested = {
        'intra_op': checks.NON_NEGATIVE_INT.check('intra_op_threads', intra_op_threads),
        'inter_op': checks.NON_NEGATIVE_INT.check('inter_op_threads', inter_op_threads),
    }
    for pool, value in requested.items():
        current = getattr(tf.config.threading, f'get_{pool}_parallelism_threads')()
        if value == 0 or value == current:
            continue
        try:
            getattr(tf.config.threading, f'set_{pool}_parallelism_threads')(value)
        except RuntimeError:
            logging.warning(
                '%s_threads=%d not applied: TensorFlow already runs with %s_threads=%d (0: its '
                'default). Set it before TensorFlow runs any op, as train.py does.',
                pool,
                value,
                pool,
                current,
            )
