"""Tests of tfp_flows/tools/latent.py: interpolations, temperature sweeps and class directions.

The command that writes the latent figures of a run: tests/tools/test_figures.py.
"""

import checks
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.tools import latent

IMAGE = (8, 8, 1)
SMALL = dict(num_levels=2, num_steps=1, hidden_channels=8)


def _images(count, seed):
    return tf.random.stateless_uniform([count, *IMAGE], [3, seed], 0.05, 0.95, dtype=tf.float64)


@pytest.fixture(scope='module')
def flows():
    """A random Glow, and one conditional on one-hot labels of 3 classes (float64)."""
    plain = checks.randomize_variables(tfp_flows.glow(IMAGE, **SMALL, dtype=tf.float64), seed=1)
    conditional = tfp_flows.glow(IMAGE, **SMALL, conditional_shape=(3,), dtype=tf.float64)
    return plain, checks.randomize_variables(conditional, seed=2)


@pytest.mark.parametrize('path', ['linear', 'spherical'])
def test_interpolations_go_from_one_image_to_the_other(flows, path):
    plain, conditional = flows
    start, end = _images(2, 1), _images(2, 2)
    for flow, context in ((plain, None), (conditional, tf.one_hot([0, 2], 3, dtype=tf.float64))):
        path_images = latent.interpolate(flow, start, end, 5, context, path=path)
        assert path_images.shape == [2, 5, *IMAGE]
        np.testing.assert_allclose(path_images[:, 0], start, atol=1e-8)
        np.testing.assert_allclose(path_images[:, -1], end, atol=1e-8)
    z_start, z_end = plain.bijector.inverse(start), plain.bijector.inverse(end)
    middle = latent.interpolate(plain, start, end, 3, path=path)[:, 1]
    if path == 'linear':
        expected = plain.bijector.forward((z_start + z_end) / 2)
    else:  # Halfway along the great circle: the normalised sum, at the radius of the ends.
        angle = np.arccos(
            np.sum(z_start * z_end, axis=(1, 2, 3))
            / (np.linalg.norm(np.reshape(z_start, [2, -1]), axis=1))
            / (np.linalg.norm(np.reshape(z_end, [2, -1]), axis=1))
        )
        weight = (np.sin(angle / 2) / np.sin(angle))[:, None, None, None]
        expected = plain.bijector.forward(weight * (z_start + z_end))
    np.testing.assert_allclose(middle, expected, rtol=1e-8, atol=1e-8)


def test_interpolation_errors(flows):
    plain, _ = flows
    with pytest.raises(ValueError, match=r'`num_points` must be an int >= 2; got 1'):
        latent.interpolate(plain, _images(1, 1), _images(1, 2), 1)
    with pytest.raises(ValueError, match=r"`path` must be one of \('linear', 'spherical'\)"):
        latent.interpolate(plain, _images(1, 1), _images(1, 2), path='geodesic')
    with pytest.raises(ValueError, match=r'must have the same shape; got \(1, 8, 8, 1\) and \(2,'):
        latent.interpolate(plain, _images(1, 1), _images(2, 2))


def test_temperature_sweep_scales_one_base_noise(flows):
    plain, conditional = flows
    sweep = latent.temperature_sweep(plain, [0.5, 1.0], 3, seed=4)
    assert sweep.shape == [2, 3, *IMAGE]
    for row, temperature in zip(sweep, [0.5, 1.0], strict=True):
        np.testing.assert_allclose(row, tfp_flows.sample(plain, 3, temperature, seed=4), rtol=1e-10)
    context = tf.one_hot([1, 1, 1], 3, dtype=tf.float64)
    conditional_sweep = latent.temperature_sweep(conditional, [0.7], 3, 4, context)
    np.testing.assert_allclose(
        conditional_sweep[0],
        tfp_flows.sample(conditional, 3, 0.7, seed=4, conditional_input=context),
        rtol=1e-10,
    )
    message = r'`temperatures` must be a non-empty list of finite numbers > 0; got '
    with pytest.raises(ValueError, match=message + r'\[0\.0, 1\.0\]'):
        latent.temperature_sweep(plain, [0.0, 1.0], 3, seed=4)
    with pytest.raises(ValueError, match=message + r'\[\]'):
        latent.temperature_sweep(plain, [], 3, seed=4)


def test_class_directions_and_moves_on_a_flow_that_is_the_identity():
    # A fresh vector Real NVP maps x to itself, so the directions are those of the data.
    flow = tfp_flows.real_nvp((3,), num_steps=2, dtype=tf.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    labels = np.arange(30) % 3
    directions = latent.class_directions(flow, x, labels, 3, batch_size=7)
    for k in range(3):
        expected = x[labels == k].mean(axis=0) - x[labels != k].mean(axis=0)
        np.testing.assert_allclose(directions[k], expected, rtol=1e-10)
    moved = latent.move(flow, x[:2], directions[1], [0.0, 2.0])
    assert moved.shape == [2, 2, 3]
    np.testing.assert_allclose(moved[:, 0], x[:2], rtol=1e-10)
    np.testing.assert_allclose(moved[:, 1], x[:2] + 2 * directions[1].numpy(), rtol=1e-10)


def test_class_direction_errors():
    flow = tfp_flows.real_nvp((3,), num_steps=2, dtype=tf.float64)
    x = np.zeros([4, 3])
    with pytest.raises(ValueError, match=r'`labels` must lie in \[0, 2\); got values from 0 to 2'):
        latent.class_directions(flow, x, [0, 1, 2, 0], 2)
    with pytest.raises(ValueError, match=r'`labels` must be ints of shape \[4\]'):
        latent.class_directions(flow, x, [0, 1], 2)
    with pytest.raises(ValueError, match=r'Every class needs examples .*got counts \[4, 0\]'):
        latent.class_directions(flow, x, [0, 0, 0, 0], 2)
    with pytest.raises(
        ValueError, match=r'`direction` must have the latent shape \[3\]; got \[2\]'
    ):
        latent.move(flow, x, np.zeros(2), [1.0])


def test_class_samples_give_one_row_per_class(flows):
    plain, conditional = flows
    samples = latent.class_samples(conditional, 3, 4, temperature=0.7, seed=1)
    assert samples.shape == [3, 4, *IMAGE]
    assert not np.allclose(samples[0], samples[1])
    np.testing.assert_allclose(
        samples[2],
        tfp_flows.sample(
            conditional, 4, 0.7, seed=1, conditional_input=tf.one_hot(2, 3, dtype=tf.float64)
        ),
        rtol=1e-10,
    )
    with pytest.raises(ValueError, match=r'needs a flow conditional on one-hot labels of 3'):
        latent.class_samples(plain, 3, 4)
    figure, grids = latent.class_sample_figure(conditional, 17, (0.7, 1.0), seed=1, num_per_class=4)
    assert [grid.shape for grid in grids] == [(3 * 66 + 2, 4 * 66 + 2, 1)] * 2  # 3 rows of 4.
    assert figure.shape[1] == 12 + 2 * grids[0].shape[1] + 24 + 12
    with pytest.raises(ValueError, match=r'class_sample_figure needs a flow conditional'):
        latent.class_sample_figure(plain, 17, (0.7,), seed=1)
