"""Keras callbacks of a training run: checkpoints, pictures, TensorBoard scalars, stops."""

import contextlib
import math
import numbers
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.models import check_flow
from tfp_flows.run.workdir import check_path
from tfp_flows.tools import latent
from tfp_flows.tools import pictures as images
from tfp_flows.validation import check_bool, check_int, check_number, check_one_of

_UNITS = ('bits_per_dim', 'nats_per_dim')


def _check_name(name, value):
    """Raises `ValueError` unless `value` is a non-empty str (a log key)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{name}` must be a non-empty str (a key of Keras' logs); got {value!r}.")


__all__ = [
    'CheckpointCallback',
    'DensityPictures',
    'MetricScalars',
    'SamplePictures',
    'StopOnNonFinite',
    'TimeLimit',
    'log_test_metrics',
]


class CheckpointCallback(keras.callbacks.Callback):
    """Saves the flow and optimizer after every epoch with a finite loss.

    `latest` (a `tf.train.CheckpointManager`) resumes an interrupted run; `best` keeps the
    checkpoint of the lowest `monitor` value (validation bits/dim, `'val_' +
    trainer.metric_name`; the training loss when there is no validation), recorded in the saved
    variable `best_value`. `epoch` is the checkpoint's epoch counter, so a resumed `fit`
    starts at `initial_epoch=int(epoch.numpy())`. TF writes each checkpoint's files before it
    points the `checkpoint` state file at them, so a kill during a save leaves the previous
    checkpoint loadable. An epoch with a NaN or infinite loss is never saved.

    Raises:
      TypeError: `latest` or `best` is not a `tf.train.CheckpointManager`, or `epoch` or
        `best_value` not a scalar `tf.Variable`.
      ValueError: `monitor` is not a non-empty str.
    """

    def __init__(self, latest, best, epoch, best_value, monitor='val_bits_per_dim'):
        for name, value in (('latest', latest), ('best', best)):
            if not isinstance(value, tf.train.CheckpointManager):
                raise TypeError(f'`{name}` must be a tf.train.CheckpointManager; got {value!r}.')
        for name, value in (('epoch', epoch), ('best_value', best_value)):
            if not isinstance(value, tf.Variable) or value.shape.rank != 0:
                raise TypeError(f'`{name}` must be a scalar tf.Variable; got {value!r}.')
        _check_name('monitor', monitor)
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


class _Pictures(keras.callbacks.Callback):
    """Calls `write(epochs_trained)` after every `every_epochs` epochs with a finite loss.

    With an optimizer that keeps EMA weights (`make_optimizer(..., ema_momentum=m)`), the
    pictures show the EMA weights, which are validated (`FlowTrainer.ema_weights()`).
    """

    def __init__(self, every_epochs, log_dir):
        check_int('every_epochs', every_epochs, 1)
        check_path('log_dir', log_dir, allow_none=True)
        super().__init__()
        self.every_epochs = every_epochs
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        finite = all(math.isfinite(float(v)) for v in (logs or {}).values())
        if finite and (epoch + 1) % self.every_epochs == 0:
            with self._validated_weights():
                self.write(epoch + 1)

    def _validated_weights(self):
        if getattr(self.model, 'uses_ema', False):  # A FlowTrainer with an EMA optimizer.
            return self.model.ema_weights()
        return contextlib.nullcontext()

    def _log_image(self, tag, picture, step):
        if self.writer:
            with self.writer.as_default():
                tf.summary.image(tag, picture[np.newaxis], step=step)
            self.writer.flush()


class SamplePictures(_Pictures):
    """Every `every_epochs` epochs: samples at each temperature, to a PNG and to TensorBoard.

    File: `directory/epoch_EEEE.png` (EEEE = epochs trained), the temperatures side by side,
    each panel labelled (`images.sample_figure`); for a flow conditional on one-hot labels
    (`class_conditional`), each panel has one row per class (`latent.class_sample_figure`).
    TensorBoard (with `log_dir`): each temperature's grid as an image under
    `samples/temperature_0.7`, at step = epochs trained. The base noise is the same in every
    epoch (from `seed`), so successive pictures show how the samples of the same latents
    change as the flow trains.

    Raises (before any work):
      TypeError: a `flow` that is not a `tfd.TransformedDistribution`, a `directory` or
        `log_dir` that is not a path.
      ValueError: `num_bins` not an int >= 2, `temperatures` not a non-empty list of finite
        numbers > 0, `every_epochs` not a positive int, `seed` not an int in [0, 2**31),
        `class_conditional` not True or False.
    """

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
        check_flow(flow)
        check_path('directory', directory)
        check_int('num_bins', num_bins, 2)
        temperatures = images.check_temperatures(temperatures)
        check_int('seed', seed, 0, 2**31)
        check_bool('class_conditional', class_conditional)
        super().__init__(every_epochs, log_dir)
        self.flow, self.directory, self.num_bins = flow, directory, num_bins
        self.temperatures, self.seed = temperatures, seed
        self.class_conditional = class_conditional

    def write(self, epoch):
        """Writes the pictures of `epoch` (epochs trained, an int >= 0); returns the PNG's path."""
        check_int('epoch', epoch, 0)
        figure_fn = latent.class_sample_figure if self.class_conditional else images.sample_figure
        figure, grids = figure_fn(self.flow, self.num_bins, self.temperatures, self.seed)
        path = os.path.join(self.directory, f'epoch_{epoch:04d}.png')
        images.write_png(path, figure)
        for temperature, grid in zip(self.temperatures, grids, strict=True):
            self._log_image(f'samples/temperature_{temperature}', grid, epoch)
        return path


