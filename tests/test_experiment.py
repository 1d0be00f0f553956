"""Whole runs: the files a run leaves, resuming, restoring, TFDS data, NaN stops, bad configs."""

import json
import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from configs import default, glow_mnist, realnvp_moons
from tfp_flows import callbacks, experiment


def _tiny(config, epochs=1):
    config.model.num_levels = 2
    config.model.num_steps = 1
    config.model.hidden_channels = 8
    config.train.epochs = epochs
    config.train.warmup_steps = 5
    config.train.sample_every_epochs = 1
    return config


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    """A one-epoch digits run: (workdir, metrics). Tests that change it work on a copy."""
    workdir = str(tmp_path_factory.mktemp('finished') / 'run')
    return workdir, experiment.train_and_evaluate(_tiny(default.get_config()), workdir, verbose=0)


def _copy(finished_run, tmp_path):
    workdir = str(tmp_path / 'run')
    shutil.copytree(finished_run[0], workdir)
    return workdir


def test_a_run_writes_its_outputs_and_resumes_without_reinitialising(
    finished_run, tmp_path, monkeypatch
):
    workdir = _copy(finished_run, tmp_path)
    assert 0.5 < finished_run[1]['test_bits_per_dim'] < 5.0
    for name in ('config.json', 'metrics.json', 'saved_model/saved_model.pb', 'logs'):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'best'))
    assert sorted(os.listdir(os.path.join(workdir, 'samples'))) == [
        'epoch_0001_t0.7.png',
        'epoch_0001_t1.0.png',
    ]
    with open(os.path.join(workdir, 'config.json')) as f:
        assert json.load(f)['data']['event_shape'] == [8, 8, 1]

    def fail(*args):
        raise AssertionError('a resumed run must not initialise ActNorm again')

    monkeypatch.setattr(experiment, 'initialize', fail)
    resumed = experiment.train_and_evaluate(
        _tiny(default.get_config(), epochs=2), workdir, verbose=0
    )
    assert resumed['epochs_trained'] == 2
    assert os.path.exists(os.path.join(workdir, 'samples', 'epoch_0002_t1.0.png'))


def test_metrics_tell_the_epochs_trained_from_the_best_epoch(tmp_path, monkeypatch):
    class WorseEveryEpoch(callbacks.CheckpointCallback):
        def on_epoch_end(self, epoch, logs=None):  # Validation gets worse after epoch 1.
            super().on_epoch_end(epoch, {**(logs or {}), 'val_bits_per_dim': float(epoch)})

    monkeypatch.setattr(callbacks, 'CheckpointCallback', WorseEveryEpoch)
    workdir = str(tmp_path / 'run')
    metrics = experiment.train_and_evaluate(
        _tiny(default.get_config(), epochs=2), workdir, verbose=0
    )
    assert (metrics['epochs_trained'], metrics['best_epoch']) == (2, 1)
    assert metrics['best_checkpoint'].endswith('ckpt-1')


def test_restore_flow_rebuilds_the_trained_model(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    flow = experiment.restore_flow(workdir)
    expected = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    x = tf.random.stateless_uniform([4, 8, 8, 1], seed=[1, 2])
    np.testing.assert_allclose(flow.log_prob(x), expected.log_prob(x=x)['log_prob'], rtol=1e-5)

    with open(os.path.join(workdir, 'config.json')) as f:
        config = json.load(f)
    config['model']['hidden_channels'] = 16
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match='does not match the model built from the config'):
        experiment.restore_flow(workdir)


def test_a_workdir_of_another_model_is_refused(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    config = _tiny(default.get_config())
    config.model.hidden_channels = 16
    with pytest.raises(ValueError, match='holds a run of another model'):
        experiment.train_and_evaluate(config, workdir, verbose=0)


def test_moons_run_writes_the_density_picture(tmp_path):
    config = _tiny(realnvp_moons.get_config())
    config.model.num_steps = 2
    config.data.name = 'moons'
    workdir = str(tmp_path / 'moons')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert math.isfinite(metrics['test_nats_per_dim'])
    picture = tf.io.decode_png(tf.io.read_file(os.path.join(workdir, 'density.png')))
    assert picture.shape == (200, 404, 1)


def test_tfds_recipe_runs_on_mock_data(tmp_path):
    config = _tiny(glow_mnist.get_config())
    config.train.batch_size = 16
    with tfds.testing.mock_data(num_examples=32):
        metrics = experiment.train_and_evaluate(config, str(tmp_path / 'mnist'), verbose=0)
    assert math.isfinite(metrics['test_bits_per_dim'])


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_make_dataset = experiment.data.make_dataset

    def poisoned(name, split, batch_size, **kwargs):
        dataset, info = real_make_dataset(name, split, batch_size, **kwargs)
        if split != 'train':
            return dataset, info
        counter = tf.Variable(0, dtype=tf.int64)

        def poison(x):
            counter.assign_add(1)
            return tf.cond(counter > 25, lambda: x * np.nan, lambda: x)

        return dataset.map(poison), info

    monkeypatch.setattr(experiment.data, 'make_dataset', poisoned)
    workdir = str(tmp_path / 'nan')
    with pytest.raises(experiment.TrainingDiverged, match=r'epoch 2, batch \d+.*learning_rate'):
        experiment.train_and_evaluate(_tiny(default.get_config(), epochs=3), workdir, verbose=0)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    assert latest.endswith('ckpt-1')
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        if reader.get_variable_to_dtype_map()[name].is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name


@pytest.mark.parametrize(
    'path, value, message',
    [
        ('model.num_steps', -1, r'config.model.num_steps must be a positive number; got -1'),
        ('model.num_levels', 0, r'config.model.num_levels must be a positive number; got 0'),
        ('model.hidden_channels', 0, r'hidden_channels must be a positive number; got 0'),
        ('train.batch_size', 0, r'config.train.batch_size must be a positive number; got 0'),
        ('model.family', 'maf', r"config.model.family must be 'glow' or 'real_nvp'; got 'maf'"),
        ('train.strategy', 'tpu', r"config.train.strategy must be one of .*; got 'tpu'"),
    ],
)
def test_bad_config_values_are_named(path, value, message):
    config = default.get_config()
    section, key = path.split('.')
    config[section][key] = value
    with pytest.raises(ValueError, match=message):
        experiment.check_config(config)


def test_an_unwritable_workdir_is_named(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    with pytest.raises(ValueError, match='Cannot write to workdir'):
        experiment.train_and_evaluate(_tiny(default.get_config()), str(blocker / 'run'), verbose=0)


def test_a_trained_model_round_trips_and_its_log_det_matches_autodiff(finished_run):
    flow = experiment.restore_flow(finished_run[0])
    x = tf.random.stateless_uniform([4, 8, 8, 1], seed=[3, 4])
    z = flow.bijector.inverse(x)
    np.testing.assert_allclose(flow.bijector.forward(tf.identity(z)), x, atol=1e-5)
    flat = tf.reshape(x, [4, -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        latent = tf.reshape(flow.bijector.inverse(tf.reshape(flat, x.shape)), [4, -1])
    _, expected = tf.linalg.slogdet(tf.cast(tape.batch_jacobian(latent, flat), tf.float64))
    actual = flow.bijector.inverse_log_det_jacobian(x, event_ndims=3)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-3)
