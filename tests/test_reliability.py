"""Log-scales stay bounded, and a float64 flow trains end to end."""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from configs import default
from tfp_flows import experiment
from tfp_flows.bijectors import AffineCoupling, FactorOut

tfb = tfp.bijectors

IMAGE_SHAPE = (8, 8, 1)


def _tiny_config(**overrides):
    """The default digits config with a tiny model, one epoch, one device."""
    config = default.get_config()
    config.model.num_levels = 2
    config.model.num_steps = 1
    config.model.hidden_channels = 8
    config.train.epochs = 1
    config.train.warmup_steps = 5
    config.train.strategy = 'one_device'
    for path, value in overrides.items():
        section, key = path.split('__')
        config[section][key] = value
    return config


def _images(count=2):
    return np.random.default_rng(0).uniform(size=(count, *IMAGE_SHAPE)).astype(np.float32)


def _bijectors(bijector):
    """`bijector` and every bijector inside it (chains, inversions, factor-outs)."""
    yield bijector
    inner = [*getattr(bijector, 'bijectors', ()), getattr(bijector, 'bijector', None)]
    inner.append(getattr(bijector, 'inner', None))
    for child in inner:
        if isinstance(child, tfb.Bijector):
            yield from _bijectors(child)


@pytest.mark.parametrize('family', ['glow', 'real_nvp'])
@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_log_scale_bound_bounds_every_log_scale(family, sign):
    bound = 0.5
    config = _tiny_config(model__family=family, model__log_scale_bound=bound)
    flow = experiment.build_flow(config.model, IMAGE_SHAPE)
    bounded = [b for b in _bijectors(flow.bijector) if isinstance(b, (AffineCoupling, FactorOut))]
    assert {type(b) for b in bounded} == {AffineCoupling, FactorOut}
    for bijector in bounded:  # Every raw log-scale (and shift) becomes sign * 100.
        network = bijector.conditioner if isinstance(bijector, AffineCoupling) else bijector.prior
        for variable in network.trainable_variables:
            is_kernel = variable.shape.rank > 1
            variable.assign(tf.fill(variable.shape, 0.0 if is_kernel else sign * 100.0))
    for bijector in bounded:
        y = tf.random.stateless_normal([4, *bijector.event_shape], seed=[0, 1])
        if isinstance(bijector, AffineCoupling):
            log_det = bijector.inverse_log_det_jacobian(y, event_ndims=3)
        else:
            log_det = bijector.factored_inverse(*bijector.split(y))[1]
        # Half the values change: checkerboard, or channel halves (even channel counts here).
        num_changed = math.prod(bijector.event_shape) // 2
        np.testing.assert_allclose(log_det, -sign * bound * num_changed, rtol=1e-6)
    x = tf.constant(_images(4))
    assert np.all(np.isfinite(flow.log_prob(x).numpy()))
    assert np.all(np.isfinite(tfp_flows.sample(flow, 4, temperature=1.0, seed=[0, 3]).numpy()))


def test_float64_trains_end_to_end(tmp_path):
    config = _tiny_config(model__dtype='float64')
    config.train.batch_size = 128
    config.train.sample_every_epochs = 100
    workdir = str(tmp_path / 'run')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert 0.5 < metrics['test_bits_per_dim'] < 6.0
    flow = experiment.restore_flow(workdir)
    assert {v.dtype for v in flow.trainable_variables} == {tf.float64}
    loaded = tf.saved_model.load(os.path.join(workdir, 'saved_model'))
    x = tf.constant(_images(2), tf.float64)
    np.testing.assert_allclose(
        loaded.log_prob(x)['log_prob'].numpy(), flow.log_prob(x).numpy(), rtol=1e-9
    )
    with open(os.path.join(workdir, 'config.json')) as f:
        assert json.load(f)['model']['dtype'] == 'float64'
