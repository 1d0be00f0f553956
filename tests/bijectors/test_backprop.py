"""Tests of tfp_flows/bijectors/backprop.py: memory-saving backprop gives plain backprop's
gradients, and its memory does not grow with depth."""

import gc
import json
import sys
import weakref

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scripts import processes

import tfp_flows
from tfp_flows.bijectors import ActNorm, Chain, FlowBijector
from tfp_flows.bijectors.context import StandardizedContext

tfb = tfp.bijectors
tfd = tfp.distributions

MODES = ['invert', 'recompute']

# Relative error of each variable's gradient (2-norm) allowed against plain backprop.
_RELATIVE = {tf.float32: 1e-4, tf.float64: 1e-10}

_MODELS = {
    'glow': lambda dtype: tfp_flows.glow(
        (8, 8, 2), num_levels=2, num_steps=2, hidden_channels=8, dtype=dtype
    ),
    'glow_additive_shuffle_plain_prior': lambda dtype: tfp_flows.glow(
        (8, 8, 2),
        num_levels=2,
        num_steps=2,
        hidden_channels=8,
        coupling='additive',
        permutation='shuffle',
        split_prior=False,
        preprocessing='logit',
        dtype=dtype,
    ),
    'glow_plain_conv_sigmoid': lambda dtype: tfp_flows.glow(
        (4, 4, 1),
        num_levels=1,
        num_steps=2,
        hidden_channels=8,
        permutation='plain',
        scale='sigmoid',
        dtype=dtype,
    ),  # fmt: skip
    'real_nvp': lambda dtype: tfp_flows.real_nvp(
        (8, 8, 2), num_levels=2, num_steps=1, hidden_channels=8, split_prior=True, dtype=dtype
    ),
    'real_nvp_vector': lambda dtype: tfp_flows.real_nvp((3,), num_steps=3, dtype=dtype),
}


def _random_flow(name, dtype):
    """A flow of `_MODELS`, ActNorms initialised on data, every variable then moved."""
    flow = _MODELS[name](dtype)
    tfp_flows.initialize(flow, _data(flow, dtype, seed=5))
    return checks.randomize_variables(flow, seed=3)


def _data(flow, dtype, seed=1, batch=3):
    shape = [batch, *flow.event_shape]
    if len(flow.event_shape) == 1:
        return tf.random.stateless_normal(shape, [seed, 0], dtype=dtype)
    return tf.random.stateless_uniform(shape, [seed, 0], 0.05, 0.95, dtype=dtype)


def _loss_and_gradients(flow, x, memory_saving, function=False, jit_compile=False):
    """Mean negative log-likelihood and its gradients w.r.t. the flow's variables and `x`."""
    variables = flow.trainable_variables
    kwargs = {'bijector_kwargs': {'memory_saving': memory_saving}} if memory_saving else {}

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = -tf.reduce_mean(flow.log_prob(x, **kwargs))
        return loss, tape.gradient(loss, [*variables, x])

    if function:
        run = tf.function(run, jit_compile=jit_compile)
    return run(x)


def _assert_gradients_close(actual, expected, dtype):
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert e is not None and a is not None, f'gradient {i} is None'
        assert np.any(e.numpy() != 0), f'gradient {i} is zero: the test would not see it'
        error = np.linalg.norm(a - e) / np.linalg.norm(e)
        assert error <= _RELATIVE[dtype], f'gradient {i}: relative error {error:.2e}'


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize('model', sorted(_MODELS))
def test_gradients_equal_plain_backprop_eagerly(model, dtype, mode):
    flow = _random_flow(model, dtype)
    x = _data(flow, dtype)
    loss, gradients = _loss_and_gradients(flow, x, memory_saving=None)
    saved_loss, saved_gradients = _loss_and_gradients(flow, x, memory_saving=mode)
    np.testing.assert_allclose(saved_loss, loss, **checks.tolerance(dtype))
    _assert_gradients_close(saved_gradients, gradients, dtype)


