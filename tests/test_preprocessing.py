"""Tests of tfp_flows/bijectors/preprocessing.py: LogitTransform and Centre."""

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import Centre, LogitTransform

tfd = tfp.distributions

PREPROCESSING = [Centre, LogitTransform]
SHAPES = [((4, 4, 1), 3), ((3,), 1)]


def _data_and_latent(event_shape, dtype, seed):
    x = tf.random.stateless_uniform([2, *event_shape], [5, seed], 0.01, 0.99, dtype=dtype)
    z = tf.random.stateless_normal([2, *event_shape], [5, seed + 1], dtype=dtype)
    return x, z


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_log_det_matches_autodiff_both_ways(preprocessing, event_shape, event_ndims, dtype):
    bijector = preprocessing(event_shape, dtype=dtype)
    x, z = _data_and_latent(event_shape, dtype, seed=0)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, z, event_ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, event_ndims, **tol
    )


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize(('event_shape', 'event_ndims'), SHAPES)
@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_round_trip(preprocessing, event_shape, event_ndims, dtype):
    bijector = preprocessing(event_shape, dtype=dtype)
    x, z = _data_and_latent(event_shape, dtype, seed=2)
    checks.assert_round_trip(bijector, z, x, event_ndims, dtype)


def test_centre_shifts_by_one_half():
    x = tf.constant([[0.0, 0.25, 1.0]])
    np.testing.assert_allclose(Centre((3,)).inverse(x), [[-0.5, -0.25, 0.5]])
    np.testing.assert_allclose(Centre((3,)).forward_log_det_jacobian(x, event_ndims=1), [0.0])


@pytest.mark.parametrize('alpha', [0.0, 0.05])
def test_logit_is_the_documented_map(alpha):
    x = np.array([[0.0, 0.3, 0.5]])
    z = LogitTransform((3,), alpha=alpha, dtype=tf.float64).inverse(x).numpy()
    p = alpha + (1 - 2 * alpha) * x
    with np.errstate(divide='ignore'):
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


@pytest.mark.parametrize('alpha', [0.5, -0.1, 1.0])
def test_logit_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match=rf'`alpha` must be in \[0, 0.5\); got {alpha}'):
        LogitTransform((3,), alpha=alpha)


@pytest.mark.parametrize('preprocessing', PREPROCESSING)
@pytest.mark.parametrize('event_shape', [(), (4, 0), (4.0,)])
def test_rejects_bad_event_shape(preprocessing, event_shape):
    pattern = rf'`event_shape` must be a tuple of positive ints; got {event_shape!r}'
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


@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_rejects_integer_input(preprocessing):
    with pytest.raises(ValueError, match=r'requested dtype float32 for Tensor with dtype int32'):
        preprocessing((3,)).inverse(tf.zeros([2, 3], tf.int32))


@pytest.mark.parametrize(
    ('value', 'message'), [(1.5, r'a value is > 1'), (-0.1, r'a value is < 0')]
)
@pytest.mark.parametrize('preprocessing', PREPROCESSING)
def test_validate_args_rejects_data_outside_the_unit_interval(preprocessing, value, message):
    bijector = preprocessing((2,), validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        bijector.inverse(tf.constant([[0.5, value]]))
