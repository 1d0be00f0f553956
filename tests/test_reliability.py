"""Bad inputs get a clear error; log-scales stay bounded.

`BAD_INPUTS` is the one list of every bad input we know of, one row each: what is done, the
error it must raise and the message (naming the value received and what was expected), and
where relevant what must be left as it was. Some rows repeat a check of a module's own tests
through the same API, so the list is complete in one place. Covered elsewhere only:
  - NaN in the training data: `train_and_evaluate` stops with `TrainingDiverged` and keeps
    the last good checkpoint (test_experiment.py, test_a_nan_loss_stops_training_...);
  - a damaged newest checkpoint is skipped for the older one (test_kill_resume.py).
float64 trains, restores and exports end to end in test_experiment.py (the folder run).
"""

import functools
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
import tensorflow_probability as tfp
from scripts import processes

import tfp_flows
from configs import affine_digits
from tfp_flows import data
from tfp_flows.bijectors import AffineCoupling, FactorOut, Squeeze
from tfp_flows.export import export_saved_model
from tfp_flows.run import experiment, restore, schema
from tfp_flows.training.trainer import FlowTrainer

tfb = tfp.bijectors

IMAGE_SHAPE = (8, 8, 1)


def _tiny_config(**overrides):
    """The default digits config with a tiny model, one epoch, one device."""
    config = affine_digits.get_config()
    config.model.num_levels = 2
    config.model.num_steps = 1
    config.model.hidden_channels = 8
    config.dequantizer.update(num_steps=2, hidden_channels=4, context_channels=2)
    config.eval.iw_samples = 0
    config.train.epochs = 1
    config.train.warmup_steps = 5
    config.train.strategy = 'one_device'
    for path, value in overrides.items():
        section, key = path.split('__')
        config[section][key] = value
    return config


def _new_flow(validate_args=False):
    return tfp_flows.glow(
        IMAGE_SHAPE, num_levels=2, num_steps=1, hidden_channels=8, validate_args=validate_args
    )


_flow = functools.cache(_new_flow)  # For the rows that only read the flow.


def _images(count=2):
    return np.random.default_rng(0).uniform(size=(count, *IMAGE_SHAPE)).astype(np.float32)


def _with_value(value):
    images = _images()
    images[0, 1, 2, 0] = value
    return images


def _fit_on(batch):
    trainer = FlowTrainer(_flow(), num_bins=17)
    trainer.compile(keras.optimizers.SGD(0.1))
    trainer.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    found = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


def _unchanged(directory):
    """A check that `directory` holds the same files later as it does now."""
    before = _files(directory)
    return lambda: _files(directory) == before


def _absent(path):
    return lambda: not os.path.exists(path)


def _existing_export(tmp_path):
    path = tmp_path / 'export'
    path.mkdir()
    (path / 'keep.txt').write_text('an earlier export')
    return str(path)


def _call(fn):
    """A row doing `fn()`, with nothing to check afterwards."""
    return lambda tmp_path: (fn, None)


def _run_in_workdir(**overrides):
    """A row running a tiny `train_and_evaluate` in a new workdir, which must stay absent."""

    def case(tmp_path):
        workdir = str(tmp_path / 'run')
        config = _tiny_config(**overrides)
        return lambda: experiment.train_and_evaluate(config, workdir, verbose=0), _absent(workdir)

    return case


def _unwritable_workdir(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')  # Root may write anywhere; not under a file.
    workdir = str(blocker / 'run')
    return lambda: experiment.train_and_evaluate(_tiny_config(), workdir, verbose=0), None


def _workdir_of_another_model(tmp_path):
    workdir = tmp_path / 'run'
    workdir.mkdir()
    config = _tiny_config()
    config.model.hidden_channels = 16
    (workdir / 'config.json').write_text(config.to_json())
    return (
        lambda: experiment.train_and_evaluate(_tiny_config(), str(workdir), verbose=0),
        _unchanged(workdir),
    )


def _run_of_another_architecture(tmp_path, damage=False):
    """A workdir whose checkpoint holds a flow with 16 hidden channels; its config says 8."""
    workdir = tmp_path / 'run'
    config = _tiny_config(dequantizer__kind='uniform')  # A checkpoint of a flow alone.
    with config.unlocked():
        config.data.event_shape = list(IMAGE_SHAPE)
    workdir.mkdir()
    (workdir / 'config.json').write_text(config.to_json())
    config.model.hidden_channels = 8 if damage else 16
    flow = restore.build_flow(config.model, IMAGE_SHAPE)
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(flow=flow), str(workdir / 'checkpoints' / 'best'), max_to_keep=1
    )
    path = manager.save()
    if damage:
        os.remove(f'{path}.data-00000-of-00001')
    return lambda: restore.restore_flow(str(workdir)), None


