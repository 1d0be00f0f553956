"""tfp_flows/run/figures.py, the figure commands: a finished run's workdir in, its pictures out.

The digits and moons runs are those of tests/run/conftest.py, trained once per session.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import checks
import numpy as np
import pytest
import tensorflow as tf

from configs import affine_digits, realnvp_moons
from tfp_flows.run import figures
from tfp_flows.run.restore import build_flow


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


@pytest.fixture(scope='module')
def digits_workdir(digits_run):
    return pathlib.Path(digits_run[0])


def test_the_command_draws_the_runs_last_samples_again(digits_workdir, tmp_path):
    out = tmp_path / 'docs' / 'samples.png'
    command = [sys.executable, '-m', 'tfp_flows.run.figures', f'--workdir={digits_workdir}']
    result = subprocess.run(
        [*command, f'--out={out}'],
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHONPATH': os.getcwd()},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert 'could not be found in the restored object' not in result.stderr  # The optimizer.
    assert f'Wrote {out} (844x454 pixels).' in result.stdout
    expected = _read_png(digits_workdir / 'samples/epoch_0001.png')
    np.testing.assert_array_equal(_read_png(out), expected)


def test_the_command_takes_temperatures_and_refuses_to_overwrite(digits_workdir, tmp_path, capsys):
    out = str(tmp_path / 'samples.png')
    args = [f'--workdir={digits_workdir}', f'--out={out}', '--temperatures', '0.5', '0.7', '1']
    assert figures.main(args) == 0
    assert _read_png(out).shape == (454, 12 + 3 * 398 + 2 * 24 + 12, 3)
    before = _read_png(out)
    assert figures.main([f'--workdir={digits_workdir}', f'--out={out}']) == 1
    error = capsys.readouterr().err
    assert error.startswith('Error: ') and 'already exists; pass --overwrite to replace it' in error
    np.testing.assert_array_equal(_read_png(out), before)
    assert figures.main([f'--workdir={digits_workdir}', f'--out={out}', '--overwrite']) == 0
    assert _read_png(out).shape == (454, 844, 3)


def test_the_command_draws_the_density_of_a_2d_run(moons_run, tmp_path):
    workdir = pathlib.Path(moons_run[0])
    out = tmp_path / 'density.png'
    assert figures.main([f'--workdir={workdir}', f'--out={out}']) == 0
    np.testing.assert_array_equal(_read_png(out), _read_png(workdir / 'density.png'))


def test_the_command_names_a_workdir_that_is_a_file_in_one_line(tmp_path, capsys):
    (tmp_path / 'afile').write_text('')
    out = tmp_path / 'x.png'
    assert figures.main([f'--workdir={tmp_path / "afile"}', f'--out={out}']) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and 'afile' in error, error
    assert error.startswith('Error: '), error  # As train.py's.
    assert not out.exists()


@pytest.mark.parametrize(
    'args, message',
    [
        (
            ['--temperatures', '0'],
            r'`--temperatures` must be a non-empty list of finite numbers > 0; got \[0.0\]',
        ),
        ([], r'No config.json in workdir .*: not a tfp_flows run'),
    ],
)
def test_the_command_names_what_is_wrong_in_one_line(
    digits_workdir, tmp_path, capsys, args, message
):
    workdir = digits_workdir if args else tmp_path
    assert figures.main([f'--workdir={workdir}', f'--out={tmp_path / "x.png"}', *args]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert re.search(message, error), error
    assert not (tmp_path / 'x.png').exists()


def test_help_answers_before_tensorflow_loads():
    code = (
        'import sys, tfp_flows.run.figures as f\n'
        'try:\n    f.main(["--help"])\nexcept SystemExit as e:\n    assert e.code == 0\n'
        'assert "tensorflow" not in sys.modules, "TensorFlow was imported"\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHONPATH': os.getcwd()},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert '--out_dir' in result.stdout and '--workdir' in result.stdout


def test_the_command_needs_one_output(tmp_path, capsys):
    for outputs in ([], [f'--out={tmp_path / "a.png"}', f'--out_dir={tmp_path}']):
        with pytest.raises(SystemExit) as exit_:
            figures.main([f'--workdir={tmp_path}', *outputs])
        assert exit_.value.code == 2
    assert '--out' in capsys.readouterr().err


def _workdir(tmp_path, conditional):
    """A run's workdir by hand: config.json and a 'best' checkpoint of a small digits Glow."""
    config = affine_digits.get_config()
    config.model.update(num_levels=2, num_steps=1, hidden_channels=8)
    config.dequantizer.kind = 'uniform'  # The checkpoint below holds a flow alone.
    resolved = config.to_dict()  # With what a run records from its data.
    resolved['data'].update(event_shape=[8, 8, 1], num_bins=17)
    resolved['model']['conditional_shape'] = [10] if conditional else None
    workdir = tmp_path / ('conditional' if conditional else 'plain')
    flow = build_flow(resolved['model'], (8, 8, 1))
    checks.randomize_variables(flow, seed=3, scale=0.05)
    tf.train.Checkpoint(flow=flow).save(str(workdir / 'checkpoints' / 'best' / 'ckpt'))
    (workdir / 'config.json').write_text(json.dumps(resolved))
    return workdir


@pytest.mark.parametrize('conditional', [False, True])
def test_the_command_writes_the_latent_figures_of_a_run(tmp_path, conditional, capsys):
    workdir = _workdir(tmp_path, conditional)
    out_dir = tmp_path / 'figures'
    argv = ['--workdir', str(workdir), '--out_dir', str(out_dir), '--num_examples', '60']
    assert figures.main(argv) == 0
    expected = {'interpolations', 'temperatures', 'directions'}
    if conditional:
        expected.add('class_samples')
    assert {name[:-4] for name in os.listdir(out_dir)} == expected
    directions = tf.io.decode_png(tf.io.read_file(str(out_dir / 'directions.png')))
    assert directions.shape[0] > 10 * 64  # One row of >= 64-pixel images per digit.
    assert 'class k of: 0, 1, 2' in capsys.readouterr().out
    assert figures.main(argv) == 1
    assert 'pass --overwrite' in capsys.readouterr().err
    assert figures.main([*argv, '--overwrite']) == 0


def test_the_latent_command_explains_a_missing_run_and_bad_flags(tmp_path, capsys):
    out_dir = ['--out_dir', str(tmp_path / 'f')]
    assert figures.main(['--workdir', str(tmp_path), *out_dir]) == 1
    assert 'No config.json in workdir' in capsys.readouterr().err
    assert figures.main(['--workdir', str(tmp_path), *out_dir, '--num_examples', '5']) == 1
    assert '`--num_examples` must be an int >= 12; got 5' in capsys.readouterr().err
    with pytest.raises(ValueError, match='The latent figures need image data'):
        figures.latent_figures(_moons_workdir(tmp_path))


def _moons_workdir(tmp_path):
    """A 2-D run's workdir by hand: config.json and a 'best' checkpoint."""
    resolved = realnvp_moons.get_config().to_dict()  # With what a run records.
    resolved['data'].update(event_shape=[2], num_bins=None)
    resolved['model']['conditional_shape'] = None
    workdir = tmp_path / 'moons'
    flow = build_flow(resolved['model'], (2,))
    tf.train.Checkpoint(flow=flow).save(str(workdir / 'checkpoints' / 'best' / 'ckpt'))
    (workdir / 'config.json').write_text(json.dumps(resolved))
    return workdir
