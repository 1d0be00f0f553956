"""A whole training run from a config: data, flow, init, `fit`, test bits/dim, outputs.

Everything a run writes goes to `workdir`:
  config.json          the resolved config, to rebuild the flow (`restore_flow`)
  config_history.json  training settings changed when the run resumed, with their epochs
  checkpoints/latest   the last epochs (resume), checkpoints/best  the best by validation
  logs/                TensorBoard: loss, bits/dim (train, validation, test), gradient norm,
                       learning rate, sample grids (images) or the learned density (2-D)
  samples/             PNGs of samples, the temperatures side by side (images)
  density.png          the learned density beside the test data (2-D)
  metrics.json         test bits/dim (or nats/dim) of the best checkpoint, and more; written
                       last, so it marks a finished run
  saved_model/         the exported best model (`tfp_flows.export`)

A rerun into the same workdir goes on where the run stopped, or, if the run is finished,
returns its metrics and changes nothing; `tfp_flows.workdir` says which config changes a rerun
may make. Epoch e's training data is a function of (config.seed, e) alone, and validation and
test use fixed dequantization noise, so a run killed and resumed at an epoch boundary ends with
the numbers of an unbroken run, and evaluating a checkpoint gives the same figure every time.

In a multi-worker run (`MultiWorkerMirroredStrategy`) only the chief writes these. Every worker
saves checkpoints, as the strategy requires, but the others write theirs to a temporary
directory that is removed at the end; every worker resumes from the chief's checkpoints, so
`workdir` must be on a file system that all workers see.
"""

import contextlib
import json
import math
import os
import tempfile
import time

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from tfp_flows import callbacks, checkpoints, data, models
from tfp_flows import workdir as workdirs
from tfp_flows.config_checks import check_config
from tfp_flows.distribute import configure_threads, make_strategy
from tfp_flows.export import export_saved_model
from tfp_flows.initialization import initialize
from tfp_flows.optimizers import make_optimizer
from tfp_flows.trainer import FlowTrainer

__all__ = ['TrainingDiverged', 'build_flow', 'check_config', 'restore_flow', 'train_and_evaluate']

_DTYPES = {'float32': tf.float32, 'float64': tf.float64}
_CHECKPOINT_NAMES = ('best', 'latest')
_EVALUATION_SEED = 0  # Fixed dequantization noise of validation and test, the same in every run.


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def build_flow(model_config, event_shape, dtype_policy=None):
    """The flow described by `config.model` for data of `event_shape`, its networks computing
    in `dtype_policy` (`config.train.mixed_precision`; None: float32)."""
    kwargs = dict(model_config)
    family = kwargs.pop('family')
    kwargs['dtype'] = _DTYPES[kwargs['dtype']]
    kwargs['dtype_policy'] = dtype_policy
    if family == 'glow':
        return models.glow(event_shape, **kwargs)
    for key, glow_only in (('coupling', 'affine'), ('permutation', 'lu')):
        if kwargs.pop(key) != glow_only:
            raise ValueError(
                f'config.model.{key} applies to Glow only; real_nvp uses {glow_only!r}, got '
                f'{model_config[key]!r}.'
            )
    return models.real_nvp(event_shape, **kwargs)


def restore_flow(workdir, which='best'):
    """Rebuilds the flow of a finished or interrupted run and loads its `which` checkpoint.

    `which` is 'best' or 'latest'. Works in a fresh process: the architecture comes from
    `workdir/config.json`, the variables from `workdir/checkpoints/<which>` (the optimizer's
    state there is not loaded).

    Raises:
      ValueError: `which` is another name, or the checkpoint does not match the model of
        config.json or is damaged.
      FileNotFoundError: `workdir` holds no config.json or no such checkpoint.
    """
    if which not in _CHECKPOINT_NAMES:
        raise ValueError(f'`which` must be one of {_CHECKPOINT_NAMES}; got {which!r}.')
    config = workdirs.read_json(os.path.join(workdir, 'config.json'))
    if config is None:
        raise FileNotFoundError(f'No config.json in workdir {workdir!r}: not a tfp_flows run.')
    path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', which))
    if path is None:
        raise FileNotFoundError(f'No {which!r} checkpoint under {workdir!r}/checkpoints.')
    flow = build_flow(
        ml_collections.ConfigDict(config['model']), tuple(config['data']['event_shape'])
    )
    checkpoints.restore(tf.train.Checkpoint(flow=flow), path, partial=True)
    return flow


