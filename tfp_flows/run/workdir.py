"""A run's workdir: what a rerun starts from, whether it may go on, who holds it, what it holds.

A rerun goes on with the run's own `config.json` and this command's overrides (`rerun_config`),
changing only what the fields' rerun classes allow (`tfp_flows.run.schema`). A run whose
`metrics.json` reached `config.train.epochs` (or stopped early) is finished: a rerun changes
nothing; one that trains on removes metrics.json once it saves a new epoch. No TensorFlow here.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile

import ml_collections

from tfp_flows import temporaries
from tfp_flows.checks import check_path
from tfp_flows.run import lock, schema

__all__ = [
    'Run',
    'WorkdirMismatch',
    'check_recorded',
    'leave_finished',
    'open_run',
    'read_json',
    'rerun_config',
    'write_config',
    'write_json',
    'written_outputs',
]

_ABSENT = object()  # A field one of two configs lacks.
_PROBE = '.tfp_flows_probe_'  # A temporary directory that tries whether a path can be written.


class WorkdirMismatch(ValueError):
    """The workdir holds a run whose config differs in fields that define the run."""


@dataclasses.dataclass(frozen=True)
class Run:
    """A run as `open_run` finds it in its (absolute) `workdir`, with its checked `config`;
    `previous` is the workdir's config.json (None for a new run), `changed` {field: (value in
    the workdir, value now)} of the training settings that differ, `metrics` the workdir's
    metrics.json or None, `finished` whether there is nothing to do."""

    workdir: str
    config: ml_collections.ConfigDict
    export_dir: str | None = None
    previous: dict | None = None
    changed: dict = dataclasses.field(default_factory=dict)
    metrics: dict | None = None
    finished: bool = False


def read_json(path):
    """The JSON value in file `path`, or None if there is no such file."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_json(path, value):
    """Writes `value` as JSON to `path` atomically (a killed write leaves the old file)."""
    temporary = f'{path}.tmp'
    with open(temporary, 'w') as f:
        json.dump(value, f, indent=2)
        f.write('\n')
    os.replace(temporary, path)


def _differences(previous, current):
    """{field: (old, new)} where two flat configs differ (`_ABSENT` where one lacks it; a field
    of the schema that `previous`, a workdir's, lacks was recorded before the field existed:
    it holds its default, the behaviour before it)."""
    keys = sorted(set(previous) | set(current))
    previous = {**_json_leaves(schema.default_config()), **previous}
    pairs = {key: (previous.get(key, _ABSENT), current.get(key, _ABSENT)) for key in keys}
    return {key: (old, new) for key, (old, new) in pairs.items() if old != new}


def _shown(value):
    return '(absent)' if value is _ABSENT else repr(value)


def _refuse_defining(workdir, differing):
    refused = {k: v for k, v in differing.items() if schema.rerun_class(k) == schema.RUN}
    if refused:
        named = '; '.join(
            f'{key}: {_shown(old)} in the workdir, {_shown(new)} now'
            for key, (old, new) in refused.items()
        )
        raise WorkdirMismatch(
            f'workdir {workdir!r} holds a run of another model or data ({named}). These fields '
            'define the model, the data it is scored on or its checkpointed state, so the run '
            'cannot go on with them changed; nothing was changed. Use a new --workdir, or the '
            "workdir's values (its config.json; a rerun without --config starts from it)."
        )


def _json_leaves(config):
    """The flat fields of `config` as its config.json holds them (tuples as lists)."""
    return schema.flatten(json.loads(config.to_json()))


def _read_config(workdir):
    """The workdir's config.json as nested dicts, or None without it."""
    if os.path.lexists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f'workdir {workdir!r} is a file, not a directory; choose another path.')
    path = os.path.join(workdir, 'config.json')
    try:
        return read_json(path)
    except (OSError, ValueError) as error:
        raise ValueError(f'Cannot read {path}: {error}') from error


def _set_fields(previous):
    """The flat fields a recipe sets in a config.json (`previous`, nested dicts)."""
    return {k: v for k, v in schema.flatten(previous).items() if k not in schema.RECORDED}


def rerun_config(workdir, recipe, overrides, recipe_given):
    """The config of `train.py` in `workdir`: `recipe` (the `--config` flag's value, with this
    command's `overrides`) for a new run, else the workdir's config.json with `overrides` on
    top (fields it lacks take their defaults). Raises `WorkdirMismatch` if `recipe_given` (an
    explicit `--config`) defines another run, `ValueError` for an unreadable config.json.
    """
    previous = _read_config(workdir)
    if previous is None:
        return recipe
    previous = _set_fields(previous)
    if recipe_given:
        _refuse_defining(workdir, _differences(previous, _json_leaves(recipe)))
    config = schema.default_config()
    config.update_from_flattened_dict({k: v for k, v in previous.items() if k in schema.FIELDS})
    config.update_from_flattened_dict(overrides)
    return config


