"""A run's workdir: which config keys define a run, whether a rerun may go on, what it holds.

Nothing here imports TensorFlow, so `train.py` refuses a rerun before TensorFlow starts.

Every config key has a class (`KEY_CLASSES`), which decides what a rerun into an existing
workdir may change:
  DEFINES_RUN  the model, the data it is trained and scored on, and the checkpointed state
               (the seed, every `config.model` field but the dropout rate, the dequantizer,
               data name, size, splits, columns and conditioning, dtype, the optimizer whose
               slots the checkpoints hold and whether they hold EMA weights). A change is refused,
               naming each differing key with both values, and nothing in the workdir changes.
  TRAINING     how training goes on (learning rate, weight decay, batch size, epochs, dropout,
               flips, gradient accumulation, ...).
               A change is allowed when a run resumes; `config.json` then holds the new
               settings and `config_history.json` records each change with the epoch it took
               effect at, so the workdir says honestly what trained its model.
  HARMLESS     where and how fast a run computes and what it reports (threads, XLA, the
               strategy, sample pictures, the TFDS data_dir). Free to change.
A key missing from `KEY_CLASSES` counts as DEFINES_RUN (a test keeps the table complete).

A run is finished when `metrics.json` describes its newest checkpoint and that checkpoint
reached `config.train.epochs` (or early stopping ended it); a rerun then changes nothing.
Checkpoints are numbered by epoch (`callbacks.CheckpointCallback`), and the epoch of the newest
is read from TensorFlow's text `checkpoint` state file beside them.
"""

import dataclasses
import json
import os
import re
import shutil

from tfp_flows import temporaries

__all__ = [
    'DEFINES_RUN',
    'HARMLESS',
    'KEY_CLASSES',
    'TRAINING',
    'Rerun',
    'WorkdirMismatch',
    'check_export_dir',
    'check_path',
    'check_rerun',
    'check_writable',
    'copy_export',
    'finished_message',
    'last_checkpoint',
    'leaves',
    'read_json',
    'write_config',
    'write_json',
    'written_outputs',
]

DEFINES_RUN = 'defines the run'
TRAINING = 'training'
HARMLESS = 'harmless'

