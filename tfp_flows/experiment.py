"""A whole training run from a config: data, flow, init, `fit`, test bits/dim, outputs.

Everything a run writes goes to `workdir`:
  config.json          the resolved config, to rebuild the flow (`restore_flow`)
  checkpoints/latest   the last epochs (resume), checkpoints/best  the best by validation
  logs/                TensorBoard: loss, bits/dim, gradient norm, sample grids
  samples/             PNG sample grids at a few temperatures (images); density.png (2-D)
  metrics.json         test bits/dim (or nats/dim) of the best checkpoint, and more
  saved_model/         the exported best model (`tfp_flows.export`)

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

from tfp_flows import callbacks, data, images, models
from tfp_flows.distribute import STRATEGIES, check_thread_count, configure_threads, make_strategy
from tfp_flows.export import export_saved_model
from tfp_flows.initialization import initialize
from tfp_flows.optimizers import make_optimizer
from tfp_flows.trainer import FlowTrainer

__all__ = ['TrainingDiverged', 'build_flow', 'check_config', 'restore_flow', 'train_and_evaluate']

_DTYPES = {'float32': tf.float32, 'float64': tf.float64}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _positive(config, *paths):
    for path in paths:
        section, key = path.split('.')
        value = config[section][key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f'config.{path} must be a positive number; got {value!r}.')


def check_config(config):
    """Raises `ValueError` naming the first config value that cannot work."""
    if config.model.family not in ('glow', 'real_nvp'):
        raise ValueError(
            f"config.model.family must be 'glow' or 'real_nvp'; got {config.model.family!r}."
        )
    if config.model.dtype not in _DTYPES:
        raise ValueError(
            f'config.model.dtype must be one of {tuple(_DTYPES)}; got {config.model.dtype!r}.'
        )
    if config.train.strategy not in STRATEGIES:
        raise ValueError(
            f'config.train.strategy must be one of {STRATEGIES}; got {config.train.strategy!r}.'
        )
    _positive(
        config,
        'model.num_levels',
        'model.num_steps',
        'model.hidden_channels',
        'train.batch_size',
        'train.epochs',
        'train.learning_rate',
        'train.sample_every_epochs',
        'train.steps_per_execution',
    )
    for key in ('intra_op_threads', 'inter_op_threads'):
        check_thread_count(f'config.train.{key}', config.train[key])
    if config.train.warmup_steps < 0:
        raise ValueError(
            f'config.train.warmup_steps must be >= 0; got {config.train.warmup_steps!r}.'
        )
    if config.train.strategy == 'multi_worker' and config.train.max_seconds:
        raise ValueError(
            "config.train.max_seconds cannot be used with strategy 'multi_worker': each worker "
            'would stop after a different batch and the others would wait forever; got '
            f'max_seconds={config.train.max_seconds!r}.'
        )


def build_flow(model_config, event_shape):
    """The flow described by `config.model` for data of `event_shape`."""
    kwargs = dict(model_config)
    family = kwargs.pop('family')
    kwargs['dtype'] = _DTYPES[kwargs['dtype']]
    if family == 'glow':
        return models.glow(event_shape, **kwargs)
    for key, glow_only in (('coupling', 'affine'), ('permutation', 'lu')):
        if kwargs.pop(key) != glow_only:
            raise ValueError(
                f'config.model.{key} applies to Glow only; real_nvp uses {glow_only!r}, got '
                f'{model_config[key]!r}.'
            )
    return models.real_nvp(event_shape, **kwargs)


def _restore(checkpoint, path):
    """Restores checkpoint `path`; `ValueError` if it is damaged or holds another model."""
    if not tf.io.gfile.exists(path + '.index'):
        raise ValueError(f'Checkpoint {path} is incomplete: {path}.index does not exist.')
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(
            f'Checkpoint {path} does not match the model built from the config: {error} '
            'Use the config the checkpoint was trained with, or a new --workdir.'
        ) from error
    except (IndexError, tf.errors.OpError) as error:  # IndexError: a truncated data file.
        raise ValueError(f'Checkpoint {path} is damaged or incomplete: {error}') from error


def _restore_newest_readable(checkpoint, directory):
    """Restores the newest checkpoint in `directory` that loads; returns its path, or None.

    TF writes a checkpoint's files before it points the `checkpoint` state file at them, so a
    run killed while saving resumes from the previous checkpoint. A checkpoint damaged later
    (a lost or truncated file) is skipped, with a message, for the older one kept beside it.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    newest_error = None
    for path in reversed(paths):
        try:
            _restore(checkpoint, path)
        except ValueError as error:
            newest_error = newest_error or error
            continue
        if newest_error:
            print(f'{newest_error} Skipping it for the older {path}.')
        return path
    raise newest_error


