"""Tests of tfp_flows/bijectors/caching.py and chain.py: no stale results, one pass in graphs."""

import collections

import checks
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import networks
from tfp_flows.bijectors import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    FactorOut,
    InvertibleConv1x1,
    LUInvertibleConv1x1,
)

BIJECTORS = {
    'act_norm': lambda: ActNorm(4),
    'lu_conv': lambda: LUInvertibleConv1x1(4),
    'plain_conv': lambda: InvertibleConv1x1(4),
    'affine_coupling': lambda: AffineCoupling((4, 4, 4), mask='checkerboard', hidden_channels=8),
    'additive_coupling': lambda: AdditiveCoupling((4, 4, 4), hidden_channels=8),
    'factor_out': lambda: FactorOut((4, 4, 4), ActNorm(2)),
    'chain': lambda: Chain([ActNorm(4), AffineCoupling((4, 4, 4), hidden_channels=8)]),
    'glow': lambda: (
        tfp_flows.glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=8).bijector
    ),
}


def _copy(tensor):
    return tf.constant(np.array(tensor))


@pytest.mark.parametrize('name', list(BIJECTORS))
def test_eager_results_follow_variable_updates(name):
    bijector = checks.randomize_variables(BIJECTORS[name](), seed=0)
    shape = [2, 4, 4, 1] if name == 'glow' else [2, 4, 4, 4]
    x = tf.random.stateless_uniform(shape, [9, 1], 0.1, 0.9)
    z = bijector.inverse(x)
    y = bijector.forward(x)
    ildj = bijector.inverse_log_det_jacobian(x, event_ndims=3)
    checks.randomize_variables(bijector, seed=1)

    new_z = bijector.inverse(x)
    assert not np.allclose(new_z, z)
    np.testing.assert_array_equal(new_z, bijector.inverse(_copy(x)))
    new_y = bijector.forward(x)
    assert not np.allclose(new_y, y)
    np.testing.assert_array_equal(new_y, bijector.forward(_copy(x)))
    # The old latent z maps to the data under the new values, not back to the cached x.
    x_from_old_z = bijector.forward(z)
    assert not np.allclose(x_from_old_z, x)
    np.testing.assert_array_equal(x_from_old_z, bijector.forward(_copy(z)))
    new_ildj = bijector.inverse_log_det_jacobian(x, event_ndims=3)
    np.testing.assert_array_equal(
        new_ildj, bijector.inverse_log_det_jacobian(_copy(x), event_ndims=3)
    )
    if name != 'additive_coupling':  # Its log-det is 0 for all variables.
        assert not np.allclose(new_ildj, ildj)


def test_eager_log_prob_follows_variable_updates():
    flow = checks.randomize_variables(
        tfp_flows.glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=8), seed=0
    )
    x = tf.random.stateless_uniform([2, 4, 4, 1], [9, 2], 0.1, 0.9)
    log_prob = flow.log_prob(x)
    z = flow.bijector.inverse(x)
    checks.randomize_variables(flow, seed=1)
    new_log_prob = flow.log_prob(x)
    assert not np.allclose(new_log_prob, log_prob)
    np.testing.assert_array_equal(new_log_prob, flow.log_prob(_copy(x)))
    np.testing.assert_array_equal(flow.bijector.forward(z), flow.bijector.forward(_copy(z)))


def test_tf_function_results_follow_variable_updates_between_calls():
    flow = checks.randomize_variables(
        tfp_flows.glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=8), seed=0
    )
    log_prob = tf.function(flow.log_prob)
    x = tf.random.stateless_uniform([2, 4, 4, 1], [9, 3], 0.1, 0.9)
    before = log_prob(x)
    checks.randomize_variables(flow, seed=1)
    after = log_prob(x)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, flow.log_prob(x), rtol=1e-5)


@pytest.fixture
def network_calls(monkeypatch):
    """Counts the calls of every conditioner and prior network, per network."""
    calls = collections.Counter()
    for network in (networks.ConvNet, networks.DenseNet, networks.ZeroConv):
        call = network.__call__

        def counting(self, x, call=call):
            calls[id(self)] += 1
            return call(self, x)

        monkeypatch.setattr(network, '__call__', counting)
    return calls


def _networks(flow):
    kinds = (networks.ConvNet, networks.DenseNet, networks.ZeroConv)
    return [m for m in flow.submodules if isinstance(m, kinds)]


@pytest.mark.parametrize(
    'make',
    [
        lambda: tfp_flows.glow((8, 8, 1), num_levels=3, num_steps=1, hidden_channels=8),
        lambda: tfp_flows.glow(
            (8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8, coupling='additive'
        ),
        lambda: tfp_flows.real_nvp(
            (8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8, split_prior=True
        ),
        lambda: tfp_flows.real_nvp((2,), num_steps=3, hidden_channels=8),
    ],
    ids=['glow', 'glow_additive', 'real_nvp', 'real_nvp_vector'],
)
def test_tf_function_log_prob_runs_each_network_once(make, network_calls):
    flow = make()
    x = tf.random.stateless_uniform([2, *flow.event_shape], [9, 4], 0.1, 0.9)
    tf.function(flow.log_prob).get_concrete_function(x)
    nets = _networks(flow)
    assert nets
    assert {id(n): network_calls[id(n)] for n in nets} == {id(n): 1 for n in nets}

    network_calls.clear()
    tf.function(lambda z: tfp_flows.sample(flow, 2, seed=[1, 2])).get_concrete_function(x)
    assert {id(n): network_calls[id(n)] for n in nets} == {id(n): 1 for n in nets}


def test_eager_log_prob_runs_each_network_once(network_calls):
    # TFP's log_prob takes the log-det at the latent x = inverse(y); eagerly the flow hands it
    # the one `inverse` computed with x instead of running the flow forward from x.
    flow = tfp_flows.glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8)
    flow.log_prob(tf.random.stateless_uniform([2, 8, 8, 1], [9, 5], 0.1, 0.9))
    assert all(network_calls[id(n)] == 1 for n in _networks(flow))


def test_eager_cost_grows_linearly_with_the_number_of_levels(network_calls):
    # Each FactorOut walks its inner flow once; calling the inner flow's output and log-det
    # separately would double the work at every level (2^levels).
    flow = tfp_flows.glow((16, 16, 1), num_levels=4, num_steps=1, hidden_channels=4)
    flow.log_prob(tf.random.stateless_uniform([2, 16, 16, 1], [9, 6], 0.1, 0.9))
    deepest = max(network_calls[id(n)] for n in _networks(flow))
    assert deepest <= 8
