"""Two worker processes under `MultiWorkerMirroredStrategy` train as one device does.

The workers run on 127.0.0.1, each with its own `TF_CONFIG`, started as subprocesses (one
process can hold only one such strategy, made before TensorFlow runs anything).
"""

import json
import os

import keras
import numpy as np
from scripts import fit_worker, processes

from tfp_flows import data

TIMEOUT = 400  # Seconds; the runs take 1-2 minutes on 2 busy cores.


def _start_workers(started, name, command_of, **env):
    """Starts a cluster of two workers; `command_of(index)` is the command of each."""
    ports = processes.free_ports(2)
    return [
        started.start(f'{name}{i}', command_of(i), TF_CONFIG=processes.tf_config(ports, i), **env)
        for i in range(2)
    ]


def test_two_workers_train_as_one_device_and_train_py_writes_on_the_chief_only(tmp_path):
    # One test, so that pytest-xdist runs it in one process: the two clusters (a tiny fit and
    # `train.py` for an epoch) run side by side, as their steps wait on each other's workers.
    paths = [str(tmp_path / f'worker{i}.npz') for i in range(2)]
    temp_dir = tmp_path / 'temp'  # Where the other worker of train.py saves its checkpoints.
    temp_dir.mkdir()
    flags = (
        *processes.TINY_FLAGS,
        '--config.train.strategy=multi_worker',
        '--config.train.epochs=1',
        '--config.train.batch_size=256',  # 4 steps: each is a round trip between the workers.
    )
    with processes.Processes(tmp_path) as started:
        runs = _start_workers(
            started,
            'train',
            lambda i: processes.train_command(f'--workdir={tmp_path / f"run{i}"}', *flags),
            TMPDIR=str(temp_dir),
        )
        workers = _start_workers(
            started, 'worker', lambda i: processes.script_command('fit_worker.py', paths[i])
        )
        # The same script on one device, in this process while the workers run.
        fit_worker.main(str(tmp_path / 'one_device.npz'))
        outputs = processes.check_all(workers, TIMEOUT)
        run_outputs = processes.check_all(runs, TIMEOUT)
    _assert_the_workers_hold_the_one_device_variables(tmp_path, paths, outputs)
    _assert_train_py_wrote_on_the_chief_only(tmp_path, run_outputs)


def _assert_the_workers_hold_the_one_device_variables(tmp_path, paths, outputs):
    assert all('(2 replicas)' in output for output in outputs), outputs
    worker_0, worker_1 = (np.load(path) for path in paths)
    one_device = np.load(tmp_path / 'one_device.npz')
    assert sorted(worker_0.files) == sorted(one_device.files)
    num_variables = len(worker_0.files) // 2
    moved = 0
    for name in worker_0.files:  # init_i: after ActNorm's initialisation; final_i: trained.
        np.testing.assert_array_equal(worker_0[name], worker_1[name], err_msg=name)
        np.testing.assert_allclose(worker_0[name], one_device[name], rtol=2e-4, atol=2e-6)
    for i in range(num_variables):
        moved += not np.array_equal(worker_0[f'init_{i}'], worker_0[f'final_{i}'])
    assert moved >= num_variables // 2  # Training changed the trainable variables.


def _assert_train_py_wrote_on_the_chief_only(tmp_path, outputs):
    chief = tmp_path / 'run0'
    assert sorted(os.listdir(chief)) == [
        'checkpoints',
        'config.json',
        'logs',
        'metrics.json',
        'samples',
        'saved_model',
    ]
    assert not (tmp_path / 'run1').exists()
    assert not os.listdir(tmp_path / 'temp')
    with open(chief / 'metrics.json') as f:
        metrics = json.load(f)
    assert metrics['epochs_trained'] == 1
    for output in outputs:  # Evaluated together: every worker reports the chief's numbers.
        assert f'Test bits per dim: {metrics["test_bits_per_dim"]:.4f}' in output
        assert 'Initialising ActNorm' in output


def test_every_worker_initialises_from_the_same_batch():
    """What `train_and_evaluate` does on each worker gives the same first batch."""
    batches = []
    for unrelated_draws in (0, 5):
        keras.utils.set_random_seed(0)
        np.random.default_rng().random(unrelated_draws)
        dataset, _ = data.make_dataset(
            'digits', 'train', 64, shuffle=True, seed=0, drop_remainder=True
        )
        batches.append(next(iter(dataset)).numpy())
    np.testing.assert_array_equal(*batches)
