"""Whole runs: the files a run leaves, resuming, restoring, TFDS data, NaN stops, bad configs."""

import gc
import json
import logging
import math
import os
import re
import shutil

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import tfp_flows
from configs import default, glow_mnist, realnvp_moons
from tfp_flows import callbacks, experiment
from tfp_flows import workdir as workdirs


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


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    found = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


def test_a_run_writes_its_outputs_and_resumes_without_reinitialising(
    finished_run, tmp_path, monkeypatch
):
    workdir = _copy(finished_run, tmp_path)
    assert 0.5 < finished_run[1]['test_bits_per_dim'] < 5.0
    for name in ('config.json', 'metrics.json', 'saved_model/saved_model.pb', 'logs'):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'best'))
    assert os.listdir(os.path.join(workdir, 'samples')) == ['epoch_0001.png']
    with open(os.path.join(workdir, 'config.json')) as f:
        assert json.load(f)['data']['event_shape'] == [8, 8, 1]

    def fail(*args):
        raise AssertionError('a resumed run must not initialise ActNorm again')

    monkeypatch.setattr(experiment, 'initialize', fail)
    config = _tiny(default.get_config(), epochs=2)
    config.train.learning_rate = 1e-3
    expected = config.to_json()
    resumed = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert config.to_json() == expected  # The caller's config is not written into.
    assert resumed['epochs_trained'] == 2
    assert os.path.exists(os.path.join(workdir, 'samples', 'epoch_0002.png'))
    with open(os.path.join(workdir, 'config_history.json')) as f:
        assert json.load(f) == [
            {
                'epoch': 1,
                'changed': {'train.epochs': [1, 2], 'train.learning_rate': [0.003, 0.001]},
            }
        ]
    with open(os.path.join(workdir, 'config.json')) as f:
        assert json.load(f)['train']['learning_rate'] == 0.001


def test_a_finished_run_is_returned_as_it_is_and_nothing_changes(finished_run, tmp_path, caplog):
    workdir = _copy(finished_run, tmp_path)
    before = _files(workdir)
    config = _tiny(default.get_config())
    config.train.weight_decay = 0.01  # A training setting: it would apply only on training on.
    caplog.set_level(logging.INFO, logger='absl')
    assert experiment.train_and_evaluate(config, workdir, verbose=0) == finished_run[1]
    assert _files(workdir) == before
    assert re.search(
        r'holds a finished run: it reached epoch 1 of 1; test bits per dim \d\.\d{4}, '
        r'validation bits per dim \d\.\d{4}, best epoch 1 \(metrics\.json\)\. Nothing was '
        r'trained or changed\.\n  To train it on, rerun with --config\.train\.epochs=N, N > 1\.'
        r'\n  For a new run, pass a new --workdir\.\n  The changed settings '
        r'\(train\.weight_decay 0\.1 -> 0\.01\) apply only if it trains on\.',
        caplog.text,
    ), caplog.text


def test_evaluating_a_checkpoint_again_gives_the_same_figures(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    os.remove(os.path.join(workdir, 'metrics.json'))  # As if killed while writing outputs.
    again = experiment.train_and_evaluate(_tiny(default.get_config()), workdir, verbose=0)
    for key in ('test_bits_per_dim', 'validation_bits_per_dim', 'epochs_trained', 'best_epoch'):
        assert again[key] == finished_run[1][key], key


def test_tensorboard_has_bits_per_dim_and_samples(finished_run):
    logged = checks.read_tensorboard(os.path.join(finished_run[0], 'logs'))
    assert sorted(logged) == [
        'bits_per_dim/test',
        'bits_per_dim/train',
        'bits_per_dim/validation',
        'samples/temperature_0.7',
        'samples/temperature_1.0',
    ]
    assert logged['bits_per_dim/test'] == {1: pytest.approx(finished_run[1]['test_bits_per_dim'])}
    assert set(logged['bits_per_dim/validation']) == {1}
    assert logged['samples/temperature_0.7'][1].shape == (398, 398, 1)
    keras_tags = checks.read_tensorboard(os.path.join(finished_run[0], 'logs', 'train'))
    assert {'epoch_bits_per_dim', 'epoch_grad_norm', 'epoch_learning_rate'} <= set(keras_tags)


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


def test_restore_flow_rebuilds_the_trained_model(finished_run, tmp_path, caplog):
    workdir = _copy(finished_run, tmp_path)
    caplog.set_level(logging.WARNING)
    flow = tfp_flows.experiment.restore_flow(workdir)  # As the README calls it.
    gc.collect()  # TF warns about unrestored values when the restore status is deleted.
    assert 'could not be found' not in caplog.text  # The optimizer's slots are not wanted.
    expected = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    x = tf.random.stateless_uniform([4, 8, 8, 1], seed=[1, 2])
    np.testing.assert_allclose(flow.log_prob(x), expected.log_prob(x=x)['log_prob'], rtol=1e-5)
    latest = experiment.restore_flow(workdir, 'latest')  # Epoch 1 is both best and latest.
    np.testing.assert_allclose(latest.log_prob(x), flow.log_prob(x), rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"`which` must be one of \('best', 'latest'\); got 'newest'"
    ):
        experiment.restore_flow(workdir, 'newest')

    with open(os.path.join(workdir, 'config.json')) as f:
        config = json.load(f)
    config['model']['hidden_channels'] = 16
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match='does not match the model built from the config'):
        experiment.restore_flow(workdir)


