"""Tests of tfp_flows/initialization.py: data-dependent ActNorm init of whole flows."""

import checks
import numpy as np
import pytest
import sklearn.datasets
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows.bijectors import ActNorm, walk
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.run import restore

IMAGE = (8, 8, 1)
MODELS = {
    'glow': lambda seed=0: tfp_flows.glow(
        IMAGE, num_levels=2, num_steps=2, hidden_channels=8, seed=seed
    ),
    'real_nvp': lambda seed=0: tfp_flows.real_nvp(
        IMAGE, num_levels=2, num_steps=1, hidden_channels=8, seed=seed
    ),
    'real_nvp_vector': lambda seed=0: tfp_flows.real_nvp(
        (2,), num_steps=2, hidden_channels=8, seed=seed
    ),
}


def _act_norms(flow):
    return [m for m in flow.submodules if isinstance(m, ActNorm)]


def _data(name, batch_size, seed):
    rng = np.random.default_rng(seed)
    if name == 'real_nvp_vector':
        return rng.normal([3.0, -1.0], [0.2, 4.0], size=[batch_size, 2]).astype(np.float32)
    return rng.beta(2.0, 5.0, size=[batch_size, *IMAGE]).astype(np.float32)


@pytest.fixture
def act_norm_outputs(monkeypatch):
    """Records, per ActNorm, the output of its last eager inverse."""
    outputs = {}
    inverse_and_log_det = ActNorm._inverse_and_log_det  # noqa: SLF001 (patched to record)

    def recording(self, y):
        x, log_det = inverse_and_log_det(self, y)
        outputs[id(self)] = x
        return x, log_det

    monkeypatch.setattr(ActNorm, '_inverse_and_log_det', recording)
    return outputs


@pytest.mark.parametrize(
    ('name', 'in_tf_function'), [(name, False) for name in MODELS] + [('real_nvp', True)]
)
def test_every_act_norm_standardizes_the_data_reaching_it(name, in_tf_function, act_norm_outputs):
    flow = MODELS[name]()
    data = _data(name, 64, seed=0)
    if in_tf_function:
        tf.function(lambda data: tfp_flows.initialize(flow, data))(data)
    else:
        tfp_flows.initialize(flow, data)
    act_norm_outputs.clear()
    flow.bijector.inverse(data)
    act_norms = _act_norms(flow)
    assert len(act_norms) == {'glow': 4, 'real_nvp': 4, 'real_nvp_vector': 2}[name]
    assert {id(a) for a in act_norms} == set(act_norm_outputs)
    for act_norm in act_norms:
        assert act_norm.initialized.numpy()
        x = act_norm_outputs[id(act_norm)].numpy().reshape([-1, act_norm.num_channels])
        np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(x.std(axis=0), 1.0, rtol=1e-3)


def test_initialize_works_in_place_and_returns_nothing_a_notebook_would_print():
    flow = MODELS['glow']()
    data = _data('glow', 16, seed=1)
    assert tfp_flows.initialize(flow, data) is None
    before = [v.numpy() for v in flow.variables]
    assert tfp_flows.initialize(flow.bijector, data) is None  # Idempotent.
    for b, v in zip(before, flow.variables, strict=True):
        np.testing.assert_array_equal(b, v.numpy())


def test_initialize_is_idempotent():
    flow = MODELS['glow']()
    tfp_flows.initialize(flow, _data('glow', 16, seed=2))
    before = [v.numpy() for v in flow.variables]
    tfp_flows.initialize(flow, 2.0 * _data('glow', 16, seed=3))
    for old, variable in zip(before, flow.variables, strict=True):
        np.testing.assert_array_equal(variable, old)


def test_initialized_flag_is_saved_and_restored(tmp_path):
    flow = MODELS['glow']()
    tfp_flows.initialize(flow, _data('glow', 16, seed=4))
    path = tf.train.Checkpoint(flow=flow).save(str(tmp_path / 'ckpt'))
    saved_names = [name for name, _ in tf.train.list_variables(path)]
    assert sum('initialized' in name for name in saved_names) == len(_act_norms(flow))

    restored = checks.randomize_variables(MODELS['glow'](seed=1), seed=1)
    assert not np.allclose(restored.trainable_variables[0], flow.trainable_variables[0])
    tf.train.Checkpoint(flow=restored).restore(path).assert_consumed()
    assert all(a.initialized.numpy() for a in _act_norms(restored))
    tfp_flows.initialize(restored, _data('glow', 16, seed=5))
    for expected, variable in zip(flow.variables, restored.variables, strict=True):
        np.testing.assert_array_equal(variable, expected)


def test_constant_data_gives_finite_values():
    flow = MODELS['glow']()
    data = np.full([8, *IMAGE], 0.5, np.float32)
    with pytest.warns(UserWarning, match=r'ActNorm .*channel\(s\) \[0, 1, 2, 3\].* constant'):
        tfp_flows.initialize(flow, data)
    assert all(np.all(np.isfinite(v)) for v in flow.variables)
    first = _act_norms(flow)[0]
    np.testing.assert_allclose(first.log_scale, np.log(1e-3), rtol=1e-6)
    assert np.all(np.isfinite(flow.log_prob(data)))


