"""Whole runs: the files a run leaves, resuming, restoring, TFDS data, NaN stops, bad configs.

The digits, moons and conditional runs are trained once per session (tests/run/conftest.py)
and only read here; a test that changes a run works on a copy.
"""

import gc
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys

import checks
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from scripts import processes

import tfp_flows
from configs import affine_digits, glow_digits_conditional, glow_mnist_conditional, realnvp_moons
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.data import make_dataset
from tfp_flows.data import own as own_data
from tfp_flows.run import callbacks, experiment, figures, lock, restore
from tfp_flows.run import datasets as run_datasets
from tfp_flows.run import workdir as workdirs
from tfp_flows.tools import latent
from tfp_flows.training.trainer import FlowTrainer


def _copy(trained_run, tmp_path):
    workdir = str(tmp_path / 'run')
    shutil.copytree(trained_run[0], workdir)
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
    digits_run, digits_config, tmp_path, monkeypatch
):
    workdir = _copy(digits_run, tmp_path)
    assert 0.5 < digits_run[1]['test_bits_per_dim'] < 5.0
    for name in ('config.json', 'metrics.json', 'saved_model/saved_model.pb', 'logs'):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'best'))
    assert os.listdir(os.path.join(workdir, 'samples')) == ['epoch_0001.png']
    with open(os.path.join(workdir, 'config.json')) as f:
        assert json.load(f)['data']['event_shape'] == [8, 8, 1]

    def fail(*args):
        raise AssertionError('a resumed run must not initialise ActNorm again')

    class NoBetterEpoch(callbacks.CheckpointCallback):
        def on_epoch_end(self, epoch, logs=None):  # Validation gets worse after epoch 1.
            super().on_epoch_end(epoch, {**(logs or {}), 'val_loss': 1e9})

    monkeypatch.setattr(experiment, 'initialize', fail)
    monkeypatch.setattr(callbacks, 'CheckpointCallback', NoBetterEpoch)
    config = digits_config(epochs=2)
    config.train.learning_rate = 1e-3
    config.eval.iw_samples = 0  # Free to change; the variational tests read these figures.
    config.train.export = False  # Free too: no saved_model, but --export_dir still exports.
    expected = config.to_json()
    export_dir = str(tmp_path / 'export')
    resumed = experiment.train_and_evaluate(config, workdir, verbose=0, export_dir=export_dir)
    assert os.path.exists(os.path.join(export_dir, 'saved_model.pb'))
    assert not os.path.exists(os.path.join(workdir, 'saved_model'))  # Not this session's best.
    assert config.to_json() == expected  # The caller's config is not written into.
    # The metrics tell the epochs trained from the best epoch, which is tested.
    assert (resumed['epochs_trained'], resumed['best_epoch']) == (2, 1)
    assert resumed['best_checkpoint'].endswith('ckpt-1')
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


def test_a_finished_run_is_returned_as_it_is_and_nothing_changes(
    digits_run, digits_config, tmp_path, caplog
):
    workdir = _copy(digits_run, tmp_path)
    before = _files(workdir)
    config = digits_config()
    config.train.weight_decay = 0.1  # A training setting: it would apply only on training on.
    caplog.set_level(logging.INFO, logger='absl')
    assert experiment.train_and_evaluate(config, workdir, verbose=0) == digits_run[1]
    assert _files(workdir) == before
    assert re.search(
        r'holds a finished run: it reached epoch 1 of 1; test bits per dim \d\.\d{4}, '
        r'validation bits per dim \d\.\d{4}, .*, best epoch 1 \(metrics\.json\)\. Nothing was '
        r'trained or changed\.\n  To train it on, rerun with --config\.train\.epochs=N, N > 1\.'
        r'\n  For a new run, pass a new --workdir\.\n  The changed settings '
        r'\(train\.weight_decay 0\.01 -> 0\.1\) apply only if it trains on\.',
        caplog.text,
    ), caplog.text


