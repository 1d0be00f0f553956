"""Two `train.py` workers under `MultiWorkerMirroredStrategy` train as one device does.

The workers run on 127.0.0.1, each with its own `TF_CONFIG`, started as subprocesses (one
process can hold only one such strategy, made before TensorFlow runs anything); the same run
on one device trains in the test's own process meanwhile.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from scripts import processes

from tfp_flows import data
from tfp_flows.run import experiment

TIMEOUT = 400  # Seconds; the runs take 1-2 minutes on 2 busy cores.
FLAGS = (
    *processes.TINY_FLAGS,
    '--config.train.epochs=1',
    '--config.train.batch_size=256',  # 4 steps: each is a round trip between the workers.
    '--config.train.clip_norm=0.5',  # Under the global gradient's norm (1.3 here): it clips.
)  # The default recipe's dropout: each worker applies its rows' part of one device's masks.


def test_two_workers_train_as_one_device_and_train_py_writes_on_the_chief_only(tmp_path):
    temp_dir = tmp_path / 'temp'  # Where the other worker of train.py saves its checkpoints.
    temp_dir.mkdir()
    ports = processes.free_ports(2)
    flags = (*FLAGS, '--config.train.strategy=multi_worker')
    with processes.Processes(tmp_path) as started:
        workers = [
            started.start(
                f'train{i}',
                processes.train_command(f'--workdir={tmp_path / f"run{i}"}', *flags),
                TF_CONFIG=processes.tf_config(ports, i),
                TMPDIR=str(temp_dir),
            )
            for i in range(2)
        ]
        # The same run on one device (the default strategy), in this process while the
        # workers train.
        config = processes.default_config(*FLAGS)
        config.train.export = False  # Its checkpoint is compared; the chief's export listed.
        one_device = experiment.train_and_evaluate(config, str(tmp_path / 'one'), verbose=0)
        outputs = processes.check_all(workers, TIMEOUT)
    metrics = _assert_train_py_wrote_on_the_chief_only(tmp_path, outputs)
    _assert_the_chief_holds_the_one_device_variables(tmp_path, metrics, one_device)


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
    assert 'This worker wrote nothing' in outputs[1]
    return metrics


def _assert_the_chief_holds_the_one_device_variables(tmp_path, metrics, one_device):
    # Each step's gradient is the all-reduced one of both workers' halves of the global
    # batch, so a worker that initialised or stepped otherwise would move the chief's values.
    readers = [
        tf.train.load_checkpoint(str(tmp_path / run / 'checkpoints' / 'latest' / 'ckpt-1'))
        for run in ('run0', 'one')
    ]
    names = readers[0].get_variable_to_shape_map()
    assert names == readers[1].get_variable_to_shape_map()
    steps = 'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'
    assert readers[0].get_tensor(steps) == 4  # An epoch of 4 global batches.
    for name in names:
        if name not in ('_CHECKPOINTABLE_OBJECT_GRAPH', 'save_counter/.ATTRIBUTES/VARIABLE_VALUE'):
            chief, one = (np.asarray(reader.get_tensor(name)) for reader in readers)
            if chief.dtype.kind == 'f':
                np.testing.assert_allclose(chief, one, rtol=2e-4, atol=2e-6, err_msg=name)
            else:  # Steps, the ActNorm flags, the bijectors' configs (bytes).
                np.testing.assert_array_equal(chief, one, err_msg=name)
    for key in ('test_bits_per_dim', 'validation_bits_per_dim'):
        np.testing.assert_allclose(metrics[key], one_device[key], rtol=1e-5, err_msg=key)


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