@pytest.fixture(scope='module')
def digits():
    """The 8x8 scikit-learn digits (values 0..16), shipped with scikit-learn, as [N, 8, 8, 1]."""
    return sklearn.datasets.load_digits().images[..., np.newaxis].astype(np.int32)


@pytest.mark.parametrize(
    'make',
    [
        lambda: tfp_flows.glow(IMAGE, num_levels=2, num_steps=4, hidden_channels=32),
        lambda: tfp_flows.real_nvp(IMAGE, num_levels=2, num_steps=2, hidden_channels=32),
    ],
    ids=['glow', 'real_nvp'],
)
def test_first_loss_on_digits_is_a_few_bits_per_dim(make, digits):
    flow = make()
    init_batch = tfp_flows.uniform_dequantize(digits[:256], 17, seed=[0, 1])
    tfp_flows.initialize(flow, init_batch)
    batch = tfp_flows.uniform_dequantize(digits[256:512], 17, seed=[0, 2])
    bits = tfp_flows.bits_per_dim(flow.log_prob(batch), 64, 17).numpy()
    assert np.all(np.isfinite(bits))
    assert 0.5 < bits.mean() < 6.0, bits.mean()


def test_initialize_refuses_integer_images():
    flow = MODELS['glow']()
    with pytest.raises(TypeError, match='dequantize integer images.*got dtype int64'):
        tfp_flows.initialize(flow, np.zeros([4, 8, 8, 1], np.int64))


def _one_batch_and_several(name, dtype, sizes=(10, 22, 32)):
    """A flow initialised on one batch and one initialised on the same data in several."""
    data = _data(name, sum(sizes), seed=7).astype(dtype.as_numpy_dtype)
    one, several = MODELS[name](), MODELS[name]()
    if dtype == tf.float64:
        one, several = (_float64(name), _float64(name))
    tfp_flows.initialize(one, data)
    return one, several, data, np.split(data, np.cumsum(sizes)[:-1])


def _float64(name):
    if name == 'real_nvp_vector':
        return tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=8, dtype=tf.float64)
    make = tfp_flows.glow if name == 'glow' else tfp_flows.real_nvp
    kwargs = {'num_steps': 2} if name == 'glow' else {'num_steps': 1}
    return make(IMAGE, num_levels=2, hidden_channels=8, dtype=tf.float64, **kwargs)


def _assert_same_act_norms(flow, expected, dtype):
    act_norms, reference = _act_norms(flow), _act_norms(expected)
    assert act_norms and len(act_norms) == len(reference)
    # float32: the one-batch moments' own rounding, about 1e-6 on values of order 1.
    tolerance = (
        {'rtol': 1e-10, 'atol': 1e-12} if dtype == tf.float64 else {'rtol': 2e-5, 'atol': 1e-5}
    )
    for act_norm, single in zip(act_norms, reference, strict=True):
        assert act_norm.initialized.numpy()
        np.testing.assert_allclose(act_norm.shift, single.shift, **tolerance)
        np.testing.assert_allclose(act_norm.log_scale, single.log_scale, **tolerance)


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize('name', list(MODELS))
def test_several_batches_give_the_one_big_batch_init(name, dtype):
    one, several, data, batches = _one_batch_and_several(name, dtype)
    tfp_flows.initialize(several, batches)
    _assert_same_act_norms(several, one, dtype)


def test_a_dataset_and_a_list_in_tf_function_give_the_one_big_batch_init():
    one, from_dataset, data, batches = _one_batch_and_several('real_nvp_vector', tf.float32)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(24)
    tfp_flows.initialize(from_dataset, dataset)
    _assert_same_act_norms(from_dataset, one, tf.float32)
    in_function = MODELS['real_nvp_vector']()
    tf.function(lambda *b: tfp_flows.initialize(in_function, list(b)))(*batches)
    _assert_same_act_norms(in_function, one, tf.float32)


def test_several_batches_reach_the_actnorms_of_a_standardized_context_flow():
    # A CSV flow with context columns wraps its chain in a StandardizedContext; the walk of
    # several batches must go inside it, as the one-batch walk does.
    def make():
        flow = tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=8, conditional_shape=(1,))
        return restore.standardize_flow(flow, restore.placeholder_statistics(2, 1))

    x = tf.random.stateless_normal([64, 2], [1, 2]) * 3 + 1
    c = tf.random.stateless_normal([64, 1], [3, 4]) * 2 - 1
    one, several = make(), make()
    tfp_flows.initialize(one, x, conditional_input=c)
    tfp_flows.initialize(several, [(x[:40], c[:40]), (x[40:], c[40:])])
    _assert_same_act_norms(several, one, tf.float32)


class _Wrapper(FlowBijector):
    """A step of the user's own that holds an ActNorm the walk cannot see into."""

    def __init__(self):
        self.inner = ActNorm(2)
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, name='wrapper')

    def _forward_and_log_det(self, x):
        return self.inner.forward_and_log_det(x, 1)

    def _inverse_and_log_det(self, y):
        return self.inner.inverse_and_log_det(y, 1)


