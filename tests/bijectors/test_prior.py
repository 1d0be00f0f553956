"""Tests of tfp_flows/bijectors/prior.py: the learned (and conditional) prior of the latent."""

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import LearnedPrior

tfd = tfp.distributions

# (event_shape, learned, conditional_shape)
CASES = [
    ((2, 2, 3), True, None),
    ((2, 2, 3), False, (4,)),
    ((2, 2, 3), True, (2, 2)),
    ((3,), True, (2,)),
]


def _random_prior(event_shape, learned, conditional_shape, dtype, seed=0):
    prior = LearnedPrior(
        event_shape, learned=learned, conditional_shape=conditional_shape, dtype=dtype
    )
    return checks.randomize_variables(prior, seed=seed, scale=1.0)


def _context(conditional_shape, dtype, seed=1):
    if conditional_shape is None:
        return None
    return tf.random.stateless_normal([2, *conditional_shape], [5, seed], dtype=dtype)


def _kwargs(context):
    return {} if context is None else {'conditional_input': context}


@pytest.mark.parametrize('function', [False, True])
@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize(('event_shape', 'learned', 'conditional_shape'), CASES)
def test_log_det_matches_autodiff_both_ways(
    event_shape, learned, conditional_shape, dtype, function
):
    prior = _random_prior(event_shape, learned, conditional_shape, dtype)
    context = _context(conditional_shape, dtype)
    x = tf.random.stateless_normal([2, *event_shape], [5, 2], dtype=dtype)
    methods = [
        prior.forward,
        prior.inverse,
        prior.forward_log_det_jacobian,
        prior.inverse_log_det_jacobian,
    ]
    if function:
        methods = [tf.function(m) for m in methods]
    if context is not None:
        methods = [checks.with_context(m, context) for m in methods]
    forward, inverse, fldj, ildj = methods
    tol = checks.tolerance(dtype, log_det=True)
    ndims = len(event_shape)
    checks.assert_log_det_matches_autodiff(forward, fldj, x, ndims, **tol)
    checks.assert_log_det_matches_autodiff(inverse, ildj, x, ndims, **tol)
    np.testing.assert_allclose(inverse(tf.identity(forward(x))), x, **checks.tolerance(dtype))


@pytest.mark.parametrize(('event_shape', 'learned', 'conditional_shape'), CASES)
def test_the_density_is_the_normal_with_the_learned_mean_and_scale(
    event_shape, learned, conditional_shape
):
    dtype = tf.float64
    prior = _random_prior(event_shape, learned, conditional_shape, dtype, seed=3)
    context = _context(conditional_shape, dtype, seed=4)
    flow = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(np.float64(0), 1.0), event_shape), prior
    )
    mean = np.zeros(event_shape) if not learned else prior.mean.numpy()
    raw = np.zeros(event_shape) if not learned else prior.raw_log_scale.numpy()
    if context is not None:
        params = prior.context_prior(tf.reshape(context, [2, -1])).numpy()
        params = params.reshape([2, *[1] * (len(event_shape) - 1), -1])
        mean, raw = mean + params[..., : event_shape[-1]], raw + params[..., event_shape[-1] :]
    scale = np.exp(2.0 * np.tanh(raw / 2.0))
    y = tf.random.stateless_normal([2, *event_shape], [5, 5], dtype=dtype)
    expected = tfd.Normal(mean, scale).log_prob(y).numpy().reshape([2, -1]).sum(axis=1)
    np.testing.assert_allclose(flow.log_prob(y, bijector_kwargs=_kwargs(context)), expected)


def test_a_fresh_prior_is_the_identity():
    prior = LearnedPrior((2, 2, 3), conditional_shape=(4,))
    y = tf.random.stateless_normal([2, 2, 2, 3], [5, 6])
    context = tf.random.stateless_normal([2, 4], [5, 7])
    np.testing.assert_array_equal(prior.inverse(y, conditional_input=context), y)
    np.testing.assert_array_equal(
        prior.inverse_log_det_jacobian(y, event_ndims=3, conditional_input=context), [0, 0]
    )
    assert len(prior.trainable_variables) == 4
    assert prior.structure() == {
        'class': 'LearnedPrior',
        'event_shape': [2, 2, 3],
        'learned': True,
        'log_scale_bound': 2.0,
        'conditional_shape': [4],
    }


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        (dict(learned=False), r'needs learned=True or a `conditional_shape`'),
        (dict(learned=1), r'`learned` must be True or False; got 1'),
        (dict(conditional_shape=(0,)), r'`conditional_shape` must be None or .*got \(0,\)'),
        (dict(log_scale_bound=0.0), r'`log_scale_bound` must be a finite number > 0; got 0.0'),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LearnedPrior((3,), **kwargs)


def test_rejects_input_of_the_wrong_shape():
    with pytest.raises(
        ValueError, match=r'LearnedPrior expects .*\[\.\.\., 3\]; got shape \[2, 4\]'
    ):
        LearnedPrior((3,)).inverse(tf.zeros([2, 4]))