# Every model and mode runs eagerly above; traced, each mode once and the TFP bijectors
# (Permute, Sigmoid), which memoise by input tensor in a graph, once.
@pytest.mark.parametrize(
    ('model', 'dtype', 'jit_compile', 'mode'),
    [
        *[('glow', tf.float64, False, mode) for mode in MODES],
        ('glow_additive_shuffle_plain_prior', tf.float64, False, 'invert'),
        ('glow', tf.float32, True, 'invert'),
        ('real_nvp', tf.float32, True, 'recompute'),
    ],
)
def test_gradients_equal_plain_backprop_in_tf_function_and_xla(model, dtype, jit_compile, mode):
    flow = _random_flow(model, dtype)
    x = _data(flow, dtype)
    _, gradients = _loss_and_gradients(flow, x, memory_saving=None)
    _, saved = _loss_and_gradients(flow, x, mode, function=True, jit_compile=jit_compile)
    _assert_gradients_close(saved, gradients, dtype)


def test_every_kind_of_variable_gets_its_gradient():
    flow = _random_flow('glow', tf.float64)
    kinds = {v.name.split('/')[-1].split(':')[0] for v in flow.trainable_variables}
    # ActNorm, LU 1x1 conv, the coupling's conv net, the split prior's zero conv.
    assert {'shift', 'log_scale', 'lower', 'upper', 'kernel_in', 'kernel', 'bias'} <= kinds
    _, gradients = _loss_and_gradients(flow, _data(flow, tf.float64), 'invert')
    assert all(g is not None and np.any(g.numpy() != 0) for g in gradients)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('function', [False, True])
def test_gradients_of_the_forward_direction_equal_plain_backprop(mode, function):
    # Sampling direction (latent -> data): a loss on samples and the forward log-det, through
    # two levels (a FactorOut walks back the other way round).
    flow = tfp_flows.glow((4, 4, 2), num_levels=2, num_steps=1, hidden_channels=8, dtype=tf.float64)
    tfp_flows.initialize(flow, _data(flow, tf.float64, seed=5))
    checks.randomize_variables(flow, seed=3)
    z = tf.random.stateless_normal([3, 4, 4, 2], [4, 0], dtype=tf.float64)
    variables = flow.trainable_variables

    def run(memory_saving):
        with tf.GradientTape() as tape:
            tape.watch(z)
            kwargs = {'memory_saving': memory_saving} if memory_saving else {}
            x, log_det = flow.bijector.forward_and_log_det(z, 3, **kwargs)
            loss = tf.reduce_sum(tf.sin(x)) - tf.reduce_sum(log_det)
        return tape.gradient(loss, [*variables, z])

    expected = run(None)
    actual = (tf.function(run) if function else run)(mode)
    _assert_gradients_close(actual, expected, tf.float64)


class ContextShift(FlowBijector):
    """y = x + w * c on vectors, c the `conditional_input`; a test step with a tensor kwarg."""

    kwarg_names = ('conditional_input',)

    def __init__(self, size):
        self.weight = tf.Variable(tf.linspace(0.5, 1.5, size), name='weight')
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, name='context_shift')

    def _forward_and_log_det(self, x, conditional_input):
        return x + self.weight * conditional_input, tf.zeros([], x.dtype)

    def _inverse_and_log_det(self, y, conditional_input):
        return y - self.weight * conditional_input, tf.zeros([], y.dtype)


@pytest.mark.parametrize('mode', MODES)
def test_tensor_kwargs_get_their_gradients(mode):
    steps = [ActNorm(3), ContextShift(3), ActNorm(3), Chain([ContextShift(3)], event_ndims=1)]
    chain = checks.randomize_variables(Chain(steps, event_ndims=1))
    flow = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [3]), chain)
    x = tf.constant([[0.3, -1.0, 2.0], [0.1, 0.2, -0.4]])
    context = tf.constant([[1.0, -2.0, 0.5], [0.0, 1.5, -1.0]])

    def gradients(memory_saving):
        kwargs = {'conditional_input': context}
        if memory_saving:
            kwargs['memory_saving'] = memory_saving
        with tf.GradientTape() as tape:
            tape.watch(context)
            loss = -tf.reduce_sum(flow.log_prob(x, bijector_kwargs=kwargs))
        return tape.gradient(loss, [*chain.trainable_variables, context])

    _assert_gradients_close(gradients(mode), gradients(None), tf.float32)


