"""Tests of tfp_flows/bijectors/preprocessing.py: LogitTransform and Centre."""

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import Centre, LogitTransform

tfb = tfp.bijectors
tfd = tfp.distributions

PREPROCESSING = [Centre, LogitTransform]
SHAPES = [((4, 4, 1), 3), ((3,), 1)]


def _data_and_latent(event_shape, dtype, seed):
    x = tf.random.stateless_uniform([2, *event_shape], [5, seed], 0.01, 0.99, dtype=dtype)
    z = tf.random.stateless_normal([2, *event_shape], [5, seed + 1], dtype=dtype)
    return x, z


@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize('preprocessing', PREPROCESSING)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_log_det_matches_autodiff_both_ways(preprocessing, event_shape, event_ndims, dtype, regime):
    bijector = checks.in_regime(preprocessing(event_shape, dtype=dtype), regime)
    x, z = _data_and_latent(event_shape, dtype, seed=0)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, z, event_ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, event_ndims, **tol
    )


@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize('preprocessing', PREPROCESSING)
@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_round_trip(preprocessing, event_shape, event_ndims, dtype, regime):
    bijector = checks.in_regime(preprocessing(event_shape, dtype=dtype), regime)
    x, z = _data_and_latent(event_shape, dtype, seed=2)
    checks.assert_round_trip(bijector, z, x, event_ndims, dtype)


def test_centre_shifts_by_one_half():
    x = tf.constant([[0.0, 0.25, 1.0]])
    np.testing.assert_allclose(Centre((3,)).inverse(x), [[-0.5, -0.25, 0.5]])
    np.testing.assert_allclose(Centre((3,)).forward_log_det_jacobian(x, event_ndims=1), [0.0])


@pytest.mark.parametrize('alpha', [0.0, 0.05])
def test_logit_is_the_documented_map(alpha):
    x = np.array([[0.01, 0.3, 0.5]])
    z = LogitTransform((3,), alpha=alpha, dtype=tf.float64).inverse(x).numpy()
    p = alpha + (1 - 2 * alpha) * x
    np.testing.assert_allclose(z, np.log(p) - np.log1p(-p))
    z = np.array([[-3.0, 0.0, 2.0]])
    sigmoid = 1 / (1 + np.exp(-z))
    bijector = LogitTransform((3,), alpha=alpha, dtype=tf.float64)
    np.testing.assert_allclose(bijector.forward(z), (sigmoid - alpha) / (1 - 2 * alpha))
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(z, event_ndims=1),
        np.sum(np.log(sigmoid * (1 - sigmoid) / (1 - 2 * alpha)), axis=-1),
    )


@pytest.mark.parametrize('alpha', [0.0, 0.05])
def test_logit_density_integrates_to_one_over_its_support(alpha):
    flow = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(np.float64(0.3), 1.5), [1]),
        LogitTransform((1,), alpha=alpha, dtype=tf.float64),
    )
    # forward maps the real line onto (-alpha, 1 - alpha) / (1 - 2 alpha), just past [0, 1].
    low, high = -alpha / (1 - 2 * alpha), (1 - alpha) / (1 - 2 * alpha)
    num_points = 20_000
    width = (high - low) / num_points
    x = low + (np.arange(num_points) + 0.5) * width
    mass = np.exp(flow.log_prob(x[:, np.newaxis])).sum() * width
    np.testing.assert_allclose(mass, 1.0, atol=1e-4)


@pytest.mark.parametrize('alpha', [0.05, 0.0, 0.2])
def test_logit_equals_tfp_sigmoid_with_low_and_high(alpha):
    low, high = -alpha / (1 - 2 * alpha), (1 - alpha) / (1 - 2 * alpha)
    sigmoid = tfb.Sigmoid(low=np.float64(low), high=np.float64(high))
    bijector = LogitTransform((3,), alpha=alpha, dtype=tf.float64)
    assert bijector.support == pytest.approx((low, high))
    x = np.array([[0.01, 0.3, 0.99], [0.5, 0.7, 0.2]])
    z = np.array([[-3.0, 0.0, 2.0], [1.0, -1.0, 0.5]])
    np.testing.assert_allclose(bijector.inverse(x), sigmoid.inverse(x), rtol=1e-14)
    np.testing.assert_allclose(bijector.forward(z), sigmoid.forward(z), rtol=1e-14)
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(z, 1), sigmoid.forward_log_det_jacobian(z, 1)
    )
    np.testing.assert_allclose(
        bijector.inverse_log_det_jacobian(x, 1), sigmoid.inverse_log_det_jacobian(x, 1)
    )


