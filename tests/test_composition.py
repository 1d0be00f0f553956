"""The flows inside TFP's own compositions (issue 21, "TFP composition").

Two kinds: every builder's distribution is a component a `tfd.JointDistribution*` can name
after its argument (the builders force no name), and every public step takes inputs of exactly
its declared `forward_min_event_ndims` (it declares what it accepts).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows import bijectors
from tfp_flows.data.own import TableStatistics
from tfp_flows.run.restore import standardize_flow

tfb = tfp.bijectors
tfd = tfp.distributions

BUILDERS = {
    'real_nvp vector': lambda: tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=4),
    'real_nvp image': lambda: tfp_flows.real_nvp(
        (4, 4, 1), num_levels=1, num_steps=2, hidden_channels=4
    ),
    'glow': lambda: tfp_flows.glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4),
    'standardized table flow': lambda: standardize_flow(
        tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=4),
        TableStatistics(('a', 'b'), np.array([1.0, 2.0]), np.array([3.0, 4.0])),
    ),
}


@pytest.mark.parametrize('builder', BUILDERS.values(), ids=BUILDERS)
def test_a_flow_is_a_joint_distribution_component_named_by_its_argument(builder):
    flow = builder()
    rank = len(flow.event_shape)

    def observation(x):
        return tfd.Normal(tf.reduce_sum(x, axis=list(range(-rank, 0))), 1.0)

    joint = tfd.JointDistributionSequential([flow, observation])
    x, y = joint.sample(3, seed=1)
    want = flow.log_prob(x) + tfd.Normal(tf.reduce_sum(x, list(range(-rank, 0))), 1.0).log_prob(y)
    np.testing.assert_allclose(joint.log_prob([x, y]), want, rtol=1e-5)
    named = tfd.JointDistributionNamed(dict(x=flow, y=observation))
    np.testing.assert_allclose(named.log_prob(dict(x=x, y=y)), want, rtol=1e-5)


def test_a_name_the_user_gives_is_kept():
    flow = tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=4, name='prior')
    assert flow.name == 'prior'
    joint = tfd.JointDistributionSequential([flow, lambda prior: tfd.Normal(prior[..., 0], 1.0)])
    assert joint.log_prob(joint.sample(2, seed=1)).shape == [2]


def _logit_flow_data(shape):
    return tf.random.stateless_uniform(shape, [1, 2], 0.1, 0.9)


STEPS = {  # step, an event of its forward_min_event_ndims (latent side)
    'ActNorm': lambda: (bijectors.ActNorm(2), (2,)),
    'InvertibleConv1x1': lambda: (bijectors.InvertibleConv1x1(2), (2,)),
    'LUInvertibleConv1x1': lambda: (bijectors.LUInvertibleConv1x1(2), (2,)),
    'AffineCoupling image': lambda: (
        bijectors.AffineCoupling((4, 4, 2), hidden_channels=4),
        (4, 4, 2),
    ),
    'AffineCoupling vector': lambda: (bijectors.AffineCoupling((4,), hidden_channels=4), (4,)),
    'AdditiveCoupling': lambda: (
        bijectors.AdditiveCoupling((4, 4, 2), hidden_channels=4),
        (4, 4, 2),
    ),
    'SplineCoupling': lambda: (bijectors.SplineCoupling((4, 4, 2), hidden_channels=4), (4, 4, 2)),
    'LogisticMixtureCoupling': lambda: (
        bijectors.LogisticMixtureCoupling((4, 4, 2), hidden_channels=4),
        (4, 4, 2),
    ),
    'SplineCoupling one channel': lambda: (
        bijectors.SplineCoupling((4, 4, 1), mask='checkerboard', hidden_channels=4),
        (4, 4, 1),
    ),
    'AffineCoupling one channel': lambda: (
        bijectors.AffineCoupling((4, 4, 1), mask='checkerboard', hidden_channels=4),
        (4, 4, 1),
    ),
    'Squeeze': lambda: (bijectors.Squeeze(), (2, 2, 4)),
    'FactorOut': lambda: (bijectors.FactorOut((4, 4, 2), tfb.Identity()), (4, 4, 2)),
    'LearnedPrior': lambda: (bijectors.LearnedPrior((4, 4, 2)), (4, 4, 2)),
    'Centre': lambda: (bijectors.Centre((4, 4, 1)), (4, 4, 1)),
    'LogitTransform image': lambda: (bijectors.LogitTransform((4, 4, 1)), (4, 4, 1)),
    'LogitTransform vector': lambda: (bijectors.LogitTransform((3,)), (3,)),
    'Chain': lambda: (bijectors.Chain([bijectors.ActNorm(2)], event_ndims=3), (4, 4, 2)),
}


@pytest.mark.parametrize('make', STEPS.values(), ids=STEPS)
def test_every_step_takes_inputs_of_exactly_its_declared_min_event_ndims(make):
    step, event = make()
    for i, variable in enumerate(step.trainable_variables):  # Away from the identity init.
        noise = tf.random.stateless_normal(variable.shape, [i, 7], 0.0, 0.1, variable.dtype)
        variable.assign_add(noise)
    assert step.forward_min_event_ndims == len(event)
    for batch in [(), (3,)]:
        z = _logit_flow_data(batch + event)
        x = step.forward(z)
        log_det = step.forward_log_det_jacobian(z, event_ndims=len(event))
        assert x.shape == batch + tuple(step.forward_event_shape(event))
        assert tf.broadcast_static_shape(log_det.shape, tf.TensorShape(batch)) == batch
        np.testing.assert_allclose(step.inverse(x), z, atol=1e-5)
        np.testing.assert_allclose(
            step.inverse_log_det_jacobian(x, event_ndims=len(event)), -log_det, atol=1e-4
        )


@pytest.mark.parametrize('make', STEPS.values(), ids=STEPS)
def test_every_step_keeps_static_shapes_when_the_batch_size_is_unknown(make):
    # In a graph traced for any batch size (Keras, the SavedModel signatures), each output
    # keeps its static event shape, which the next step's networks are built against.
    step, event = make()
    latent = (None, *event)
    data = (None, *step.forward_event_shape(event))
    ndims = len(event)

    @tf.function(input_signature=[tf.TensorSpec(latent), tf.TensorSpec(data)])
    def both_ways(z, x):
        return step.forward_and_log_det(z, ndims), step.inverse_and_log_det(x, ndims)

    (x, forward_log_det), (z, inverse_log_det) = (
        both_ways.get_concrete_function().structured_outputs
    )
    assert (tuple(x.shape), tuple(z.shape)) == (data, latent), step.name
    for log_det in (forward_log_det, inverse_log_det):
        assert log_det.shape.rank is not None and log_det.shape.rank <= 1, step.name


@pytest.mark.parametrize('step', [bijectors.Centre((4,)), bijectors.LogitTransform((4,))])
def test_a_preprocessing_step_says_which_event_it_takes(step):
    assert step.forward_min_event_ndims == 1
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=r'\[4\]|4'):
        step.inverse(tf.constant(0.5))


# Tensors of another dtype (issue 21, "Raw pixels and bad tensors"): refused at every public
# method of every step and every flow, saying what to do. NumPy arrays and Python numbers are
# converted to the flow's dtype, as TFP does.
WRONG_DTYPES = {
    'int32': (tf.int32, r'of dtype int32: dequantize integer pixels to \[0, 1\] first'),
    'uint8': (tf.uint8, r'of dtype uint8: dequantize integer pixels'),
    'float64': (tf.float64, r'of dtype float64: cast it first \(`tf.cast\(., tf.float32\)`\)'),
    'string': (tf.string, r'of dtype string: a flow takes float tensors'),
}
METHODS = ['forward', 'inverse', 'forward_log_det_jacobian', 'inverse_log_det_jacobian',
           'forward_and_log_det', 'inverse_and_log_det']  # fmt: skip


def _wrong(shape, dtype):
    return tf.fill(shape, 'a') if dtype == tf.string else tf.zeros(shape, dtype)


@pytest.mark.parametrize('wrong', WRONG_DTYPES.values(), ids=WRONG_DTYPES)
@pytest.mark.parametrize('make', STEPS.values(), ids=STEPS)
def test_every_step_refuses_another_dtype_saying_what_to_do(make, wrong):
    step, event = make()
    dtype, message = wrong
    if step.dtype is None:  # Squeeze takes any float dtype and says so for the others.
        if dtype.is_floating:
            return
        message = r'floating-point tensor \(dequantize integer images first'
    for method in METHODS:
        shape = (2, *(event if method.startswith('f') else step.forward_event_shape(event)))
        kwargs = {'event_ndims': len(event)} if 'jacobian' in method else {}
        with pytest.raises(TypeError, match=rf'{type(step).__name__} .*{message}'):
            getattr(step, method)(_wrong(shape, dtype), **kwargs)


@pytest.mark.parametrize('wrong', WRONG_DTYPES.values(), ids=WRONG_DTYPES)
@pytest.mark.parametrize('builder', BUILDERS.values(), ids=BUILDERS)
def test_every_flow_refuses_another_dtype_saying_what_to_do(builder, wrong):
    flow = builder()
    dtype, message = wrong
    for method in (flow.log_prob, flow.prob):
        with pytest.raises(TypeError, match=rf'has dtype float32; got `y` {message}'):
            method(_wrong((2, *flow.event_shape), dtype))


def test_raw_pixels_are_outside_a_logit_flows_support_and_validate_args_says_so():
    """NumPy integers are converted (TFP's convention): raw pixels 0..16 are outside the
    logit's support, so log_prob is -inf; with validate_args the error says to dequantize."""
    pixels = np.random.default_rng(0).integers(0, 17, (2, 4, 4, 1))
    options = dict(num_levels=1, num_steps=1, hidden_channels=4, preprocessing='logit')
    assert np.all(tfp_flows.real_nvp((4, 4, 1), **options).log_prob(pixels) == -np.inf)
    checked = tfp_flows.real_nvp((4, 4, 1), validate_args=True, **options)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'go in dequantized, x = \(k \+ u\)'):
        checked.log_prob(pixels)
