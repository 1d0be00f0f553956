"""A whole training run from a config: data, flow, init, `fit`, test bits/dim, outputs.

The outputs are `workdir.written_outputs`', metrics.json last (it marks a finished run). Each
epoch's data depends on (seed, epoch) alone and evaluation noise is fixed, so a run killed and
resumed ends as an unbroken one, bitwise. In a multi-worker run only the chief writes the
workdir; the others resume from the chief's checkpoints (a file system all workers see).
"""

import contextlib
import dataclasses
import functools
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfp_flows.dequantization import importance_weighted_bits_per_dim, uniform_dequantize
from tfp_flows.export import export_saved_model
from tfp_flows.initialization import initialize
from tfp_flows.run import callbacks, lock, restore
from tfp_flows.run import datasets as run_datasets
from tfp_flows.run import workdir as workdirs
from tfp_flows.training.distribute import configure_threads, make_strategy
from tfp_flows.training.trainer import FlowTrainer, split_batch

__all__ = ['Interrupted', 'TrainingDiverged', 'train', 'train_and_evaluate']


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while a run trained: `checkpoint`, saved after `epoch`, is where it goes on."""

    def __init__(self, checkpoint, epoch):
        super().__init__(checkpoint, epoch)
        self.checkpoint, self.epoch = checkpoint, epoch


def train_and_evaluate(config, workdir, strategy=None, verbose='auto', export_dir=None):
    """Trains the flow of `config` (fields: `tfp_flows.run.schema`), keeps the best by
    validation, returns test metrics. A rerun into `workdir` resumes from its latest checkpoint,
    its training settings may change (`tfp_flows.run.workdir`); a finished run returns its
    metrics.json and changes nothing. The best model is exported to `workdir`/saved_model
    unless `config.train.export` is False, and with `export_dir` (a new path outside `workdir`)
    there too. `verbose` is Keras' (`fit`); progress goes to absl logging.

    Returns a dict: 'test_bits_per_dim' and 'validation_bits_per_dim' (or '..._nats_per_dim'
    for continuous data), 'epochs_trained', 'best_epoch', 'stopped_early',
    'train_seconds_this_session', 'best_checkpoint', 'num_parameters'; with a variational
    dequantizer 'dequantizer_parameters'; with `config.eval.iw_samples`,
    'test_bits_per_dim_iw', 'validation_bits_per_dim_iw' and 'iw_samples'.

    Raises, before training, what `workdir.open_run`, `workdir.leave_finished` and
    `run.datasets.load` raise, and a TypeError for a `strategy` of another kind; then
    `TrainingDiverged` (NaN or infinite loss) or `Interrupted` (Ctrl-C, a `KeyboardInterrupt`).
    """
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f'`strategy` must be None or a tf.distribute.Strategy; got {strategy!r}.')
    with workdirs.open_run(config, workdir, export_dir) as run:
        if run.finished:
            logging.info('%s', workdirs.leave_finished(run))
            return run.metrics
        return train(run, strategy, verbose)


@dataclasses.dataclass(frozen=True)
class _Model:
    flow: object
    dequantizer: object
    trainer: FlowTrainer
    checkpoint: tf.train.Checkpoint
    epoch: tf.Variable  # Epochs trained, saved in the checkpoints.
    best_value: tf.Variable  # The best validation loss so far, saved too.


@dataclasses.dataclass(frozen=True)
class _Session:
    run: workdirs.Run
    data: run_datasets.RunData
    model: _Model
    is_chief: bool  # Only the chief writes the workdir.
    log_dir: str


def train(run, strategy=None, verbose='auto'):
    """`train_and_evaluate` of the unfinished `run` of `workdir.open_run` (as `train.py` does)."""
    config = run.config
    # Both before TF runs anything: thread pools and collective ops are fixed from then on.
    configure_threads(config.train.intra_op_threads, config.train.inter_op_threads)
    strategy = strategy or make_strategy(config.train.strategy)
    keras.utils.set_random_seed(config.seed)
    is_chief = strategy.extended.should_checkpoint  # False on the other workers only.
    with lock.hold(run.workdir) if is_chief else contextlib.nullcontext():
        data = run_datasets.load(config)
        workdirs.check_recorded(run, data.recorded)
        with strategy.scope():
            model = _build(config, data)
        session = _Session(run, data, model, is_chief, os.path.join(run.workdir, 'logs'))
        resumed = _start(session)
        with _save_directory(session) as directory:
            fitted = _fit(session, directory, resumed, verbose)
            return _finish(session, fitted)


def _build(config, data):
    """The flow, dequantizer and compiled trainer of the run, and what its checkpoints hold."""
    info = data.info
    model_config = {
        **config.model.to_dict(),
        'conditional_shape': data.recorded['model.conditional_shape'],
    }
    flow = restore.build_flow(model_config, info.event_shape, config.train.mixed_precision)
    flow = restore.data_flow(flow, config.data.name, info.statistics)
    dequantizer = None
    if data.variational:
        dequantizer = restore.build_dequantizer(
            config.dequantizer, info.event_shape, info.num_bins, config.model.dtype, config.seed
        )
    trainer = FlowTrainer(
        flow,
        info.num_bins,
        clip_norm=config.train.clip_norm,
        accumulation_steps=config.train.accumulation_steps,
        # Dropout masks and q's noise from (seed, step): a resumed run draws an unbroken run's.
        dropout_seed=config.seed if config.model.dropout_rate else None,
        memory_saving=config.train.memory_saving,
        dequantizer=dequantizer,
        dequantization_seed=config.seed,
    )
    optimizer = restore.build_optimizer(config.train, int(data.train.cardinality()))
    trainer.compile(
        optimizer,
        jit_compile=config.train.jit_compile,
        steps_per_execution=config.train.steps_per_execution,
    )
    epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name='epoch')
    best_value = tf.Variable(math.inf, trainable=False, dtype=tf.float64, name='best_value')
    checkpoint = tf.train.Checkpoint(
        **restore.checkpoint_modules(flow, dequantizer),
        optimizer=optimizer,
        epoch=epoch,
        best_value=best_value,
    )
    return _Model(flow, dequantizer, trainer, checkpoint, epoch, best_value)


def _start(session):
    """Resumes from the newest readable checkpoint, or initialises ActNorm; returns (that
    checkpoint or None, its epoch)."""
    run, data, model = session.run, session.data, session.model
    latest = os.path.join(run.workdir, 'checkpoints', 'latest')
    try:
        resumed_from = restore.restore_newest_readable(model.checkpoint, latest)
    except ValueError as error:
        best = tf.train.latest_checkpoint(os.path.join(run.workdir, 'checkpoints', 'best'))
        kept = f' The best checkpoint is apart: {best} (restore_flow reads it).' if best else ''
        raise ValueError(f'No checkpoint in {latest} loads: {error}{kept}') from error
    initial_epoch = int(model.epoch.numpy())
    if resumed_from:
        logging.info('Resuming from %s (epoch %d).', resumed_from, initial_epoch)
        for key, (old, new) in run.changed.items():
            logging.info('  %s changed: %r -> %r (config_history.json).', key, old, new)
    else:
        # The same first batch on every worker (the dataset is seeded), so every replica gets
        # the same values; cross-replica context.
        batch_size = run.config.train.batch_size
        logging.info('Initialising ActNorm on the first training batch (%d examples).', batch_size)
        x, context = split_batch(next(iter(data.train)))
        if data.variational:  # Discrete pixels: q starts as uniform noise, so dequantize so.
            x = uniform_dequantize(x, data.info.num_bins, seed=[run.config.seed, 0])
        initialize(model.flow, tf.cast(x, model.flow.dtype), conditional_input=context)
    if session.is_chief and run.previous is None:  # A new run: once the flow builds.
        workdirs.write_config(run, data.recorded, 0)
    return resumed_from, initial_epoch


@contextlib.contextmanager
def _save_directory(session):
    """Yields the checkpoints' directory on the chief; on other workers a temporary one."""
    if session.is_chief:
        yield os.path.join(session.run.workdir, 'checkpoints')
    else:
        with tempfile.TemporaryDirectory(prefix='tfp_flows_worker_') as temporary:
            yield temporary


