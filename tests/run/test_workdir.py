"""tfp_flows/run/workdir.py: which config keys define a run, reruns, finished runs, export paths.

The sweeps go over every leaf key of every recipe: each key must be classified, and changing
it in a rerun must be refused, recorded or allowed as its class says.
"""

import glob
import importlib
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from configs import default
from tfp_flows.run import workdir as workdirs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = sorted(
    os.path.basename(path)[:-3]
    for path in glob.glob(os.path.join(ROOT, 'configs', '*.py'))
    if not path.endswith('__init__.py')
)


def _resolved(config):
    """The nested dict a run writes as config.json for `config` (on 8x8 digits)."""
    resolved = json.loads(config.to_json())
    resolved['data'].update(event_shape=[8, 8, 1], num_bins=17)
    resolved['model'].update(conditional_shape=None)
    return resolved


def _workdir(tmp_path, config, epoch=None, metrics=None):
    """A workdir holding `config`, a checkpoint state naming ckpt-`epoch`, and `metrics`."""
    workdir = tmp_path / 'run'
    workdir.mkdir()
    workdirs.write_json(workdir / 'config.json', _resolved(config))
    if epoch is not None:
        latest = workdir / 'checkpoints' / 'latest'
        latest.mkdir(parents=True)
        (latest / 'checkpoint').write_text(
            f'model_checkpoint_path: "ckpt-{epoch}"\nall_model_checkpoint_paths: "ckpt-{epoch}"\n'
        )
    if metrics is not None:
        workdirs.write_json(workdir / 'metrics.json', metrics)
    return str(workdir)


def _other(value):
    """A value of the same kind as `value`, but different."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if isinstance(value, str):
        return value + '_other'
    if isinstance(value, list):
        return [*value, *value[:1]] or [1]
    return 7  # None: a placeholder.


@pytest.mark.parametrize('recipe', RECIPES)
def test_every_config_key_of_every_recipe_is_classified(recipe):
    config = importlib.import_module(f'configs.{recipe}').get_config()
    keys = set(workdirs.leaves(_resolved(config)))
    assert keys <= set(workdirs.KEY_CLASSES), sorted(keys - set(workdirs.KEY_CLASSES))


def test_the_classification_lists_no_key_the_config_lacks():
    keys = set(workdirs.leaves(_resolved(default.get_config())))
    assert set(workdirs.KEY_CLASSES) == keys
    assert set(workdirs.KEY_CLASSES.values()) == {
        workdirs.DEFINES_RUN,
        workdirs.TRAINING,
        workdirs.HARMLESS,
    }


@pytest.mark.parametrize('key', sorted(workdirs.KEY_CLASSES))
def test_a_rerun_changing_a_key_is_refused_recorded_or_allowed_by_its_class(key, tmp_path):
    config = default.get_config()
    workdir = _workdir(tmp_path, config, epoch=3)
    before = {
        path.name: path.read_bytes() for path in (tmp_path / 'run').iterdir() if path.is_file()
    }
    changed = _resolved(config)
    section, _, name = key.rpartition('.')
    node = changed
    for part in section.split('.') if section else ():
        node = node[part]
    old = node[name]
    node[name] = _other(old)
    kind = workdirs.KEY_CLASSES[key]
    if kind == workdirs.DEFINES_RUN:
        message = rf'{key}: {old!r} in the workdir, {node[name]!r} now'
        with pytest.raises(workdirs.WorkdirMismatch, match=message.replace('[', r'\[')):
            workdirs.check_rerun(workdir, changed)
    else:
        rerun = workdirs.check_rerun(workdir, changed)
        expected = {key: (old, node[name])} if kind == workdirs.TRAINING else {}
        assert rerun.changed == expected
        assert not rerun.finished
    after = {
        path.name: path.read_bytes() for path in (tmp_path / 'run').iterdir() if path.is_file()
    }
    assert after == before  # Checking writes nothing.


def test_an_unclassified_key_defines_the_run(tmp_path):
    config = default.get_config()
    workdir = _workdir(tmp_path, config)
    with config.unlocked():
        config.model.new_option = 'x'
    with pytest.raises(
        workdirs.WorkdirMismatch, match=r"model\.new_option: \(absent\) in the workdir, 'x' now"
    ):
        workdirs.check_rerun(workdir, config)


def test_the_data_shape_is_checked_only_once_known(tmp_path):
    config = default.get_config()
    workdir = _workdir(tmp_path, config)
    assert workdirs.check_rerun(workdir, config).changed == {}  # No event_shape yet: skipped.
    resolved = _resolved(config)
    resolved['data']['event_shape'] = [16, 16, 1]
    with pytest.raises(
        workdirs.WorkdirMismatch,
        match=r'data\.event_shape: \[8, 8, 1\] in the workdir, \[16, 16, 1\] now',
    ):
        workdirs.check_rerun(workdir, resolved)


def _metrics(epochs_trained, stopped_early=False):
    return {
        'test_bits_per_dim': 2.5,
        'validation_bits_per_dim': 2.4,
        'epochs_trained': epochs_trained,
        'best_epoch': 2,
        'stopped_early': stopped_early,
    }


@pytest.mark.parametrize(
    'epoch, metrics, overrides, finished',
    [
        (3, _metrics(3), {}, True),  # All epochs done, metrics.json of the newest checkpoint.
        (3, _metrics(3), {'epochs': 5}, False),  # More epochs asked for: it trains on.
        (3, _metrics(3), {'epochs': 2}, True),
        (3, None, {}, False),  # Killed while writing outputs: written again.
        (4, _metrics(3), {'epochs': 3}, False),  # Trained on past its metrics: stale.
        (2, _metrics(2, stopped_early=True), {'early_stopping_patience': 1}, True),
        (2, _metrics(2, stopped_early=True), {'early_stopping_patience': 5}, False),
        (2, _metrics(2), {}, False),  # Stopped by its time limit: it trains on.
    ],
)
def test_a_run_is_finished_when_its_metrics_describe_its_last_epoch(
    epoch, metrics, overrides, finished, tmp_path
):
    config = default.get_config()
    config.train.epochs = 3
    config.train.early_stopping_patience = 1
    workdir = _workdir(tmp_path, config, epoch=epoch, metrics=metrics)
    for key, value in overrides.items():
        config.train[key] = value
    rerun = workdirs.check_rerun(workdir, config)
    assert rerun.finished == finished
    assert rerun.checkpoint == (
        os.path.join(workdir, 'checkpoints', 'latest', f'ckpt-{epoch}'),
        epoch,
    )


def test_the_finished_message_says_how_to_go_on(tmp_path):
    config = default.get_config()
    config.train.epochs = 3
    workdir = _workdir(tmp_path, config, epoch=3, metrics=_metrics(3))
    config.train.learning_rate = 1e-3
    message = workdirs.finished_message(workdirs.check_rerun(workdir, config), 3)
    assert message == (
        f'{workdir} holds a finished run: it reached epoch 3 of 3; test bits per dim 2.5000, '
        'validation bits per dim 2.4000, best epoch 2 (metrics.json). Nothing was trained or '
        'changed.\n'
        '  To train it on, rerun with --config.train.epochs=N, N > 3.\n'
        '  For a new run, pass a new --workdir.\n'
        '  The changed settings (train.learning_rate 0.003 -> 0.001) apply only if it trains on.'
    )


def test_the_finished_message_of_a_run_past_the_epochs_asked_for(tmp_path):
    config = default.get_config()
    config.train.epochs = 3
    workdir = _workdir(tmp_path, config, epoch=3, metrics=_metrics(3))
    config.train.epochs = 2
    message = workdirs.finished_message(workdirs.check_rerun(workdir, config), 2)
    assert 'holds a finished run: it trained 3 epochs, more than the 2 asked for now;' in message


def test_the_newest_checkpoint_is_read_from_tensorflows_state_file(tmp_path):
    """Pins the parsing of TF's `checkpoint` file on what CheckpointManager writes."""
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path / 'checkpoints' / 'latest'), 2
    )
    for epoch in (1, 2, 3):
        manager.save(checkpoint_number=epoch)
    assert workdirs.last_checkpoint(str(tmp_path)) == (manager.latest_checkpoint, 3)
    assert workdirs.last_checkpoint(str(tmp_path / 'none')) is None


