"""Choosing a `tf.distribute` strategy by name."""

import tensorflow as tf

__all__ = ['STRATEGIES', 'make_strategy']

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
