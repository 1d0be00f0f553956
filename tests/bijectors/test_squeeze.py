"""Tests of tfp_flows/bijectors/squeeze.py: inverse = 2x2 space-to-depth, forward its undoing."""

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import Squeeze

tfb = tfp.bijectors


def _numpy_squeeze(x):
    """y[i, j, (2a + b) * C + c] = x[2i + a, 2j + b, c], written out with loops."""
    *batch, height, width, channels = x.shape
    y = np.zeros([*batch, height // 2, width // 2, 4 * channels], x.dtype)
    for i in range(height // 2):
        for j in range(width // 2):
            for a in range(2):
                for b in range(2):
                    y[..., i, j, (2 * a + b) * channels : (2 * a + b + 1) * channels] = x[
                        ..., 2 * i + a, 2 * j + b, :
                    ]
    return y


@pytest.mark.parametrize('batch_shape', [[2], [2, 3], []])
def test_inverse_is_the_documented_space_to_depth(batch_shape):
    x = np.random.default_rng(0).standard_normal([*batch_shape, 4, 6, 3]).astype(np.float32)
    z = Squeeze().inverse(x)
    np.testing.assert_array_equal(z, _numpy_squeeze(x))
    np.testing.assert_array_equal(Squeeze().forward(tf.constant(z.numpy())), x)


def test_equals_tf_space_to_depth_and_depth_to_space():
    x = np.random.default_rng(3).standard_normal([2, 8, 4, 5]).astype(np.float32)
    np.testing.assert_array_equal(Squeeze().inverse(x), tf.nn.space_to_depth(x, 2))
    z = np.random.default_rng(4).standard_normal([2, 4, 2, 20]).astype(np.float32)
    np.testing.assert_array_equal(Squeeze().forward(z), tf.nn.depth_to_space(z, 2))


@pytest.mark.parametrize('inverted', [False, True])
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_log_det_matches_autodiff_both_ways(inverted, dtype, regime):
    bijector = checks.in_regime(tfb.Invert(Squeeze()) if inverted else Squeeze(), regime)
    x_shape, y_shape = [2, 2, 2, 8], [2, 4, 4, 2]
    if inverted:
        x_shape, y_shape = y_shape, x_shape
    x = tf.random.stateless_normal(x_shape, [3, 1], dtype=dtype)
    y = tf.random.stateless_normal(y_shape, [3, 2], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, 3, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, y, 3, **tol
    )
    checks.assert_round_trip(bijector, x, y, 3, dtype)


def test_event_shapes():
    bijector = Squeeze()
    assert bijector.inverse_event_shape([5, 8, 6, 3]) == [5, 4, 3, 12]
    assert bijector.forward_event_shape([4, 3, 12]) == [8, 6, 3]
    assert bijector.inverse_event_shape([None, 8, None, 3]).as_list() == [None, 4, None, 12]
    np.testing.assert_array_equal(bijector.inverse_event_shape_tensor([5, 8, 6, 3]), [5, 4, 3, 12])
    np.testing.assert_array_equal(bijector.forward_event_shape_tensor([4, 3, 12]), [8, 6, 3])


def test_unknown_batch_and_spatial_dims_inside_tf_function():
    bijector = Squeeze()
    inverse = tf.function(
        bijector.inverse, input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32)]
    )
    x = np.random.default_rng(1).standard_normal([3, 4, 6, 2]).astype(np.float32)
    np.testing.assert_array_equal(inverse(x), _numpy_squeeze(x))
    inverse = tf.function(bijector.inverse, input_signature=[tf.TensorSpec(None, tf.float32)])
    np.testing.assert_array_equal(inverse(x[None]), _numpy_squeeze(x)[None])


@pytest.mark.parametrize(
    ('shape', 'message'),
    [
        ([2, 7, 8, 1], r'Squeeze needs an even height; got height 7 in shape \[2, 7, 8, 1\]'),
        ([2, 8, 5, 1], r'Squeeze needs an even width; got width 5 in shape \[2, 8, 5, 1\]'),
        ([8, 8], r'Squeeze expects a shape \[\.\.\., H, W, C\]; got \[8, 8\]'),
    ],
)
def test_inverse_rejects_bad_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        Squeeze().inverse(tf.zeros(shape))
    with pytest.raises(ValueError, match=message):
        tfb.Invert(Squeeze()).forward(tf.zeros(shape))
    with pytest.raises(ValueError, match=message):
        Squeeze().inverse_event_shape(shape)


@pytest.mark.parametrize(
    ('shape', 'message'),
    [
        ([2, 4, 4, 6], r'needs channels divisible by 4; got channels 6 in shape \[2, 4, 4, 6\]'),
        ([4, 4], r'Squeeze expects a shape \[\.\.\., H, W, C\]; got \[4, 4\]'),
    ],
)
def test_forward_rejects_bad_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        Squeeze().forward(tf.zeros(shape))
    with pytest.raises(ValueError, match=message):
        tfb.Invert(Squeeze()).inverse(tf.zeros(shape))


def test_rejects_integer_input():
    with pytest.raises(TypeError, match=r'Squeeze expects a floating-point .*got dtype int32'):
        Squeeze().inverse(tf.zeros([2, 4, 4, 1], tf.int32))
    with pytest.raises(TypeError, match=r'Squeeze expects a floating-point .*got dtype int32'):
        tfb.Invert(Squeeze()).inverse(tf.zeros([2, 4, 4, 4], tf.int32))


def test_xla_matches_eager():
    z = tf.random.stateless_normal([2, 2, 2, 8], [3, 9])
    x = tf.random.stateless_normal([2, 4, 4, 2], [3, 10])
    checks.assert_xla_matches_eager(Squeeze(), z, x, 3)
