"""Mixed precision: networks in bfloat16 / float16, everything else in float32.

Tolerances, measured on random models (`checks.randomize_variables`, scale 0.2, 6 seeds) and
set a few times above the largest error seen:
- A single coupling: its log-det against autodiff is float32-exact under both policies (<= 6e-7
  measured): the Jacobian is triangular whatever the network computes, so the log-det (a sum of
  float32 log-scales) is exact for the map computed.
- A whole flow: the autodiff reference itself runs its backward pass through the networks in
  the compute dtype, with rounding of its own in every row of the Jacobian, which no longer
  cancels once 1x1 convolutions mix the channels: measured <= 1.8e-2 nats per example in
  bfloat16 (8 significant bits, 2**-9 ~ 2e-3 relative rounding), <= 6.9e-4 in float16 (11 bits).
- Round trips: the forward and inverse of a coupling see the same kept half, so their network
  outputs round alike; only a float32 difference that crosses a rounding boundary of the compute
  dtype shows, measured <= 3.3e-6 in bfloat16 and <= 1.8e-4 in float16.
"""

import os

import checks
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from configs import realnvp_moons
from tfp_flows import bijectors, networks
from tfp_flows.mixed_precision import check_dtype_policy, dtype_policy_of
from tfp_flows.run import experiment
from tfp_flows.run import workdir as workdirs
from tfp_flows.training.optimizers import make_optimizer
from tfp_flows.training.trainer import FlowTrainer

POLICIES = ['mixed_bfloat16', 'mixed_float16']
MODES = ['invert', 'recompute']  # Memory-saving backprop (tfp_flows.bijectors.backprop).
COMPUTE = {'mixed_bfloat16': tf.bfloat16, 'mixed_float16': tf.float16}
ROUND_TRIP_ATOL = {None: 1e-4, 'mixed_bfloat16': 1e-4, 'mixed_float16': 1e-3}
FLOW_LOG_DET_ATOL = {None: 2e-4, 'mixed_bfloat16': 5e-2, 'mixed_float16': 5e-3}
# How far a mixed network's output may be from the float32 network's (relative to its largest
# value): a few roundings of the compute dtype.
NETWORK_RTOL = {'mixed_bfloat16': 3e-2, 'mixed_float16': 4e-3}


def _network(kind, policy):
    if kind == 'ConvNet':
        return networks.ConvNet(3, 4, 16, dtype_policy=policy), [4, 8, 8, 3]
    if kind == 'DenseNet':
        return networks.DenseNet(3, 4, 16, dtype_policy=policy), [4, 3]
    if kind == 'ZeroConv':
        return networks.ZeroConv(3, 4, dtype_policy=policy), [4, 8, 8, 3]
    return networks.ZeroDense(3, 4, dtype_policy=policy), [4, 3]


def _matmul_dtypes(function, x):
    """The dtypes of the matrix products and convolutions in the graph of `function(x)`."""
    graph = tf.function(function).get_concrete_function(x).graph
    kinds = ('MatMul', 'BatchMatMulV2', 'Conv2D', 'Einsum')
    return {op.get_attr('T') for op in graph.get_operations() if op.type in kinds}


@pytest.mark.parametrize('policy', POLICIES)
@pytest.mark.parametrize('kind', ['ConvNet', 'DenseNet', 'ZeroConv', 'ZeroDense'])
def test_a_network_computes_in_the_policy_and_returns_float32(kind, policy):
    network, shape = _network(kind, policy)
    reference, _ = _network(kind, None)
    checks.randomize_variables(network, seed=1, scale=1.0)
    for target, source in zip(reference.variables, network.variables, strict=True):
        assert source.dtype == tf.float32
        target.assign(source)
    x = tf.random.stateless_normal(shape, [1, 2])
    assert _matmul_dtypes(network, x) == {COMPUTE[policy]}
    assert _matmul_dtypes(reference, x) == {tf.float32}
    with tf.GradientTape() as tape:
        y = network(x)
        loss = tf.reduce_sum(y**2)
    gradients = tape.gradient(loss, network.trainable_variables)
    assert y.dtype == tf.float32
    assert all(g.dtype == tf.float32 and np.all(np.isfinite(g)) for g in gradients)
    expected = reference(x).numpy()
    error = np.max(np.abs(y.numpy() - expected)) / np.max(np.abs(expected))
    assert 0 < error < NETWORK_RTOL[policy]  # Rounded, but only as much as the dtype rounds.