def test_mirrored_replicas_get_plain_backprops_gradients(mirrored_strategy):
    with mirrored_strategy.scope():
        flow = tfp_flows.glow((4, 4, 2), num_levels=2, num_steps=1, hidden_channels=8)
    x = _data(flow, tf.float32, batch=4)
    tfp_flows.initialize(flow, x)
    checks.randomize_variables(flow, seed=3)
    variables = flow.trainable_variables

    def replica_gradients(x, memory_saving):
        x = tf.identity(x)  # Each replica's own tensor: TFP memoises by input tensor.
        kwargs = {'bijector_kwargs': {'memory_saving': memory_saving}} if memory_saving else {}
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x, **kwargs))
        return tape.gradient(loss, variables)

    @tf.function
    def run(memory_saving):
        return mirrored_strategy.run(replica_gradients, (x, memory_saving))

    expected = run(None)
    for mode in MODES:
        actual = run(mode)
        for replica in range(2):
            _assert_gradients_close(
                [mirrored_strategy.experimental_local_results(g)[replica] for g in actual],
                [mirrored_strategy.experimental_local_results(g)[replica] for g in expected],
                tf.float32,
            )


def test_memory_of_a_gradient_does_not_grow_with_depth_with_invert():
    # Figures of TensorFlow's allocator in a fresh process, not timings. Plain backprop keeps every
    # step's activations; 'invert' one step's at any depth; 'recompute' each step's input and
    # more (in fresh processes on the 2-core AMD EPYC, 2026-12-07: plain 7.5 -> 117-129 MiB from
    # K = 2 to 8, 'invert' 4-6.5 MiB at both, 'recompute' 29-33 MiB at K = 8, 0.24-0.27 of
    # plain's). One level: the walk back through nested containers is the chain's inside the
    # flow's.
    # Measured in a fresh process (tests/scripts/activation_memory.py): in a pytest worker that
    # ran other tests first, 'recompute' came to 0.38 of plain's (37 of 98 MB) and failed.
    script = str(processes.ROOT / 'tests' / 'scripts' / 'activation_memory.py')
    figures = json.loads(processes.run([sys.executable, script], timeout=300))
    plain, invert = ({int(k): v for k, v in figures[m].items()} for m in ('plain', 'invert'))
    recompute = figures['recompute']['8']
    assert plain[8] > 2.5 * plain[2], plain
    one_step = (plain[8] - plain[2]) / 6
    # Six steps more add less than one step's activations (by the order TF frees in).
    assert invert[8] - invert[2] < one_step, (invert, plain)
    assert invert[8] < plain[8] / 3, (invert, plain)
    assert recompute < plain[8] / 3, (recompute, plain)


class Recorder(FlowBijector):
    """Doubles vectors, keeping weak references to its outputs."""

    def __init__(self):
        self.outputs = []
        self.scale = tf.Variable(2.0)
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, name='recorder')

    def _forward_and_log_det(self, x):
        return x * self.scale, tf.math.log(self.scale) * 0.0

    def _inverse_and_log_det(self, y):
        x = y / self.scale
        self.outputs.append(weakref.ref(x))
        return x, -tf.math.log(self.scale) * tf.cast(tf.shape(y)[-1], y.dtype)


def test_eagerly_the_tape_keeps_no_step_output_with_invert():
    steps = [Recorder() for _ in range(3)]
    chain = Chain(steps, event_ndims=1)
    x = tf.constant([[1.0, 2.0]])
    # gc.collect() below walks only the objects made from here on: a test worker keeps
    # millions from the tests before it, which a full collection walks for seconds each time
    # (2.3 s for 2.9 M objects; 2026-12-07). Collecting less can only keep outputs alive.
    gc.freeze()
    try:
        for memory_saving, kept in ((None, True), ('invert', False)):
            for step in steps:
                step.outputs.clear()
            with tf.GradientTape() as tape:
                y, log_det = chain.inverse_and_log_det(x, memory_saving=memory_saving)
                loss = tf.reduce_sum(y) + tf.reduce_sum(log_det)
                del y, log_det
                gc.collect()
                inner = [ref() for step in steps[:-1] for ref in step.outputs]
                assert all(t is not None for t in inner) == kept, memory_saving
                del inner
            gradients = tape.gradient(loss, chain.trainable_variables)
            assert all(g is not None for g in gradients)
    finally:
        gc.unfreeze()