KEY_CLASSES = {
    'seed': DEFINES_RUN,  # Initial weights, seeded permutations, data order and noise.
    'data.name': DEFINES_RUN,
    'data.data_dir': HARMLESS,  # Where the same TFDS data is read; its shape is checked.
    'data.image_size': DEFINES_RUN,
    'data.splits.train': DEFINES_RUN,
    'data.splits.validation': DEFINES_RUN,  # Picks the best checkpoint.
    'data.splits.test': DEFINES_RUN,  # What the reported figure means.
    'data.conditional': DEFINES_RUN,  # A model of p(x | c) instead of p(x).
    'data.columns': DEFINES_RUN,
    'data.context_columns': DEFINES_RUN,
    'data.augment': TRAINING,  # Flips of the training data only.
    'data.event_shape': DEFINES_RUN,  # Set by the run from the data.
    'data.num_bins': DEFINES_RUN,  # Set by the run from the data.
    'model.family': DEFINES_RUN,
    'model.num_levels': DEFINES_RUN,
    'model.num_steps': DEFINES_RUN,
    'model.hidden_channels': DEFINES_RUN,
    'model.coupling': DEFINES_RUN,
    'model.permutation': DEFINES_RUN,
    'model.split_prior': DEFINES_RUN,
    'model.log_scale_bound': DEFINES_RUN,
    'model.scale': DEFINES_RUN,
    'model.preprocessing': DEFINES_RUN,
    'model.alpha': DEFINES_RUN,
    'model.conditional_shape': DEFINES_RUN,  # Set by the run from the data.
    'model.learn_top_prior': DEFINES_RUN,
    'model.dropout_rate': TRAINING,  # Only in training: the density does not depend on it.
    'model.dtype': DEFINES_RUN,
    'train.strategy': HARMLESS,  # The same global batch and step on any strategy.
    'train.batch_size': TRAINING,
    'train.epochs': TRAINING,
    'train.optimizer': DEFINES_RUN,  # The checkpoints hold its slots, which differ by name.
    'train.learning_rate': TRAINING,
    'train.warmup_steps': TRAINING,
    'train.cosine_decay': TRAINING,
    'train.weight_decay': TRAINING,
    'train.clip_norm': TRAINING,
    'train.accumulation_steps': TRAINING,  # One step of the same batch, in micro-batches.
    'train.memory_saving': HARMLESS,  # The same gradients, computed in less memory.
    # Whether the checkpoints hold EMA weights (the optimizer's state) and which weights are
    # validated, tested and exported.
    'train.ema_momentum': DEFINES_RUN,
    'train.jit_compile': HARMLESS,
    # The networks' rounding: it changes the steps (and a float16 run skips overflowing ones),
    # not the model or its checkpoints (float32 variables, the same layout): recorded.
    'train.mixed_precision': TRAINING,
    'train.steps_per_execution': HARMLESS,
    'train.intra_op_threads': HARMLESS,
    'train.inter_op_threads': HARMLESS,
    'train.max_seconds': HARMLESS,  # A limit on one session.
    'train.early_stopping_patience': TRAINING,
    'train.sample_temperatures': HARMLESS,
    'train.sample_every_epochs': HARMLESS,
    # The dequantizer is part of the model: its noise defines the bound trained and reported,
    # and the checkpoints hold its variables.
    'dequantizer.kind': DEFINES_RUN,
    'dequantizer.num_steps': DEFINES_RUN,
    'dequantizer.hidden_channels': DEFINES_RUN,
    'dequantizer.context_channels': DEFINES_RUN,
    'eval.iw_samples': HARMLESS,  # An extra figure of the test, computed at the end.
}
# Known only once the data is loaded.
_DERIVED_KEYS = ('data.event_shape', 'data.num_bins', 'model.conditional_shape')
_ABSENT = object()  # A key one of two configs lacks.


def check_path(name, value, allow_none=False):
    """Raises `TypeError` unless `value` is a str or a path (or None, if `allow_none`)."""
    if (value is None and allow_none) or isinstance(value, str | os.PathLike):
        return
    expected = 'None, a str or a path' if allow_none else 'a str or a path'
    raise TypeError(f'`{name}` must be {expected}; got {value!r}.')


def _check_config(config):
    if not isinstance(config, dict) and not hasattr(config, 'to_json'):
        raise TypeError(f'`config` must be an ml_collections.ConfigDict or a dict; got {config!r}.')


class WorkdirMismatch(ValueError):
    """The workdir holds a run whose config differs in keys that define the run."""


def leaves(config):
    """{'section.key': value} of every leaf of a nested dict or `ConfigDict`, JSON-normalised.

    Tuples become lists and placeholders None, as in the `config.json` a run writes, so a
    config and its JSON compare equal. Raises `TypeError` for another kind of `config`.
    """
    _check_config(config)
    if hasattr(config, 'to_json'):
        config = json.loads(config.to_json())
    found = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f'{prefix}{key}.')
            else:
                found[prefix + key] = value

    walk(config, '')
    return found


def read_json(path):
    """The JSON value in file `path`, or None if there is no such file.

    Raises `TypeError` for a `path` that is not a str or a path.
    """
    check_path('path', path)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_json(path, value):
    """Writes `value` as JSON to `path` atomically (a killed write leaves the old file).

    Raises `TypeError` for a `path` that is not a str or a path, or a `value` that JSON cannot
    hold, before the file is replaced.
    """
    check_path('path', path)
    json.dumps(value)  # TypeError naming the type JSON cannot hold, before any file is made.
    temporary = f'{path}.tmp'
    with open(temporary, 'w') as f:
        json.dump(value, f, indent=2)
        f.write('\n')
    os.replace(temporary, path)


