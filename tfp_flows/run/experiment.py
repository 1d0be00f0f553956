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
returns its metrics and changes nothing; `tfp_flows.run.workdir` says which config changes a rerun
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
import numpy as np
import tensorflow as tf
from absl import logging

from tfp_flows import data
from tfp_flows.dequantization import importance_weighted_bits_per_dim, uniform_dequantize
from tfp_flows.export import export_saved_model
from tfp_flows.initialization import initialize
from tfp_flows.run import callbacks, checkpoints
from tfp_flows.run import workdir as workdirs
from tfp_flows.run.config_checks import check_config
from tfp_flows.run.restore import (
    build_dequantizer,
    build_flow,
    build_optimizer,
    checkpoint_modules,
    data_flow,
    restore_flow,
    restore_flow_and_dequantizer,
)
from tfp_flows.training.distribute import configure_threads, make_strategy
from tfp_flows.training.trainer import FlowTrainer, split_batch

__all__ = [
    'TrainingDiverged',
    'build_flow',
    'check_config',
    'restore_flow',
    'restore_flow_and_dequantizer',
    'train_and_evaluate',
]

_EVALUATION_SEED = 0  # Fixed dequantization noise of validation and test, the same in every run.


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


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

    With `config.data.conditional` the flow models p(x | c): it is built with the data's
    `conditional_shape` (recorded as `model.conditional_shape` in config.json), trained on
    (x, c) batches, and its pictures have one row per class (labelled images); the SavedModel
    takes `conditional_input`. A CSV table's flow works in the table's units
    (`own_data.standardize_flow`). With `config.train.ema_momentum`, validation (hence the
    best checkpoint), the pictures, the test figures and the export use the EMA weights; the
    checkpoints hold both.

    With `config.dequantizer.kind` 'variational' (images) a `VariationalDequantizer` q(u | k)
    is trained with the flow (`FlowTrainer(dequantizer=...)`, on discrete batches) and every
    bits/dim figure is the one-sample bound with q's noise (fixed noise for validation and
    test); the checkpoints hold q (and its EMA weights) and the SavedModel scores with it.
    With `config.eval.iw_samples` S > 0 the best model's importance-weighted bits/dim of the
    test and validation images, from S noise draws per image (`tfp_flows.dequantization.
    importance_weighted_bits_per_dim`, fixed seeds), are reported too.

    Returns:
      A dict: 'test_bits_per_dim' and 'validation_bits_per_dim' (or '..._nats_per_dim' for
      continuous data), 'epochs_trained', 'best_epoch', 'stopped_early',
      'train_seconds_this_session', 'best_checkpoint', 'num_parameters' (the flow's); with a
      variational dequantizer 'dequantizer_parameters'; with `config.eval.iw_samples`,
      'test_bits_per_dim_iw', 'validation_bits_per_dim_iw' and 'iw_samples'.

    Raises (all before training, except `TrainingDiverged`):
      ValueError: a bad config value (also a variational dequantizer or `iw_samples` for data
        that are not discrete images), a workdir holding a run of another model or data
        (`workdir.WorkdirMismatch`), an unwritable workdir, an `export_dir` inside it, or a
        `verbose` that is not 'auto', 0, 1 or 2.
      TypeError: a `config` that is not a ConfigDict or a dict, a `workdir` or `export_dir`
        that is not a path, a `strategy` that is not None or a `tf.distribute.Strategy`.
      FileExistsError: `export_dir` exists.
      TrainingDiverged: the loss became NaN or infinite.
    """
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f'`strategy` must be None or a tf.distribute.Strategy; got {strategy!r}.')
    if isinstance(verbose, bool) or verbose not in ('auto', 0, 1, 2):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2 (Keras' fit); got {verbose!r}.")
    workdirs.check_path('workdir', workdir)
    workdirs.check_path('export_dir', export_dir, allow_none=True)
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
    dequantizer_config = config.get('dequantizer')
    variational = dequantizer_config is not None and dequantizer_config.kind == 'variational'
    iw_samples = config.eval.iw_samples if 'eval' in config else 0
    common = dict(
        data_dir=config.data.data_dir,
        image_size=config.data.image_size,
        conditional=config.data.conditional,
        columns=config.data.columns,
        context_columns=config.data.context_columns,
    )
    data_epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name='data_epoch')
    train_ds, info = data.make_dataset(
        config.data.name,
        splits.train,
        batch_size,
        shuffle=True,
        seed=config.seed,
        epoch=data_epoch,
        augment=config.data.augment,
        drop_remainder=True,
        dequantize=not variational,  # The trainer dequantizes with q.
        **common,
    )

    def evaluation_dataset(split, dequantize):
        return data.make_dataset(
            config.data.name,
            split,
            batch_size,
            shuffle=False,
            seed=_EVALUATION_SEED,
            epoch=0,
            dequantize=dequantize,
            **common,
        )[0]

    validation_ds, test_ds = (
        evaluation_dataset(split, not variational) for split in (splits.validation, splits.test)
    )
    if iw_samples and (info.num_bins is None or len(info.event_shape) != 3):
        raise ValueError(
            f'`config.eval.iw_samples` ({iw_samples}) estimates the likelihood of discrete '
            f'images; data {config.data.name!r} are continuous: set it to 0.'
        )
    resolved = json.loads(config.to_json())  # The caller's config stays as it is.
    resolved['data'].update(event_shape=list(info.event_shape), num_bins=info.num_bins)
    conditional_shape = info.conditional_shape and list(info.conditional_shape)
    resolved['model'].update(conditional_shape=conditional_shape)
    rerun = workdirs.check_rerun(workdir, resolved)  # Now with the data's shapes and levels.

    steps_per_epoch = int(train_ds.cardinality())
    ema = config.train.ema_momentum is not None
    with strategy.scope():
        flow = build_flow(resolved['model'], info.event_shape, config.train.mixed_precision)
        flow = data_flow(flow, config.data.name, info.statistics)
        dequantizer = build_dequantizer(
            dequantizer_config, info.event_shape, info.num_bins, config.model.dtype, config.seed
        )
        trainer = FlowTrainer(
            flow,
            info.num_bins,
            clip_norm=config.train.clip_norm,
            accumulation_steps=config.train.accumulation_steps,
            # Dropout masks from (seed, step): a resumed run draws an unbroken run's masks.
            dropout_seed=config.seed if config.model.dropout_rate else None,
            memory_saving=config.train.memory_saving,
            dequantizer=dequantizer,
            # q's noise from (seed, step): a resumed run draws an unbroken run's noise.
            dequantization_seed=config.seed,
        )
        optimizer = build_optimizer(config.train, steps_per_epoch)
        trainer.compile(
            optimizer,
            jit_compile=config.train.jit_compile,
            steps_per_execution=config.train.steps_per_execution,
        )
        epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name='epoch')
        best_value = tf.Variable(math.inf, trainable=False, dtype=tf.float64, name='best_value')
    checkpoint = tf.train.Checkpoint(
        **checkpoint_modules(flow, dequantizer),
        optimizer=optimizer,
        epoch=epoch,
        best_value=best_value,
    )
    directory = os.path.join(workdir, 'checkpoints')
    resumed_from = checkpoints.restore_newest_readable(
        checkpoint, os.path.join(directory, 'latest')
    )
    initial_epoch = int(epoch.numpy())
    # Changed training settings are recorded once an epoch trained with them is saved: a
    # resume interrupted before that leaves config.json and config_history.json as they were.
    defer_config = bool(resumed_from and rerun.changed)
    if is_chief and not defer_config:  # Once the flow builds and the checkpoint loads.
        workdirs.write_config(workdir, resolved, rerun, initial_epoch)
    if resumed_from:
        logging.info('Resuming from %s (epoch %d).', resumed_from, initial_epoch)
        for key, (old, new) in rerun.changed.items():
            logging.info('  %s changed: %r -> %r (config_history.json).', key, old, new)
    else:
        # The same first batch on every worker (the dataset is seeded), so every replica gets
        # the same values; cross-replica context.
        logging.info('Initialising ActNorm on the first training batch (%d examples).', batch_size)
        x, context = split_batch(next(iter(train_ds)))
        if variational:  # Discrete pixels: q starts as uniform noise, so dequantize so.
            x = uniform_dequantize(x, info.num_bins, seed=[config.seed, 0])
        initialize(flow, tf.cast(x, flow.dtype), conditional_input=context)

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
        if is_chief and defer_config:
            run_callbacks.append(
                keras.callbacks.LambdaCallback(
                    on_epoch_end=_write_config_once_saved(workdir, resolved, rerun, initial_epoch)
                )
            )
        if ema:  # Validate (and so choose the best checkpoint) on the EMA weights.
            run_callbacks.append(keras.callbacks.SwapEMAWeights())
        unit = trainer.metric_name  # 'bits_per_dim' (images) or 'nats_per_dim' (points).
        if is_chief:
            run_callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
            run_callbacks.append(callbacks.MetricScalars(log_dir, unit))
        pictures = _pictures(config, info, flow, test_ds, workdir, log_dir) if is_chief else None
        if pictures is not None:
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
        # The best checkpoint holds the raw weights in the flow and, with EMA, the averages in
        # the optimizer: what was validated is what is tested, pictured and exported.
        with trainer.ema_weights() if ema else contextlib.nullcontext():
            metrics = {  # Evaluated by every worker together.
                f'test_{unit}': _evaluate(trainer, test_ds),
                f'validation_{unit}': _evaluate(trainer, validation_ds),
                'epochs_trained': epochs_trained,
                'best_epoch': int(epoch.numpy()),
                'stopped_early': bool(early_stopping and early_stopping.stopped_epoch),
                'train_seconds_this_session': round(train_seconds, 1),
                'best_checkpoint': best_path,
                'num_parameters': _num_parameters(flow),
            }
            if dequantizer is not None:
                metrics['dequantizer_parameters'] = _num_parameters(dequantizer)
            if iw_samples:
                for name, split in (('test', splits.test), ('validation', splits.validation)):
                    metrics[f'{name}_{unit}_iw'] = _importance_weighted(
                        flow, dequantizer, evaluation_dataset(split, False), info, iw_samples
                    )
                metrics['iw_samples'] = iw_samples
            if is_chief:
                _write_outputs(
                    flow, dequantizer, pictures, metrics, info, workdir, log_dir, unit, export_dir
                )
    return metrics


def _pictures(config, info, flow, test_ds, workdir, log_dir):
    """The picture callback of the run's data, or None.

    Images: samples at each temperature (one row per class for labelled conditional data).
    Unconditional 2-D points: the learned density beside the test data. Other data (tables
    of more columns, conditional vectors): none.
    """
    if len(info.event_shape) == 3:
        return callbacks.SamplePictures(
            flow,
            os.path.join(workdir, 'samples'),
            info.num_bins,
            tuple(config.train.sample_temperatures),
            every_epochs=config.train.sample_every_epochs,
            log_dir=log_dir,
            seed=config.seed,
            class_conditional=info.class_names is not None and config.data.conditional,
        )
    if tuple(info.event_shape) != (2,) or config.data.conditional:
        return None
    return callbacks.DensityPictures(
        flow,
        np.concatenate([batch.numpy() for batch in test_ds]),
        os.path.join(workdir, 'density.png'),
        every_epochs=config.train.sample_every_epochs,
        log_dir=log_dir,
        points_label='test data',
    )


def _write_outputs(flow, dequantizer, pictures, metrics, info, workdir, log_dir, unit, export_dir):
    """The chief's outputs of a run: pictures, test scalar, SavedModels, then metrics.json."""
    if pictures is not None:
        pictures.write(metrics['best_epoch'])
    callbacks.log_test_metrics(log_dir, unit, metrics[f'test_{unit}'], metrics['best_epoch'])
    exported = dict(num_bins=info.num_bins, dequantizer=dequantizer)
    export_saved_model(flow, os.path.join(workdir, 'saved_model'), overwrite=True, **exported)
    if export_dir is not None:
        export_saved_model(flow, export_dir, **exported)
    # Last: a metrics.json that describes the newest checkpoint marks a finished run.
    workdirs.write_json(os.path.join(workdir, 'metrics.json'), metrics)


def _num_parameters(module):
    return int(sum(np.prod(v.shape) for v in module.trainable_variables))


def _importance_weighted(flow, dequantizer, pixel_batches, info, num_samples):
    """Mean importance-weighted bits/dim of the discrete images of `pixel_batches`.

    Batch i draws its noise from the stateless seed fold_in(_EVALUATION_SEED, i): the same
    figure every time for the same weights. Runs on this worker alone (no collectives).
    """
    base_seed = tf.constant([_EVALUATION_SEED, 1], tf.int64)

    @tf.function(autograph=False, reduce_retracing=True)
    def batch_bits(pixels, context, seed):
        kwargs = None if context is None else {'conditional_input': context}
        return importance_weighted_bits_per_dim(
            flow, dequantizer, pixels, info.num_bins, num_samples, seed, bijector_kwargs=kwargs
        )

    total, count = 0.0, 0
    for index, batch in enumerate(pixel_batches):
        pixels, context = split_batch(batch)
        seed = tf.random.experimental.stateless_fold_in(base_seed, index)
        bits = batch_bits(pixels, context, seed).numpy()
        total, count = total + float(np.sum(bits.astype(np.float64))), count + len(bits)
    value = total / count
    return value if math.isfinite(value) else math.inf


def _evaluate(trainer, dataset):
    value = trainer.evaluate(dataset, verbose=0, return_dict=True)[trainer.metric_name]
    return float(value) if math.isfinite(value) else math.inf


def _write_config_once_saved(workdir, resolved, rerun, initial_epoch):
    """A callback body `(epoch, logs)` that writes the config (`workdirs.write_config`) once,
    after the first epoch past `initial_epoch` is checkpointed."""
    done = []

    def call(epoch, logs=None):
        saved = workdirs.last_checkpoint(workdir)
        if not done and saved is not None and saved[1] > initial_epoch:
            workdirs.write_config(workdir, resolved, rerun, initial_epoch)
            done.append(epoch)

    return call