@pytest.mark.parametrize('mode', ['invert', 'recompute'])
def test_dropout_without_a_seed_gets_the_gradient_of_the_loss_it_reports(mode):
    # Without a dropout_seed the walk draws one seed, so the rerun on the way back applies the
    # forward pass's masks; plain backprop given that seed must agree.
    flow = tfp_flows.glow((4, 4, 1), num_levels=1, num_steps=2, hidden_channels=8, dropout_rate=0.5)
    x = tf.random.stateless_uniform([8, 4, 4, 1], [1, 2])
    tfp_flows.initialize(flow, x)
    for i, v in enumerate(flow.trainable_variables):
        v.assign_add(0.1 * tf.random.stateless_normal(v.shape, [3, i], dtype=v.dtype))

    def loss_and_gradients(**kwargs):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x, bijector_kwargs={'training': True, **kwargs}))
        return loss, tape.gradient(loss, flow.trainable_variables)

    tf.random.set_seed(7)
    loss, gradients = loss_and_gradients(memory_saving=mode)
    tf.random.set_seed(7)
    seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)  # The walk's draw.
    expected_loss, expected = loss_and_gradients(dropout_seed=seed)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    _assert_gradients_close(gradients, expected, tf.float32)


def test_rejects_an_unknown_mode():
    flow = tfp_flows.real_nvp((2,), num_steps=1)
    with pytest.raises(
        ValueError, match=r"`memory_saving` must be .*\('invert', 'recompute'\); got 'fast'"
    ):
        flow.log_prob(tf.zeros([1, 2]), bijector_kwargs={'memory_saving': 'fast'})


@pytest.mark.parametrize('uses', ['output', 'log_det'])
def test_a_loss_of_one_output_alone_gets_plain_backprops_gradients(uses):
    # In a graph the gradient w.r.t. the unused output is None, not zeros.
    flow = _random_flow('real_nvp_vector', tf.float64)
    x = _data(flow, tf.float64)

    def run(memory_saving):
        with tf.GradientTape() as tape:
            kwargs = {'memory_saving': memory_saving} if memory_saving else {}
            z, log_det = flow.bijector.inverse_and_log_det(x, 1, **kwargs)
            loss = tf.reduce_sum(z**2) if uses == 'output' else tf.reduce_sum(log_det)
        return tape.gradient(loss, flow.trainable_variables)

    expected = run(None)
    actual = tf.function(run)('invert')
    pairs = [(a, e) for a, e in zip(actual, expected, strict=True) if e is not None]
    assert pairs
    _assert_gradients_close(*zip(*pairs, strict=True), tf.float64)


@pytest.mark.parametrize('mode', MODES)
def test_a_standardized_context_flow_gets_plain_backprops_gradients(mode):
    # The context goes through the standardisation to every step; its gradient too.
    flow = tfp_flows.real_nvp((3,), num_steps=2, conditional_shape=(2,), learn_top_prior=True)
    bijector = StandardizedContext(flow.bijector, tf.constant([1.0, -2.0]), tf.constant([2.0, 0.5]))
    standardized = tfd.TransformedDistribution(flow.distribution, bijector)
    checks.randomize_variables(standardized, seed=4)
    x = tf.random.stateless_normal([4, 3], [5, 1])
    context = tf.random.stateless_normal([4, 2], [5, 2])

    def gradients(memory_saving):
        kwargs = {'conditional_input': context}
        if memory_saving:
            kwargs['memory_saving'] = memory_saving
        with tf.GradientTape() as tape:
            tape.watch(context)
            loss = -tf.reduce_sum(standardized.log_prob(x, bijector_kwargs=kwargs))
        return tape.gradient(loss, [*standardized.trainable_variables, context])

    _assert_gradients_close(gradients(mode), gradients(None), tf.float32)