def last_checkpoint(workdir):
    """(path, epoch) of the newest checkpoint in `workdir/checkpoints/latest`, or None.

    Read from TensorFlow's `checkpoint` state file, which names a checkpoint only once all its
    files are written; the checkpoint number is the epoch. `TypeError` for a `workdir` that is
    not a path.
    """
    check_path('workdir', workdir)
    directory = os.path.join(workdir, 'checkpoints', 'latest')
    try:
        with open(os.path.join(directory, 'checkpoint')) as f:
            state = f.read()
    except FileNotFoundError:
        return None
    match = re.search(r'^model_checkpoint_path: "(.*-(\d+))"$', state, re.MULTILINE)
    if match is None:
        return None
    return os.path.join(directory, os.path.basename(match[1])), int(match[2])


@dataclasses.dataclass(frozen=True)
class Rerun:
    """What a run finds in its workdir (see `check_rerun`).

    Attributes:
      workdir: the workdir, an absolute path.
      changed: {key: (value in the workdir, value now)} of the TRAINING keys that differ.
      checkpoint: (path, epoch) of the newest checkpoint, or None.
      metrics: the workdir's metrics.json, or None.
      finished: whether the run is finished, so there is nothing to do.
      differing: the keys whose values differ from the workdir's config.json (any class).
    """

    workdir: str
    changed: dict
    checkpoint: tuple | None
    metrics: dict | None
    finished: bool
    differing: tuple = ()


def _format_value(value):
    return '(absent)' if value is _ABSENT else repr(value)


def _differences(previous, current, skip_absent):
    differing = {}
    for key in sorted(set(previous) | set(current)):
        if key in skip_absent and key not in current:
            continue
        old, new = previous.get(key, _ABSENT), current.get(key, _ABSENT)
        if old != new:
            differing[key] = (old, new)
    return differing


def check_rerun(workdir, config):
    """Checks that `config` may run in `workdir`; returns a `Rerun`.

    `config` is a `ConfigDict` or its nested dict; the data's `event_shape` and `num_bins` and
    the model's `conditional_shape` are compared only if `config` has them (a run checks again
    once the data is loaded).

    Raises:
      WorkdirMismatch: `workdir/config.json` differs from `config` in a DEFINES_RUN key; the
        message names every such key with both values. Nothing is written.
      ValueError: `workdir` cannot be created (`check_writable`), or its config.json is
        unreadable.
      TypeError: `workdir` is not a path, or `config` not a ConfigDict or a dict.
    """
    check_path('workdir', workdir)
    _check_config(config)
    workdir = os.path.abspath(workdir)
    if not os.path.isdir(workdir):
        check_writable(workdir)  # A new run: the workdir must be creatable.
    config_path = os.path.join(workdir, 'config.json')
    try:
        previous = read_json(config_path)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'Cannot read {config_path}: {error}') from error
    current = leaves(config)
    if previous is None:
        return Rerun(workdir, {}, None, None, False)
    differing = _differences(leaves(previous), current, _DERIVED_KEYS)
    refused = {k: v for k, v in differing.items() if KEY_CLASSES.get(k, DEFINES_RUN) == DEFINES_RUN}
    if refused:
        named = '; '.join(
            f'{key}: {_format_value(old)} in the workdir, {_format_value(new)} now'
            for key, (old, new) in refused.items()
        )
        raise WorkdirMismatch(
            f'workdir {workdir!r} holds a run of another model or data ({named}). These keys '
            'define the model, the data it is scored on or its checkpointed state, so the run '
            'cannot go on with them changed; nothing was changed. Use a new --workdir, or the '
            "workdir's values (its config.json)."
        )
    changed = {k: v for k, v in differing.items() if KEY_CLASSES.get(k) == TRAINING}
    checkpoint = last_checkpoint(workdir)
    try:
        metrics = read_json(os.path.join(workdir, 'metrics.json'))
    except (OSError, json.JSONDecodeError):
        metrics = None  # Outputs half written: the run writes them again.
    finished = False
    if metrics is not None and checkpoint is not None:
        epoch = checkpoint[1]
        describes_checkpoint = metrics.get('epochs_trained') == epoch
        stopped_early = metrics.get('stopped_early') and 'train.early_stopping_patience' not in (
            changed
        )
        finished = describes_checkpoint and (epoch >= current['train.epochs'] or stopped_early)
    return Rerun(workdir, changed, checkpoint, metrics, finished, tuple(differing))