def _export_to_existing(tmp_path):
    path = _existing_export(tmp_path)
    return lambda: export_saved_model(_flow(), path, num_bins=17), _unchanged(path)


def _train_and_export_to_existing(tmp_path):
    path = _existing_export(tmp_path)
    workdir = str(tmp_path / 'run')
    unchanged, absent = _unchanged(path), _absent(workdir)
    return (
        lambda: experiment.train_and_evaluate(_tiny_config(), workdir, export_dir=path),
        lambda: unchanged() and absent(),
    )


def _cli_export_to_existing(tmp_path):
    path = _existing_export(tmp_path)
    workdir = str(tmp_path / 'run')
    command = processes.train_command(f'--workdir={workdir}', f'--export_dir={path}')
    return lambda: processes.run(command, timeout=120), _unchanged(path)


def _cli(*flags):
    """A row running `train.py FLAGS` with a new workdir, which must stay absent."""

    def case(tmp_path):
        workdir = str(tmp_path / 'run')
        command = processes.train_command(f'--workdir={workdir}', *flags)
        return lambda: processes.run(command, timeout=300), _absent(workdir)

    return case


def _make_dataset(name, batch_size, num_examples=None, **kwargs):
    def make():
        if num_examples is None:
            return data.make_dataset(name, 'train', batch_size, shuffle=True, **kwargs)
        with tfds.testing.mock_data(num_examples=num_examples):
            return data.make_dataset(name, 'train', batch_size, shuffle=True, **kwargs)

    return _call(make)


def _not_prepared(tmp_path):
    data_dir = str(tmp_path / 'tfds')
    return lambda: data.make_dataset('mnist', 'train', 8, shuffle=False, data_dir=data_dir), None


def _check_config(**overrides):
    return _call(lambda: schema.check_config(_tiny_config(**overrides)))