def test_tensorboard_shows_kerass_curves_once_with_the_test_point_and_samples(digits_run):
    logs = os.path.join(digits_run[0], 'logs')
    assert sorted(checks.read_tensorboard(logs)) == [
        'samples/temperature_0.7',
        'samples/temperature_1.0',
    ]
    pictures = checks.read_tensorboard(logs)
    assert set(pictures['samples/temperature_0.7']) == {0}  # Keras' step of epoch 1.
    assert pictures['samples/temperature_0.7'][0].shape == (398, 398, 1)
    train = checks.read_tensorboard(os.path.join(logs, 'train'))
    assert {'epoch_loss', 'epoch_bits_per_dim', 'epoch_grad_norm', 'epoch_learning_rate'} <= set(
        train
    )
    validation = checks.read_tensorboard(os.path.join(logs, 'validation'))
    assert set(validation['epoch_bits_per_dim']) == {0}
    test = checks.read_tensorboard(os.path.join(logs, 'test'))
    assert test == {'epoch_bits_per_dim': {0: pytest.approx(digits_run[1]['test_bits_per_dim'])}}


def test_restore_flow_rebuilds_the_trained_model(digits_run, tmp_path, caplog):
    workdir = _copy(digits_run, tmp_path)
    caplog.set_level(logging.WARNING)
    flow = tfp_flows.run.restore.restore_flow(workdir)  # As the README calls it.
    gc.collect()  # TF warns about unrestored values when the restore status is deleted.
    assert 'could not be found' not in caplog.text  # The optimizer's slots are not wanted.
    expected = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    x = tf.random.stateless_uniform([4, 8, 8, 1], seed=[1, 2])
    np.testing.assert_allclose(flow.log_prob(x), expected.log_prob(x=x)['log_prob'], rtol=1e-5)
    latest = restore.restore_flow(workdir, 'latest')  # Epoch 1 is both best and latest.
    np.testing.assert_allclose(latest.log_prob(x), flow.log_prob(x), rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"`which` must be one of \('best', 'latest'\); got 'newest'"
    ):
        restore.restore_flow(workdir, 'newest')

    with open(os.path.join(workdir, 'config.json')) as f:
        config = json.load(f)
    config['model']['hidden_channels'] = 16
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match='does not match the model built from the config'):
        restore.restore_flow(workdir)


def test_a_workdir_of_another_model_is_refused(digits_run, digits_config, tmp_path):
    workdir = _copy(digits_run, tmp_path)
    before = _files(workdir)
    config = digits_config()
    config.model.hidden_channels = 16
    config.data.image_size = 16
    with pytest.raises(
        ValueError,
        match=r'holds a run of another model or data \(data\.image_size: None in the workdir, '
        r'16 now; model\.hidden_channels: 8 in the workdir, 16 now\)',
    ):
        experiment.train_and_evaluate(config, workdir, verbose=0)
    assert _files(workdir) == before


def test_moons_run_writes_the_density_picture(moons_run):
    workdir, metrics = moons_run
    assert math.isfinite(metrics['test_nats_per_dim'])
    picture = tf.io.decode_png(tf.io.read_file(os.path.join(workdir, 'density.png')))
    assert picture.shape == (420, 1000, 3)
    listed = [
        os.path.relpath(path, workdir) for path, _ in workdirs.written_outputs(workdir, metrics)
    ]
    assert listed == [  # What train.py prints at the end: no samples folder for 2-D data,
        'config.json',  # and no saved_model with train.export False.
        'metrics.json',
        os.path.join('checkpoints', 'latest'),
        os.path.join('checkpoints', 'best'),
        'density.png',
        'logs',
    ]


def test_the_conditional_tfds_recipe_runs_on_mock_data_with_flips(tiny, tmp_path, monkeypatch):
    calls = {}
    real_make_dataset = run_datasets.data.make_dataset

    def recording(name, split, batch_size, **kwargs):
        calls[split] = kwargs
        return real_make_dataset(name, split, batch_size, **kwargs)

    monkeypatch.setattr(run_datasets.data, 'make_dataset', recording)
    config = tiny(glow_mnist_conditional.get_config())
    config.train.batch_size = 16
    config.data.augment = 'flip'  # As the CIFAR-10 and CelebA recipes.
    workdir = str(tmp_path / 'mnist')
    config.train.export = False  # Nothing here reads one.
    with tfds.testing.mock_data(num_examples=32):
        metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert math.isfinite(metrics['test_bits_per_dim'])
    assert not os.path.exists(os.path.join(workdir, 'saved_model'))
    recorded = workdirs.read_json(os.path.join(workdir, 'config.json'))
    assert recorded['model']['conditional_shape'] == [10]
    # Flips of the training data only.
    augment = {split: kwargs.get('augment') for split, kwargs in calls.items()}
    assert augment == {'train[:90%]': 'flip', 'train[90%:]': None, 'test': None}