def finished_message(rerun, epochs):
    """What to tell a user who reruns the finished run of `rerun`; `epochs` as configured now.

    Raises `TypeError` unless `rerun` is a finished `Rerun`, `ValueError` unless `epochs` is a
    positive int.
    """
    if not isinstance(rerun, Rerun) or not rerun.finished:
        raise TypeError(
            f'`rerun` must be the Rerun of a finished run (check_rerun); got {rerun!r}.'
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f'`epochs` must be a positive int; got {epochs!r}.')
    metrics = rerun.metrics
    epoch = rerun.checkpoint[1]
    figures = ', '.join(
        f'{key.replace("_", " ")} {value:.4f}'
        for key, value in metrics.items()
        if key.startswith(('test_', 'validation_')) and isinstance(value, float)
    )
    if epoch >= epochs:
        why = (
            f'it reached epoch {epoch} of {epochs}'
            if epoch == epochs
            else (f'it trained {epoch} epochs, more than the {epochs} asked for now')
        )
        more = f'--config.train.epochs=N, N > {epoch}'
    else:
        why = f'early stopping ended it after epoch {epoch}'
        more = '--config.train.early_stopping_patience=N (a larger N, or None)'
    lines = [
        f'{rerun.workdir} holds a finished run: {why}; {figures}, best epoch '
        f'{metrics.get("best_epoch")} (metrics.json). Nothing was trained or changed.',
        f'  To train it on, rerun with {more}.',
        '  For a new run, pass a new --workdir.',
    ]
    if rerun.changed:
        changes = ', '.join(
            f'{key} {_format_value(old)} -> {_format_value(new)}'
            for key, (old, new) in rerun.changed.items()
        )
        lines.append(f'  The changed settings ({changes}) apply only if it trains on.')
    return '\n'.join(lines)


def check_writable(workdir):
    """Raises `ValueError` unless `workdir` is a directory or can be made one and written
    (`TypeError` for a `workdir` that is not a path)."""
    check_path('workdir', workdir)
    existing = os.path.abspath(workdir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f'Cannot write to workdir {workdir!r}: {existing!r} is not a directory.')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f'Cannot write to workdir {workdir!r}: {existing!r} is not writable.')


def check_export_dir(export_dir, workdir):
    """Raises unless `export_dir` is None or a new path outside `workdir`.

    Raises:
      FileExistsError: `export_dir` exists.
      NotADirectoryError: a file stands where a parent folder of `export_dir` would be.
      ValueError: `export_dir` is `workdir`, inside it, or contains it.
      TypeError: `export_dir` is not None or a path, or `workdir` not a path.
    """
    check_path('export_dir', export_dir, allow_none=True)
    check_path('workdir', workdir)
    if export_dir is None:
        return
    export_path, work_path = os.path.abspath(export_dir), os.path.abspath(workdir)
    if os.path.lexists(export_path):
        raise FileExistsError(
            f'export_dir {export_dir!r} already exists; choose a new path or remove it.'
        )
    parent = os.path.dirname(export_path)
    while not os.path.lexists(parent):  # The nearest existing ancestor must be a directory.
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(
            f'export_dir {export_dir!r} cannot be created: {parent!r} is a file, not a '
            'directory; choose another path.'
        )
    inside = os.path.commonpath([export_path, work_path]) in (export_path, work_path)
    if inside:
        raise ValueError(
            f'export_dir {export_dir!r} overlaps the workdir {work_path!r}, which the run '
            f'writes itself (its best model goes to {work_path}/saved_model); choose a path '
            'outside the workdir.'
        )


