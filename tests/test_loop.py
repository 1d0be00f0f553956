"""Looped Glow levels (`glow(..., loop=True)`, `bijectors.Loop`): the unrolled flow of the same
seed, computed by one `tf.while_loop` per level whose graph does not grow with the depth."""

import re

import checks
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.bijectors import Chain, walk
from tfp_flows.mixed_precision import dtype_policy_of
from tfp_flows.run import restore as run_restore
from tfp_flows.training import FlowTrainer

IMAGE = (8, 8, 2)
SMALL = dict(num_levels=2, num_steps=2, hidden_channels=8)
# One looped level: for checks of the loop itself (its log-det, its graph's size, training it),
# which two levels repeat; the tests that the looped flow is the unrolled one keep two.
ONE_LEVEL = {**SMALL, 'num_levels': 1}


def _pair(dtype=tf.float32, image=IMAGE, **kwargs):
    """(unrolled, looped) Glow of the same seed and arguments."""
    arguments = {**SMALL, 'dtype': dtype, **kwargs}
    return tfp_flows.glow(image, **arguments), tfp_flows.glow(image, loop=True, **arguments)


def test_glow_loops_levels_of_eight_steps_or_more_by_default():
    # bench/README's depth table: the loop is slower per step at K=4, not from K=8 on.
    for num_steps, loop, looped in ((7, None, False), (8, None, True), (8, False, False)):
        flow = tfp_flows.glow(IMAGE, **{**SMALL, 'num_steps': num_steps}, loop=loop)
        kinds = {type(s).__name__ for s in walk.all_steps(flow.bijector)}
        assert ('Loop' in kinds) == looped, (num_steps, loop, kinds)
    assert tfp_flows.models.LOOP_FROM == 8


def _leaves(flow):
    steps = walk.all_steps(flow.bijector)
    return [s for s in steps if not isinstance(s, Chain) and not walk.is_invert(s)]


def _copy(source, target):
    """Assigns `source`'s variables to `target` (a view, whose variables are slices)."""
    for name, value in sorted(vars(source).items()):
        if isinstance(value, tf.Variable):
            getattr(target, name).assign(value)
        elif isinstance(value, tf.Module) and not name.startswith('_self_'):
            _copy(value, getattr(target, name))


def _random_pair(dtype=tf.float32, seed=0, **kwargs):
    """(unrolled, looped) with the same random parameters: the looped flow's steps (views of
    its stacked variables) set to the unrolled one's."""
    unrolled, looped = _pair(dtype, **kwargs)
    checks.randomize_variables(unrolled, seed=seed)
    for source, target in zip(_leaves(unrolled), _leaves(looped), strict=True):
        assert type(target).__name__ == type(source).__name__
        _copy(source, target)
    return unrolled, looped


def _data(dtype, seed, count=3, image=IMAGE):
    return tf.random.stateless_uniform([count, *image], [seed, 1], 0.05, 0.95, dtype=dtype)


def _assert_same_flow(unrolled, looped, dtype, kwargs=None):
    """log_prob, inverse, forward and a seeded sample agree."""
    kwargs = kwargs or {}
    x = _data(dtype, 4)
    tol = checks.tolerance(dtype, log_det=True)
    log_prob = [f.log_prob(x, bijector_kwargs=kwargs) for f in (unrolled, looped)]
    np.testing.assert_allclose(log_prob[1], log_prob[0], **tol)
    latents = [f.bijector.inverse(x, **kwargs) for f in (unrolled, looped)]
    np.testing.assert_allclose(latents[1], latents[0], **checks.tolerance(dtype))
    z = tf.random.stateless_normal(x.shape, [5, 1], dtype=dtype)
    outputs = [f.bijector.forward(z, **kwargs) for f in (unrolled, looped)]
    np.testing.assert_allclose(outputs[1], outputs[0], **checks.tolerance(dtype))
    context = kwargs.get('conditional_input')
    samples = [
        tfp_flows.sample(f, 3, 0.7, seed=3, conditional_input=context) for f in (unrolled, looped)
    ]
    np.testing.assert_allclose(samples[1], samples[0], **checks.tolerance(dtype))


# Every coupling and every permutation (each a separate step of the loop's body, so each
# pairing adds nothing): the couplings with 'lu', the other permutations with a coupling each.
PAIRS = [
    ('affine', 'lu'),
    ('additive', 'lu'),
    ('spline', 'lu'),
    ('affine', 'plain'),
    ('additive', 'reverse'),
    ('spline', 'shuffle'),
    ('logistic_mixture', 'lu'),
]