def _poison_training_data(monkeypatch, after_batches):
    """Makes every training batch after the first `after_batches` NaN.

    For runs with uniform dequantization (`_uniform`): a variational dequantizer takes
    discrete pixels and refuses NaN ones by name (tests/test_trainer.py) instead.
    """
    real_make_dataset = run_datasets.data.make_dataset

    def poisoned(name, split, batch_size, **kwargs):
        dataset, info = real_make_dataset(name, split, batch_size, **kwargs)
        if split != 'train':
            return dataset, info
        counter = tf.Variable(0, dtype=tf.int64)

        def poison(x):
            counter.assign_add(1)
            return tf.cond(counter > after_batches, lambda: x * np.nan, lambda: x)

        return dataset.map(poison), info

    monkeypatch.setattr(run_datasets.data, 'make_dataset', poisoned)


def _uniform(config):
    config.dequantizer.kind = 'uniform'
    return config


def test_a_nan_in_the_first_epoch_says_there_is_no_checkpoint(tiny, tmp_path, monkeypatch):
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
            _uniform(tiny(affine_digits.get_config(), epochs=2)), str(workdir), verbose=0
        )
    assert not (workdir / 'checkpoints' / 'latest' / 'checkpoint').exists()


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    _poison_training_data(monkeypatch, after_batches=25)
    workdir = str(tmp_path / 'nan')
    with pytest.raises(
        experiment.TrainingDiverged,
        match=r'epoch 2, batch \d+\. The last good checkpoint is \S+/ckpt-1\. The seed fixes '
        r'the data of every epoch, .* rerun it with a lower --config\.train\.learning_rate '
        r'\(now 0\.003\)',
    ):
        experiment.train_and_evaluate(
            _uniform(tiny(affine_digits.get_config(), epochs=3)), workdir, verbose=0
        )
    latest = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    assert latest.endswith('ckpt-1')
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        if reader.get_variable_to_dtype_map()[name].is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name


def test_a_trained_model_round_trips_and_its_log_det_matches_autodiff(digits_run):
    flow = restore.restore_flow(digits_run[0])
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


def _conditional(tiny):
    """A class-conditional digits Glow with EMA weights, dropout and gradient accumulation:
    the config of `conditional_run` (`SCRIPT_FLAGS`; its rerun below finds none changed)."""
    config = tiny(glow_digits_conditional.get_config(), epochs=processes.SCRIPT_EPOCHS)
    config.train.ema_momentum = 0.9
    config.model.dropout_rate = 0.1
    config.train.accumulation_steps = 2
    return config


@pytest.fixture(scope='module')
def conditional_run(script_run):
    """(workdir, metrics) of the 4-epoch run of `_conditional` that train.py makes for
    tests/run/test_train_script.py (tests/run/conftest.py's `script_run`)."""
    workdir = str(script_run[0])
    return workdir, workdirs.read_json(os.path.join(workdir, 'metrics.json'))


def _one_hot(labels):
    return tf.one_hot(labels, 10)


def test_a_conditional_run_records_its_context_and_pictures_one_row_per_class(conditional_run):
    workdir, metrics = conditional_run
    assert 0.5 < metrics['test_bits_per_dim'] < 5.0
    config = workdirs.read_json(os.path.join(workdir, 'config.json'))
    assert config['model']['conditional_shape'] == [10]
    assert config['data']['conditional'] is True
    flow = restore.restore_flow(workdir)
    assert conditional_shape_of(flow) == (10,)
    picture = os.path.join(workdir, 'samples', f'epoch_{metrics["best_epoch"]:04d}.png')
    written = tf.io.decode_png(tf.io.read_file(picture))
    # The run's picture is that of its best checkpoint with the EMA weights, which
    # restore_flow gives and the figure command draws.
    np.testing.assert_array_equal(written, figures.run_figure(workdir))
    _, grids = latent.class_sample_figure(flow, 17, (0.7, 1.0), seed=0)
    assert grids[0].shape == (10 * (8 * 8 + 2) + 2, 6 * (8 * 8 + 2) + 2, 1)  # 10 rows of 6.