def copy_export(workdir, export_dir):
    """Copies the finished run's `workdir/saved_model` to the new path `export_dir`.

    The copy is made in a temporary directory beside `export_dir` and renamed into place, so
    `export_dir` never holds a partial copy. Returns the absolute path. Refuses what
    `check_export_dir` refuses, before anything is copied.
    """
    check_path('export_dir', export_dir)
    check_export_dir(export_dir, workdir)
    export_dir = os.path.abspath(export_dir)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    temporaries.remove_stale_temporaries(parent)
    temporary = temporaries.temporary_directory(parent)
    try:
        copy = os.path.join(temporary, 'saved_model')
        shutil.copytree(os.path.join(workdir, 'saved_model'), copy)
        os.replace(copy, export_dir)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return export_dir


def write_config(workdir, resolved, rerun, epoch):
    """Writes `resolved` (nested dict) as `workdir/config.json`; records changes on resume.

    `epoch` is the epoch the run resumes from (0 for a new run). A run that resumed with
    changed TRAINING keys appends {'epoch': epoch, 'changed': {key: [old, new]}} to
    `workdir/config_history.json`. Raises `ValueError` if `workdir` cannot be written or
    `epoch` is not an int >= 0, `TypeError` for a `workdir` that is not a path, a `resolved`
    that is not a dict or a `rerun` that is not a `Rerun`, before anything is written.
    """
    check_path('workdir', workdir)
    if not isinstance(resolved, dict):
        raise TypeError(f'`resolved` must be the resolved config as a dict; got {resolved!r}.')
    if not isinstance(rerun, Rerun):
        raise TypeError(f'`rerun` must be a Rerun (check_rerun); got {rerun!r}.')
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f'`epoch` must be an int >= 0; got {epoch!r}.')
    try:
        os.makedirs(workdir, exist_ok=True)
        if epoch and rerun.changed:
            history_path = os.path.join(workdir, 'config_history.json')
            history = read_json(history_path) or []
            changed = {
                key: ['(absent)' if value is _ABSENT else value for value in values]
                for key, values in rerun.changed.items()
            }
            write_json(history_path, [*history, {'epoch': epoch, 'changed': changed}])
        write_json(os.path.join(workdir, 'config.json'), resolved)
    except OSError as error:
        raise ValueError(f'Cannot write to workdir {workdir!r}: {error}') from error


def written_outputs(workdir, export_dir=None):
    """[(path, what it is)] of the outputs a finished run holds, each only if it exists.

    Raises `TypeError` for a `workdir` (or `export_dir`) that is not a path (or None).
    """
    check_path('workdir', workdir)
    check_path('export_dir', export_dir, allow_none=True)
    checkpoint = last_checkpoint(workdir)
    samples = os.path.join(workdir, 'samples')
    num_pictures = len(os.listdir(samples)) if os.path.isdir(samples) else 0
    items = [
        ('config.json', 'the resolved config; restore_flow rebuilds the model from it'),
        ('config_history.json', 'training settings changed on resume, with their epochs'),
        ('metrics.json', 'test and validation figures, epochs trained, best epoch'),
        (
            'checkpoints/latest',
            f'newest epochs, to resume (ckpt-{checkpoint[1] if checkpoint else "?"})',
        ),
        ('checkpoints/best', 'the epoch with the best validation figure'),
        ('samples', f'{num_pictures} PNG sample figure{"" if num_pictures == 1 else "s"}'),
        ('density.png', 'the learned density beside the data'),
        ('saved_model', 'the best model as a SavedModel (tf.saved_model.load)'),
        ('logs', f'TensorBoard logs: tensorboard --logdir {os.path.join(workdir, "logs")}'),
    ]
    found = [
        (os.path.join(workdir, name), what)
        for name, what in items
        if os.path.exists(os.path.join(workdir, name))
    ]
    if export_dir is not None and os.path.isdir(export_dir):
        found.append((os.path.abspath(export_dir), 'the best model as a SavedModel (export)'))
    return found
