"""Tests of tfp_flows/bijectors/invertible_conv.py: plain and LU-decomposed 1x1 convolutions."""

import checks
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.bijectors import InvertibleConv1x1, LUInvertibleConv1x1

CONVS = [InvertibleConv1x1, LUInvertibleConv1x1]
SHAPES = [((4, 4, 3), 3), ((4,), 1)]


def _random_conv(conv, num_channels, dtype, seed=0):
    return checks.randomize_variables(conv(num_channels, seed=seed, dtype=dtype), seed=seed)


@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize('conv', CONVS)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_log_det_matches_autodiff_both_ways(conv, event_shape, event_ndims, dtype, regime):
    bijector = checks.in_regime(_random_conv(conv, event_shape[-1], dtype), regime)
    x = tf.random.stateless_normal([2, *event_shape], [1, 1], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, event_ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, event_ndims, **tol
    )


@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize('conv', CONVS)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_round_trip(conv, event_shape, event_ndims, dtype, regime):
    bijector = checks.in_regime(_random_conv(conv, event_shape[-1], dtype), regime)
    x = tf.random.stateless_normal([2, *event_shape], [1, 2], dtype=dtype)
    y = tf.random.stateless_normal([2, *event_shape], [1, 3], dtype=dtype)
    checks.assert_round_trip(bijector, x, y, event_ndims, dtype)


@pytest.mark.parametrize('conv', CONVS)
def test_forward_multiplies_every_pixel_by_the_weights(conv):
    bijector = _random_conv(conv, 3, tf.float64)
    weights, log_det = bijector.weights_and_log_det()
    x = tf.random.stateless_normal([2, 4, 4, 3], [1, 4], dtype=tf.float64)
    np.testing.assert_allclose(bijector.forward(x), np.einsum('ij,nhwj->nhwi', weights, x))
    np.testing.assert_allclose(log_det, np.linalg.slogdet(weights.numpy())[1])
    inverse_weights, _ = bijector.inverse_weights_and_log_det()
    np.testing.assert_allclose(inverse_weights @ weights, np.eye(3), atol=1e-12)


@pytest.mark.parametrize('conv', CONVS)
def test_starts_as_a_seeded_rotation(conv):
    weights = conv(4, seed=3).weights_and_log_det()[0].numpy()
    np.testing.assert_allclose(weights @ weights.T, np.eye(4), atol=1e-5)
    np.testing.assert_array_equal(weights, conv(4, seed=3).weights_and_log_det()[0])
    assert not np.allclose(weights, conv(4, seed=4).weights_and_log_det()[0])


def test_lu_permutation_and_sign_are_fixed_state():
    bijector = LUInvertibleConv1x1(4, seed=1)
    permutation, sign = bijector.permutation.numpy(), bijector.sign.numpy()
    trainable = {v.ref() for v in bijector.trainable_variables}
    assert {v.ref() for v in (bijector.log_scale, bijector.lower, bijector.upper)} == trainable
    assert bijector.permutation.ref() not in trainable and bijector.sign.ref() not in trainable
    checks.randomize_variables(bijector, seed=1)
    np.testing.assert_array_equal(bijector.permutation, permutation)
    np.testing.assert_array_equal(bijector.sign, sign)


def test_lu_weights_stay_invertible_for_any_parameters():
    bijector = LUInvertibleConv1x1(4, seed=1, dtype=tf.float64)
    bijector.lower.assign(10.0 * tf.ones([4, 4], tf.float64))
    bijector.upper.assign(-10.0 * tf.ones([4, 4], tf.float64))
    bijector.log_scale.assign(tf.constant([-3.0, 3.0, 0.0, 1.0], tf.float64))
    weights, log_det = bijector.weights_and_log_det()
    np.testing.assert_allclose(log_det, 1.0)
    np.testing.assert_allclose(np.linalg.slogdet(weights.numpy())[1], 1.0, rtol=1e-8)


def test_plain_conv_validate_args_rejects_singular_weights():
    bijector = InvertibleConv1x1(3, validate_args=True)
    checks.randomize_variables(bijector, seed=2)
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(tf.ones([1, 3]), event_ndims=1),
        [np.linalg.slogdet(bijector.weights.numpy().astype(np.float64))[1]],
        rtol=1e-6,
    )
    bijector.weights.assign([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match='weights are singular'):
        bijector.forward_log_det_jacobian(tf.ones([1, 3]), event_ndims=1)


@pytest.mark.parametrize('conv', CONVS)
@pytest.mark.parametrize('num_channels', [0, 1.5])
def test_rejects_bad_num_channels(conv, num_channels):
    with pytest.raises(ValueError, match=r'`num_channels` must be a positive int; got '):
        conv(num_channels)


@pytest.mark.parametrize('conv', CONVS)
def test_rejects_wrong_channel_count(conv):
    name = conv.__name__
    with pytest.raises(ValueError, match=rf'{name} has 3 channels .*shape \[2, 4, 4, 2\]'):
        conv(3).forward(tf.zeros([2, 4, 4, 2]))


@pytest.mark.parametrize('conv', CONVS)
def test_xla_matches_eager(conv):
    bijector = _random_conv(conv, 3, tf.float32)
    x = tf.random.stateless_normal([2, 4, 4, 3], [1, 9])
    y = tf.random.stateless_normal([2, 4, 4, 3], [1, 10])
    checks.assert_xla_matches_eager(bijector, x, y, 3)