@pytest.mark.parametrize(('coupling', 'permutation'), PAIRS)
def test_a_looped_glow_is_the_unrolled_glow_of_its_seed(coupling, permutation):
    unrolled, looped = _pair(coupling=coupling, permutation=permutation)
    assert [type(s).__name__ for s in looped.bijector.bijectors[1].bijectors] == [
        'Squeeze',
        'Loop',
        'FactorOut',
        '_Invert',
    ]
    _assert_same_flow(unrolled, looped, tf.float32)  # As built: the seeds' parameters.
    unrolled, looped = _random_pair(tf.float64, coupling=coupling, permutation=permutation)
    _assert_same_flow(unrolled, looped, tf.float64)


@pytest.mark.parametrize('dtype', checks.DTYPES)
def test_a_looped_glow_with_a_context_and_run_time_checks_is_the_unrolled_one(dtype):
    arguments = dict(conditional_shape=(3,), learn_top_prior=True, validate_args=True)
    unrolled, looped = _random_pair(dtype, **arguments)
    context = tf.random.stateless_normal([3, 3], [7, 1], dtype=dtype)
    _assert_same_flow(unrolled, looped, dtype, {'conditional_input': context})


@pytest.mark.parametrize(
    ('dtype', 'regime'), [(tf.float32, 'eager'), (tf.float64, 'eager'), (tf.float64, 'function')]
)
def test_looped_log_dets_match_autodiff_both_ways(dtype, regime):
    # Traced: the affine coupling (the spline's autodiff Jacobian in a graph costs 4x).
    coupling = 'spline' if regime == 'eager' else 'affine'
    _, looped = _random_pair(dtype, seed=2, coupling=coupling, permutation='plain', num_levels=1)
    bijector = checks.in_regime(looped.bijector, regime)
    x = _data(dtype, 6, count=2)
    z = tf.random.stateless_normal(x.shape, [6, 2], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, z, 3, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, 3, **tol
    )
    checks.assert_round_trip(looped.bijector, z, x, 3, dtype)


def test_a_looped_glow_compiles_with_xla():
    _, looped = _random_pair(tf.float32, seed=3)
    checks.assert_xla_matches_eager(
        looped.bijector, tf.random.stateless_normal([2, *IMAGE], [1, 9]), _data(tf.float32, 9, 2), 3
    )


def test_initialize_gives_the_unrolled_parameters():
    unrolled, looped = _pair(tf.float64)
    batches = [_data(tf.float64, seed) for seed in (11, 12)]
    for flow in (unrolled, looped):
        tfp_flows.initialize(flow, batches)
    for source, target in zip(_leaves(unrolled), _leaves(looped), strict=True):
        for name in ('shift', 'log_scale', 'initialized'):
            if hasattr(source, name) and isinstance(getattr(source, name), tf.Variable):
                np.testing.assert_allclose(getattr(target, name), getattr(source, name), rtol=1e-12)
    _assert_same_flow(unrolled, looped, tf.float64)
    stacked = {v.name: v.numpy() for v in looped.variables if 'initialized' in v.name}
    assert stacked and all(v.all() for v in stacked.values())


@tf.function
def _traced_initialize(flow, x):
    tfp_flows.initialize(flow, x)


def test_initialize_inside_tf_function_sets_each_slice_in_turn():
    unrolled, looped = _pair(tf.float64)
    x = _data(tf.float64, 13)
    tfp_flows.initialize(unrolled, x)
    _traced_initialize(looped, x)
    _assert_same_flow(unrolled, looped, tf.float64)


def test_the_traced_graphs_do_not_grow_with_the_depth():
    counts = {}
    for num_steps in (2, 4):
        flow = tfp_flows.glow(IMAGE, **{**ONE_LEVEL, 'num_steps': num_steps}, loop=True)
        x = _data(tf.float32, 14)
        counts[num_steps] = [checks.graph_ops(tf.function(flow.log_prob), x)]
        for memory_saving in (None, 'recompute', 'invert'):
            trainer = FlowTrainer(flow, 17, memory_saving=memory_saving)
            trainer.compile(keras.optimizers.SGD(0.1))
            trainer.optimizer.build(trainer.trainable_variables)
            counts[num_steps].append(checks.graph_ops(tf.function(trainer.train_step), (x,)))
    assert counts[2] == counts[4]