def test_a_policy_computing_in_the_variables_dtype_is_none():
    assert check_dtype_policy(None) is None
    assert check_dtype_policy('float32') is None
    assert check_dtype_policy(keras.mixed_precision.DTypePolicy('float32')) is None
    assert check_dtype_policy(keras.mixed_precision.Policy('mixed_bfloat16')) == 'mixed_bfloat16'
    network = networks.ConvNet(2, 2, 4, dtype_policy=keras.mixed_precision.global_policy())
    assert network.dtype_policy is None and network.compute_dtype == tf.float32


def test_a_mixed_policy_needs_float32_and_the_default_conditioner():
    message = r"`dtype_policy` 'mixed_float16' keeps float32 variables, .*got dtype float64\."
    with pytest.raises(ValueError, match=message):
        tfp_flows.glow((4, 4, 1), 1, 1, 4, dtype=tf.float64, dtype_policy='mixed_float16')
    with pytest.raises(ValueError, match=message):
        networks.DenseNet(2, 2, dtype=tf.float64, dtype_policy='mixed_float16')
    message = r'`dtype_policy` applies to the default conditioner networks only'
    with pytest.raises(ValueError, match=message):
        bijectors.AffineCoupling(
            (4,), conditioner_fn=networks.DenseNet, dtype_policy='mixed_bfloat16'
        )


def _flow(family, policy, seed=0, **kwargs):
    if family == 'glow':
        return tfp_flows.glow(
            (4, 4, 2), 2, 2, 16, dtype_policy=policy, seed=seed, learn_top_prior=True, **kwargs
        )
    if family == 'real_nvp':
        return tfp_flows.real_nvp(
            (4, 4, 2), 2, 1, 16, split_prior=True, dtype_policy=policy, seed=seed, **kwargs
        )
    return tfp_flows.real_nvp((4,), num_steps=3, hidden_channels=16, dtype_policy=policy, **kwargs)


def _event(family):
    return (4, 4, 2) if family != 'vector' else (4,)


def test_every_network_of_a_flow_takes_the_policy():
    flow = _flow('glow', 'mixed_bfloat16', conditional_shape=(3,))
    policies = [m.dtype_policy for m in flow.submodules if hasattr(m, 'compute_dtype')]
    kinds = {type(m).__name__ for m in flow.submodules if hasattr(m, 'compute_dtype')}
    assert kinds == {'ConvNet', 'ZeroConv', 'ZeroDense'}
    assert set(policies) == {'mixed_bfloat16'}
    assert dtype_policy_of(flow) == 'mixed_bfloat16'
    assert dtype_policy_of(_flow('vector', 'mixed_float16')) == 'mixed_float16'
    assert dtype_policy_of(_flow('glow', None)) is None


@pytest.mark.parametrize('policy', POLICIES)  # float32: tests/test_models.py.
@pytest.mark.parametrize('family', ['glow', 'real_nvp', 'vector'])
def test_round_trip_and_log_det_against_autodiff(family, policy):
    flow = checks.randomize_variables(_flow(family, policy), seed=3)
    bijector, ndims = flow.bijector, len(_event(family))
    x = tf.random.stateless_uniform([4, *_event(family)], [3, 1], 0.05, 0.95)
    z = tf.random.stateless_normal([4, *_event(family)], [3, 2])
    round_trip = dict(rtol=0, atol=ROUND_TRIP_ATOL[policy])
    np.testing.assert_allclose(bijector.forward(tf.constant(bijector.inverse(x))), x, **round_trip)
    np.testing.assert_allclose(bijector.inverse(tf.constant(bijector.forward(z))), z, **round_trip)
    log_det = dict(rtol=0, atol=FLOW_LOG_DET_ATOL[policy])
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, ndims, **log_det
    )
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, z, ndims, **log_det
    )
    # Log-dets, log-densities and the loss are float32, whatever the networks compute in.
    assert bijector.inverse_log_det_jacobian(x, event_ndims=ndims).dtype == tf.float32
    assert flow.log_prob(x).dtype == tf.float32
    assert tfp_flows.bits_per_dim(flow.log_prob(x), 32, 17).dtype == tf.float32