@dataclasses.dataclass(frozen=True)
class _Fitted:
    best: tf.train.CheckpointManager
    saver: callbacks.CheckpointCallback
    pictures: object  # The picture callback, or None.
    stopped_early: bool
    seconds: float


def _fit(session, directory, resumed, verbose):
    """Trains on from `resumed` (`_start`'s), saving each epoch in `directory`; returns a
    `_Fitted`."""
    initial_epoch = resumed[1]
    config, model, data = session.run.config, session.model, session.data
    latest = tf.train.CheckpointManager(model.checkpoint, os.path.join(directory, 'latest'), 2)
    best = tf.train.CheckpointManager(model.checkpoint, os.path.join(directory, 'best'), 1)
    first_save = None
    if session.is_chief and session.run.previous is not None:  # A rerun: once it trains on.
        first_save = functools.partial(
            workdirs.write_config, session.run, data.recorded, initial_epoch
        )
    saver = callbacks.CheckpointCallback(latest, best, model.epoch, model.best_value, first_save)
    terminate = callbacks.TerminateOnNaN()
    pictures = None
    if session.is_chief:
        pictures = callbacks.picture_callback(
            config, data.info, model.flow, data.test, session.log_dir
        )
    early_stopping = None
    if config.train.early_stopping_patience is not None:
        early_stopping = keras.callbacks.EarlyStopping(
            monitor='val_loss', patience=config.train.early_stopping_patience
        )
    # Each pass of the training data is drawn from (seed, epoch) (`data.make_dataset`).
    set_epoch = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, _: data.epoch.assign(e))
    run_callbacks = [set_epoch, terminate, saver]
    if config.train.ema_momentum is not None:  # Validate (choose the best) on the EMA weights.
        run_callbacks.append(keras.callbacks.SwapEMAWeights())
    if session.is_chief:
        run_callbacks.append(keras.callbacks.TensorBoard(log_dir=session.log_dir))
    if config.train.max_seconds is not None:
        run_callbacks.append(callbacks.TimeLimit(config.train.max_seconds))
    run_callbacks += [c for c in (pictures, early_stopping) if c is not None]
    start, since = time.monotonic(), time.time()
    try:
        model.trainer.fit(
            data.train,
            validation_data=data.validation,
            epochs=config.train.epochs,
            initial_epoch=initial_epoch,
            callbacks=run_callbacks,
            verbose=verbose,
        )
    except KeyboardInterrupt:
        raise Interrupted(*_resume_point(session.run.workdir, since, resumed)) from None
    if terminate.failed_at is not None:
        raise TrainingDiverged(_diverged(terminate.failed_at, latest.latest_checkpoint, config))
    stopped_early = bool(early_stopping and early_stopping.stopped_epoch)
    return _Fitted(best, saver, pictures, stopped_early, time.monotonic() - start)