def restore_flow(workdir, which='best'):
    """Rebuilds the flow of a finished or interrupted run and loads its `which` checkpoint.

    `which` is 'best' or 'latest'. Works in a fresh process: the architecture comes from
    `workdir/config.json`, the variables from `workdir/checkpoints/<which>`.
    """
    config_path = os.path.join(workdir, 'config.json')
    if not os.path.exists(config_path):
        raise FileNotFoundError(f'No config.json in workdir {workdir!r}: not a tfp_flows run.')
    with open(config_path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', which))
    if path is None:
        raise FileNotFoundError(f'No {which!r} checkpoint under {workdir!r}/checkpoints.')
    flow = build_flow(config.model, tuple(config.data.event_shape))
    _restore(tf.train.Checkpoint(flow=flow), path)
    return flow


def _prepare_workdir(workdir, config, write):
    """Checks that `workdir` holds no run of another model; with `write`, writes the config."""
    path = os.path.join(workdir, 'config.json')
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        if previous['model'] != json.loads(config.to_json())['model']:
            raise ValueError(
                f'workdir {workdir!r} holds a run of another model ({previous["model"]}); '
                f'this config asks for {config.model.to_dict()}. Use a new --workdir.'
            )
    if not write:
        return
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, '.write_test')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as error:
        raise ValueError(f'Cannot write to workdir {workdir!r}: {error}') from error
    with open(path + '.tmp', 'w') as f:
        f.write(config.to_json(indent=2))
    os.replace(path + '.tmp', path)


@contextlib.contextmanager
def _save_directory(directory, is_chief):
    """Yields `directory` on the chief; on other workers a temporary one, removed on exit."""
    if is_chief:
        yield directory
    else:
        with tempfile.TemporaryDirectory(prefix='tfp_flows_worker_') as temporary:
            yield temporary