def test_a_conditional_export_takes_contexts_and_holds_the_ema_weights(conditional_run):
    workdir, metrics = conditional_run
    x = tf.random.stateless_uniform([4, 8, 8, 1], seed=[1, 2])
    c = _one_hot([0, 3, 3, 9])
    exported = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    served = exported.signatures['log_prob'](x=x, conditional_input=c)['log_prob']
    ema_flow = restore.restore_flow(workdir)
    np.testing.assert_allclose(
        served, ema_flow.log_prob(x, bijector_kwargs={'conditional_input': c}), rtol=1e-5
    )
    config = workdirs.read_json(os.path.join(workdir, 'config.json'))
    raw_flow = restore.build_flow(config['model'], (8, 8, 1))
    tf.train.Checkpoint(flow=raw_flow).read(metrics['best_checkpoint']).expect_partial()
    raw = raw_flow.log_prob(x, bijector_kwargs={'conditional_input': c})
    assert np.max(np.abs(raw - served)) > 1e-3  # The checkpoint's raw weights differ.
    # The test figure is the EMA weights' too (the flow's and the dequantizer's).
    test_ds, _ = make_dataset(
        'digits', 'test', 64, shuffle=False, seed=0, epoch=0, conditional=True, dequantize=False
    )
    ema_flow, dequantizer = restore.restore_flow_and_dequantizer(workdir)
    trainer = FlowTrainer(ema_flow, num_bins=17, dequantizer=dequantizer)
    trainer.compile(keras.optimizers.SGD())
    evaluated = trainer.evaluate(test_ds, verbose=0, return_dict=True)['bits_per_dim']
    assert evaluated == pytest.approx(metrics['test_bits_per_dim'], rel=1e-5)


def test_a_conditional_rerun_before_its_outputs_gives_the_same_figures(
    conditional_run, tiny, tmp_path
):
    # Killed before its outputs, rerun with another setting of each rerun class that may
    # change: no epoch trains, the recorded context rebuilds the flow its checkpoint holds,
    # the figures come out again, and the settings it ended with are recorded.
    workdir = _copy(conditional_run, tmp_path)
    os.remove(os.path.join(workdir, 'metrics.json'))
    config = _conditional(tiny)
    config.model.dropout_rate = 0.2  # Training settings: recorded, not refused.
    config.train.learning_rate = 1e-3
    config.train.steps_per_execution = 4  # Free.
    config.train.export = False  # Free; tests/run/test_workdir.py has the finished run's message.
    again = experiment.train_and_evaluate(config, workdir, verbose=0)
    for key in ('test_bits_per_dim', 'validation_bits_per_dim', 'epochs_trained', 'best_epoch'):
        assert again[key] == conditional_run[1][key], key
    assert workdirs.read_json(os.path.join(workdir, 'config_history.json')) == [
        {
            'epoch': processes.SCRIPT_EPOCHS,
            'changed': {'model.dropout_rate': [0.1, 0.2], 'train.learning_rate': [0.003, 0.001]},
        }
    ]
    with workdirs.open_run(config, workdir) as run:
        assert run.finished and run.changed == {}
    config.data.conditional = False
    with pytest.raises(ValueError, match=r'data\.conditional: True in the workdir, False now'):
        experiment.train_and_evaluate(config, workdir, verbose=0)


def _write_table(path, rows=200):
    """A CSV table: data columns x1, x2 (in large units) depending on a context column c."""
    rng = np.random.default_rng(0)
    c = rng.normal(size=rows)
    x1 = 100.0 + 20.0 * (c + 0.3 * rng.normal(size=rows))
    x2 = -5.0 + 0.1 * rng.normal(size=rows)
    lines = ['x1,x2,c'] + [f'{a},{b},{d}' for a, b, d in zip(x1, x2, c, strict=True)]
    path.write_text('\n'.join(lines) + '\n')