def test_unrolled_graphs_do_grow_with_the_depth():  # What the test above would otherwise see.
    sizes = [
        checks.graph_ops(
            tf.function(
                tfp_flows.glow(IMAGE, num_steps=k, num_levels=2, hidden_channels=8).log_prob
            ),
            _data(tf.float32, 1),
        )
        for k in (2, 4)
    ]
    assert sizes[1] > sizes[0]


def test_a_checkpoint_does_not_cross_the_loop_switch(tmp_path):
    unrolled, looped = _random_pair()
    x = _data(tf.float32, 15)
    for saved, other, words, needed in (
        (unrolled, looped, "steps[1] = 'ActNorm', but this one has 'Loop'", False),
        (looped, unrolled, "steps[1] = 'Loop', but this one has 'ActNorm'", True),
    ):
        path = tf.train.Checkpoint(flow=saved).write(str(tmp_path / type(saved).__name__))
        with pytest.raises(ValueError, match=re.escape(words)):
            run_restore.restore(tf.train.Checkpoint(flow=other), path)
        with pytest.raises(ValueError, match=re.escape(f'(loop={needed}: model.loop).')):
            tf.train.Checkpoint(flow=other).read(path)
    path = tf.train.Checkpoint(flow=looped).write(str(tmp_path / 'looped'))
    again = tfp_flows.glow(IMAGE, **SMALL, loop=True)
    tf.train.Checkpoint(flow=again).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(again.log_prob(x), looped.log_prob(x), rtol=1e-6)
    deeper = tfp_flows.glow(IMAGE, **{**SMALL, 'num_steps': 3}, loop=True)
    with pytest.raises(ValueError, match=r"steps_1' with num_steps = 2, but this one has 3"):
        tf.train.Checkpoint(flow=deeper).read(path)


def _gradients(flow, x, **kwargs):
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(flow.log_prob(x, bijector_kwargs=kwargs))
    return loss, tape.gradient(loss, flow.trainable_variables)


def _places(source, target):
    """(unrolled variable, (its looped variable, k or None)) for a leaf step and its twin: a
    view's variable is slice k of a stacked variable; a step outside a Loop has its own."""
    for name, value in sorted(vars(source).items()):
        if isinstance(value, tf.Variable):
            reads = vars(target).get('_view_reads', {})
            yield value, (reads[name].args if name in reads else (vars(target)[name], None))
        elif isinstance(value, tf.Module) and not name.startswith('_self_'):
            yield from _places(value, vars(target)[name])


# 16x16 images: maps of more than 16 positions, whose 3x3 convolutions take the loop body's
# own gradients (`networks.loop_gradients`); 8x8 ones take the dense-matrix path.
@pytest.mark.parametrize(
    ('coupling', 'permutation', 'image'),
    [
        ('affine', 'lu', IMAGE),
        ('spline', 'shuffle', IMAGE),
        ('additive', 'plain', IMAGE),
        ('affine', 'lu', (16, 16, 2)),
    ],
)
def test_looped_gradients_are_the_unrolled_ones_slice_by_slice(coupling, permutation, image):
    unrolled, looped = _random_pair(
        tf.float64, seed=8, coupling=coupling, permutation=permutation, image=image
    )
    x = _data(tf.float64, 22, image=image)
    gradients = [
        {v.ref(): g for v, g in zip(f.trainable_variables, _gradients(f, x)[1], strict=True)}
        for f in (unrolled, looped)
    ]
    compared = 0
    for source, target in zip(_leaves(unrolled), _leaves(looped), strict=True):
        for variable, (twin, k) in _places(source, target):
            if variable.trainable:
                found = gradients[1][twin.ref()]
                found = found if k is None else found[k]
                expected = gradients[0][variable.ref()]
                np.testing.assert_allclose(
                    found, expected, rtol=1e-10, atol=1e-12, err_msg=variable.name
                )
                compared += 1
    assert compared == len(unrolled.trainable_variables)


def _op_kinds(function, *args, **kwargs):
    """The op types in `function`'s traced graph and the functions it holds (loop bodies), and
    'loop body gradients' if any op is in the name scope of the loop body's own gradients."""
    graph = tf.function(function).get_concrete_function(*args, **kwargs).graph.as_graph_def()
    nodes = [
        n for g in [graph, *graph.library.function] for n in getattr(g, 'node_def', graph.node)
    ]
    ours = any('loop_body_gradients' in n.name for n in nodes)  # dense_conv.conv3x3_same's
    return {n.op for n in nodes} | ({'loop body gradients'} if ours else set())


# TF's convolution backprop ops run slowly under XLA in a while loop, and faster than the loop
# body's own gradients in graph mode (bench/README, "Depth").
TF_BACKPROP = {'Conv2DBackpropInput', 'Conv2DBackpropFilter'}


