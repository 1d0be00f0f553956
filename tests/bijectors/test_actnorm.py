"""Tests of tfp_flows/bijectors/actnorm.py: ActNorm's map, log-det and data-dependent init."""

import checks
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.bijectors import ActNorm

# Event shape and the event_ndims TFP reduces the per-vector log-det over.
SHAPES = [((4, 4, 3), 3), ((3,), 1)]


def _random_act_norm(num_channels, dtype, seed=0):
    return checks.randomize_variables(ActNorm(num_channels, dtype=dtype), seed=seed)


@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_log_det_matches_autodiff_both_ways(event_shape, event_ndims, dtype, regime):
    bijector = checks.in_regime(_random_act_norm(event_shape[-1], dtype), regime)
    x = tf.random.stateless_normal([2, *event_shape], [0, 1], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, event_ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, event_ndims, **tol
    )


@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_round_trip(event_shape, event_ndims, dtype, regime):
    bijector = checks.in_regime(_random_act_norm(event_shape[-1], dtype), regime)
    x = tf.random.stateless_normal([2, *event_shape], [0, 2], dtype=dtype)
    y = tf.random.stateless_normal([2, *event_shape], [0, 3], dtype=dtype)
    checks.assert_round_trip(bijector, x, y, event_ndims, dtype)


def test_forward_is_the_documented_affine_map():
    bijector = _random_act_norm(3, tf.float64)
    x = tf.random.stateless_normal([2, 4, 4, 3], [0, 4], dtype=tf.float64)
    scale = np.exp(bijector.log_scale.numpy())
    np.testing.assert_allclose(bijector.forward(x), x.numpy() * scale + bijector.shift.numpy())
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(x, event_ndims=3),
        [16 * bijector.log_scale.numpy().sum()] * 2,
    )


def test_fresh_act_norm_is_the_identity():
    x = tf.random.stateless_normal([2, 4, 4, 3], [0, 5])
    bijector = ActNorm(3)
    np.testing.assert_array_equal(bijector.forward(x), x)
    np.testing.assert_array_equal(bijector.inverse_log_det_jacobian(x, event_ndims=3), [0, 0])
    assert not bijector.initialized.numpy()


@pytest.mark.parametrize('dtype', checks.DTYPES)
def test_initialize_standardizes_each_channel_of_the_inverse(dtype):
    rng = np.random.default_rng(0)
    y = rng.normal(loc=[3.0, -1.0, 0.5], scale=[0.1, 2.0, 5.0], size=[8, 4, 4, 3])
    bijector = ActNorm(3, dtype=dtype)
    bijector.initialize(y)
    x = bijector.inverse(tf.constant(y, dtype)).numpy()
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 1, 2)), 1.0, rtol=1e-5)
    assert bijector.initialized.numpy()


def test_initialize_is_idempotent():
    bijector = ActNorm(2)
    bijector.initialize(np.random.default_rng(0).normal(size=[16, 2]))
    shift, log_scale = bijector.shift.numpy(), bijector.log_scale.numpy()
    bijector.initialize(np.random.default_rng(1).normal(3.0, 4.0, size=[16, 2]))
    np.testing.assert_array_equal(bijector.shift, shift)
    np.testing.assert_array_equal(bijector.log_scale, log_scale)


def test_initialize_floors_the_std_of_a_constant_channel():
    y = np.stack([np.full([8, 4, 4], 2.0), np.random.default_rng(0).normal(size=[8, 4, 4])], -1)
    bijector = ActNorm(2, min_std=1e-3)
    with pytest.warns(UserWarning, match=r'channel\(s\) \[0\] of the data .* are constant'):
        bijector.initialize(y)
    np.testing.assert_allclose(bijector.log_scale[0], np.log(1e-3), rtol=1e-6)
    np.testing.assert_allclose(bijector.shift[0], 2.0)
    x = bijector.inverse(tf.constant(y, tf.float32))
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x[..., 0], 0.0)


def test_initialize_inside_tf_function():
    bijector = ActNorm(2)
    y = tf.constant(np.random.default_rng(0).normal([1.0, -2.0], [3.0, 0.5], size=[64, 2]))
    tf.function(bijector.initialize)(tf.cast(y, tf.float32))
    x = bijector.inverse(tf.cast(y, tf.float32)).numpy()
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1.0, rtol=1e-4)
    assert bijector.initialized.numpy()


def test_variables_are_tracked_and_the_flag_is_not_trainable():
    bijector = ActNorm(3)
    assert {v.name for v in bijector.trainable_variables} == {
        'act_norm/shift:0',
        'act_norm/log_scale:0',
    }
    assert len(bijector.variables) == 3


@pytest.mark.parametrize('num_channels', [0, -1, 2.0, None])
def test_rejects_bad_num_channels(num_channels):
    with pytest.raises(ValueError, match=r'`num_channels` must be a positive int; got '):
        ActNorm(num_channels)


@pytest.mark.parametrize('min_std', [0.0, -1.0, float('inf')])
def test_rejects_bad_min_std(min_std):
    with pytest.raises(ValueError, match=rf'`min_std` must be a finite number > 0; got {min_std}'):
        ActNorm(2, min_std=min_std)


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r'ActNorm has 3 channels .*got .*shape \[2, 4, 4, 5\]'):
        ActNorm(3).forward(tf.zeros([2, 4, 4, 5]))
    with pytest.raises(ValueError, match=r'ActNorm has 3 channels .*shape \[2, 4\]'):
        ActNorm(3).initialize(tf.zeros([2, 4]))


def test_rejects_integer_input_saying_what_to_do():
    with pytest.raises(TypeError, match=r'dtype float32; got `y` of dtype int32: dequantize'):
        ActNorm(3).inverse(tf.zeros([2, 4, 4, 3], tf.int32))


def test_validate_args_rejects_non_finite_input():
    with pytest.raises(tf.errors.InvalidArgumentError, match='ActNorm input has NaN or inf'):
        ActNorm(1, validate_args=True).forward(tf.constant([[np.nan]]))


def test_xla_matches_eager():
    bijector = _random_act_norm(3, tf.float32)
    x = tf.random.stateless_normal([2, 4, 4, 3], [0, 9])
    y = tf.random.stateless_normal([2, 4, 4, 3], [0, 10])
    checks.assert_xla_matches_eager(bijector, x, y, 3)