@pytest.mark.parametrize('policy', POLICIES)
@pytest.mark.parametrize('mask', ['channel', 'checkerboard'])
@pytest.mark.parametrize('kind', ['AffineCoupling', 'SplineCoupling', 'LogisticMixtureCoupling'])
def test_one_coupling_log_det_is_float32_exact_under_a_policy(kind, mask, policy):
    coupling = getattr(bijectors, kind)(
        (4, 4, 2), mask=mask, hidden_channels=16, dtype_policy=policy
    )
    checks.randomize_variables(coupling, seed=2, scale=0.5)
    x = tf.random.stateless_normal([4, 4, 4, 2], [2, 1])
    for fn, log_det_fn in (
        (coupling.forward, coupling.forward_log_det_jacobian),
        (coupling.inverse, coupling.inverse_log_det_jacobian),
    ):
        checks.assert_log_det_matches_autodiff(fn, log_det_fn, x, 3, **checks.tolerance(tf.float32))
    y = coupling.forward(x)
    np.testing.assert_allclose(coupling.inverse(tf.constant(y)), x, rtol=0, atol=1e-5)


@pytest.mark.parametrize('policy', POLICIES)
def test_xla_compiles_a_mixed_flow(policy):
    flow = checks.randomize_variables(_flow('glow', policy), seed=4)
    x = tf.random.stateless_uniform([4, 4, 4, 2], [4, 1], 0.05, 0.95)
    compiled = tf.function(flow.log_prob, jit_compile=True)(x)
    np.testing.assert_allclose(compiled, flow.log_prob(x), rtol=0, atol=FLOW_LOG_DET_ATOL[policy])


@pytest.mark.parametrize(('saved', 'restored'), [(None, 'mixed_bfloat16'), ('mixed_float16', None)])
@pytest.mark.parametrize('family', ['glow', 'real_nvp'])
def test_a_checkpoint_restores_across_policies(family, saved, restored, tmp_path):
    # The policy changes rounding only: a float32 run's checkpoint restores into a mixed model
    # and a mixed run's into a float32 one; the density is the same to that rounding.
    source = checks.randomize_variables(_flow(family, saved), seed=5)
    path = tf.train.Checkpoint(flow=source).write(str(tmp_path / 'ckpt'))
    target = _flow(family, restored)
    tf.train.Checkpoint(flow=target).read(path).assert_consumed()
    for a, b in zip(source.variables, target.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = tf.random.stateless_uniform([8, 4, 4, 2], [5, 1], 0.05, 0.95)
    per_dim = np.abs(target.log_prob(x).numpy() - source.log_prob(x).numpy()) / 32
    assert 0 < np.max(per_dim) < 0.02  # nats/dim: the policy's rounding, not another density.
    back = _flow(family, saved)  # And back again: the very same numbers as before the save.
    tf.train.Checkpoint(flow=back).read(path).assert_consumed()
    np.testing.assert_array_equal(back.log_prob(x), source.log_prob(x))


def _global_relative_error(actual, expected):
    """|actual - expected| / |expected| over all variables' gradients as one vector."""
    pairs = zip(actual, expected, strict=True)
    difference = sum(np.sum((a.numpy() - e.numpy()) ** 2) for a, e in pairs)
    return np.sqrt(difference / sum(np.sum(e.numpy() ** 2) for e in expected))


def _gradients(flow, x, memory_saving=None, function=False):
    """Gradients of the mean negative log-likelihood w.r.t. the flow's variables."""
    kwargs = {'bijector_kwargs': {'memory_saving': memory_saving}} if memory_saving else {}

    def run(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x, **kwargs))
        return tape.gradient(loss, flow.trainable_variables)

    return (tf.function(run) if function else run)(x)


# Global relative errors of a step's gradients, measured on 5 seeds x glow / real_nvp (max seen
# in brackets): memory-saving against plain backprop in the same policy ('recompute' <= 3.3e-10,
# 'invert' <= 4.2e-5 in float16, whose rebuilt inputs can cross a rounding boundary of float16);
# a policy's against float32's (bfloat16 <= 6.4e-3, float16 <= 1.2e-3). Per variable they can
# be far larger where a variable's gradient nearly cancels (up to 0.2 in bfloat16).
MEMORY_SAVING_VS_PLAIN = 2e-4
POLICY_VS_FLOAT32 = {'mixed_bfloat16': 2e-2, 'mixed_float16': 4e-3}


