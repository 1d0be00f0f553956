"""`train.py` killed or interrupted resumes exactly where it stopped when run again.

The module runs the real command, of the class-conditional Glow recipe with dropout, EMA weights
and accumulation (beyond the flow and optimizer, a resume must restore the averages and draw
each step's dropout masks, noise and micro-batches as before): its unbroken run of 4 epochs is
tests/run/conftest.py's `script_run`; beside it one run is killed with SIGKILL once its first
checkpoint is written, run again and interrupted with SIGINT (Ctrl-C) once its second is
written, its newest checkpoint then damaged (a lost data file), and run again to the end, from
the older checkpoint. Epoch e's data is a function of (seed, e) and the checkpoints hold the
flow and optimizer state, so the resumed run ends with bitwise the variables and figures of the
unbroken one. The unbroken run is a process of its own too: in a test process, after other
tests, its figures once differed in the last bit.
"""

import json
import os
import re
import shlex
import shutil
import signal
import time

import numpy as np
import pytest
import tensorflow as tf
from scripts import processes

from tfp_flows.run import experiment

EPOCHS = processes.SCRIPT_EPOCHS  # Two after the Ctrl-C at epoch 2: it never comes after the end.
TIMEOUT = 400  # Seconds; each run takes about a minute on 2 busy cores.
# The unbroken run's flags (`script_run`), without the export, which comes after the compared
# checkpoints and figures.
FLAGS = (*processes.SCRIPT_FLAGS, '--config.train.export=False')


def _saved_epoch(workdir):
    """The epoch of the newest complete checkpoint of `workdir` (0 without one)."""
    path = tf.train.latest_checkpoint(str(workdir / 'checkpoints' / 'latest'))
    return int(path.rsplit('-', 1)[1]) if path else 0  # Numbered by epoch.


def _signal_after_checkpoint(process, workdir, epoch, signum, timeout):
    """Sends `signum` to `process` once the checkpoint of `epoch` is complete."""
    deadline = time.monotonic() + timeout
    while _saved_epoch(workdir) < epoch:
        assert process.popen.poll() is None, f'it ended before epoch {epoch}.\n{process.report()}'
        assert time.monotonic() < deadline, (
            f'no epoch {epoch} after {timeout} s.\n{process.report()}'
        )
        time.sleep(0.05)
    os.kill(process.popen.pid, signum)
    process.wait(60)


def _kill_and_resume(tmp_path):
    """Runs the broken runs of the module docstring in `tmp_path`; returns what they left."""
    tmp_path.mkdir()
    resumed_dir = tmp_path / 'resumed'
    command = processes.train_command(f'--workdir={resumed_dir}', *FLAGS)
    with processes.Processes(tmp_path) as started:
        killed = started.start('killed', command)
        _signal_after_checkpoint(killed, resumed_dir, 1, signal.SIGKILL, TIMEOUT)
        interrupted = started.start('interrupted', command)
        _signal_after_checkpoint(interrupted, resumed_dir, 2, signal.SIGINT, TIMEOUT)
        damaged = tf.train.latest_checkpoint(str(resumed_dir / 'checkpoints' / 'latest'))
        os.remove(f'{damaged}.data-00000-of-00001')
        resumed = started.start('resumed', command)
        resumed.check(TIMEOUT)
    ran = {
        p.name: {'returncode': p.popen.returncode, 'stdout': p.stdout, 'stderr': p.stderr}
        for p in (killed, interrupted, resumed)
    }
    return {**ran, 'command': command, 'damaged': damaged}


@pytest.fixture(scope='module')
def runs(built_once, script_run):
    """{'killed', 'interrupted', 'resumed'}: {'returncode', 'stdout', 'stderr'} of each run;
    'command': theirs; 'damaged': the checkpoint damaged before the last run; 'unbroken_dir',
    'resumed_dir': the workdirs, which the tests only read."""
    path, ran = built_once('kill_resume', _kill_and_resume)
    return {**ran, 'unbroken_dir': script_run[0], 'resumed_dir': path / 'resumed'}


