"""The run's own Keras callbacks: checkpoints, sample and density pictures, where a NaN stopped it.

The run builds them from its checked config, so they take their arguments as given.
TensorBoard steps are Keras' epoch index from 0, so pictures sit on the curves' epochs.
"""

import contextlib
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.tools import latent, pictures

__all__ = [
    'CheckpointCallback',
    'DensityPictures',
    'SamplePictures',
    'TerminateOnNaN',
    'TimeLimit',
    'log_test_metric',
    'picture_callback',
]


def _finite(logs):
    return all(math.isfinite(float(value)) for value in (logs or {}).values())


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the checkpoint (`latest`, a `tf.train.CheckpointManager`) after every epoch with a
    finite loss; `best` too when `monitor` beats the saved variable `best_value`. The saved
    variable `epoch` counts the epochs trained; `first_save()`, if given, runs once, after the
    first save."""

    def __init__(self, latest, best, epoch, best_value, first_save=None, monitor='val_loss'):
        super().__init__()
        self.latest, self.best, self.monitor = latest, best, monitor
        self.epoch, self.best_value, self.first_save = epoch, best_value, first_save

    def on_epoch_end(self, epoch, logs=None):
        if not _finite(logs):
            return
        self.epoch.assign(epoch + 1)
        value = float(logs[self.monitor])
        improved = value < self.best_value.numpy()  # A multi-worker variable has no float().
        if improved:
            self.best_value.assign(value)
        self.latest.save(checkpoint_number=epoch + 1)
        if improved:
            self.best.save(checkpoint_number=epoch + 1)
        if self.first_save is not None:
            self.first_save()
            self.first_save = None


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' `TerminateOnNaN`; `failed_at` is (epoch, batch), from 1, of the first non-finite
    loss (None while the loss stays finite)."""

    failed_at = None
    _epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        stopping = self.model.stop_training
        super().on_batch_end(batch, logs)
        if self.model.stop_training and not stopping and self.failed_at is None:
            self.failed_at = (self._epoch + 1, batch + 1)


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


class _Pictures(keras.callbacks.Callback):
    """Calls `write(epochs_trained)` after every `every_epochs` epochs with a finite loss,
    with the EMA weights if the trainer keeps them; `_log_image` logs to `log_dir`, if any."""

    def __init__(self, every_epochs, log_dir):
        super().__init__()
        self.every_epochs = every_epochs
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        if _finite(logs) and (epoch + 1) % self.every_epochs == 0:
            ema = getattr(self.model, 'uses_ema', False)  # A FlowTrainer with an EMA optimizer.
            with self.model.ema_weights() if ema else contextlib.nullcontext():
                self.write(epoch + 1)

    def _log_image(self, tag, picture, epochs_trained):
        if self.writer:
            with self.writer.as_default():
                tf.summary.image(tag, picture[np.newaxis], step=epochs_trained - 1)
            self.writer.flush()


class SamplePictures(_Pictures):
    """Every `every_epochs` epochs: `directory/epoch_EEEE.png` (EEEE = epochs trained), the
    temperatures side by side (`pictures.sample_figure`, or `latent.class_sample_figure` with
    `class_conditional`), and each grid to TensorBoard as `samples/temperature_T`. The base
    noise is the same every epoch (from `seed`)."""

    def __init__(
        self,
        flow,
        directory,
        num_bins,
        temperatures,
        every_epochs=1,
        log_dir=None,
        seed=0,
        class_conditional=False,
    ):
        super().__init__(every_epochs, log_dir)
        self.flow, self.directory, self.num_bins = flow, directory, num_bins
        self.temperatures, self.seed = tuple(temperatures), seed
        self.class_conditional = class_conditional

    def write(self, epochs_trained):
        """Writes the pictures after `epochs_trained` epochs; returns the PNG's path."""
        figure_fn = latent.class_sample_figure if self.class_conditional else pictures.sample_figure
        figure, grids = figure_fn(self.flow, self.num_bins, self.temperatures, self.seed)
        path = os.path.join(self.directory, f'epoch_{epochs_trained:04d}.png')
        pictures.write_png(path, figure)
        for temperature, grid in zip(self.temperatures, grids, strict=True):
            self._log_image(f'samples/temperature_{temperature}', grid, epochs_trained)
        return path


class DensityPictures(_Pictures):
    """Every `every_epochs` epochs: a 2-D flow's learned density beside the `points` [N, 2],
    to `path` (`pictures.density_figure`) and to TensorBoard under `density`."""

    def __init__(self, flow, points, path, every_epochs=1, log_dir=None, **figure_options):
        super().__init__(every_epochs, log_dir)
        self.flow, self.points, self.path = flow, points, path
        self.figure_options = figure_options  # `pictures.density_figure`'s labels.

    def write(self, epochs_trained):
        """Writes the picture after `epochs_trained` epochs; returns its path."""
        picture = pictures.density_figure(
            lambda x: self.flow.log_prob(tf.cast(x, self.flow.dtype)),
            self.points,
            **self.figure_options,
        )
        pictures.write_png(self.path, picture)
        self._log_image('density', picture, epochs_trained)
        return self.path


def picture_callback(config, info, flow, test_data, log_dir):
    """The picture callback of a run on the data `info` describes: `SamplePictures` into
    workdir/samples for images, `DensityPictures` (beside `test_data`) into workdir/density.png
    for unconditional 2-D points, else None. `log_dir` is workdir/logs."""
    workdir, every = os.path.dirname(log_dir), config.train.sample_every_epochs
    if len(info.event_shape) == 3:
        return SamplePictures(
            flow,
            os.path.join(workdir, 'samples'),
            info.num_bins,
            config.train.sample_temperatures,
            every_epochs=every,
            log_dir=log_dir,
            seed=config.seed,
            class_conditional=info.class_names is not None and config.data.conditional,
        )
    if tuple(info.event_shape) != (2,) or config.data.conditional:
        return None
    return DensityPictures(
        flow,
        np.concatenate([batch.numpy() for batch in test_data]),
        os.path.join(workdir, 'density.png'),
        every_epochs=every,
        log_dir=log_dir,
        points_label='test data',
        axis_names=info.statistics and info.statistics.columns,
    )


def log_test_metric(log_dir, name, value, epochs_trained):
    """Logs the test figure `value` as `epoch_<name>` in `log_dir/test`, on Keras' curves at
    the epoch of the tested checkpoint (`epochs_trained`)."""
    writer = tf.summary.create_file_writer(os.path.join(log_dir, 'test'))
    with writer.as_default():
        tf.summary.scalar(f'epoch_{name}', float(value), step=epochs_trained - 1)
    writer.close()