class DensityPictures(_Pictures):
    """Every `every_epochs` epochs: a 2-D flow's learned density beside the data.

    Writes `images.density_figure` to `path` (replacing the previous one) and, with `log_dir`,
    to TensorBoard under `density`, at step = epochs trained.

    Raises (before any work):
      TypeError: a `flow` that is not a `tfd.TransformedDistribution`, a `path` or `log_dir`
        that is not a path.
      ValueError: `points` not finite numbers [N, 2], `points_label` not a str,
        `every_epochs` not a positive int.
    """

    def __init__(self, flow, points, path, every_epochs=1, log_dir=None, points_label='data'):
        check_flow(flow)
        points = images.check_points(points)
        check_path('path', path)
        if not isinstance(points_label, str):
            raise ValueError(f'`points_label` must be a str; got {points_label!r}.')
        super().__init__(every_epochs, log_dir)
        self.flow, self.points, self.path = flow, points, path
        self.points_label = points_label

    def write(self, epoch):
        """Writes the picture of `epoch` (epochs trained, an int >= 0); returns its path."""
        check_int('epoch', epoch, 0)
        picture = images.density_figure(
            lambda x: self.flow.log_prob(tf.cast(x, self.flow.dtype)),
            self.points,
            points_label=self.points_label,
        )
        images.write_png(self.path, picture)
        self._log_image('density', picture, epoch)
        return self.path


class MetricScalars(keras.callbacks.Callback):
    """Logs the training and validation loss of every epoch to TensorBoard under its unit.

    Tags `{unit}/train` and `{unit}/validation` (e.g. `bits_per_dim/validation`), at step =
    epochs trained, in `log_dir` itself (Keras' `TensorBoard` callback writes its
    `epoch_<metric>` curves to `log_dir/train` and `log_dir/validation`). `log_test_metrics`
    adds `{unit}/test`.

    Args:
      log_dir: the TensorBoard directory.
      unit: 'bits_per_dim' or 'nats_per_dim', the tags' prefix.
      metric_name: the key of the loss in Keras' logs (validation: 'val_' + it); default `unit`.

    Raises (before any file is made): `TypeError` for a `log_dir` that is not a path,
    `ValueError` for another `unit` or a `metric_name` that is not None or a non-empty str.
    """

    def __init__(self, log_dir, unit, metric_name=None):
        check_path('log_dir', log_dir)
        check_one_of('unit', unit, _UNITS)
        if metric_name is not None:
            _check_name('metric_name', metric_name)
        super().__init__()
        self.unit, self.metric_name = unit, metric_name or unit
        self.writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self.writer.as_default():
            for split, key in (
                ('train', self.metric_name),
                ('validation', 'val_' + self.metric_name),
            ):
                if key in logs:
                    tf.summary.scalar(f'{self.unit}/{split}', float(logs[key]), step=epoch + 1)
        self.writer.flush()


def log_test_metrics(log_dir, unit, value, step):
    """Logs the test loss `value` to TensorBoard as `{unit}/test` (e.g. `bits_per_dim/test`).

    `step` is the epoch of the tested checkpoint (the best by validation), so the point sits on
    `MetricScalars`' validation curve where that checkpoint was chosen.

    Raises (before any file is made): `TypeError` for a `log_dir` that is not a path,
    `ValueError` for another `unit` than 'bits_per_dim' or 'nats_per_dim', a `value` that is
    not a number (inf is one: a diverged model's test figure), a `step` that is not an int >= 0.
    """
    check_path('log_dir', log_dir)
    check_one_of('unit', unit, _UNITS)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f'`value` must be a number (not NaN); got {value!r}.')
    check_int('step', step, 0)
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        tf.summary.scalar(f'{unit}/test', float(value), step=step)
    writer.close()


class TimeLimit(keras.callbacks.Callback):
    """Stops `fit` at the end of the first batch after `max_seconds` of training.

    Raises `ValueError` for a `max_seconds` that is not a finite number > 0.
    """

    def __init__(self, max_seconds):
        check_number('max_seconds', max_seconds, 0, low_open=True)
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
    under `trainer.metric_name`. Raises `ValueError` for a `monitor` that is not a non-empty str.
    """

    def __init__(self, monitor='bits_per_dim'):
        _check_name('monitor', monitor)
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