def test_a_conditional_csv_run_works_in_the_tables_units(tiny, tmp_path):
    table = tmp_path / 'table.csv'
    _write_table(table)
    config = tiny(realnvp_moons.get_config())
    config.data.name = f'csv:{table}'
    config.data.conditional = True
    config.data.columns = ('x1', 'x2')
    config.data.context_columns = ('c',)
    config.train.batch_size = 32
    config.model.num_steps = 2
    workdir = str(tmp_path / 'csv')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert math.isfinite(metrics['test_nats_per_dim'])
    assert not os.path.exists(os.path.join(workdir, 'density.png'))  # Conditional: no picture.
    x = tf.constant([[100.0, -5.0], [120.0, -5.1]])
    c = tf.constant([[0.0], [1.0]])
    exported = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    served = exported.signatures['log_prob'](x=x, conditional_input=c)['log_prob']
    restored = restore.restore_flow(workdir)  # Rebuilt wrapping; statistics restored.
    np.testing.assert_allclose(
        restored.log_prob(x, bijector_kwargs={'conditional_input': c}), served, rtol=1e-5
    )
    # The restored statistics are the training split's (the checkpoint's, not placeholders).
    values, contexts, columns, context_columns = own_data.read_csv(str(table), ['x1', 'x2'], ['c'])
    expected = own_data.table_statistics(str(table), values, contexts, columns, context_columns)
    saved = {v.name.split(':')[0].split('/')[-1]: v.numpy() for v in restored.variables}
    np.testing.assert_allclose(saved['column_mean'], expected.mean, rtol=1e-6)
    np.testing.assert_allclose(saved['column_scale'], expected.scale, rtol=1e-6)
    np.testing.assert_allclose(saved['context_scale'], expected.context_scale, rtol=1e-6)
    # The reported figure is -log p(x | c) / D of the test rows, in the table's own units.
    test = own_data.split_indices(len(values), 'test')
    log_p = restored.log_prob(
        tf.cast(values[test], restored.dtype),
        bijector_kwargs={'conditional_input': tf.cast(contexts[test], restored.dtype)},
    )
    np.testing.assert_allclose(metrics['test_nats_per_dim'], -np.mean(log_p) / 2, rtol=1e-4)


def test_a_conditional_float64_folder_run_trains_on_its_class_subfolders(tiny, tmp_path):
    rng = np.random.default_rng(0)
    for label in ('circles', 'squares'):
        (tmp_path / 'images' / label).mkdir(parents=True)
        for i in range(30):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels, mode='L').save(tmp_path / 'images' / label / f'{i}.png')
    config = tiny(affine_digits.get_config())
    config.data.name = f'folder:{tmp_path / "images"}'
    config.data.conditional = True
    config.model.dtype = 'float64'  # float64 trains, restores and exports end to end.
    config.train.batch_size = 8
    workdir = str(tmp_path / 'run')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert math.isfinite(metrics['test_bits_per_dim'])
    recorded = workdirs.read_json(os.path.join(workdir, 'config.json'))
    assert recorded['data']['num_bins'] == 256 and recorded['model']['conditional_shape'] == [2]
    assert recorded['model']['dtype'] == 'float64'
    assert os.listdir(os.path.join(workdir, 'samples')) == ['epoch_0001.png']
    flow = restore.restore_flow(workdir)
    assert {v.dtype for v in flow.trainable_variables} == {tf.float64}
    x = tf.random.stateless_uniform([2, 8, 8, 1], seed=[1, 2], dtype=tf.float64)
    c = tf.constant([[1.0, 0.0], [0.0, 1.0]], tf.float64)
    exported = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    np.testing.assert_allclose(
        exported.signatures['log_prob'](x=x, conditional_input=c)['log_prob'],
        flow.log_prob(x, bijector_kwargs={'conditional_input': c}),
        rtol=1e-9,
    )


def _pixel_batches(split):
    return make_dataset('digits', split, 64, shuffle=False, seed=0, epoch=0, dequantize=False)[0]