def test_several_batches_refuse_a_step_they_cannot_enter():
    flow = tfp.distributions.TransformedDistribution(
        tfp.distributions.Sample(tfp.distributions.Normal(0.0, 1.0), [2]),
        tfp_flows.bijectors.Chain([_Wrapper()]),
    )
    x = tf.random.stateless_normal([8, 2], [1, 2])
    for data in ([x[:4], x[4:]], x):  # Several batches, and one.
        with pytest.raises(TypeError, match=r"cannot reach the ActNorm step\(s\) \['act_norm'\]"):
            tfp_flows.initialize(flow, data)
    assert not flow.bijector.bijectors[0].inner.initialized.numpy()


def test_several_batches_set_every_replica_in_cross_replica_context(mirrored_strategy):
    with mirrored_strategy.scope():
        flow = MODELS['glow']()
    one, _, data, _ = _one_batch_and_several('glow', tf.float32)
    tfp_flows.initialize(flow, tf.data.Dataset.from_tensor_slices(data).batch(16))
    for act_norm, single in zip(_act_norms(flow), _act_norms(one), strict=True):
        for name in ('shift', 'log_scale', 'initialized'):
            replicas = mirrored_strategy.experimental_local_results(getattr(act_norm, name))
            assert len(replicas) == 2
            np.testing.assert_array_equal(replicas[0], replicas[1])
            np.testing.assert_allclose(replicas[0], getattr(single, name), rtol=2e-5, atol=1e-5)


def test_several_batches_keep_an_initialised_flow():
    flow = MODELS['glow']()
    tfp_flows.initialize(flow, _data('glow', 16, seed=2))
    before = [v.numpy() for v in flow.variables]
    tfp_flows.initialize(flow, [_data('glow', 8, seed=3), _data('glow', 8, seed=4)])
    for old, variable in zip(before, flow.variables, strict=True):
        np.testing.assert_array_equal(variable, old)


def test_rejects_batches_it_cannot_use():
    flow = MODELS['glow']()
    images = _data('glow', 8, seed=0)
    with pytest.raises(ValueError, match='needs at least one batch; got none'):
        tfp_flows.initialize(flow, tf.data.Dataset.from_tensor_slices(images).batch(4).take(0))
    pairs = tf.data.Dataset.from_tensor_slices((images, np.arange(8))).batch(4)
    with pytest.raises(TypeError, match=r'got a batch that is a tuple \(a dataset of \(x, label'):
        tfp_flows.initialize(flow, pairs)
    with pytest.raises(TypeError, match='reads a tf.data.Dataset eagerly'):
        tf.function(lambda: tfp_flows.initialize(flow, tf.data.Dataset.from_tensors(images)))()
    with pytest.raises(TypeError, match='needs data in the flow.s range as floats'):
        tfp_flows.initialize(flow, [images, images.astype(np.int32)])


class _Repeated(FlowBijector):
    """A container of its own (as a level run as one loop would be): it says which steps it
    holds and how to walk them, and runs them with its own code."""

    def __init__(self, steps):
        self.steps = steps
        self.runs = 0
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, name='repeated')

    def held_steps(self):
        return tuple(self.steps)

    def walk(self, x, inverse, kwargs):
        log_det = tf.zeros([], x.dtype)
        for step in self.steps if inverse else reversed(self.steps):
            x, step_log_det = yield from walk.step(step, x, inverse, 1, kwargs)
            log_det += step_log_det
        return x, log_det

    def _inverse_and_log_det(self, y):
        self.runs += 1
        log_det = tf.zeros([], y.dtype)
        for step in self.steps:
            y, step_log_det = step.inverse_and_log_det(y, 1)
            log_det += step_log_det
        return y, log_det

    def _forward_and_log_det(self, x):
        self.runs += 1
        log_det = tf.zeros([], x.dtype)
        for step in reversed(self.steps):
            x, step_log_det = step.forward_and_log_det(x, 1)
            log_det += step_log_det
        return x, log_det


@pytest.mark.parametrize('several', [False, True])
def test_a_container_of_ones_own_plugs_into_the_walk(several, act_norm_outputs):
    repeated = _Repeated([ActNorm(2, name='inner_0'), ActNorm(2, name='inner_1')])
    chain = tfp_flows.bijectors.Chain([ActNorm(2, name='outer'), repeated], event_ndims=1)
    data = _data('real_nvp_vector', 64, seed=8)
    tfp_flows.initialize(chain, np.split(data, [24]) if several else data)
    assert repeated.runs == 0  # Initialisation walked inside it.
    act_norm_outputs.clear()
    chain.inverse(data)
    assert repeated.runs == 1  # A plain pass runs it whole.
    for act_norm in _act_norms(chain):
        x = act_norm_outputs[id(act_norm)].numpy()
        np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(x.std(axis=0), 1.0, rtol=1e-3)
    assert len(_act_norms(chain)) == 3
