"""`train.py` killed with SIGKILL resumes from its last checkpoint when run again.

The module runs the real command three times: an unbroken run, and a run killed as soon as
it has written its second checkpoint, then run again to the end (started while the unbroken
one runs). A damaged newest checkpoint is then skipped for the older one.
"""

import json
import os
import re
import shutil
import signal
import time

import pytest
import tensorflow as tf
from scripts import processes

from configs import default
from tfp_flows import experiment

EPOCHS = 3
TIMEOUT = 400  # Seconds; each run takes about a minute on 2 busy cores.
FLAGS = (
    *processes.TINY_FLAGS,
    f'--config.train.epochs={EPOCHS}',
    '--config.train.strategy=one_device',
)


def _config():
    """The config of `FLAGS`, for a run in this process."""
    config = default.get_config()
    for flag in FLAGS:
        path, value = flag.removeprefix('--config.').split('=')
        section, key = path.split('.')
        config[section][key] = type(config[section][key])(value)
    return config


def _kill_after_checkpoint(process, index, timeout):
    """Kills `process` with SIGKILL once the file `index` exists."""
    deadline = time.monotonic() + timeout
    while not index.exists():
        assert process.popen.poll() is None, f'it ended before {index}.\n{process.report()}'
        assert time.monotonic() < deadline, f'no {index} after {timeout} s.\n{process.report()}'
        time.sleep(0.05)
    os.kill(process.popen.pid, signal.SIGKILL)
    assert process.wait(30).popen.returncode == -signal.SIGKILL


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """{'unbroken', 'killed', 'resumed'}: (workdir, stdout) of each run."""
    tmp_path = tmp_path_factory.mktemp('kill_resume')
    unbroken_dir, killed_dir = tmp_path / 'unbroken', tmp_path / 'killed'
    with processes.Processes(tmp_path) as started:
        unbroken = started.start(
            'unbroken', processes.train_command(f'--workdir={unbroken_dir}', *FLAGS)
        )
        killed = started.start('killed', processes.train_command(f'--workdir={killed_dir}', *FLAGS))
        index = killed_dir / 'checkpoints' / 'latest' / 'ckpt-2.index'
        _kill_after_checkpoint(killed, index, TIMEOUT)
        resumed = started.start(
            'resumed', processes.train_command(f'--workdir={killed_dir}', *FLAGS)
        )
        processes.check_all([unbroken, resumed], TIMEOUT)
    return {
        'unbroken': (unbroken_dir, unbroken.stdout),
        'killed': (killed_dir, killed.stdout),
        'resumed': (killed_dir, resumed.stdout),
    }


def _metrics(workdir):
    with open(workdir / 'metrics.json') as f:
        return json.load(f)


def test_a_killed_run_resumes_and_ends_as_good_as_an_unbroken_one(runs):
    killed_dir, resumed_output = runs['resumed']
    # TF points the `checkpoint` file at ckpt-2 just after writing it: the kill may come first.
    resumed = re.search(r'Resuming from (\S+)/ckpt-(\d) \(epoch (\d)\)\.', resumed_output)
    assert resumed, resumed_output
    assert resumed[1] == str(killed_dir / 'checkpoints' / 'latest')
    assert resumed[2] == resumed[3] and resumed[2] in '12'
    assert 'Initialising ActNorm' in runs['killed'][1]
    assert 'Initialising ActNorm' not in resumed_output
    metrics, unbroken = _metrics(killed_dir), _metrics(runs['unbroken'][0])
    assert metrics['epochs_trained'] == unbroken['epochs_trained'] == EPOCHS
    assert metrics['test_bits_per_dim'] < unbroken['test_bits_per_dim'] + 0.05


def test_a_damaged_newest_checkpoint_is_skipped_for_the_older_one(runs, tmp_path, capsys):
    workdir = tmp_path / 'run'
    shutil.copytree(runs['resumed'][0], workdir)
    latest = workdir / 'checkpoints' / 'latest'
    newest = tf.train.latest_checkpoint(latest)
    assert newest.endswith(f'ckpt-{EPOCHS}')
    os.remove(f'{newest}.data-00000-of-00001')

    metrics = experiment.train_and_evaluate(_config(), str(workdir), verbose=0)
    output = capsys.readouterr().out
    assert re.search(
        rf'Checkpoint \S+/ckpt-{EPOCHS} is damaged or incomplete: .*No such file or directory.* '
        rf'Skipping it for the older \S+/ckpt-{EPOCHS - 1}\.',
        output,
    ), output
    assert f'ckpt-{EPOCHS - 1} (epoch {EPOCHS - 1}).' in output
    assert 'Initialising ActNorm' not in output
    assert metrics['epochs_trained'] == EPOCHS
    tf.train.load_checkpoint(newest)  # Written again, whole.

    for path in tf.train.get_checkpoint_state(latest).all_model_checkpoint_paths:
        os.remove(f'{path}.data-00000-of-00001')
    with pytest.raises(ValueError, match=rf'ckpt-{EPOCHS} is damaged or incomplete'):
        experiment.train_and_evaluate(_config(), str(workdir), verbose=0)