def _existing_ancestor(path):
    """`path`, or its nearest ancestor that exists."""
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _check_writable(name, path):
    """Raises `ValueError` unless the directory `path` can be made (or written in): tried with a
    temporary directory, made and removed at once, in its nearest existing ancestor."""
    existing = _existing_ancestor(path)
    if not os.path.isdir(existing):
        raise ValueError(f'Cannot write to {name} {path!r}: {existing!r} is not a directory.')
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=_PROBE).cleanup()
    except OSError as error:
        raise ValueError(  # Not the probe's own random name, which the user never gave.
            f'Cannot write to {name} {path!r}: no directory can be made in {existing!r} '
            f'([Errno {error.errno}] {error.strerror}).'
        ) from error


def _check_export_dir(export_dir, workdir):
    if export_dir is None:
        return
    export_path = os.path.abspath(export_dir)
    if os.path.lexists(export_path):
        raise FileExistsError(
            f'export_dir {export_dir!r} already exists; choose a new path or remove it.'
        )
    parent = _existing_ancestor(os.path.dirname(export_path))
    if not os.path.isdir(parent):
        raise NotADirectoryError(
            f'export_dir {export_dir!r} cannot be created: {parent!r} is a file, not a '
            'directory; choose another path.'
        )
    _check_writable('export_dir', export_path)
    if os.path.commonpath([export_path, workdir]) in (export_path, workdir):
        raise ValueError(
            f'export_dir {export_dir!r} overlaps the workdir {workdir!r}, which the run '
            f'writes itself (its best model goes to {workdir}/saved_model); choose a path '
            'outside the workdir.'
        )


@contextlib.contextmanager
def open_run(config, workdir, export_dir=None):
    """Checks a run's inputs (the config once, `schema.check_config`), holds the workdir's lock
    while the block runs (a 'multi_worker' chief takes it later), yields the `Run` found there.
    Raises `ValueError` for a bad config, a workdir or `export_dir` that cannot be written (tried
    with a temporary directory), a workdir that holds another run (`WorkdirMismatch`) or files
    but no run (no config.json), an `export_dir` that overlaps it; `FileExistsError` if
    `export_dir` exists; `lock.WorkdirInUse` (an OSError); `TypeError` for arguments of
    another kind.
    """
    check_path('workdir', workdir)
    check_path('export_dir', export_dir, allow_none=True)
    config = schema.check_config(config)
    workdir = os.path.abspath(workdir)
    _check_writable('workdir', workdir)
    _check_export_dir(export_dir, workdir)
    held = (
        contextlib.nullcontext() if config.train.strategy == 'multi_worker' else lock.hold(workdir)
    )
    with held:
        yield _find_run(config, workdir, export_dir)


def _find_run(config, workdir, export_dir):
    previous = _read_config(workdir)
    if previous is None:
        names = os.listdir(workdir) if os.path.isdir(workdir) else []
        ours = (lock.NAME, 'config.json.tmp')  # A run's before its config.json is whole.
        others = sorted(n for n in names if n not in ours and not n.startswith(_PROBE))
        if others:  # Not a run's: a run would write over them.
            shown = ', '.join(others[:5]) + (', ...' if len(others) > 5 else '')
            raise ValueError(
                f'workdir {workdir!r} holds files but no run (it has no config.json): '
                f'{shown}. A run would write over them; choose a new or empty --workdir.'
            )
        return Run(workdir, config, export_dir)
    differing = _differences(_set_fields(previous), _json_leaves(config))
    _refuse_defining(workdir, differing)
    changed = {k: v for k, v in differing.items() if schema.rerun_class(k) == schema.TRAINING}
    try:
        metrics = read_json(os.path.join(workdir, 'metrics.json'))
    except (OSError, ValueError):
        metrics = None  # Outputs half written: the run writes them again.
    finished = metrics is not None and (
        metrics['epochs_trained'] >= config.train.epochs
        or (metrics['stopped_early'] and 'train.early_stopping_patience' not in changed)
    )
    return Run(workdir, config, export_dir, previous, changed, metrics, finished)


def check_recorded(run, recorded):
    """Raises `WorkdirMismatch` if the data's `recorded` fields ({field: value} of
    `schema.RECORDED`, as JSON holds them) differ from those the workdir holds."""
    if run.previous is not None:
        previous = schema.flatten(run.previous)
        _refuse_defining(
            run.workdir,
            {k: (previous[k], v) for k, v in recorded.items() if previous.get(k, v) != v},
        )