def train_and_evaluate(config, workdir, strategy=None, verbose='auto', export_dir=None):
    """Trains the flow of `config`, keeps the best by validation, returns test metrics.

    Resumes from `workdir/checkpoints/latest` when it exists (ActNorm is then not initialised
    again). Raises `TrainingDiverged` if the loss becomes NaN or infinite. With `export_dir`
    (which must not exist; checked before training) the best model is also exported there.
    """
    check_config(config)
    if export_dir is not None and os.path.lexists(export_dir):
        raise FileExistsError(f'export_dir {export_dir!r} already exists; choose a new path.')
    # Both before TF runs anything: thread pools and collective ops are fixed from then on.
    configure_threads(config.train.intra_op_threads, config.train.inter_op_threads)
    strategy = strategy or make_strategy(config.train.strategy)
    keras.utils.set_random_seed(config.seed)
    is_chief = strategy.extended.should_checkpoint  # False on the other workers only.
    batch_size = config.train.batch_size
    splits = config.data.splits
    common = dict(data_dir=config.data.data_dir, image_size=config.data.image_size)
    train_ds, info = data.make_dataset(
        config.data.name,
        splits.train,
        batch_size,
        shuffle=True,
        seed=config.seed,
        drop_remainder=True,
        **common,
    )
    validation_ds, _ = data.make_dataset(
        config.data.name, splits.validation, batch_size, shuffle=False, **common
    )
    test_ds, _ = data.make_dataset(
        config.data.name, splits.test, batch_size, shuffle=False, **common
    )
    with config.unlocked():
        config.data.event_shape = list(info.event_shape)
        config.data.num_bins = info.num_bins

    steps_per_epoch = int(train_ds.cardinality())
    with strategy.scope():
        flow = build_flow(config.model, info.event_shape)
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
    _prepare_workdir(workdir, config, write=is_chief)  # Once the flow builds: no empty runs.
    directory = os.path.join(workdir, 'checkpoints')
    resumed_from = _restore_newest_readable(checkpoint, os.path.join(directory, 'latest'))
    if resumed_from:
        print(f'Resuming from {resumed_from} (epoch {int(epoch.numpy())}).')
    else:
        # The same first batch on every worker (the dataset is seeded), so every replica gets
        # the same values; cross-replica context.
        print(f'Initialising ActNorm on the first training batch ({batch_size} examples).')
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
        checkpoints = callbacks.CheckpointCallback(
            latest, best, epoch, best_value, monitor='val_' + trainer.metric_name
        )
        run_callbacks = [nan_stop, checkpoints]
        is_image = len(info.event_shape) == 3
        if is_chief:
            run_callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
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
        if config.train.max_seconds:
            run_callbacks.append(callbacks.TimeLimit(config.train.max_seconds))
        if config.train.early_stopping_patience:
            run_callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor='val_' + trainer.metric_name,
                    patience=config.train.early_stopping_patience,
                )
            )
        start = time.monotonic()
        trainer.fit(
            train_ds,
            validation_data=validation_ds,
            epochs=config.train.epochs,
            initial_epoch=int(epoch.numpy()),
            callbacks=run_callbacks,
            shuffle=False,  # The dataset shuffles itself.
            verbose=verbose,
        )
        train_seconds = time.monotonic() - start
        if nan_stop.failed_at is not None:
            at_epoch, at_batch = nan_stop.failed_at
            raise TrainingDiverged(
                f'The loss became NaN or infinite at epoch {at_epoch}, batch {at_batch}. The '
                f'last good checkpoint is {latest.latest_checkpoint}; rerunning the same command '
                'resumes from it. Try a lower config.train.learning_rate, more '
                'config.train.warmup_steps, a smaller config.train.clip_norm or '
                'config.model.log_scale_bound.'
            )
        # Every worker decides alike when to save the best (from the same reduced loss), so
        # a worker that saved none this session finds it among the chief's, written earlier.
        best_path = best.latest_checkpoint or tf.train.latest_checkpoint(
            os.path.join(directory, 'best')
        )
        epochs_trained = int(epoch.numpy())  # Restoring the best sets `epoch` to its epoch.
        if best_path:
            _restore(checkpoint, best_path)
            best_path = os.path.join(directory, 'best', os.path.basename(best_path))  # Chief's.
        metric = trainer.metric_name
        metrics = {  # Evaluated by every worker together.
            f'test_{metric}': _evaluate(trainer, test_ds),
            f'validation_{metric}': _evaluate(trainer, validation_ds),
            'epochs_trained': epochs_trained,
            'best_epoch': int(epoch.numpy()),
            'train_seconds_this_session': round(train_seconds, 1),
            'best_checkpoint': best_path,
            'num_parameters': int(sum(np.prod(v.shape) for v in flow.trainable_variables)),
        }
    if not is_chief:
        return metrics
    if is_image:
        pictures.write(int(epoch.numpy()))
    else:
        points = np.concatenate([batch.numpy() for batch in test_ds])
        images.write_png(
            os.path.join(workdir, 'density.png'),
            images.density_picture(lambda x: flow.log_prob(tf.cast(x, flow.dtype)), points),
        )
    export_saved_model(
        flow, os.path.join(workdir, 'saved_model'), num_bins=info.num_bins, overwrite=True
    )
    if export_dir is not None:
        export_saved_model(flow, export_dir, num_bins=info.num_bins)
    with open(os.path.join(workdir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)
    return metrics


def _evaluate(trainer, dataset):
    value = trainer.evaluate(dataset, verbose=0, return_dict=True)[trainer.metric_name]
    return float(value) if math.isfinite(value) else math.inf
