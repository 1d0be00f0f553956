"""Tests of tests/checks.py: the autodiff Jacobian and log-det check the other tests rely on."""

import checks
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.bijectors import AffineCoupling


def _random_coupling():
    bijector = AffineCoupling((2, 2, 2), hidden_channels=4, dtype=tf.float64)
    return checks.randomize_variables(bijector, seed=3)


def test_batch_jacobian_equals_gradient_tape_batch_jacobian():
    bijector = _random_coupling()
    x = tf.random.stateless_normal([3, 2, 2, 2], [8, 1], dtype=tf.float64)
    flat_x = tf.reshape(x, [3, -1])
    with tf.GradientTape() as tape:
        tape.watch(flat_x)
        flat_y = tf.reshape(bijector.forward(tf.reshape(flat_x, x.shape)), [3, -1])
    expected = tape.batch_jacobian(flat_y, flat_x)
    np.testing.assert_allclose(checks.batch_jacobian(bijector.forward, x), expected, atol=1e-14)
    assert not np.allclose(expected, np.eye(8))


def test_log_det_check_fails_on_a_wrong_log_det():
    bijector = _random_coupling()
    x = tf.random.stateless_normal([3, 2, 2, 2], [8, 2], dtype=tf.float64)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, 3, rtol=1e-12, atol=1e-12
    )
    with pytest.raises(AssertionError):
        checks.assert_log_det_matches_autodiff(
            bijector.forward,
            lambda x, event_ndims: bijector.forward_log_det_jacobian(x, event_ndims) + 1e-6,
            x,
            3,
            rtol=1e-9,
            atol=1e-9,
        )


def test_randomize_variables_keeps_fixed_state_and_moves_the_rest():
    bijector = AffineCoupling((2, 2, 2), hidden_channels=4)
    before = [v.numpy() for v in bijector.trainable_variables]
    checks.randomize_variables(bijector, seed=0)
    for old, variable in zip(before, bijector.trainable_variables, strict=True):
        assert np.all(old != variable.numpy())