def test_centre_equals_tfp_shift():
    x = np.random.default_rng(0).uniform(size=[2, 4, 4, 1])
    shift = tfb.Shift(np.float64(0.5))
    centre = Centre((4, 4, 1), dtype=tf.float64)
    np.testing.assert_array_equal(centre.inverse(x), shift.inverse(x))
    np.testing.assert_array_equal(centre.forward(x), shift.forward(x))


@pytest.mark.parametrize('function', [False, True])
@pytest.mark.parametrize('pixel', [0.0, 1.0, -0.2, 1.5, np.nan])
def test_logit_log_prob_is_minus_inf_outside_its_support_never_nan(pixel, function):
    # With alpha = 0 the support is (0, 1): a pixel of exactly 0 or 1 is outside it.
    flow = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [3]), LogitTransform((3,), alpha=0.0)
    )
    log_prob = tf.function(flow.log_prob) if function else flow.log_prob
    values = log_prob(tf.constant([[0.5, 0.2, 0.7], [0.5, pixel, 0.7]])).numpy()
    assert np.isfinite(values[0])
    assert values[1] == -np.inf


@pytest.mark.parametrize('pixel', [0.0, 1.0])
def test_logit_validate_args_names_the_value_and_the_support(pixel):
    bijector = LogitTransform((3,), alpha=0.0, validate_args=True)
    message = (
        r'LogitTransform .* takes data in \(0.0, 1.0\) \(the open support of alpha=0.0; NaN is '
        rf'outside\); got 1 value\(s\) outside it, the first: \[{pixel:g}\]'
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        bijector.inverse(tf.constant([[0.5, pixel, 0.7]]))


def test_logit_samples_score_finite_where_the_sigmoid_saturates():
    bijector = LogitTransform((3,), alpha=0.05)
    z = tf.constant([[40.0, -40.0, 200.0]])  # sigmoid(40) rounds to 1 in float32.
    x = bijector.forward(z)
    low, high = bijector.support
    assert np.all((x.numpy() > low) & (x.numpy() < high))
    assert np.all(np.isfinite(bijector.inverse(x)))
    assert np.all(np.isfinite(bijector.inverse_log_det_jacobian(x, 1)))


@pytest.mark.parametrize('alpha', [0.5, -0.1, 1.0, float('nan'), '0.1', True])
def test_logit_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match=rf'`alpha` must be a number in \[0, 0.5\); got {alpha!r}'):
        LogitTransform((3,), alpha=alpha)


@pytest.mark.parametrize('preprocessing', PREPROCESSING)
@pytest.mark.parametrize('event_shape', [(), (4, 0), (4.0,)])
def test_rejects_bad_event_shape(preprocessing, event_shape):
    pattern = rf'`event_shape` must be a shape of positive ints; got {event_shape!r}'
    with pytest.raises(ValueError, match=pattern.replace('(', r'\(').replace(')', r'\)')):
        preprocessing(event_shape)


@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_rejects_input_of_the_wrong_shape(preprocessing):
    name = preprocessing.__name__
    bijector = preprocessing((4, 4, 1))
    with pytest.raises(ValueError, match=rf'{name} expects .*\[\.\.\., 4, 4, 1\]; got shape '):
        bijector.inverse(tf.zeros([2, 4, 4, 3]))
    with pytest.raises(ValueError, match=rf'{name} expects .*\[\.\.\., 4, 4, 1\]; got shape '):
        bijector.forward(tf.zeros([2, 8, 8, 1]))
    with pytest.raises(ValueError, match=rf'{name} expects .* got rank 2, shape \[4, 4\]'):
        bijector.inverse(tf.zeros([4, 4]))


@pytest.mark.parametrize('value', [1.5, -0.1, np.nan, np.inf])
@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_validate_args_rejects_data_outside_the_unit_interval(preprocessing, value):
    bijector = preprocessing((2,), validate_args=True)
    message = (
        rf'{preprocessing.__name__} .* takes data in \[0.0, 1.0\] \(dequantized images; NaN '
        rf'is outside\); got 1 value\(s\) outside it, the first: \[{value:g}\]'
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        bijector.inverse(tf.constant([[0.5, value]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tf.function(bijector.inverse)(tf.constant([[0.5, value]]))


@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_xla_matches_eager(preprocessing):
    x, z = _data_and_latent((4, 4, 1), tf.float32, seed=9)
    checks.assert_xla_matches_eager(preprocessing((4, 4, 1)), z, x, 3)