def test_write_config_records_changed_training_settings(tmp_path):
    config = default.get_config()
    workdir = _workdir(tmp_path, config, epoch=3)
    config.train.epochs = 100
    rerun = workdirs.check_rerun(workdir, config)
    workdirs.write_config(workdir, _resolved(config), rerun, epoch=3)
    config.train.learning_rate = 1e-4
    rerun = workdirs.check_rerun(workdir, config)
    workdirs.write_config(workdir, _resolved(config), rerun, epoch=7)
    assert workdirs.read_json(os.path.join(workdir, 'config_history.json')) == [
        {'epoch': 3, 'changed': {'train.epochs': [60, 100]}},
        {'epoch': 7, 'changed': {'train.learning_rate': [0.003, 0.0001]}},
    ]
    assert workdirs.read_json(os.path.join(workdir, 'config.json')) == _resolved(config)


def test_export_dir_must_be_new_and_outside_the_workdir(tmp_path):
    workdir = str(tmp_path / 'run')
    workdirs.check_export_dir(None, workdir)
    workdirs.check_export_dir(str(tmp_path / 'export'), workdir)
    for export_dir, run in (
        (f'{workdir}/saved_model', workdir),
        (workdir, workdir),
        (str(tmp_path / 'new'), str(tmp_path / 'new' / 'run')),
    ):
        with pytest.raises(ValueError, match=r"export_dir '.*' overlaps the workdir '.*run', "):
            workdirs.check_export_dir(export_dir, run)
    with pytest.raises(FileExistsError, match=r"export_dir '.*' already exists; choose a new"):
        workdirs.check_export_dir(str(tmp_path), workdir)


def test_a_workdir_under_a_file_is_refused(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(ValueError, match=r"Cannot write to workdir '.*file/run': .* is not a dir"):
        workdirs.check_rerun(str(tmp_path / 'file' / 'run'), default.get_config())


def test_the_workdir_module_imports_without_tensorflow():
    code = (
        'import sys, tfp_flows.run.workdir; assert "tensorflow" not in sys.modules, "imported TF"'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
