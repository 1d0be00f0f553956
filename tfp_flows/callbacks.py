"""Keras callbacks of a training run: checkpoints, sample pictures, time limit, NaN stop."""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfp_flows import images
from tfp_flows.models import sample

__all__ = ['CheckpointCallback', 'SamplePictures', 'StopOnNonFinite', 'TimeLimit']


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the flow and optimizer after every epoch with a finite loss.

    `latest` (a `tf.train.CheckpointManager`) resumes an interrupted run; `best` keeps the
    checkpoint of the lowest `monitor` value (validation bits/dim), recorded in the saved
    variable `best_value`. `epoch` is the checkpoint's epoch counter, so a resumed `fit`
    starts at `initial_epoch=int(epoch.numpy())`. TF writes each checkpoint's files before it
    points the `checkpoint` state file at them, so a kill during a save leaves the previous
    checkpoint loadable. An epoch with a NaN or infinite loss is never saved.
    """

    def __init__(self, latest, best, epoch, best_value, monitor='val_bits_per_dim'):
        super().__init__()
        self.latest, self.best, self.monitor = latest, best, monitor
        self.epoch, self.best_value = epoch, best_value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(float(v)) for v in logs.values()):
            return
        self.epoch.assign(epoch + 1)
        value = float(logs.get(self.monitor, logs.get(self.monitor.removeprefix('val_'))))
        improved = value < self.best_value.numpy()  # A multi-worker variable has no float().
        if improved:
            self.best_value.assign(value)
        self.latest.save(checkpoint_number=epoch + 1)
        if improved:
            self.best.save(checkpoint_number=epoch + 1)


class SamplePictures(keras.callbacks.Callback):
    """Every `every_epochs` epochs: a PNG grid of samples per temperature, and TensorBoard.

    Files: `directory/epoch_EEEE_t0.7.png`; images go to TensorBoard under `samples/t0.7`.
    """

    def __init__(
        self, flow, directory, num_bins, temperatures, every_epochs=1, log_dir=None, seed=0
    ):
        super().__init__()
        self.flow, self.directory, self.num_bins = flow, directory, num_bins
        self.temperatures, self.every_epochs, self.seed = temperatures, every_epochs, seed
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None
        self._sample = tf.function(
            lambda temperature, seed: sample(self.flow, 36, temperature=temperature, seed=seed)
        )

    def write(self, epoch):
        for temperature in self.temperatures:
            drawn = self._sample(
                tf.constant(temperature, self.flow.dtype), tf.constant([self.seed, epoch])
            )
            picture = images.image_grid(drawn.numpy(), self.num_bins, num_columns=6)
            path = os.path.join(self.directory, f'epoch_{epoch:04d}_t{temperature}.png')
            images.write_png(path, picture)
            if self.writer:
                with self.writer.as_default():
                    tf.summary.image(f'samples/t{temperature}', picture[np.newaxis], step=epoch)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs == 0:
            self.write(epoch + 1)


class TimeLimit(keras.callbacks.Callback):
    """Stops `fit` at the end of the first batch after `max_seconds` of training."""

    def __init__(self, max_seconds):
        super().__init__()
        self.max_seconds = max_seconds

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.max_seconds:
            self.model.stop_training = True


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training when the loss `monitor` becomes NaN or inf; records where it first did.

    As Keras' `TerminateOnNaN`, which reads only the key 'loss'; `FlowTrainer` reports its loss
    under `trainer.metric_name`.
    """

    def __init__(self, monitor='bits_per_dim'):
        super().__init__()
        self.monitor = monitor
        self.epoch = 0
        self.failed_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get(self.monitor)
        if loss is not None and not math.isfinite(float(loss)):
            if self.failed_at is None:
                self.failed_at = (self.epoch + 1, batch + 1)
            self.model.stop_training = True