class _SetDataEpoch(keras.callbacks.Callback):
    """Sets the training data's epoch variable as each epoch starts (`data.make_dataset`)."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


@contextlib.contextmanager
def _save_directory(directory, is_chief):
    """Yields `directory` on the chief; on other workers a temporary one, removed on exit."""
    if is_chief:
        yield directory
    else:
        with tempfile.TemporaryDirectory(prefix='tfp_flows_worker_') as temporary:
            yield temporary


def _diverged_message(failed_at, checkpoint, config):
    at_epoch, at_batch = failed_at
    remedies = (
        f'a lower --config.train.learning_rate (now {config.train.learning_rate}), more '
        f'--config.train.warmup_steps (now {config.train.warmup_steps}) or a smaller '
        f'--config.train.clip_norm (now {config.train.clip_norm})'
    )
    where = f'The loss became NaN or infinite at epoch {at_epoch}, batch {at_batch}.'
    if checkpoint is None:
        return (
            f'{where} No epoch finished, so there is no checkpoint to resume from, and the same '
            'command would diverge again (the seed fixes the data and the initial weights). '
            f'Rerun it with {remedies}; or, with a new --workdir, a smaller '
            '--config.model.log_scale_bound.'
        )
    return (
        f'{where} The last good checkpoint is {checkpoint}. The seed fixes the data of every '
        'epoch, so the same command would resume there and diverge again: rerun it with '
        f'{remedies} (a resumed run may change training settings; config_history.json records '
        'the change); or, with a new --workdir, a smaller --config.model.log_scale_bound.'
    )


def train_and_evaluate(config, workdir, strategy=None, verbose='auto', export_dir=None):
    """Trains the flow of `config`, keeps the best by validation, returns test metrics.

    A rerun into `workdir` resumes from `workdir/checkpoints/latest` (ActNorm is then not
    initialised again); a finished run returns its metrics.json and changes nothing. `config`
    itself is not changed. With `export_dir` (a new path outside `workdir`) the best model is
    also exported there. Progress goes to absl logging (INFO) and Keras' progress bar.

    Returns:
      A dict: 'test_bits_per_dim' and 'validation_bits_per_dim' (or '..._nats_per_dim' for
      continuous data), 'epochs_trained', 'best_epoch', 'stopped_early',
      'train_seconds_this_session', 'best_checkpoint', 'num_parameters'.

    Raises (all before training, except `TrainingDiverged`):
      ValueError: a bad config value, a workdir holding a run of another model or data
        (`workdir.WorkdirMismatch`), an unwritable workdir, or an `export_dir` inside it.
      FileExistsError: `export_dir` exists.
      TrainingDiverged: the loss became NaN or infinite.
    """
    check_config(config)
    workdir = os.path.abspath(workdir)
    rerun = workdirs.check_rerun(workdir, config)
    workdirs.check_export_dir(export_dir, workdir)
    if rerun.finished:
        logging.info('%s', workdirs.finished_message(rerun, config.train.epochs))
        if export_dir is not None:
            workdirs.copy_export(workdir, export_dir)
        return rerun.metrics
    workdirs.check_writable(workdir)
    # Both before TF runs anything: thread pools and collective ops are fixed from then on.
    configure_threads(config.train.intra_op_threads, config.train.inter_op_threads)
    strategy = strategy or make_strategy(config.train.strategy)
    keras.utils.set_random_seed(config.seed)
    is_chief = strategy.extended.should_checkpoint  # False on the other workers only.

    batch_size = config.train.batch_size
    splits = config.data.splits
    common = dict(data_dir=config.data.data_dir, image_size=config.data.image_size)
    data_epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name='data_epoch')
    train_ds, info = data.make_dataset(
        config.data.name,
        splits.train,
        batch_size,
        shuffle=True,
        seed=config.seed,
        epoch=data_epoch,
        drop_remainder=True,
        **common,
    )
    validation_ds, test_ds = (
        data.make_dataset(
            config.data.name,
            split,
            batch_size,
            shuffle=False,
            seed=_EVALUATION_SEED,
            epoch=0,
            **common,
        )[0]
        for split in (splits.validation, splits.test)
    )
    resolved = json.loads(config.to_json())  # The caller's config stays as it is.
    resolved['data'].update(event_shape=list(info.event_shape), num_bins=info.num_bins)
    rerun = workdirs.check_rerun(workdir, resolved)  # Now with the data's shape and levels.

    steps_per_epoch = int(train_ds.cardinality())
    with strategy.scope():
        flow = build_flow(config.model, info.event_shape, config.train.mixed_precision)
        trainer = FlowTrainer(flow, info.num_bins, clip_norm=config.train.clip_norm)
        optimizer = make_optimizer(
            config.train.optimizer,
            config.train.learning_rate,
            warmup_steps=config.train.warmup_steps,
            decay_steps=config.train.epochs * steps_per_epoch
            if config.train.cosine_decay
            else None,
            weight_decay=config.train.weight_decay,
        )
        trainer.compile(
            optimizer,
            jit_compile=config.train.jit_compile,
            steps_per_execution=config.train.steps_per_execution,
        )
        epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name='epoch')
        best_value = tf.Variable(math.inf, trainable=False, dtype=tf.float64, name='best_value')
    checkpoint = tf.train.Checkpoint(
        flow=flow, optimizer=optimizer, epoch=epoch, best_value=best_value
    )
    directory = os.path.join(workdir, 'checkpoints')
    resumed_from = checkpoints.restore_newest_readable(
        checkpoint, os.path.join(directory, 'latest')
    )
    initial_epoch = int(epoch.numpy())
    if is_chief:  # Once the flow builds and the checkpoint loads: no empty or broken runs.
        workdirs.write_config(workdir, resolved, rerun, initial_epoch)
    if resumed_from:
        logging.info('Resuming from %s (epoch %d).', resumed_from, initial_epoch)
        for key, (old, new) in rerun.changed.items():
            logging.info('  %s changed: %r -> %r (config_history.json).', key, old, new)
    else:
        # The same first batch on every worker (the dataset is seeded), so every replica gets
        # the same values; cross-replica context.
        logging.info('Initialising ActNorm on the first training batch (%d examples).', batch_size)
        initialize(flow, tf.cast(next(iter(train_ds)), flow.dtype))

    with _save_directory(directory, is_chief) as save_directory:
        latest = tf.train.CheckpointManager(
            checkpoint, os.path.join(save_directory, 'latest'), max_to_keep=2
        )
        best = tf.train.CheckpointManager(
            checkpoint, os.path.join(save_directory, 'best'), max_to_keep=1
        )
        nan_stop = callbacks.StopOnNonFinite(monitor=trainer.metric_name)
        log_dir = os.path.join(workdir, 'logs')
        run_callbacks = [
            _SetDataEpoch(data_epoch),
            nan_stop,
            callbacks.CheckpointCallback(
                latest, best, epoch, best_value, monitor='val_' + trainer.metric_name
            ),
        ]
        is_image = len(info.event_shape) == 3
        unit = trainer.metric_name  # 'bits_per_dim' (images) or 'nats_per_dim' (points).
        if is_chief:
            run_callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
            run_callbacks.append(callbacks.MetricScalars(log_dir, unit))
        if is_chief and is_image:
            pictures = callbacks.SamplePictures(
                flow,
                os.path.join(workdir, 'samples'),
                info.num_bins,
                tuple(config.train.sample_temperatures),
                every_epochs=config.train.sample_every_epochs,
                log_dir=log_dir,
                seed=config.seed,
            )
            run_callbacks.append(pictures)
        elif is_chief:
            pictures = callbacks.DensityPictures(
                flow,
                np.concatenate([batch.numpy() for batch in test_ds]),
                os.path.join(workdir, 'density.png'),
                every_epochs=config.train.sample_every_epochs,
                log_dir=log_dir,
                points_label='test data',
            )
            run_callbacks.append(pictures)
        if config.train.max_seconds:
            run_callbacks.append(callbacks.TimeLimit(config.train.max_seconds))
        early_stopping = None
        if config.train.early_stopping_patience:
            early_stopping = keras.callbacks.EarlyStopping(
                monitor='val_' + trainer.metric_name,
                patience=config.train.early_stopping_patience,
            )
            run_callbacks.append(early_stopping)
        start = time.monotonic()
        trainer.fit(
            train_ds,
            validation_data=validation_ds,
            epochs=config.train.epochs,
            initial_epoch=initial_epoch,
            callbacks=run_callbacks,
            shuffle=False,  # The dataset shuffles itself.
            verbose=verbose,
        )
        train_seconds = time.monotonic() - start
        if nan_stop.failed_at is not None:
            raise TrainingDiverged(
                _diverged_message(nan_stop.failed_at, latest.latest_checkpoint, config)
            )
        # Every worker decides alike when to save the best (from the same reduced loss), so
        # a worker that saved none this session finds it among the chief's, written earlier.
        best_path = best.latest_checkpoint or tf.train.latest_checkpoint(
            os.path.join(directory, 'best')
        )
        epochs_trained = int(epoch.numpy())  # Restoring the best sets `epoch` to its epoch.
        if best_path:
            checkpoints.restore(checkpoint, best_path)
            best_path = os.path.join(directory, 'best', os.path.basename(best_path))  # Chief's.
        metrics = {  # Evaluated by every worker together.
            f'test_{unit}': _evaluate(trainer, test_ds),
            f'validation_{unit}': _evaluate(trainer, validation_ds),
            'epochs_trained': epochs_trained,
            'best_epoch': int(epoch.numpy()),
            'stopped_early': bool(early_stopping and early_stopping.stopped_epoch),
            'train_seconds_this_session': round(train_seconds, 1),
            'best_checkpoint': best_path,
            'num_parameters': int(sum(np.prod(v.shape) for v in flow.trainable_variables)),
        }
    if is_chief:
        pictures.write(metrics['best_epoch'])
        callbacks.log_test_metrics(log_dir, unit, metrics[f'test_{unit}'], metrics['best_epoch'])
        export_saved_model(
            flow, os.path.join(workdir, 'saved_model'), num_bins=info.num_bins, overwrite=True
        )
        if export_dir is not None:
            export_saved_model(flow, export_dir, num_bins=info.num_bins)
        # Last: a metrics.json that describes the newest checkpoint marks a finished run.
        workdirs.write_json(os.path.join(workdir, 'metrics.json'), metrics)
    return metrics


def _evaluate(trainer, dataset):
    value = trainer.evaluate(dataset, verbose=0, return_dict=True)[trainer.metric_name]
    return float(value) if math.isfinite(value) else math.inf
