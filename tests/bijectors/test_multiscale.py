"""Tests of tfp_flows/bijectors/multiscale.py: FactorOut with and without a split prior."""

import re

import checks
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows import networks
from tfp_flows.bijectors import ActNorm, AffineCoupling, Chain, FactorOut

# (split_prior, hidden_channels): no prior, Glow's zero conv, a ConvNet prior.
PRIORS = [(False, None), (True, None), (True, 8)]
# Every prior on both shapes eagerly; inside tf.function on one shape.
LOG_DET_CASES = checks.regime_cases(
    [(shape, *prior) for shape in [(4, 4, 4), (2, 4, 3)] for prior in PRIORS],
    [((4, 4, 4), *prior) for prior in PRIORS],
)


def _inner(height, width, channels, dtype):
    return Chain(
        [
            ActNorm(channels, dtype=dtype),
            AffineCoupling(
                (height, width, channels), mask='checkerboard', hidden_channels=8, dtype=dtype
            ),
        ]
    )


def _random_factor_out(event_shape, split_prior, hidden_channels, dtype, seed=0):
    height, width, channels = event_shape
    bijector = FactorOut(
        event_shape,
        _inner(height, width, channels // 2, dtype),
        split_prior=split_prior,
        hidden_channels=hidden_channels,
        dtype=dtype,
    )
    return checks.randomize_variables(bijector, seed=seed)


@pytest.mark.parametrize(
    ('regime', 'dtype', 'event_shape', 'split_prior', 'hidden_channels'), LOG_DET_CASES
)
def test_log_det_matches_autodiff_both_ways(
    event_shape, split_prior, hidden_channels, dtype, regime
):
    bijector = checks.in_regime(
        _random_factor_out(event_shape, split_prior, hidden_channels, dtype), regime
    )
    x = tf.random.stateless_normal([2, *event_shape], [4, 1], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, 3, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, 3, **tol
    )


@pytest.mark.parametrize(('split_prior', 'hidden_channels'), PRIORS)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_round_trip(split_prior, hidden_channels, dtype, regime):
    bijector = checks.in_regime(
        _random_factor_out((4, 4, 4), split_prior, hidden_channels, dtype), regime
    )
    x = tf.random.stateless_normal([2, 4, 4, 4], [4, 2], dtype=dtype)
    y = tf.random.stateless_normal([2, 4, 4, 4], [4, 3], dtype=dtype)
    checks.assert_round_trip(bijector, x, y, 3, dtype)


def test_without_prior_the_factored_half_passes_through():
    bijector = _random_factor_out((4, 4, 3), False, None, tf.float64)
    assert bijector.prior is None
    y = tf.random.stateless_normal([2, 4, 4, 3], [4, 4], dtype=tf.float64)
    z = bijector.inverse(y).numpy()
    np.testing.assert_array_equal(z[..., 1:], y[..., 1:])
    np.testing.assert_allclose(z[..., :1], bijector.inner.inverse(y[..., :1]))
    np.testing.assert_allclose(
        bijector.inverse_log_det_jacobian(y, event_ndims=3),
        bijector.inner.inverse_log_det_jacobian(y[..., :1], event_ndims=3),
    )


@pytest.mark.parametrize('hidden_channels', [None, 8])
def test_prior_scales_the_factored_half_given_the_kept_half(hidden_channels):
    bijector = _random_factor_out((4, 4, 4), True, hidden_channels, tf.float64)
    expected_prior = networks.ZeroConv if hidden_channels is None else networks.ConvNet
    assert isinstance(bijector.prior, expected_prior)
    y = tf.random.stateless_normal([2, 4, 4, 4], [4, 5], dtype=tf.float64)
    mean, raw = np.split(bijector.prior(y[..., :2]).numpy(), 2, axis=-1)
    log_scale = 2.0 * np.tanh(raw / 2.0)
    z = bijector.inverse(y).numpy()
    np.testing.assert_allclose(z[..., 2:], (y[..., 2:] - mean) * np.exp(-log_scale))
    np.testing.assert_allclose(
        bijector.inverse_log_det_jacobian(y, event_ndims=3),
        bijector.inner.inverse_log_det_jacobian(y[..., :2], event_ndims=3)
        - log_scale.sum(axis=(1, 2, 3)),
    )
    y_other_kept = tf.concat([y[..., :2] + 1.0, y[..., 2:]], axis=-1)
    assert np.all(np.abs(bijector.inverse(y_other_kept)[..., 2:] - z[..., 2:]) > 1e-9)


@pytest.mark.parametrize('hidden_channels', [None, 8])
def test_fresh_prior_is_the_standard_normal(hidden_channels):
    bijector = FactorOut((4, 4, 4), ActNorm(2), hidden_channels=hidden_channels)
    y = tf.random.stateless_normal([2, 4, 4, 4], [4, 6])
    np.testing.assert_array_equal(bijector.inverse(y), y)
    np.testing.assert_array_equal(bijector.forward_log_det_jacobian(y, event_ndims=3), [0, 0])


def test_variables_of_inner_and_prior_are_tracked():
    bijector = _random_factor_out((4, 4, 4), True, 8, tf.float32)
    expected = {
        v.ref() for v in [*bijector.inner.trainable_variables, *bijector.prior.trainable_variables]
    }
    assert {v.ref() for v in bijector.trainable_variables} == expected
    assert len(expected) == 2 + 6 + 6


@pytest.mark.parametrize('event_shape', [(4, 4, 1), (4, 4), (16,), (4, 0, 2), (4.0, 4, 2)])
def test_rejects_bad_event_shape(event_shape):
    expected = r'\[H, W, C\] of positive ints' if event_shape[-1] != 1 else r'C >= 2 channels'
    pattern = rf'`event_shape` must (be|have) {expected}.*; got {re.escape(repr(event_shape))}'
    with pytest.raises(ValueError, match=pattern):
        FactorOut(event_shape, ActNorm(1))


def test_refuses_a_prior_width_without_a_split_prior():
    with pytest.raises(ValueError, match=r'`hidden_channels` .*got hidden_channels=8 with split'):
        FactorOut((4, 4, 4), ActNorm(2), split_prior=False, hidden_channels=8)


def test_rejects_input_of_the_wrong_shape():
    bijector = FactorOut((4, 4, 4), ActNorm(2))
    message = r'FactorOut expects a tensor of shape \[\.\.\., 4, 4, 4\]; got shape \[2, 4, 4, 2\]'
    with pytest.raises(ValueError, match=message):
        bijector.inverse(tf.zeros([2, 4, 4, 2]))
    with pytest.raises(ValueError, match=message):
        bijector.forward(tf.zeros([2, 4, 4, 2]))


def test_xla_matches_eager():
    bijector = _random_factor_out((4, 4, 4), True, None, tf.float32)
    x = tf.random.stateless_normal([2, 4, 4, 4], [4, 9])
    y = tf.random.stateless_normal([2, 4, 4, 4], [4, 10])
    checks.assert_xla_matches_eager(bijector, x, y, 3)


def _conditional_factor_out(split_prior, dtype, seed=0):
    """A conditional FactorOut (context [2]) around a conditional coupling."""
    inner = Chain(
        [
            ActNorm(2, dtype=dtype),
            AffineCoupling(
                (4, 4, 2),
                mask='checkerboard',
                hidden_channels=8,
                conditional_shape=(2,),
                dtype=dtype,
            ),
        ]
    )
    bijector = FactorOut(
        (4, 4, 4), inner, split_prior=split_prior, conditional_shape=(2,), dtype=dtype
    )
    return checks.randomize_variables(bijector, seed=seed)


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize('split_prior', [False, True])
def test_conditional_log_det_matches_autodiff_at_random_contexts(split_prior, dtype):
    bijector = _conditional_factor_out(split_prior, dtype, seed=1)
    x = tf.random.stateless_normal([2, 4, 4, 4], [4, 7], dtype=dtype)
    context = tf.random.stateless_normal([2, 2], [4, 8], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    forward, inverse, fldj, ildj = (
        checks.with_context(f, context)
        for f in (
            bijector.forward,
            bijector.inverse,
            bijector.forward_log_det_jacobian,
            bijector.inverse_log_det_jacobian,
        )
    )
    checks.assert_log_det_matches_autodiff(forward, fldj, x, 3, **tol)
    checks.assert_log_det_matches_autodiff(inverse, ildj, x, 3, **tol)
    np.testing.assert_allclose(inverse(tf.identity(forward(x))), x, **checks.tolerance(dtype))


def test_the_context_sets_a_per_channel_term_of_the_split_prior():
    bijector = _conditional_factor_out(True, tf.float64, seed=2)
    y = tf.random.stateless_normal([2, 4, 4, 4], [4, 9], dtype=tf.float64)
    context = tf.random.stateless_normal([2, 2], [4, 10], dtype=tf.float64)
    params = bijector.prior(y[..., :2]).numpy()
    params += bijector.context_prior(context).numpy()[:, None, None, :]
    mean, raw = np.split(params, 2, axis=-1)
    log_scale = 2.0 * np.tanh(raw / 2.0)
    z = bijector.inverse(y, conditional_input=context).numpy()
    np.testing.assert_allclose(z[..., 2:], (y[..., 2:] - mean) * np.exp(-log_scale))
    assert bijector.structure()['conditional_shape'] == [2]
    fresh = FactorOut(
        (4, 4, 4),
        ActNorm(2, dtype=tf.float64),
        split_prior=False,
        conditional_shape=(3,),
        dtype=tf.float64,
    )
    np.testing.assert_array_equal(fresh.inverse(y, conditional_input=tf.ones([3], y.dtype)), y)
    with pytest.raises(ValueError, match=r"FactorOut 'factor_out' is conditional .*got no context"):
        fresh.inverse(y)
