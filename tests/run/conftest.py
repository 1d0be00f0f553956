"""Runs trained once per test session, shared by the test modules and the xdist workers."""

import fcntl
import json
import os
import shutil
import subprocess

import pytest
from scripts import processes


@pytest.fixture(scope='session')
def built_once(tmp_path_factory):
    """`built_once(name, build)`: (path, what `build(path)` returned, through JSON).

    `build` fills the new directory `path` (a run's workdir) once per test session: the first
    xdist worker to ask builds it under a file lock, the others wait for it. Tests only read
    it; a test that changes a run works on a copy.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        root = root.parent  # The session's directory, shared by its workers.

    def get(name, build):
        path, result = root / name, root / f'{name}.json'
        with open(root / f'{name}.lock', 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not result.exists():
                shutil.rmtree(path, ignore_errors=True)  # What a failed build left.
                result.write_text(json.dumps(build(path)))
        return path, json.loads(result.read_text())

    return get


def _tiny(config, epochs=1):
    """`config` with a model small enough to train an epoch of digits in seconds."""
    config.model.num_levels = 2
    config.model.num_steps = 1
    config.model.hidden_channels = 8
    config.dequantizer.update(num_steps=2, hidden_channels=4, context_channels=2)
    config.eval.iw_samples = 0
    config.train.epochs = epochs
    config.train.warmup_steps = 5
    config.train.sample_every_epochs = 1
    return config


def _digits(epochs=1):
    """`affine_digits` (variational dequantization) made tiny, with EMA weights and the
    importance-weighted figures."""
    from configs import affine_digits

    config = _tiny(affine_digits.get_config(), epochs)
    config.train.ema_momentum = 0.9
    config.eval.iw_samples = 3
    return config


@pytest.fixture(scope='session')
def tiny():
    """`tiny(config, epochs=1)`: `config` with a tiny model, `epochs`, no importance weighting."""
    return _tiny


@pytest.fixture(scope='session')
def digits_config():
    """`digits_config(epochs=1)`: the config of `digits_run`, for `epochs`."""
    return _digits


@pytest.fixture(scope='session')
def trained_once(built_once):
    """`trained_once(name, config)`: (workdir, metrics) of `train_and_evaluate(config)`, run
    once per session (`built_once`)."""
    from tfp_flows.run import experiment

    def get(name, config):
        path, metrics = built_once(
            name, lambda path: experiment.train_and_evaluate(config, str(path), verbose=0)
        )
        return str(path), metrics

    return get


@pytest.fixture(scope='session')
def digits_run(trained_once):
    """(workdir, metrics) of a one-epoch run of `digits_config()`."""
    return trained_once('digits', _digits())


@pytest.fixture(scope='session')
def moons_run(trained_once):
    """(workdir, metrics) of a one-epoch run of the two-moons recipe, tiny, not exported."""
    from configs import realnvp_moons

    config = _tiny(realnvp_moons.get_config())
    config.model.num_steps = 2
    config.train.export = False  # Its tests read the picture; the script run's lists an export.
    return trained_once('moons', config)


@pytest.fixture(scope='session')
def script_run(built_once):
    """(workdir, {'returncode', 'stdout', 'stderr'}) of `python train.py
    processes.SCRIPT_FLAGS`, run once per session (`built_once`) as a user runs it:
    test_train_script.py reads what it printed, test_experiment.py the run, and
    test_kill_resume.py takes it as its unbroken run."""

    def build(workdir):
        result = subprocess.run(
            processes.train_command(f'--workdir={workdir}', *processes.SCRIPT_FLAGS),
            cwd=processes.ROOT,
            env=processes.user_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        return {'returncode': result.returncode, 'stdout': result.stdout, 'stderr': result.stderr}

    workdir, result = built_once('train_script', build)
    assert result['returncode'] == 0, result['stderr'][-3000:]
    return workdir, result