# (case, error, message): `case(tmp_path)` sets up and returns (action, check); `action()`
# must raise `error` with a message matching `message`, and `check()`, if given, stay true.
BAD_INPUTS = [
    pytest.param(
        _call(lambda: _flow().log_prob(_images()[0, ..., 0])),
        ValueError,
        r'Centre expects a tensor of shape \[\.\.\., 8, 8, 1\] .*got rank 2, shape \[8, 8\]',
        id='wrong rank',
    ),
    pytest.param(
        _call(lambda: _flow().log_prob(np.zeros((2, 8, 8, 3), np.float32))),
        ValueError,
        r'shape \[\.\.\., 8, 8, 1\]; got shape \[2, 8, 8, 3\], whose event part is \[8, 8, 3\]',
        id='wrong channel count',
    ),
    pytest.param(
        _call(lambda: tfp_flows.glow((6, 6, 1), num_levels=2, num_steps=1, hidden_channels=8)),
        ValueError,
        r'squeezes 2 times, so height and width must be divisible by 4; got event_shape '
        r'\(6, 6, 1\)',
        id='odd size for a squeeze: model',
    ),
    pytest.param(
        _call(lambda: Squeeze().inverse(np.zeros((1, 7, 8, 1), np.float32))),
        ValueError,
        r'Squeeze needs an even height; got height 7 in shape \[1, 7, 8, 1\]',
        id='odd size for a squeeze: bijector',
    ),
    pytest.param(
        _run_in_workdir(data__image_size=6, model__family='glow'),
        ValueError,
        r'divisible by 4; got event_shape \(6, 6, 1\)',
        id='odd size for a squeeze: config',
    ),
    pytest.param(
        _call(lambda: _flow().log_prob(tf.zeros((2, *IMAGE_SHAPE), tf.uint8))),
        TypeError,
        r'has dtype float32; got `y` of dtype uint8: dequantize integer pixels',
        id='integer dtype: flow',
    ),
    pytest.param(
        _call(lambda: _flow(validate_args=True).log_prob(np.full((2, *IMAGE_SHAPE), 16))),
        tf.errors.InvalidArgumentError,
        r"Centre 'centre' takes data in \[0.0, 1.0\] \(dequantized images; NaN is outside\); "
        r'got 128 value\(s\) outside it, the first: \[16 16',
        id='integer pixels as numbers: validate_args',
    ),
    pytest.param(
        _call(lambda: _fit_on(np.zeros((2, *IMAGE_SHAPE), np.uint8))),
        TypeError,
        r'FlowTrainer expects batches of floating-point data .*; got dtype uint8\. Dequantize',
        id='integer dtype: fit',
    ),
    pytest.param(
        _call(lambda: _flow().log_prob(tf.fill((2, *IMAGE_SHAPE), 'a'))),
        TypeError,
        r'has dtype float32; got `y` of dtype string: a flow takes float tensors',
        id='string dtype: flow',
    ),
    pytest.param(
        _call(lambda: _fit_on(tf.fill((2, *IMAGE_SHAPE), 'a'))),
        TypeError,
        r'FlowTrainer expects batches of floating-point data .*; got dtype string',
        id='string dtype: fit',
    ),
    pytest.param(
        _call(lambda: tfp_flows.uniform_dequantize(tf.fill((2, *IMAGE_SHAPE), 'a'), 17)),
        TypeError,
        r'`pixels` must be integer-valued numbers; got dtype string',
        id='string dtype: dequantize',
    ),
    pytest.param(
        _call(lambda: _flow(validate_args=True).log_prob(_with_value(np.nan))),
        tf.errors.InvalidArgumentError,
        r'NaN',
        id='NaN: validate_args',
    ),
    pytest.param(
        _call(lambda: _flow(validate_args=True).log_prob(_with_value(np.inf))),
        tf.errors.InvalidArgumentError,
        r'inf',
        id='inf: validate_args',
    ),
    pytest.param(
        _call(lambda: _flow(validate_args=True).log_prob(_images() * 3)),
        tf.errors.InvalidArgumentError,
        r"Centre 'centre' takes data in \[0.0, 1.0\] .*"
        r'got \d+ value\(s\) outside it, the first: \[\d',
        id='above 1: validate_args',
    ),
    pytest.param(
        _call(lambda: _flow(validate_args=True).log_prob(_images() - 1)),
        tf.errors.InvalidArgumentError,
        r"Centre 'centre' takes data in \[0.0, 1.0\] .*"
        r'got \d+ value\(s\) outside it, the first: \[-',
        id='below 0: validate_args',
    ),
    pytest.param(
        _make_dataset('mnist', 8, num_examples=0),
        ValueError,
        r"Split 'train' of dataset 'mnist' has no examples",
        id='empty dataset',
    ),
    pytest.param(
        _call(lambda: tfp_flows.initialize(_new_flow(), np.zeros((0, *IMAGE_SHAPE), np.float32))),
        ValueError,
        r'empty',
        id='empty initialisation batch',
    ),
    pytest.param(
        _make_dataset('mnist', 8, num_examples=3, drop_remainder=True),
        ValueError,
        r"`batch_size` \(8\) is larger than the 3 examples of split 'train' of 'mnist'",
        id='batch larger than the dataset',
    ),
    pytest.param(
        _run_in_workdir(train__batch_size=2000),
        ValueError,
        r'`config.train.batch_size` \(2000\) is larger than the 1257 examples of the training '
        r"split of 'digits': set it to at most 1257",
        id='batch larger than the dataset: config',
    ),
    pytest.param(
        _cli('--config.train.no_such_key=1'),
        processes.CommandFailed,
        r"^exit code 2: Error: --config has no field 'no_such_key' \(see --print_config\)\n$",
        id='unknown config key: CLI',
    ),
    pytest.param(
        _cli('--config.train.epoch=3'),
        processes.CommandFailed,
        r"^exit code 2: Error: --config has no field 'epoch'\. Did you mean \"epochs\" instead "
        r'of "epoch"\? \(see --print_config\)\n$',
        id='misspelt config key: CLI',
    ),
    pytest.param(
        _check_config(model__num_steps=-1),
        ValueError,
        r'`config\.model\.num_steps` must be a positive int; got -1',
        id='negative steps',
    ),
    pytest.param(
        _check_config(model__num_levels=0),
        ValueError,
        r'`config\.model\.num_levels` must be a positive int; got 0',
        id='zero levels',
    ),
    pytest.param(
        _check_config(model__hidden_channels=0),
        ValueError,
        r'`config\.model\.hidden_channels` must be a positive int; got 0',
        id='hidden width 0',
    ),
    pytest.param(
        _check_config(train__steps_per_execution=0),
        ValueError,
        r'`config\.train\.steps_per_execution` must be a positive int; got 0',
        id='zero steps per execution',
    ),
    pytest.param(
        _check_config(train__intra_op_threads=-2),
        ValueError,
        r'`config\.train\.intra_op_threads` must be an int >= 0; got -2',
        id='negative thread count',
    ),
    pytest.param(
        _check_config(train__strategy='multi_worker', train__max_seconds=60.0),
        ValueError,
        r"max_seconds` cannot be used with strategy 'multi_worker'.*got max_seconds=60\.0",
        id='time limit with several workers',
    ),
    pytest.param(
        _cli('--config.model.num_levels=0'),
        processes.CommandFailed,
        r'^exit code 1: (?:.*\n)*Error: `config\.model\.num_levels` must be a positive int; '
        r'got 0\.\n$',
        id='zero levels: CLI',
    ),
    pytest.param(
        _cli('--config.model.num_levels=two'),
        processes.CommandFailed,
        r'^exit code 2: Error: `--config\.model\.num_levels` must be a positive int; '
        r"got 'two'\.\n$",
        id='a word for a number: CLI',
    ),
    pytest.param(
        _make_dataset('mnistt', 8),
        ValueError,
        r"Unknown dataset 'mnistt': it is not digits, a 2-D toy .* Close names: mnist",
        id='unknown TFDS name',
    ),
    pytest.param(
        _not_prepared,
        FileNotFoundError,
        r"TFDS dataset 'mnist' could not be found in data_dir .*tfds', and nothing is "
        'downloaded here',
        id='TFDS data not available offline',
    ),
    pytest.param(
        _unwritable_workdir,
        ValueError,
        r"Cannot write to workdir '.*file/run'",
        id='unwritable workdir',
    ),
    pytest.param(
        _workdir_of_another_model,
        ValueError,
        r"workdir '.*run' holds a run of another model or data \(model\.hidden_channels: 16 "
        r'in the workdir, 8 now\)\. .* nothing was changed',
        id='workdir of another model',
    ),
    pytest.param(
        _run_of_another_architecture,
        ValueError,
        r'Checkpoint .*ckpt-1 does not match the model built from the config',
        id='checkpoint of another architecture',
    ),
    pytest.param(
        functools.partial(_run_of_another_architecture, damage=True),
        ValueError,
        r'Checkpoint .*ckpt-1 is damaged or incomplete: .*ckpt-1\.data-00000-of-00001',
        id='checkpoint with a lost data file',
    ),
    pytest.param(
        _export_to_existing,
        FileExistsError,
        r'export.* already exists; write to a new path, or pass overwrite=True',
        id='export path exists',
    ),
    pytest.param(
        _train_and_export_to_existing,
        FileExistsError,
        r"export_dir '.*export' already exists; choose a new path",
        id='export path exists: train_and_evaluate',
    ),
    pytest.param(
        _cli_export_to_existing,
        processes.CommandFailed,
        r"^exit code 1: Error: export_dir '.*export' already exists; choose a new path or "
        r'remove it\.\n$',
        id='export path exists: CLI',
    ),
]