def _resume_point(workdir, since, resumed):
    """(checkpoint, epoch) a rerun of `workdir` resumes from after Ctrl-C: the newest the
    checkpoint state lists if saved since `since` (a `time.time()`; the state is written once
    a save is complete, and Ctrl-C may land in one), else `resumed`, where this session began
    (a damaged newer checkpoint is not named)."""
    state = tf.train.get_checkpoint_state(os.path.join(workdir, 'checkpoints', 'latest'))
    saved = state.all_model_checkpoint_timestamps if state is not None else []
    if saved and saved[-1] >= since:
        path = state.all_model_checkpoint_paths[-1]
        return path, int(path.rsplit('-', 1)[1])  # Numbered by epoch.
    return resumed


def _diverged(failed_at, checkpoint, config):
    train = config.train
    remedies = (
        f'a lower --config.train.learning_rate (now {train.learning_rate}), more '
        f'--config.train.warmup_steps (now {train.warmup_steps}) or a smaller '
        f'--config.train.clip_norm (now {train.clip_norm}); or, with a new --workdir, a '
        'smaller --config.model.log_scale_bound.'
    )
    where = 'The loss became NaN or infinite at epoch {}, batch {}.'.format(*failed_at)
    if checkpoint is None:
        return (
            f'{where} No epoch finished, so there is no checkpoint to resume from, and the same '
            'command would diverge again (the seed fixes the data and the initial weights). '
            f'Rerun it with {remedies}'
        )
    return (
        f'{where} The last good checkpoint is {checkpoint}. The seed fixes the data of every '
        'epoch, so the same command would resume there and diverge again. A resumed run may '
        f'change training settings (config_history.json records them): rerun it with {remedies}'
    )


