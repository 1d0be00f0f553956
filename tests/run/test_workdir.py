"""tfp_flows/run/workdir.py: what a rerun starts from, whether it may go on, the lock.

The sweeps go over every field of the schema (each refused, recorded or free on a rerun, as
its class says) and over every way a rerun takes its base (issue 21, "Lost work"): no flags,
training flags, defining flags, the same or another `--config` recipe, the Python API.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from scripts import processes

from configs import affine_digits, glow_digits, realnvp_moons
from tfp_flows.run import lock, schema
from tfp_flows.run import workdir as workdirs

ROOT = processes.ROOT
RECORDED = {'data.event_shape': [8, 8, 1], 'data.num_bins': 17, 'model.conditional_shape': None}


def _config(**changes):
    config = affine_digits.get_config()
    config.update_from_flattened_dict(changes)
    return config


def _metrics(epochs_trained, stopped_early=False):
    return {
        'test_bits_per_dim': 2.5,
        'validation_bits_per_dim': 2.4,
        'epochs_trained': epochs_trained,
        'best_epoch': 2,
        'stopped_early': stopped_early,
    }


def _workdir(tmp_path, config, metrics=None):
    """A workdir holding the config.json a run of `config` writes (on 8x8 digits)."""
    workdir = str(tmp_path / 'run')
    os.makedirs(workdir)
    run = workdirs.Run(workdir, schema.check_config(config))
    workdirs.write_config(run, RECORDED, 0)
    if metrics is not None:
        workdirs.write_json(os.path.join(workdir, 'metrics.json'), metrics)
    return workdir


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    found = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


def _open(config, workdir, export_dir=None):
    with workdirs.open_run(config, workdir, export_dir) as run:
        return run


# A value other than the base's inside each field's domain, where the generic one is not.
_OTHER = {
    'data.data_dir': '/data/tfds',
    'data.columns': ('x',),
    'data.context_columns': ('c',),
    'data.augment': 'flip',
    'model.family': 'real_nvp',
    'model.coupling': 'additive',
    'model.permutation': 'shuffle',
    'model.scale': 'sigmoid',
    'model.preprocessing': 'centre',
    'model.dtype': 'float64',
    'dequantizer.kind': 'uniform',
    'train.strategy': 'mirrored',
    'train.optimizer': 'adam',
    'train.memory_saving': 'invert',
    'train.ema_momentum': 0.9,
    'train.mixed_precision': 'mixed_bfloat16',
}


def _other(key, value):
    if key in _OTHER:
        return _OTHER[key]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2 if value else 2
    if isinstance(value, float):
        return value / 2 if value else 0.25
    if isinstance(value, str):
        return value + '_other'
    if isinstance(value, list):
        return [*value, 0.5]
    return 7  # None: a placeholder.


def _json(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize('key', sorted(schema.FIELDS))
def test_a_rerun_changing_a_field_is_refused_recorded_or_free_by_its_class(key, tmp_path):
    base = glow_digits.get_config()  # A Glow: its Glow-only fields may change.
    if key.startswith('model.spline_') or key == 'model.mixture_components':
        base.model.coupling = 'spline' if 'spline' in key else 'logistic_mixture'  # Their kinds.
    workdir = _workdir(tmp_path, base, _metrics(60))
    before = _files(workdir)
    old = _json(schema.flatten(base)[key])
    config = base.to_dict()
    *sections, name = key.split('.')
    node = config
    for section in sections:
        node = node[section]
    new = node[name] = _other(key, old)
    kind = schema.FIELDS[key].rerun
    if kind == schema.RUN:
        message = re.escape(f'{key}: {old!r} in the workdir, {_json(new)!r} now')
        with pytest.raises(workdirs.WorkdirMismatch, match=message):
            _open(config, workdir)
    else:
        run = _open(config, workdir)
        assert run.changed == ({key: (old, _json(new))} if kind == schema.TRAINING else {})
        assert run.finished == (key != 'train.epochs')
    assert _files(workdir) == before  # Checking writes nothing, and the lock is gone.


def test_a_config_json_of_unknown_fields_defines_another_run(tmp_path):
    workdir = _workdir(tmp_path, _config())
    with open(os.path.join(workdir, 'config.json')) as f:
        previous = json.load(f)
    previous['model']['old_option'] = 'x'
    workdirs.write_json(os.path.join(workdir, 'config.json'), previous)
    with pytest.raises(
        workdirs.WorkdirMismatch, match=r"model\.old_option: 'x' in the workdir, \(absent\) now"
    ):
        _open(_config(), workdir)


def test_a_config_json_recorded_before_a_field_existed_holds_its_default(tmp_path):
    # A field added since (model.loop, the spline's options) reads as its default, the
    # behaviour before it: the same command reruns; another value is refused, naming it.
    glow = {'model.family': 'glow', 'model.permutation': 'lu'}
    workdir = _workdir(tmp_path, _config(**glow))
    with open(os.path.join(workdir, 'config.json')) as f:
        previous = json.load(f)
    for name in ('loop', 'spline_bins', 'mixture_components'):
        del previous['model'][name]
    workdirs.write_json(os.path.join(workdir, 'config.json'), previous)
    assert _open(_config(**glow), workdir).changed == {}
    config = _config(**glow, **{'model.loop': True})
    with pytest.raises(workdirs.WorkdirMismatch, match=r'model\.loop: False in the workdir, True'):
        _open(config, workdir)


def test_the_datas_recorded_fields_are_checked_once_known(tmp_path):
    workdir = _workdir(tmp_path, _config())
    run = _open(_config(), workdir)  # No data yet: not compared.
    workdirs.check_recorded(run, RECORDED)
    with pytest.raises(
        workdirs.WorkdirMismatch,
        match=r'data\.event_shape: \[8, 8, 1\] in the workdir, \[16, 16, 1\] now',
    ):
        workdirs.check_recorded(run, {**RECORDED, 'data.event_shape': [16, 16, 1]})


@pytest.mark.parametrize(
    'metrics, changes, finished',
    [
        (_metrics(3), {}, True),  # All epochs done.
        (_metrics(3), {'train.epochs': 5}, False),  # More epochs asked for: it trains on.
        (_metrics(3), {'train.epochs': 2}, True),
        (None, {}, False),  # Killed before its outputs, or training on: no metrics.json.
        (_metrics(2, stopped_early=True), {}, True),
        (_metrics(2, stopped_early=True), {'train.early_stopping_patience': 5}, False),
        (_metrics(2), {}, False),  # Stopped by its time limit: it trains on.
    ],
)
def test_a_run_is_finished_when_its_metrics_reached_its_epochs(
    metrics, changes, finished, tmp_path
):
    base = {'train.epochs': 3, 'train.early_stopping_patience': 1}
    workdir = _workdir(tmp_path, _config(**base), metrics)
    assert _open(_config(**{**base, **changes}), workdir).finished == finished


def test_the_finished_message_says_how_to_go_on(tmp_path):
    workdir = _workdir(tmp_path, _config(**{'train.epochs': 3}), _metrics(3))
    os.makedirs(os.path.join(workdir, 'saved_model'))  # As a run exports (see the test below).
    run = _open(_config(**{'train.epochs': 3, 'train.learning_rate': 1e-3}), workdir)
    assert workdirs.leave_finished(run) == (
        f'{workdir} holds a finished run: it reached epoch 3 of 3; test bits per dim 2.5000, '
        'validation bits per dim 2.4000, best epoch 2 (metrics.json). Nothing was trained or '
        'changed.\n'
        '  To train it on, rerun with --config.train.epochs=N, N > 3.\n'
        '  For a new run, pass a new --workdir.\n'
        '  The changed settings (train.learning_rate 0.003 -> 0.001) apply only if it trains on.'
    )
    run = _open(_config(**{'train.epochs': 2}), workdir)
    assert 'holds a finished run: it trained 3 epochs, more than the 2 asked for now;' in (
        workdirs.leave_finished(run)
    )


def test_a_finished_run_is_copied_to_a_new_export_dir(tmp_path):
    workdir = _workdir(tmp_path, _config(), _metrics(60))
    os.makedirs(os.path.join(workdir, 'saved_model', 'variables'))
    with open(os.path.join(workdir, 'saved_model', 'saved_model.pb'), 'w') as f:
        f.write('model')
    export_dir = tmp_path / 'deep' / 'model'
    run = _open(_config(), workdir, str(export_dir))
    assert workdirs.leave_finished(run).endswith(f'\nCopied its best model to {export_dir}.')
    assert (export_dir / 'saved_model.pb').read_text() == 'model'
    assert sorted(os.listdir(tmp_path / 'deep')) == ['model']  # No temporary left.


@pytest.mark.parametrize(
    'exported, why', [(False, r'it ran with train\.export=False'), (True, 'it was removed')]
)
def test_a_finished_run_without_an_export_says_so_to_an_export_dir(tmp_path, exported, why):
    workdir = _workdir(tmp_path, _config(**{'train.export': exported}), _metrics(60))
    export_dir = tmp_path / 'model'
    run = _open(_config(), workdir, str(export_dir))  # train.export is free to change.
    with pytest.raises(
        FileNotFoundError,
        match=rf'finished run in {re.escape(workdir)} has no saved_model to copy to export_dir '
        rf"'{re.escape(str(export_dir))}': {why}\. Export its best model with .* \(num_bins: "
        r'data\.num_bins in its config\.json\)\.$',
    ):
        workdirs.leave_finished(run)
    assert not export_dir.exists()
    # Without an export_dir, the finished message says there is no export to be had.
    assert workdirs.leave_finished(_open(_config(), workdir)).endswith(
        '\n  It holds no saved_model (train.export was False, or it was removed).'
    )


def test_write_config_records_changed_training_settings_and_drops_stale_metrics(tmp_path):
    workdir = _workdir(tmp_path, _config(), _metrics(60))
    run = _open(_config(**{'train.epochs': 100}), workdir)
    workdirs.write_config(run, RECORDED, epoch=60)
    assert not os.path.exists(os.path.join(workdir, 'metrics.json'))
    run = _open(_config(**{'train.epochs': 100, 'train.learning_rate': 1e-4}), workdir)
    workdirs.write_config(run, RECORDED, epoch=70)
    assert workdirs.read_json(os.path.join(workdir, 'config_history.json')) == [
        {'epoch': 60, 'changed': {'train.epochs': [60, 100]}},
        {'epoch': 70, 'changed': {'train.learning_rate': [0.003, 0.0001]}},
    ]
    recorded = workdirs.read_json(os.path.join(workdir, 'config.json'))
    assert recorded['train']['learning_rate'] == 0.0001
    assert recorded['data']['event_shape'] == [8, 8, 1]


def test_export_dir_must_be_new_and_outside_the_workdir(tmp_path):
    workdir = str(tmp_path / 'run')
    _open(_config(), workdir, None)
    _open(_config(), workdir, str(tmp_path / 'export'))
    for export_dir, run in (
        (f'{workdir}/saved_model', workdir),
        (workdir, workdir),
        (str(tmp_path / 'new'), str(tmp_path / 'new' / 'run')),
    ):
        with pytest.raises(ValueError, match=r"export_dir '.*' overlaps the workdir '.*run', "):
            _open(_config(), run, export_dir)
    with pytest.raises(FileExistsError, match=r"export_dir '.*' already exists; choose a new"):
        _open(_config(), workdir, str(tmp_path))
    (tmp_path / 'file').write_text('')
    with pytest.raises(NotADirectoryError, match=r"'.*file' is a file, not a directory"):
        _open(_config(), workdir, str(tmp_path / 'file' / 'model'))
    assert not os.path.exists(workdir)  # Checked and left as it was: absent.


def test_a_workdir_under_a_file_is_refused(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(ValueError, match=r"Cannot write to workdir '.*file/run': .* is not a dir"):
        _open(_config(), str(tmp_path / 'file' / 'run'))


# A path no one can write in, not even root: the probe that tries it (newcomer's finding: a
# run trained to the end and then failed to export to '/sys/foo' with "Error: 1").
_UNWRITABLE = [
    path
    for path in ('/sys/tfp_flows_test', '/proc/tfp_flows_test')
    if os.path.isdir(os.path.dirname(path))
]


@pytest.mark.parametrize('name', ['workdir', 'export_dir'])
@pytest.mark.parametrize('path', _UNWRITABLE)
def test_a_workdir_or_export_dir_that_cannot_be_written_is_refused_first(name, path, tmp_path):
    workdir, export_dir = (path, None) if name == 'workdir' else (str(tmp_path / 'run'), path)
    parent = os.path.dirname(path)
    message = rf"^Cannot write to {name} '{path}': no directory can be made in '{parent}' \(\[Errno"
    with pytest.raises(ValueError, match=message):
        _open(_config(), workdir, export_dir)
    assert os.listdir(tmp_path) == []


# Files a user put in a folder that holds no run (no config.json): a run would write over them.
FOREIGN = {
    'metrics.json': {'metrics.json': '{"my": "results"}'},
    'a note in saved_model': {'saved_model/README.txt': 'notes'},
    'a picture in samples': {'samples/epoch_0001.png': 'mine'},
    'any file': {'notes.txt': 'x'},
    'an empty folder': {'data/': None},
}


@pytest.mark.parametrize('name', list(FOREIGN))
def test_a_workdir_with_files_but_no_run_is_refused_and_left_as_it_was(name, tmp_path):
    workdir = tmp_path / 'run'
    for path, text in FOREIGN[name].items():
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            (workdir / path).mkdir()
        else:
            (workdir / path).write_text(text)
    before = _files(str(workdir))
    shown = sorted({path.split('/')[0] for path in FOREIGN[name]})
    with pytest.raises(
        ValueError, match=rf'holds files but no run .*: {re.escape(shown[0])}\. A run'
    ):
        _open(_config(), str(workdir))
    assert _files(str(workdir)) == before


@pytest.mark.parametrize(
    'names',
    [(lock.NAME,), (lock.NAME, 'config.json.tmp'), ('.tfp_flows_probe_abc/',)],
    ids=['the lock', 'a half-written config', "another process's probe"],
)
def test_a_workdir_a_run_left_before_its_config_holds_only_its_files_and_runs(names, tmp_path):
    # Killed while it loaded the data (the lock file is all it wrote) or as it wrote its
    # config.json; a process that tries the workdir at the same time (multi_worker takes no lock).
    workdir = tmp_path / 'run'
    workdir.mkdir()
    for name in names:
        if name.endswith('/'):
            (workdir / name).mkdir()
        else:
            (workdir / name).write_text('x')
    assert _open(_config(), str(workdir)).previous is None


def test_a_workdir_that_is_a_file_is_named(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(ValueError, match=r"workdir '.*file' is a file, not a directory"):
        workdirs.rerun_config(str(tmp_path / 'file'), _config(), {}, False)


@pytest.mark.parametrize('value, error', [(None, TypeError), (3, TypeError)], ids=['None', 'int'])
def test_a_workdir_that_is_not_a_path_is_refused(value, error):
    with pytest.raises(error, match='`workdir` must be a str or a path'):
        _open(_config(), value)


# Every way a command line rerun takes its base (issue 21), into a workdir of affine_digits.py
# run with --config.train.epochs=15, finished: (the recipe loaded, whether --config named it,
# the overrides) -> the training settings that change and whether it is finished, or the
# refusal.
BASES = {
    'no flags': (affine_digits, False, {}, {}, True),
    'training flag': (
        affine_digits,
        False,
        {'train.learning_rate': 1e-4},
        {'train.learning_rate': (0.003, 1e-4)},
        True,
    ),
    'more epochs': (affine_digits, False, {'train.epochs': 20}, {'train.epochs': (15, 20)}, False),
    'defining flag': (
        affine_digits,
        False,
        {'model.hidden_channels': 16},
        'model.hidden_channels: 64 in the workdir, 16 now',
        None,
    ),
    'the same recipe again': (affine_digits, True, {}, {}, True),
    'another recipe': (glow_digits, True, {}, "model.family: 'real_nvp' in the workdir", None),
    'the default recipe, not named': (realnvp_moons, False, {}, {}, True),
}


@pytest.mark.parametrize('name', list(BASES))
def test_a_command_line_rerun_starts_from_the_runs_own_config(name, tmp_path):
    recipe_module, recipe_given, overrides, changed, finished = BASES[name]
    workdir = _workdir(tmp_path, _config(**{'train.epochs': 15}), _metrics(15))
    before = _files(workdir)
    recipe = recipe_module.get_config()
    recipe.update_from_flattened_dict(overrides)  # As the --config flag holds it.
    config = None
    if isinstance(changed, str):
        with pytest.raises(workdirs.WorkdirMismatch, match=re.escape(changed)):
            config = workdirs.rerun_config(workdir, recipe, overrides, recipe_given)
            _open(config, workdir)
    else:
        config = workdirs.rerun_config(workdir, recipe, overrides, recipe_given)
        run = _open(config, workdir)
        assert (run.changed, run.finished) == (changed, finished)
        expected = _config(**{'train.epochs': 15, **overrides})
        assert schema.flatten(run.config) == schema.flatten(schema.check_config(expected))
    assert _files(workdir) == before


def test_a_command_line_run_in_a_new_workdir_is_its_recipe(tmp_path):
    recipe = realnvp_moons.get_config()
    assert workdirs.rerun_config(str(tmp_path / 'new'), recipe, {}, True) is recipe


def test_the_python_api_asks_for_the_config_it_passes(tmp_path):
    workdir = _workdir(tmp_path, _config(**{'train.epochs': 15}), _metrics(15))
    assert _open(_config(**{'train.epochs': 15}), workdir).finished
    run = _open(_config(), workdir)  # Epochs 60, as passed: it trains on.
    assert not run.finished and run.changed == {'train.epochs': (15, 60)}
    with pytest.raises(workdirs.WorkdirMismatch, match=r'model\.num_steps: 4 in the workdir'):
        _open(_config(**{'train.epochs': 15, 'model.num_steps': 2}), workdir)


_HOLD = (
    'import sys, time; from tfp_flows.run import lock\n'
    'with lock.hold(sys.argv[1]):\n'
    '    print("held", flush=True); time.sleep(600)\n'
)


def _holder(workdir):
    """A process that holds `workdir`'s lock until killed."""
    process = subprocess.Popen(
        [sys.executable, '-c', _HOLD, workdir], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == 'held\n'
    return process


def test_a_second_run_in_a_workdir_is_refused_naming_the_first(tmp_path):
    workdir = _workdir(tmp_path, _config(), _metrics(60))
    before = _files(workdir)
    holder = _holder(workdir)
    try:
        with pytest.raises(
            lock.WorkdirInUse,
            match=rf"workdir '{workdir}' is in use by a run still working there \(host "
            rf'{socket.gethostname()}, pid {holder.pid}\); wait for it to end',
        ):
            _open(_config(), workdir)
        command = processes.train_command(f'--workdir={workdir}')
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr.startswith(f"Error: workdir '{workdir}' is in use by a run still")
        assert f'pid {holder.pid})' in result.stderr
    finally:
        holder.kill()
        holder.wait()
    assert _open(_config(), workdir).finished  # A killed holder leaves nothing stuck,
    assert _files(workdir) == before  # and its lock file goes with the next holder.


def test_the_lock_is_reentrant_and_leaves_a_new_workdir_absent_if_nothing_was_written(tmp_path):
    workdir = str(tmp_path / 'new')
    with lock.hold(workdir):
        with lock.hold(workdir):  # The same process again: train.py, then the run.
            assert os.path.exists(os.path.join(workdir, lock.NAME))
    assert not os.path.exists(workdir)
    with lock.hold(workdir):
        workdirs.write_json(os.path.join(workdir, 'config.json'), {})
    assert os.listdir(workdir) == ['config.json']


def test_a_killed_holder_does_not_block(tmp_path):
    workdir = str(tmp_path / 'run')
    holder = _holder(workdir)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with lock.hold(workdir):
        pass


def test_the_workdir_module_imports_without_tensorflow():
    code = 'import sys, tfp_flows.run.workdir; assert "tensorflow" not in sys.modules'
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