@pytest.mark.parametrize('case, error, message', BAD_INPUTS)
def test_bad_input_is_refused_with_a_clear_message(case, error, message, tmp_path):
    action, check = case(tmp_path)
    with pytest.raises(error, match=message):
        action()
    assert check is None or check(), 'the failed call changed or left files'


def _bijectors(bijector):
    """`bijector` and every bijector inside it (chains, inversions, factor-outs)."""
    yield bijector
    inner = [*getattr(bijector, 'bijectors', ()), getattr(bijector, 'bijector', None)]
    inner.append(getattr(bijector, 'inner', None))
    for child in inner:
        if isinstance(child, tfb.Bijector):
            yield from _bijectors(child)


@pytest.mark.parametrize('family', ['glow', 'real_nvp'])
@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_log_scale_bound_bounds_every_log_scale(family, sign):
    bound = 0.5
    config = _tiny_config(
        model__family=family, model__log_scale_bound=bound, model__split_prior=True
    )
    flow = restore.build_flow(config.model, IMAGE_SHAPE)
    bounded = [b for b in _bijectors(flow.bijector) if isinstance(b, (AffineCoupling, FactorOut))]
    assert {type(b) for b in bounded} == {AffineCoupling, FactorOut}
    for bijector in bounded:  # Every raw log-scale (and shift) becomes sign * 100.
        network = bijector.conditioner if isinstance(bijector, AffineCoupling) else bijector.prior
        for variable in network.trainable_variables:
            is_kernel = variable.shape.rank > 1
            variable.assign(tf.fill(variable.shape, 0.0 if is_kernel else sign * 100.0))
    for bijector in bounded:
        y = tf.random.stateless_normal([4, *bijector.event_shape], seed=[0, 1])
        if isinstance(bijector, AffineCoupling):
            log_det = bijector.inverse_log_det_jacobian(y, event_ndims=3)
        else:
            kept, _ = bijector.split(y)  # The factor-out's own log-det, without its inner flow.
            log_det = (
                bijector.inverse_and_log_det(y)[1] - bijector.inner.inverse_and_log_det(kept)[1]
            )
        # Half the values change: checkerboard, or channel halves (even channel counts here).
        num_changed = math.prod(bijector.event_shape) // 2
        np.testing.assert_allclose(log_det, -sign * bound * num_changed, rtol=1e-6)
    x = tf.constant(_images(4))
    assert np.all(np.isfinite(flow.log_prob(x).numpy()))
    assert np.all(np.isfinite(tfp_flows.sample(flow, 4, temperature=1.0, seed=[0, 3]).numpy()))