def test_a_variational_run_reports_both_bounds_and_checkpoints_the_dequantizer(digits_run):
    workdir, metrics = digits_run
    assert metrics['iw_samples'] == 3 and metrics['dequantizer_parameters'] > 0
    for split in ('test', 'validation'):
        one_sample, iw = metrics[f'{split}_bits_per_dim'], metrics[f'{split}_bits_per_dim_iw']
        assert math.isfinite(iw) and abs(iw - one_sample) < 0.5
    with open(os.path.join(workdir, 'metrics.json')) as f:
        assert json.load(f)['test_bits_per_dim_iw'] == metrics['test_bits_per_dim_iw']
    for which in ('best', 'latest'):
        path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', which))
        names = [name for name, _ in tf.train.list_variables(path)]
        assert any(name.startswith('dequantizer/') for name in names), which
    # The restored pair (with the EMA weights) gives the run's test figures again: the
    # one-sample bound on fixed noise, and the importance-weighted one on fixed seeds.
    flow, dequantizer = restore.restore_flow_and_dequantizer(workdir)
    assert dequantizer is not None
    trainer = FlowTrainer(flow, 17, dequantizer=dequantizer, dequantization_seed=0)
    trainer.compile(keras.optimizers.SGD())
    evaluated = trainer.evaluate(_pixel_batches('test'), verbose=0, return_dict=True)
    assert evaluated['bits_per_dim'] == pytest.approx(metrics['test_bits_per_dim'], rel=1e-5)
    assert restore.restore_flow(workdir).trainable_variables  # The flow alone loads too.


def test_a_variational_export_scores_with_the_trained_dequantizer(digits_run):
    workdir, _ = digits_run
    flow, dequantizer = restore.restore_flow_and_dequantizer(workdir)
    pixels = next(iter(_pixel_batches('test')))[:4]
    noise, log_q = dequantizer.sample_and_log_prob(pixels, seed=tf.constant([3, 4]))
    x = (pixels + noise) / 17
    assert float(tf.reduce_max(tf.abs(log_q))) > 1e-3  # q is not uniform any more.
    expected = tfp_flows.bits_per_dim(flow.log_prob(x) - log_q, 64, 17)
    exported = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    served = exported.signatures['bits_per_dim'](x=x)['bits_per_dim']
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-4)
    iw = exported.bits_per_dim_iw(tf.cast(pixels, tf.int32), 3, tf.constant([5, 6]))
    assert np.all(np.isfinite(iw['bits_per_dim']))


def test_a_variational_run_refuses_a_resume_with_another_dequantizer(
    digits_run, digits_config, tmp_path
):
    workdir = _copy(digits_run, tmp_path)
    before = _files(workdir)
    config = digits_config(epochs=2)
    config.dequantizer.kind = 'uniform'
    with pytest.raises(
        workdirs.WorkdirMismatch,
        match=r"dequantizer\.kind: 'variational' in the workdir, 'uniform' now",
    ):
        experiment.train_and_evaluate(config, workdir, verbose=0)
    assert _files(workdir) == before


@pytest.mark.parametrize(
    'data, changes, message',
    [
        (
            'moons',
            {'eval.iw_samples': 2},
            r"`config.eval.iw_samples` \(2\) is for discrete images; data 'moons' are continuous: "
            r'set it to 0\.',
        ),
        ('csv', {'eval.iw_samples': 2}, r"iw_samples` \(2\) .* data 'csv:.*' are continuous"),
        (
            'moons',
            {'dequantizer.kind': 'variational'},
            r"`config.dequantizer.kind` \('variational'\) is for discrete images; data 'moons' "
            r"are continuous: set it to 'uniform'\.",
        ),
        ('moons', {'model.preprocessing': 'logit'}, r'must be None for vector data'),
        ('digits', {'model.preprocessing': None}, r"must be 'centre' or 'logit' for image data"),
    ],
)
def test_config_values_that_do_not_fit_the_data_are_refused(data, changes, message, tiny, tmp_path):
    config = tiny(realnvp_moons.get_config() if data != 'digits' else affine_digits.get_config())
    if data == 'csv':
        _write_table(tmp_path / 'table.csv')
        config.data.name = f'csv:{tmp_path / "table.csv"}'
        config.train.batch_size = 32
    config.update_from_flattened_dict(changes)
    workdir = tmp_path / 'run'
    with pytest.raises(ValueError, match=message):
        experiment.train_and_evaluate(config, str(workdir), verbose=0)
    assert not workdir.exists()  # Refused before anything was written.