def write_config(run, recorded, epoch):
    """Writes the run's config.json (the config and `recorded`) as it trains from `epoch` on,
    appends {'epoch': epoch, 'changed': {field: [old, new]}} of changed training settings to
    config_history.json and removes metrics.json. `ValueError` if the workdir is not writable.
    """
    resolved = json.loads(run.config.to_json())
    for key, value in recorded.items():
        section, name = key.split('.')
        resolved[section][name] = value
    try:
        if epoch and run.changed:
            history_path = os.path.join(run.workdir, 'config_history.json')
            changed = {
                k: [_shown(v) if v is _ABSENT else v for v in vs] for k, vs in run.changed.items()
            }
            history = read_json(history_path) or []
            write_json(history_path, [*history, {'epoch': epoch, 'changed': changed}])
        write_json(os.path.join(run.workdir, 'config.json'), resolved)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run.workdir, 'metrics.json'))
    except OSError as error:
        raise ValueError(f'Cannot write to workdir {run.workdir!r}: {error}') from error


def _finished_message(run):
    """What to tell a user who reruns the finished `run`: its figures and how to go on."""
    metrics, epochs = run.metrics, run.config.train.epochs
    trained = metrics['epochs_trained']
    figures = ', '.join(
        f'{key.replace("_", " ")} {value:.4f}'
        for key, value in metrics.items()
        if key.startswith(('test_', 'validation_')) and isinstance(value, float)
    )
    if trained >= epochs:
        why = f'it reached epoch {trained} of {epochs}'
        if trained > epochs:
            why = f'it trained {trained} epochs, more than the {epochs} asked for now'
        more = f'--config.train.epochs=N, N > {trained}'
    else:
        why = f'early stopping ended it after epoch {trained}'
        more = '--config.train.early_stopping_patience=N (a larger N, or None)'
    lines = [
        f'{run.workdir} holds a finished run: {why}; {figures}, best epoch '
        f'{metrics["best_epoch"]} (metrics.json). Nothing was trained or changed.',
        f'  To train it on, rerun with {more}.',
        '  For a new run, pass a new --workdir.',
    ]
    if run.changed:
        changes = ', '.join(
            f'{key} {_shown(old)} -> {_shown(new)}' for key, (old, new) in run.changed.items()
        )
        lines.append(f'  The changed settings ({changes}) apply only if it trains on.')
    return '\n'.join(lines)


def leave_finished(run):
    """Leaves the finished `run` as it is (with `run.export_dir`, its saved_model is copied
    there); returns what to tell the user who reran it. `FileNotFoundError` if it has no
    saved_model to copy (it ran with `train.export` False, or it was removed)."""
    message = _finished_message(run)
    if run.export_dir is not None:  # Copied atomically.
        export_dir = os.path.abspath(run.export_dir)
        if not os.path.isdir(os.path.join(run.workdir, 'saved_model')):
            exported = run.previous['train'].get('export', True)  # Older runs all exported.
            raise FileNotFoundError(
                f'The finished run in {run.workdir} has no saved_model to copy to export_dir '
                f'{run.export_dir!r}: '
                f'{"it was removed" if exported else "it ran with train.export=False"}. Export '
                'its best model with tfp_flows.run.restore.restore_flow_and_dequantizer and '
                'tfp_flows.export.export_saved_model (num_bins: data.num_bins in its config.json).'
            )
        with temporaries.atomic_directory(export_dir) as written:
            shutil.copytree(os.path.join(run.workdir, 'saved_model'), written)
        message += f'\nCopied its best model to {export_dir}.'
    elif run.config.train.export and not os.path.isdir(os.path.join(run.workdir, 'saved_model')):
        message += '\n  It holds no saved_model (train.export was False, or it was removed).'
    return message


def written_outputs(workdir, metrics, export_dir=None):
    """[(path, what it is)] of the outputs a finished run holds, each only if it exists."""
    samples = os.path.join(workdir, 'samples')
    num_pictures = len(os.listdir(samples)) if os.path.isdir(samples) else 0
    items = [
        ('config.json', 'the resolved config; restore_flow rebuilds the model from it'),
        ('config_history.json', 'training settings changed on resume, with their epochs'),
        ('metrics.json', 'test and validation figures, epochs trained, best epoch'),
        ('checkpoints/latest', f'newest epochs, to resume (ckpt-{metrics["epochs_trained"]})'),
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