@pytest.mark.parametrize(
    ('family', 'policy', 'mode', 'function'),
    [
        *[(f, p, m, False) for f in ('glow', 'real_nvp') for p in POLICIES for m in MODES],
        *[('glow', p, 'invert', True) for p in POLICIES],
    ],
)
def test_memory_saving_backprop_gives_the_policys_gradients(family, policy, mode, function):
    # tfp_flows.bijectors.backprop reruns (and for 'invert' first rebuilds) each step under a
    # tape: the networks then compute in the policy again, and the gradients are the same.
    reference = checks.randomize_variables(_flow(family, None), seed=2)
    flow = _flow(family, policy)
    for target, source in zip(flow.variables, reference.variables, strict=True):
        target.assign(source)
    x = tf.random.stateless_uniform([4, 4, 4, 2], [2, 1], 0.05, 0.95)
    saved = _gradients(flow, x, mode, function)
    assert all(g.dtype == tf.float32 and np.all(np.isfinite(g)) for g in saved)
    plain = _gradients(flow, x)
    assert _global_relative_error(saved, plain) <= MEMORY_SAVING_VS_PLAIN
    error = _global_relative_error(saved, _gradients(reference, x))
    assert 0 < error <= POLICY_VS_FLOAT32[policy]  # Rounded as the policy rounds, no more.


# Training: FlowTrainer with each policy.

IMAGE_SHAPE = (8, 8, 1)


def _image_data(count, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 5, size=(count, *IMAGE_SHAPE)) * 4  # A few levels of 17.
    return tfp_flows.uniform_dequantize(pixels, 17, seed=[seed, 1]).numpy()


def _trainer(policy, x, seed=0, **trainer_kwargs):
    flow = tfp_flows.glow(IMAGE_SHAPE, 2, 1, 8, seed=seed, dtype_policy=policy)
    tfp_flows.initialize(flow, x)
    return flow, FlowTrainer(flow, 17, **trainer_kwargs)


def _values(variables):
    return [v.numpy().copy() for v in variables]


# The plain step, and one step through every other path at once (float32: test_trainer.py).
@pytest.mark.parametrize('path', ['fit', 'accumulation, ema, memory saving'])
@pytest.mark.parametrize('policy', POLICIES)
def test_every_variable_moves_and_the_loss_falls_under_each_policy(policy, path):
    x = _image_data(32)
    every = path != 'fit'
    flow, trainer = _trainer(
        policy,
        x,
        clip_norm=100.0,
        accumulation_steps=4 if every else 1,
        memory_saving='invert' if every else None,
    )
    before = _values(flow.trainable_variables)
    optimizer = make_optimizer('adam', 3e-3, ema_momentum=0.9 if every else None)
    trainer.compile(optimizer)
    # float16 gets dynamic loss scaling around the given optimizer; bfloat16 needs none.
    scaled = isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == 'mixed_float16')
    assert (trainer.optimizer.inner_optimizer if scaled else trainer.optimizer) is optimizer
    # What the pictures callback asks: the EMA is found through the loss-scale wrapper too.
    assert trainer.uses_ema == every
    dataset = tf.data.Dataset.from_tensors(x)
    first = trainer.evaluate(dataset, verbose=0, return_dict=True)['bits_per_dim']
    history = trainer.fit(dataset.repeat(), steps_per_epoch=40, epochs=1, verbose=0)
    assert np.isfinite(history.history['grad_norm'][0])
    assert int(optimizer.iterations.numpy()) == 40  # Keras' initial scale 2**15 overflows none.
    if every:
        with trainer.ema_weights():
            ema = trainer.evaluate(dataset, verbose=0, return_dict=True)['bits_per_dim']
        assert ema < first - 0.05
    last = trainer.evaluate(dataset, verbose=0, return_dict=True)['bits_per_dim']
    assert last < first - 0.05
    unmoved = [
        v.name
        for b, v in zip(before, flow.trainable_variables, strict=True)
        if np.array_equal(b, v.numpy())
    ]
    assert not unmoved
    assert all(v.dtype == tf.float32 for v in flow.trainable_variables)


def _train_one_step(trainer, x):
    trainer.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0)
    return trainer.history.history


