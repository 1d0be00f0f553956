"""The run's callbacks: checkpoints, NaN stops, pictures and their TensorBoard images."""

import os
import types

import checks
import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from tfp_flows.run import callbacks
from tfp_flows.tools import pictures as images


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(path)).numpy()


def test_sample_pictures_write_one_labelled_figure_and_a_grid_per_temperature(tmp_path):
    flow = tfp_flows.glow(event_shape=(8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    tfp_flows.initialize(flow, tf.random.stateless_uniform([32, 8, 8, 1], seed=[0, 1]))
    log_dir = str(tmp_path / 'logs')
    pictures = callbacks.SamplePictures(
        flow, str(tmp_path / 'samples'), 17, (0.7, 1.0), every_epochs=2, log_dir=log_dir, seed=3
    )
    for epoch in range(6):
        pictures.on_epoch_end(epoch, dict(loss=np.nan if epoch == 5 else 2.0))
    # Every second epoch, and none of an epoch whose loss is NaN (nothing is saved of it).
    assert sorted(os.listdir(tmp_path / 'samples')) == ['epoch_0002.png', 'epoch_0004.png']
    figure, grids = images.sample_figure(flow, 17, (0.7, 1.0), seed=3)
    np.testing.assert_array_equal(_read_png(str(tmp_path / 'samples' / 'epoch_0004.png')), figure)
    logged = checks.read_tensorboard(log_dir)
    assert sorted(logged) == ['samples/temperature_0.7', 'samples/temperature_1.0']
    for grid, tag in zip(grids, sorted(logged), strict=True):
        assert sorted(logged[tag]) == [1, 3]  # Keras' epoch index, as its scalars' steps.
        np.testing.assert_array_equal(logged[tag][3], grid)
        assert grid.shape == (398, 398, 1)


def test_density_pictures_write_the_png_and_a_tensorboard_image(tmp_path):
    flow = tfp_flows.real_nvp(event_shape=(2,), num_steps=2, hidden_channels=8)
    points = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    path, log_dir = str(tmp_path / 'density.png'), str(tmp_path / 'logs')
    pictures = callbacks.DensityPictures(flow, points, path, log_dir=log_dir)
    pictures.on_epoch_end(0)
    picture = _read_png(path)
    assert picture.shape == (420, 1000, 3)
    logged = checks.read_tensorboard(log_dir)
    assert list(logged) == ['density']
    np.testing.assert_array_equal(logged['density'][0], picture)


def test_the_test_figure_sits_on_kerass_curves_at_the_tested_epoch(tmp_path):
    log_dir = str(tmp_path / 'logs')
    callbacks.log_test_metric(log_dir, 'bits_per_dim', 2.25, epochs_trained=2)
    assert checks.read_tensorboard(os.path.join(log_dir, 'test')) == {
        'epoch_bits_per_dim': {1: 2.25}
    }


def test_checkpoints_keep_the_best_by_the_validation_loss(tmp_path):
    epoch = tf.Variable(0, dtype=tf.int64)
    best_value = tf.Variable(np.inf, dtype=tf.float64)
    checkpoint = tf.train.Checkpoint(epoch=epoch, best_value=best_value)
    latest = tf.train.CheckpointManager(checkpoint, str(tmp_path / 'latest'), max_to_keep=3)
    best = tf.train.CheckpointManager(checkpoint, str(tmp_path / 'best'), max_to_keep=1)
    saved = []
    saver = callbacks.CheckpointCallback(
        latest, best, epoch, best_value, lambda: saved.append(int(epoch.numpy()))
    )
    for i, (train, validation) in enumerate([(3.0, 2.0), (1.0, 2.5), (np.nan, 1.0)]):
        saver.on_epoch_end(i, dict(loss=train, val_loss=validation))
    assert float(best_value.numpy()) == 2.0  # Not 1.0 (training), not 1.0 (a NaN epoch).
    assert best.latest_checkpoint.endswith('ckpt-1')
    assert latest.latest_checkpoint.endswith('ckpt-2')
    assert saved == [1] and int(epoch.numpy()) == 2  # `first_save` runs once.


def test_terminate_on_nan_is_kerass_and_records_where():
    stop = callbacks.TerminateOnNaN()
    assert isinstance(stop, keras.callbacks.TerminateOnNaN)
    stop.set_model(types.SimpleNamespace(stop_training=False))
    stop.on_epoch_begin(1)
    stop.on_batch_end(3, dict(loss=2.0, bits_per_dim=np.nan))  # Keras reads the loss alone.
    assert not stop.model.stop_training and stop.failed_at is None
    stop.on_batch_end(4, dict(loss=np.inf))
    stop.on_batch_end(5, dict(loss=np.nan))
    assert stop.model.stop_training and stop.failed_at == (2, 5)
