"""Workarounds for Keras 3 bugs that the trainer meets, each to delete when Keras fixes it.

tests/training/test_trainer.py pins the progress bar's bug on Keras' own bar: an upgrade that
fixes it shows there.
"""

import keras
import tensorflow as tf
from absl import logging

__all__ = ['EpochProgbar', 'on_replicas', 'step_logs', 'with_epoch_progbar']


class EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, never counting past the epoch's steps: with
    `steps_per_execution=8`, Keras 3.15 shows 19 steps as 8, 16 and 24 of 19
    (keras-team/keras#20861; fix proposed in keras-team/keras#21422)."""

    async_safe = True  # As Keras' own bar, which Keras dispatches alongside its other callbacks.

    def _within_epoch(self, batch):
        return batch if self.target is None else min(batch, self.target - 1)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._within_epoch(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._within_epoch(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._within_epoch(batch), logs)


def with_epoch_progbar(callbacks, verbose):
    """`callbacks` with an `EpochProgbar` where Keras would add its own bar."""
    if verbose == 0 or isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    callbacks = list(callbacks or [])
    if not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(EpochProgbar())
    return callbacks


def step_logs(metrics):
    """{name: result} of `metrics`, as a step returns them to Keras; each of shape [1] on
    several workers, whose results Keras 3 reduces with a mean along axis 0, which fails on
    scalars (tensorflow/tensorflow#72388)."""
    logs = {m.name: m.result() for m in metrics}
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)
    ):
        logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def on_replicas(strategy, steps_per_execution, jit_compile):
    """`steps_per_execution` as Keras 3 can run it on `strategy`'s replicas: 1 on several
    (keras-team/keras#19246), with a warning. `ValueError` for `jit_compile=True` there: Keras
    turns XLA off under a strategy itself ('auto'), and True failed inside `fit`, after tracing
    ("Trying to access resource ... replica_1 ... from ... CPU:0")."""
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and not isinstance(jit_compile, str) and jit_compile:
        raise ValueError(
            f'jit_compile=True cannot train on {replicas} replicas: Keras 3 does not take XLA '
            "under a tf.distribute strategy (its jit_compile='auto' turns it off there) and "
            "each replica's XLA step would read another replica's variables. Use "
            'jit_compile=False (a run: --config.train.jit_compile=False) or one replica (a '
            'run: --config.train.strategy=one_device).'
        )
    if steps_per_execution > 1 and replicas > 1:
        logging.warning(
            'steps_per_execution=%d falls back to 1 on %d replicas: Keras 3 cannot run '
            'several steps per call under a multi-replica strategy (keras-team/keras#19246).',
            steps_per_execution,
            replicas,
        )
        return 1
    return steps_per_execution