@pytest.mark.parametrize('accumulation_steps', [1, 2])
def test_a_float16_step_with_an_overflowing_loss_scale_is_skipped_and_the_scale_halves(
    accumulation_steps,
):
    # Keras' dynamic loss scaling, through FlowTrainer's clipping and accumulation: the loss
    # times 2**40 overflows float16 in the backward pass (float16 ends at 65504 ~ 2**16), so
    # the step is skipped and the scale halves, once per step (not per micro-batch).
    x = _image_data(8)
    flow, trainer = _trainer(
        'mixed_float16', x, clip_norm=0.05, accumulation_steps=accumulation_steps
    )
    inner = keras.optimizers.SGD(1.0)
    trainer.compile(keras.optimizers.LossScaleOptimizer(inner, initial_scale=2.0**40))
    before = _values(flow.trainable_variables)
    history = _train_one_step(trainer, x)
    assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0**39
    assert int(inner.iterations.numpy()) == 0
    for b, v in zip(before, flow.trainable_variables, strict=True):
        np.testing.assert_array_equal(v.numpy(), b)
    assert history['grad_norm'] == [0.0]  # The skipped step's norm is left out.
    assert np.isfinite(history['bits_per_dim'][0])  # The loss itself is fine.
    # At a loss scale float16 holds, the step is taken, its gradient unscaled before clipping:
    # the update is the clipped unscaled gradient, and grad_norm is the unscaled norm.
    trainer.optimizer.dynamic_scale.assign(2.0**10)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(trainer.per_example_loss(x))
    gradients = tape.gradient(loss, flow.trainable_variables)
    norm = float(tf.linalg.global_norm(gradients))
    assert norm > 0.05  # Clipping is active.
    history = _train_one_step(trainer, x)
    assert int(inner.iterations.numpy()) == 1
    assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0**10
    assert history['grad_norm'][0] == pytest.approx(norm, rel=2e-2)
    for b, v, g in zip(before, flow.trainable_variables, gradients, strict=True):
        np.testing.assert_allclose(v.numpy(), b - g.numpy() * 0.05 / norm, rtol=0, atol=2e-3)


def test_two_replicas_skip_a_step_that_overflows_on_one_of_them(mirrored_strategy):
    # LossScaleOptimizer checks one replica's gradients before their sum: FlowTrainer makes a
    # non-finite sum NaN on every replica, so both skip. Replica 1's half of the batch has a
    # value float16 cannot hold (1e6 > 65504): its gradients are NaN, replica 0's finite.
    # Without clipping (clipping by a non-finite norm makes NaN too): without that step,
    # replica 0 found its gradients finite and applied the NaN sum.
    x = _image_data(8)
    x[5, 0, 0, 0] = 1e6
    with mirrored_strategy.scope():
        flow, trainer = _trainer('mixed_float16', x[:4])
        trainer.compile(make_optimizer('adam', 1e-2))
    before = _values(flow.trainable_variables)
    _train_one_step(trainer, x)
    assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0**14
    assert int(trainer.optimizer.iterations.numpy()) == 0
    for b, v in zip(before, flow.trainable_variables, strict=True):
        for local in mirrored_strategy.experimental_local_results(v):
            np.testing.assert_array_equal(local.numpy(), b, err_msg=v.name)


def test_a_run_trains_in_float16_and_resumes_in_float32(tmp_path):
    # config.train.mixed_precision changes the steps, not the model: the checkpoints of a float16
    # run (its optimizer's, not the loss scale) resume in float32, and the change is recorded.
    config = realnvp_moons.get_config()  # The property is the run's, not the data's.
    config.model.num_steps, config.model.hidden_channels = 2, 8
    config.train.epochs, config.train.warmup_steps = 1, 5
    config.train.mixed_precision = 'mixed_float16'
    workdir = str(tmp_path / 'run')
    metrics = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert 0.5 < metrics['test_nats_per_dim'] < 5.0
    # The float16-trained flow exports (float32 variables) and its SavedModel scores points.
    saved_model = os.path.join(workdir, 'saved_model')
    points = tf.random.stateless_normal([5, 2], [3, 4])
    loaded = tf.saved_model.load(saved_model)
    assert np.all(np.isfinite(loaded.log_prob(x=points)['log_prob']))
    config.train.epochs, config.train.mixed_precision = 2, None
    config.train.export = False  # Free: the resumed run removes the first session's export.
    resumed = experiment.train_and_evaluate(config, workdir, verbose=0)
    assert resumed['epochs_trained'] == 2 and 0.5 < resumed['test_nats_per_dim'] < 5.0
    assert not os.path.exists(saved_model)
    history = workdirs.read_json(os.path.join(workdir, 'config_history.json'))
    assert history[0]['changed']['train.mixed_precision'] == ['mixed_float16', None]
