"""The figure command: a finished run's workdir in, the run's picture out."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from configs import default, realnvp_moons
from tfp_flows.run import experiment
from tfp_flows.tools import figures


def _tiny(config):
    config.model.num_levels = 2
    config.model.num_steps = 1
    config.model.hidden_channels = 8
    config.dequantizer.update(num_steps=2, hidden_channels=4, context_channels=2)
    config.eval.iw_samples = 0
    config.train.epochs = 1
    config.train.warmup_steps = 5
    return config


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('digits') / 'run'
    experiment.train_and_evaluate(_tiny(default.get_config()), str(workdir), verbose=0)
    return workdir


def test_the_command_draws_the_runs_last_samples_again(digits_run, tmp_path):
    out = tmp_path / 'docs' / 'samples.png'
    command = [sys.executable, '-m', 'tfp_flows.tools.figures', f'--workdir={digits_run}']
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
    np.testing.assert_array_equal(_read_png(out), _read_png(digits_run / 'samples/epoch_0001.png'))


def test_the_command_takes_temperatures_and_refuses_to_overwrite(digits_run, tmp_path, capsys):
    out = str(tmp_path / 'samples.png')
    args = [f'--workdir={digits_run}', f'--out={out}', '--temperatures', '0.5', '0.7', '1']
    assert figures.main(args) == 0
    assert _read_png(out).shape == (454, 12 + 3 * 398 + 2 * 24 + 12, 3)
    before = _read_png(out)
    assert figures.main([f'--workdir={digits_run}', f'--out={out}']) == 1
    assert 'already exists; pass --overwrite to replace it' in capsys.readouterr().err
    np.testing.assert_array_equal(_read_png(out), before)
    assert figures.main([f'--workdir={digits_run}', f'--out={out}', '--overwrite']) == 0
    assert _read_png(out).shape == (454, 844, 3)


def test_the_command_draws_the_density_of_a_2d_run(tmp_path):
    config = _tiny(realnvp_moons.get_config())
    config.model.num_steps = 2
    workdir = tmp_path / 'moons'
    experiment.train_and_evaluate(config, str(workdir), verbose=0)
    out = tmp_path / 'density.png'
    assert figures.main([f'--workdir={workdir}', f'--out={out}']) == 0
    np.testing.assert_array_equal(_read_png(out), _read_png(workdir / 'density.png'))


def test_the_command_names_a_workdir_that_is_a_file_in_one_line(tmp_path, capsys):
    (tmp_path / 'afile').write_text('')
    out = tmp_path / 'x.png'
    assert figures.main([f'--workdir={tmp_path / "afile"}', f'--out={out}']) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and 'afile' in error, error
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
def test_the_command_names_what_is_wrong_in_one_line(digits_run, tmp_path, capsys, args, message):
    workdir = digits_run if args else tmp_path
    assert figures.main([f'--workdir={workdir}', f'--out={tmp_path / "x.png"}', *args]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert re.search(message, error), error
    assert not (tmp_path / 'x.png').exists()