def test_ctrl_c_says_where_the_run_resumes_without_a_traceback(runs):
    interrupted = runs['interrupted']
    assert interrupted['returncode'] == 130
    assert 'Traceback' not in interrupted['stderr']
    match = re.search(
        r'^Interrupted\. Epoch (\d) is the last finished one, saved in (\S+); the same command '
        r'resumes from it:\n  (.*)$',
        interrupted['stderr'],
        re.MULTILINE,
    )
    assert match, interrupted['stderr']
    assert int(match[1]) >= 2 and match[2].endswith(f'ckpt-{match[1]}')
    assert shlex.split(match[3])[1:] == runs['command'][1:]


def test_a_killed_interrupted_and_damaged_run_ends_bitwise_as_an_unbroken_one(runs):
    resumed_dir, resumed = runs['resumed_dir'], runs['resumed']
    # Killed by the signal, not ended on its own between its checkpoint and the kill.
    assert runs['killed']['returncode'] == -signal.SIGKILL, runs['killed']['stderr']
    assert 'Initialising ActNorm' in runs['killed']['stdout']
    for name in ('interrupted', 'resumed'):
        output = runs[name]['stdout']
        assert re.search(r'^Resuming from \S+/ckpt-(\d) \(epoch \1\)\.$', output, re.M), output
        assert 'Initialising ActNorm' not in output
    # The damaged newest checkpoint is skipped for the older one, with a warning.
    epoch = int(runs['damaged'].rsplit('-', 1)[1])
    assert f'/ckpt-{epoch - 1} (epoch {epoch - 1}).' in resumed['stdout'], resumed['stdout']
    assert re.search(
        rf'^WARNING: Checkpoint {re.escape(runs["damaged"])} is damaged or incomplete: (?s:.*)'
        rf'Skipping it for the older \S+/ckpt-{epoch - 1}\.$',
        resumed['stderr'],
        re.M,
    ), resumed['stderr']
    with open(resumed_dir / 'metrics.json') as f:
        metrics = json.load(f)
    with open(runs['unbroken_dir'] / 'metrics.json') as f:
        unbroken = json.load(f)
    for key in ('test_bits_per_dim', 'validation_bits_per_dim', 'epochs_trained', 'best_epoch'):
        assert metrics[key] == unbroken[key], key
    readers = [
        tf.train.load_checkpoint(str(workdir / 'checkpoints' / 'latest' / f'ckpt-{EPOCHS}'))
        for workdir in (resumed_dir, runs['unbroken_dir'])
    ]
    names = readers[0].get_variable_to_shape_map()
    assert names == readers[1].get_variable_to_shape_map()
    assert any('optimizer' in name for name in names)
    for name in names:  # Not the object graph, nor the count of saves (best ones too).
        if name not in ('_CHECKPOINTABLE_OBJECT_GRAPH', 'save_counter/.ATTRIBUTES/VARIABLE_VALUE'):
            np.testing.assert_array_equal(*(r.get_tensor(name) for r in readers), err_msg=name)


def test_when_no_latest_checkpoint_loads_the_error_names_each_and_the_best(runs, tmp_path):
    workdir = tmp_path / 'run'
    shutil.copytree(runs['resumed_dir'], workdir)
    latest = workdir / 'checkpoints' / 'latest'
    for path in tf.train.get_checkpoint_state(latest).all_model_checkpoint_paths:
        os.remove(f'{path}.data-00000-of-00001')
    os.remove(workdir / 'metrics.json')  # The outputs of a run that was not finished.
    message = rf'(?s)ckpt-{EPOCHS} is damaged.*ckpt-{EPOCHS - 1} is damaged.*best checkpoint'
    with pytest.raises(ValueError, match=message):
        experiment.train_and_evaluate(processes.default_config(*FLAGS), str(workdir), verbose=0)
