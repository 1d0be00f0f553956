"""An empty batch gives empty results of the right shape on every path of every builder.

Each path runs eagerly on a batch of static size 0 and, inside a `tf.function` traced once for
a `None` batch, on a batch of 0 (the exported signatures are such functions). TF 2.21's
oneDNN CPU convolution answers an empty batch with its input's channel count, which once gave
`Incompatible shapes` or silently wrong shapes (`tfp_flows.networks._conv2d`).
"""

import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.dequantization.variational import VariationalDequantizer
from tfp_flows.export import FlowModule, export_saved_model

NUM_BINS = 256
SMALL = dict(num_steps=1, hidden_channels=8)
# name: (build the flow, num_bins for the export, a VariationalDequantizer or None)
MODELS = {
    # The handed case: image Real NVP, whose 8x8 checkerboard couplings run tf.nn.conv2d.
    'real_nvp': (lambda: tfp_flows.real_nvp((8, 8, 1), num_levels=2, **SMALL), NUM_BINS),
    'real_nvp_conditional': (
        lambda: tfp_flows.real_nvp((8, 8, 1), num_levels=1, conditional_shape=(3,), **SMALL),
        NUM_BINS,
    ),
    'real_nvp_vector': (lambda: tfp_flows.real_nvp((3,), **SMALL), None),
    'real_nvp_vector_conditional': (
        lambda: tfp_flows.real_nvp((3,), conditional_shape=(2,), **SMALL),
        None,
    ),
    'glow': (lambda: tfp_flows.glow((8, 8, 1), num_levels=2, **SMALL), NUM_BINS),
    # 16x16: the first level's 8x8 maps run tf.nn.conv2d; learned top prior and context.
    'glow_conditional': (
        lambda: tfp_flows.glow(
            (16, 16, 1), num_levels=1, conditional_shape=(3,), learn_top_prior=True, **SMALL
        ),
        NUM_BINS,
    ),
}


def _module(name):
    flow, num_bins = MODELS[name][0](), MODELS[name][1]
    dequantizer = None
    if name == 'glow':  # The variational dequantizer's bits/dim path too.
        dequantizer = VariationalDequantizer((8, 8, 1), NUM_BINS, num_steps=2, hidden_channels=8)
    return FlowModule(flow, num_bins=num_bins, dequantizer=dequantizer)


@pytest.fixture(scope='module', params=sorted(MODELS))
def module(request):
    return _module(request.param)


def _empty(shape, dtype):
    return tf.zeros([0, *shape], dtype)


def _context(module):
    if module.conditional_shape is None:
        return {}
    return {'conditional_input': _empty(module.conditional_shape, module.bijector.dtype)}


def _signature_calls(module):
    """{signature: (its inputs for an empty batch, {output: expected shape})}."""
    event, dtype, context = module.event_shape, module.bijector.dtype, _context(module)
    x = {'x': _empty(event, dtype), **context}
    sample = dict(num_samples=tf.constant(0), temperature=tf.constant(0.7, dtype))
    calls = {
        'log_prob': (x, {'log_prob': (0,)}),
        'encode': (x, {'z': (0, *event)}),
        'decode': ({'z': _empty(event, dtype), **context}, {'x': (0, *event)}),
        'sample': (
            {**sample, 'seed': tf.constant([1, 2]), **context},
            {'x': (0, *event)},
        ),
    }
    if module.num_bins is not None:
        pixels = {'pixels': _empty(event, tf.int32), **context}
        iw = dict(num_samples=tf.constant(2), seed=tf.constant([1, 2]))
        calls['bits_per_dim'] = (x, {'bits_per_dim': (0,)})
        calls['bits_per_dim_iw'] = ({**pixels, **iw}, {'bits_per_dim': (0,)})
    return calls


def test_every_signature_gives_an_empty_batch_results_of_its_shape(module):
    calls = _signature_calls(module)
    assert set(calls) | {'serving_default'} == set(module.signatures())
    for name, (inputs, expected) in calls.items():
        outputs = getattr(module, name)(**inputs)
        shapes = {key: tuple(value.shape) for key, value in outputs.items()}
        assert shapes == expected, name


def _flow_paths(flow, context):
    """{path: (function of an empty batch x (and z), expected shape)} of the flow itself."""
    event = tuple(flow.event_shape)
    return {
        'log_prob': (lambda x: flow.log_prob(x, bijector_kwargs=context), (0,)),
        'inverse': (lambda x: flow.bijector.inverse(x, **context), (0, *event)),
        'forward': (lambda x: flow.bijector.forward(x, **context), (0, *event)),
        'inverse_log_det': (
            lambda x: flow.bijector.inverse_log_det_jacobian(x, event_ndims=len(event), **context),
            (0,),
        ),
    }


@pytest.mark.parametrize('name', sorted(MODELS))
def test_the_flow_gives_an_empty_batch_results_of_its_shape_eagerly_and_traced(name):
    flow = MODELS[name][0]()
    shape = tfp_flows.conditional_shape_of(flow)
    event, dtype = tuple(flow.event_shape), flow.dtype
    context = {} if shape is None else {'conditional_input': _empty(shape, dtype)}
    for path, (fn, expected) in _flow_paths(flow, context).items():
        assert tuple(fn(_empty(event, dtype)).shape) == expected, f'{path}, eager'
        traced = tf.function(
            fn, input_signature=[tf.TensorSpec([None, *event], dtype)], autograph=False
        )
        assert tuple(traced(_empty(event, dtype)).shape) == expected, f'{path}, traced'
    samples = tfp_flows.sample(flow, 0, seed=1, **context)
    assert tuple(samples.shape) == (0, *event)


def test_the_handed_case_an_exported_real_nvp_on_an_empty_batch(tmp_path):
    flow = MODELS['real_nvp'][0]()
    path = export_saved_model(flow, tmp_path / 'model', num_bins=NUM_BINS)
    loaded = tf.saved_model.load(path)
    x = np.zeros((0, 8, 8, 1), 'float32')
    assert loaded.log_prob(x)['log_prob'].shape == (0,)
    assert loaded.signatures['log_prob'](x=tf.constant(x))['log_prob'].shape == (0,)
    assert loaded.encode(x)['z'].shape == (0, 8, 8, 1)
    assert loaded.bits_per_dim(x)['bits_per_dim'].shape == (0,)
    assert loaded.decode(x)['x'].shape == (0, 8, 8, 1)
    assert loaded.sample(0, 0.7, [1, 2])['x'].shape == (0, 8, 8, 1)
    # Non-empty batches keep their numbers.
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype('float32')
    np.testing.assert_allclose(loaded.log_prob(x)['log_prob'], flow.log_prob(x), rtol=1e-5)