def test_a_workdir_of_another_model_is_refused(finished_run, tmp_path):
    workdir = _copy(finished_run, tmp_path)
    before = _files(workdir)
    config = _tiny(default.get_config())
    config.model.hidden_channels = 16
    config.data.image_size = 16
    with pytest.raises(
        ValueError,
        match=r'holds a run of another model or data \(data\.image_size: None in the workdir, '
        r'16 now; model\.hidden_channels: 8 in the workdir, 16 now\)',
    ):
        experiment.train_and_evaluate(config, workdir, verbose=0)
    assert _files(workdir) == before


def test_moons_run_writes_the_density_picture(tmp_path):
    config = _tiny(realnvp_moons.get_config())
    config.model.num_steps = 2
    config.data.name = 'moons'
    workdir = str(tmp_path / 'moons')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert math.isfinite(metrics['test_nats_per_dim'])
    picture = tf.io.decode_png(tf.io.read_file(os.path.join(workdir, 'density.png')))
    assert picture.shape == (420, 1000, 3)
    listed = [os.path.relpath(path, workdir) for path, _ in workdirs.written_outputs(workdir)]
    assert listed == [  # What train.py prints at the end: no samples folder for 2-D data.
        'config.json',
        'metrics.json',
        os.path.join('checkpoints', 'latest'),
        os.path.join('checkpoints', 'best'),
        'density.png',
        'saved_model',
        'logs',
    ]


def test_tfds_recipe_runs_on_mock_data(tmp_path):
    config = _tiny(glow_mnist.get_config())
    config.train.batch_size = 16
    with tfds.testing.mock_data(num_examples=32):
        metrics = experiment.train_and_evaluate(config, str(tmp_path / 'mnist'), verbose=0)
    assert math.isfinite(metrics['test_bits_per_dim'])


def _poison_training_data(monkeypatch, after_batches):
    """Makes every training batch after the first `after_batches` NaN."""
    real_make_dataset = experiment.data.make_dataset

    def poisoned(name, split, batch_size, **kwargs):
        dataset, info = real_make_dataset(name, split, batch_size, **kwargs)
        if split != 'train':
            return dataset, info
        counter = tf.Variable(0, dtype=tf.int64)

        def poison(x):
            counter.assign_add(1)
            return tf.cond(counter > after_batches, lambda: x * np.nan, lambda: x)

        return dataset.map(poison), info

    monkeypatch.setattr(experiment.data, 'make_dataset', poisoned)


def test_a_nan_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path, monkeypatch):
    _poison_training_data(monkeypatch, after_batches=3)  # The first is ActNorm's batch.
    workdir = tmp_path / 'nan'
    with pytest.raises(
        experiment.TrainingDiverged,
        match=r'at epoch 1, batch \d+\. No epoch finished, so there is no checkpoint to resume '
        r'from, and the same command would diverge again .* Rerun it with a lower '
        r'--config\.train\.learning_rate \(now 0\.003\), more --config\.train\.warmup_steps '
        r'\(now 5\)',
    ):
        experiment.train_and_evaluate(
            _tiny(default.get_config(), epochs=2), str(workdir), verbose=0
        )
    assert not (workdir / 'checkpoints' / 'latest' / 'checkpoint').exists()


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    _poison_training_data(monkeypatch, after_batches=25)
    workdir = str(tmp_path / 'nan')
    with pytest.raises(
        experiment.TrainingDiverged,
        match=r'epoch 2, batch \d+\. The last good checkpoint is \S+/ckpt-1\. The seed fixes '
        r'the data of every epoch, .* rerun it with a lower --config\.train\.learning_rate '
        r'\(now 0\.003\)',
    ):
        experiment.train_and_evaluate(_tiny(default.get_config(), epochs=3), workdir, verbose=0)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    assert latest.endswith('ckpt-1')
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        if reader.get_variable_to_dtype_map()[name].is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name


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