@pytest.mark.parametrize('memory_saving', [None, 'recompute', 'invert'])
def test_every_backprop_of_a_loop_takes_the_loop_bodys_convolution_gradients(memory_saving):
    # But 'invert''s walk back, whose memory grew with the depth with them (test_backprop.py).
    _, looped = _random_pair(image=(16, 16, 2), **ONE_LEVEL)
    x = _data(tf.float32, 3, image=(16, 16, 2))
    kinds = _op_kinds(_gradients, looped, x, memory_saving=memory_saving)
    assert ('loop body gradients' in kinds) == (memory_saving != 'invert')
    assert bool(kinds & TF_BACKPROP) == (memory_saving == 'invert'), memory_saving


@pytest.mark.parametrize(
    ('jit_compile', 'memory_saving'), [(False, None), (True, None), (False, 'invert')]
)
def test_flow_trainer_takes_the_loop_bodys_gradients_under_xla_only(jit_compile, memory_saving):
    # 'invert' walks back when the gradient is taken: inside the trainer's switch too.
    _, looped = _random_pair(image=(16, 16, 2), **ONE_LEVEL)
    x = _data(tf.float32, 3, image=(16, 16, 2))
    trainer = FlowTrainer(looped, 17, memory_saving=memory_saving)
    trainer.compile(keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    trainer.optimizer.build(trainer.trainable_variables)
    kinds = _op_kinds(trainer.train_step, (x,))
    assert ('loop body gradients' in kinds) == jit_compile
    assert bool(kinds & TF_BACKPROP) != jit_compile


# 'recompute' with each permutation (a fixed one's constants broke its traced rerun); 'invert'
# with the 1x1 conv and a fixed permutation.
@pytest.mark.parametrize(
    ('memory_saving', 'permutation'),
    [('recompute', p) for p in ('lu', 'plain', 'reverse', 'shuffle')]
    + [('invert', 'lu'), ('invert', 'shuffle')],
)
def test_memory_saving_gives_the_plain_gradients(memory_saving, permutation):
    unrolled, looped = _random_pair(tf.float64, seed=4, permutation=permutation)
    x = _data(tf.float64, 16)
    loss, plain = _gradients(looped, x)
    saving_loss, saving = tf.function(_gradients)(looped, x, memory_saving=memory_saving)
    np.testing.assert_allclose(saving_loss, loss, rtol=1e-12)
    assert len(saving) == len(plain) == len(looped.trainable_variables)
    for variable, a, b in zip(looped.trainable_variables, saving, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=variable.name)
    np.testing.assert_allclose(loss, _gradients(unrolled, x)[0], rtol=1e-12)


@pytest.mark.parametrize(
    ('memory_saving', 'accumulation_steps', 'jit_compile'),
    [(None, 1, False), ('invert', 1, True), ('recompute', 2, False)],
)
def test_flow_trainer_moves_every_stacked_variable_and_lowers_the_loss(
    memory_saving, accumulation_steps, jit_compile
):
    flow = tfp_flows.glow(IMAGE, **ONE_LEVEL, loop=True, dropout_rate=0.1)
    x = _data(tf.float32, 17, count=16)
    tfp_flows.initialize(flow, x)
    before = [v.numpy().copy() for v in flow.trainable_variables]
    trainer = FlowTrainer(
        flow, memory_saving=memory_saving, dropout_seed=3, accumulation_steps=accumulation_steps
    )
    trainer.compile(keras.optimizers.Adam(3e-3), jit_compile=jit_compile)
    data = tf.data.Dataset.from_tensors(x)
    first = trainer.evaluate(data, verbose=0, return_dict=True)['loss']
    trainer.fit(data.repeat(), steps_per_epoch=30, epochs=1, verbose=0)
    assert trainer.evaluate(data, verbose=0, return_dict=True)['loss'] < first - 0.05
    stacked = {v.ref() for s in walk.all_steps(flow.bijector) for v in getattr(s, 'stacked', [])}
    unmoved = []
    for v, old in zip(flow.trainable_variables, before, strict=True):
        pairs = zip(v.numpy(), old, strict=True) if v.ref() in stacked else [(v.numpy(), old)]
        unmoved += [f'{v.name}[{k}]' for k, (new, was) in enumerate(pairs) if np.all(new == was)]
    assert stacked and not unmoved  # Every slice of every stacked variable moved.


@pytest.mark.parametrize('residual_blocks', [0, 2])  # Views read the blocks' variables too.
def test_dropout_with_a_fixed_seed_is_the_unrolled_flows(residual_blocks):
    unrolled, looped = _random_pair(tf.float64, dropout_rate=0.5, residual_blocks=residual_blocks)
    _assert_same_flow(unrolled, looped, tf.float64)
    x = _data(tf.float64, 18)
    kwargs = dict(training=True, dropout_seed=tf.constant([4, 2]))
    log_probs = [f.log_prob(x, bijector_kwargs=kwargs) for f in (unrolled, looped)]
    np.testing.assert_allclose(log_probs[1], log_probs[0], rtol=1e-10)
    assert not np.allclose(log_probs[1], looped.log_prob(x))  # Dropout was on.


@pytest.mark.parametrize('memory_saving', [None, 'invert', 'recompute'])
def test_dropout_of_the_parts_of_a_batch_is_the_whole_batchs(memory_saving):
    # With `dropout_rows` the halves of a batch apply the whole batch's masks, in the looped
    # flow and the unrolled one, and so do memory saving's reruns: the halves' mean loss and
    # gradients are the whole batch's.
    x = _data(tf.float64, 20, count=4)
    kwargs = dict(training=True, dropout_seed=tf.constant([4, 2]), memory_saving=memory_saving)
    for flow in _random_pair(tf.float64, dropout_rate=0.5):
        loss, gradients = _gradients(flow, x, **kwargs)
        assert not np.allclose(loss, _gradients(flow, x)[0])  # Dropout is on.
        halves = [
            _gradients(
                flow, x[offset : offset + 2], dropout_rows=(tf.constant(offset), 4), **kwargs
            )
            for offset in (0, 2)
        ]
        np.testing.assert_allclose((halves[0][0] + halves[1][0]) / 2, loss, rtol=1e-12)
        for gradient, first, second in zip(gradients, halves[0][1], halves[1][1], strict=True):
            np.testing.assert_allclose((first + second) / 2, gradient, rtol=1e-8, atol=1e-10)


def test_a_mixed_policy_looped_glow_is_the_unrolled_one():
    unrolled, looped = _random_pair(dtype_policy='mixed_bfloat16')
    assert dtype_policy_of(looped) == 'mixed_bfloat16'
    x = _data(tf.float32, 19)
    np.testing.assert_allclose(looped.log_prob(x), unrolled.log_prob(x), rtol=1e-5)


def test_two_replicas_initialise_and_train_a_looped_glow(mirrored_strategy):
    x = _data(tf.float32, 20, count=8)
    results = []
    for strategy in (tf.distribute.OneDeviceStrategy('/cpu:0'), mirrored_strategy):
        with strategy.scope():
            flow = tfp_flows.glow(IMAGE, **ONE_LEVEL, loop=True)
            tfp_flows.initialize(flow, x)
            trainer = FlowTrainer(flow)
            trainer.compile(keras.optimizers.SGD(0.01))
        trainer.fit(tf.data.Dataset.from_tensors(x), epochs=2, verbose=0)
        results.append([v.numpy() for v in flow.variables])
        if strategy is mirrored_strategy:
            for v in flow.variables:
                local = [r.numpy() for r in strategy.experimental_local_results(v)]
                np.testing.assert_array_equal(local[0], local[1], err_msg=v.name)
    for single, mirrored in zip(*results, strict=True):
        np.testing.assert_allclose(mirrored, single, rtol=2e-4, atol=2e-6)


def test_an_exported_looped_glow_gives_the_in_memory_numbers(tmp_path):
    # 16x16: maps whose convolutions a loop's body gives its own gradients (not exported:
    # the gradient through the loaded SavedModel's cond failed with them).
    _, looped = _random_pair(seed=5, image=(16, 16, 2), **ONE_LEVEL)
    x = _data(tf.float32, 21, image=(16, 16, 2))
    path = tfp_flows.export.export_saved_model(looped, tmp_path / 'exported')
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded.log_prob(x)['log_prob'], looped.log_prob(x), rtol=1e-5)
    gradients = []
    for log_prob in (lambda x: loaded.log_prob(x)['log_prob'], looped.log_prob):
        with tf.GradientTape() as tape:
            tape.watch(x)
            gradients.append(tape.gradient(log_prob(x), x))
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-4, atol=1e-4)
    z = looped.bijector.inverse(x)
    np.testing.assert_allclose(
        loaded.decode(z)['x'], looped.bijector.forward(z), rtol=1e-5, atol=1e-5
    )