def test_a_workdir_in_use_is_refused(digits_run, digits_config, tmp_path):
    workdir = _copy(digits_run, tmp_path)
    before = _files(workdir)
    holder = subprocess.Popen(
        [sys.executable, '-c', _HOLD, workdir], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == 'held\n'
        with pytest.raises(lock.WorkdirInUse, match=rf'\(host \S+, pid {holder.pid}\)'):
            experiment.train_and_evaluate(digits_config(epochs=2), workdir)
    finally:
        holder.kill()
        holder.wait()
    left = _files(workdir)
    left.pop(lock.NAME)  # The killed holder's; the next run takes it.
    assert left == before


_HOLD = (
    'import sys, time; from tfp_flows.run import lock\n'
    'with lock.hold(sys.argv[1]):\n'
    '    print("held", flush=True); time.sleep(600)\n'
)


def test_an_interrupted_resume_records_no_setting_it_never_trained_with(
    digits_run, digits_config, tmp_path, monkeypatch
):
    workdir = _copy(digits_run, tmp_path)
    config_before = workdirs.read_json(os.path.join(workdir, 'config.json'))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C before the first resumed epoch is saved.

    monkeypatch.setattr(experiment.FlowTrainer, 'fit', interrupted)
    config = digits_config(epochs=3)
    config.train.learning_rate = 1e-3
    before = _files(workdir)  # No history, metrics.json as it was; new TensorBoard files.
    with pytest.raises(experiment.Interrupted) as interrupted:
        experiment.train_and_evaluate(config, workdir, verbose=0)
    assert interrupted.value.epoch == 1 and interrupted.value.checkpoint.endswith('ckpt-1')
    assert workdirs.read_json(os.path.join(workdir, 'config.json')) == config_before
    after = {k: v for k, v in _files(workdir).items() if not k.startswith('logs')}
    assert after == {k: v for k, v in before.items() if not k.startswith('logs')}


def test_ctrl_c_as_a_save_returns_names_the_checkpoint_the_resume_takes(
    digits_run, digits_config, tmp_path, monkeypatch
):
    workdir = _copy(digits_run, tmp_path)

    def save_then_interrupt(self, epoch, logs=None):
        self.latest.save(checkpoint_number=epoch + 1)
        raise KeyboardInterrupt  # The signal lands once the save is on disk, before its records.

    monkeypatch.setattr(
        experiment.callbacks.CheckpointCallback, 'on_epoch_end', save_then_interrupt
    )
    with pytest.raises(experiment.Interrupted) as interrupted:
        experiment.train_and_evaluate(digits_config(epochs=3), workdir, verbose=0)
    assert interrupted.value.epoch == 2 and interrupted.value.checkpoint.endswith('ckpt-2')


def test_ctrl_c_after_skipping_a_damaged_checkpoint_names_the_one_resumed_from(
    digits_run, digits_config, tmp_path, monkeypatch
):
    workdir = _copy(digits_run, tmp_path)
    latest = os.path.join(workdir, 'checkpoints', 'latest')
    for suffix in ('.index', '.data-00000-of-00001'):  # A ckpt-2 whose data is cut short.
        shutil.copy(
            os.path.join(latest, 'ckpt-1' + suffix), os.path.join(latest, 'ckpt-2' + suffix)
        )
    with open(os.path.join(latest, 'ckpt-2.data-00000-of-00001'), 'r+b') as f:
        f.truncate(8)
    with open(os.path.join(latest, 'checkpoint'), 'w') as f:  # TF's state file, as it saves.
        f.write('model_checkpoint_path: "ckpt-2"\n')
        f.write('all_model_checkpoint_paths: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-2"\n')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Before the resumed run saves anything.

    monkeypatch.setattr(experiment.FlowTrainer, 'fit', interrupted)
    with pytest.raises(experiment.Interrupted) as interrupted_run:
        experiment.train_and_evaluate(digits_config(epochs=3), workdir, verbose=0)
    assert interrupted_run.value.epoch == 1  # The resume skips ckpt-2, and would again.
    assert interrupted_run.value.checkpoint.endswith('ckpt-1')