def _finish(session, fitted):
    """Tests the best checkpoint; the chief writes the outputs. Returns the metrics."""
    run, model, data = session.run, session.model, session.data
    best_dir = os.path.join(run.workdir, 'checkpoints', 'best')
    # Every worker decides alike when to save the best (from the same reduced loss), so a
    # worker that saved none this session finds it among the chief's, written earlier.
    best_path = fitted.best.latest_checkpoint or tf.train.latest_checkpoint(best_dir)
    epochs_trained = int(model.epoch.numpy())  # Restoring the best sets `epoch` to its epoch.
    if best_path:
        restore.restore(model.checkpoint, best_path)
        best_path = os.path.join(best_dir, os.path.basename(best_path))  # The chief's.
    unit = model.trainer.metric_name  # 'bits_per_dim' (images) or 'nats_per_dim' (points).
    ema = run.config.train.ema_momentum is not None
    # The best checkpoint holds the raw weights in the flow and, with EMA, the averages in the
    # optimizer: what was validated is what is tested, pictured and exported.
    with model.trainer.ema_weights() if ema else contextlib.nullcontext():
        metrics = {  # Evaluated by every worker together.
            f'test_{unit}': _evaluate(model.trainer, data.test),
            f'validation_{unit}': _evaluate(model.trainer, data.validation),
            'epochs_trained': epochs_trained,
            'best_epoch': int(model.epoch.numpy()),
            'stopped_early': fitted.stopped_early,
            'train_seconds_this_session': round(fitted.seconds, 1),
            'best_checkpoint': best_path,
            'num_parameters': _num_parameters(model.flow),
        }
        if model.dequantizer is not None:
            metrics['dequantizer_parameters'] = _num_parameters(model.dequantizer)
        if run.config.eval.iw_samples:
            metrics.update(_importance_weighted(model, data, run.config, unit))
        if session.is_chief:
            _write_outputs(session, metrics, fitted, unit)
    return metrics


def _write_outputs(session, metrics, fitted, unit):
    """The chief's outputs of a run: pictures, test scalar, SavedModels, then metrics.json."""
    run, model = session.run, session.model
    if fitted.pictures is not None:
        fitted.pictures.write(metrics['best_epoch'])
    callbacks.log_test_metric(session.log_dir, unit, metrics[f'test_{unit}'], metrics['best_epoch'])
    exported = dict(num_bins=session.data.info.num_bins, dequantizer=model.dequantizer)
    saved_model = os.path.join(run.workdir, 'saved_model')
    if run.config.train.export:
        export_saved_model(model.flow, saved_model, overwrite=True, **exported)
    elif os.path.isdir(saved_model):  # An earlier session's: not known to be the best model.
        shutil.rmtree(saved_model)
        logging.info("Removed %s, an earlier session's export (train.export False).", saved_model)
    if run.export_dir is not None:
        export_saved_model(model.flow, run.export_dir, **exported)
    if fitted.saver.first_save is not None:  # A rerun that trained no epoch: as it ended.
        fitted.saver.first_save()
    # Last: a metrics.json marks a finished run.
    workdirs.write_json(os.path.join(run.workdir, 'metrics.json'), metrics)


def _num_parameters(module):
    return int(sum(np.prod(v.shape) for v in module.trainable_variables))


def _importance_weighted(model, data, config, unit):
    """{'test_<unit>_iw', 'validation_<unit>_iw', 'iw_samples'}: the mean importance-weighted
    bits/dim of the test and validation images; batch i's noise from the stateless seed
    fold_in(EVALUATION_SEED, i). Runs on this worker alone (no collectives)."""
    num_samples, num_bins = config.eval.iw_samples, data.info.num_bins
    base_seed = tf.constant([run_datasets.EVALUATION_SEED, 1], tf.int64)

    @tf.function(autograph=False, reduce_retracing=True)
    def batch_bits(pixels, context, seed):
        kwargs = None if context is None else {'conditional_input': context}
        return importance_weighted_bits_per_dim(
            model.flow,
            model.dequantizer,
            pixels,
            num_bins,
            num_samples,
            seed,
            bijector_kwargs=kwargs,
        )

    figures = {}
    for name in ('test', 'validation'):
        bits = [
            batch_bits(*split_batch(batch), tf.random.experimental.stateless_fold_in(base_seed, i))
            for i, batch in enumerate(data.pixels(config.data.splits[name]))
        ]
        value = float(np.mean(np.concatenate(bits).astype(np.float64)))
        figures[f'{name}_{unit}_iw'] = value if math.isfinite(value) else math.inf
    return {**figures, 'iw_samples': num_samples}


def _evaluate(trainer, dataset):
    value = trainer.evaluate(dataset, verbose=0, return_dict=True)[trainer.metric_name]
    return float(value) if math.isfinite(value) else math.inf
