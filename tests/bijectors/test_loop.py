"""`Loop`: K steps of one kind, stacked, as the `Chain` of those steps (the looped Glow's
tests, at the flow's level: tests/test_loop.py)."""

import gc
import pickle
import weakref

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import (
    ActNorm,
    AffineCoupling,
    Chain,
    Loop,
    LUInvertibleConv1x1,
    Squeeze,
)

tfb = tfp.bijectors

SHAPE = (4, 4, 4)


def _steps(count, dtype=tf.float64, **coupling):
    return [
        [
            ActNorm(4, dtype=dtype),
            LUInvertibleConv1x1(4, seed=k, dtype=dtype),
            AffineCoupling(SHAPE, hidden_channels=8, seed=k, dtype=dtype, **coupling),
        ]
        for k in range(count)
    ]


@pytest.mark.parametrize(('regime', 'dtype'), checks.REGIME_DTYPES)
def test_a_loop_is_the_chain_of_its_steps(regime, dtype):
    steps = _steps(3, dtype)
    chain = checks.randomize_variables(Chain([s for step in steps for s in step]), seed=1)
    loop = Loop(steps)
    assert len(loop.trainable_variables) == len(chain.trainable_variables) // 3
    assert loop.num_steps == 3 and loop.stacked[0].shape[0] == 3
    z = tf.random.stateless_normal([2, *SHAPE], [1, 1], dtype=dtype)
    x = chain.forward(z)
    for method in ('forward', 'inverse'):
        value = z if method == 'forward' else x
        tol = checks.tolerance(dtype, log_det=True)
        looped = checks.in_regime(loop, regime)
        np.testing.assert_allclose(
            getattr(looped, method)(value), getattr(chain, method)(value), **tol
        )
        log_det = f'{method}_log_det_jacobian'
        np.testing.assert_allclose(
            getattr(looped, log_det)(value, 3), getattr(chain, log_det)(value, event_ndims=3), **tol
        )
    checks.assert_log_det_matches_autodiff(
        loop.inverse, loop.inverse_log_det_jacobian, x, 3, **checks.tolerance(dtype, True)
    )


def test_the_walk_sees_each_step_and_an_act_norm_sets_its_slice():
    loop = Loop(_steps(2))
    views = loop.held_steps()
    assert [type(v).__name__ for v in views] == [
        'ActNorm',
        'LUInvertibleConv1x1',
        'AffineCoupling',
    ] * 2
    assert isinstance(views[3], ActNorm) and views[3].name == loop.bijectors[3].name
    views[3].initialize(
        tf.random.stateless_normal([8, *SHAPE], [2, 2], dtype=tf.float64) * 3.0 + 1.0
    )
    variables = {v.name.split('/')[-1]: v.numpy() for v in loop.variables}
    assert variables['0.initialized:0'].tolist() == [False, True]
    shift = variables['0.shift:0']
    assert np.all(shift[0] == 0) and np.all(np.abs(shift[1] - 1.0) < 0.5)
    assert loop.structure()['step'][2]['class'] == 'AffineCoupling'


def test_views_are_read_only_and_of_their_own_step():
    perms = ([3, 1, 0, 2], [0, 2, 3, 1])
    first, second = Loop([[tfb.Permute(tf.Variable(p))] for p in perms], event_ndims=1).bijectors
    assert first != second and len({first, second}) == 2
    assert type(first).__name__ == 'Permute' and type(first).__qualname__ == 'Permute.LoopView'
    x = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    unrolled = tfb.Permute(perms[1]).inverse(tfb.Permute(perms[0]).forward(x))
    np.testing.assert_array_equal(second.inverse(first.forward(x)), unrolled)  # No shared cache.
    with pytest.raises(TypeError, match='read-only view of a Loop'):
        pickle.dumps(first)


def test_the_first_step_is_not_kept():
    gc.freeze()  # collect() walks only what this test makes, not the worker's whole heap.
    try:
        steps = _steps(2)
        weak = [weakref.ref(v) for step in steps for s in step for v in s.variables]
        loop = Loop(steps)
        del steps
        gc.collect()
    finally:
        gc.unfreeze()
    assert loop.num_steps == 2 and [w for w in weak if w() is not None] == []


@pytest.mark.parametrize('memory_saving', ['invert', 'recompute'])
def test_memory_saving_in_a_traced_loop_of_checkerboard_couplings(memory_saving):
    loop = checks.randomize_variables(Loop(_steps(2, mask='checkerboard')), seed=3)
    x = tf.random.stateless_normal([2, *SHAPE], [3, 3], dtype=tf.float64)

    def gradients(**kwargs):
        with tf.GradientTape() as tape:
            z, log_det = loop.inverse_and_log_det(x, 3, **kwargs)
            loss = tf.reduce_sum(z**2) - tf.reduce_sum(log_det)
        return tape.gradient(loss, loop.trainable_variables)

    saving = tf.function(gradients)(memory_saving=memory_saving)
    for variable, a, b in zip(loop.trainable_variables, saving, gradients(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=variable.name)


def test_only_a_container_offering_run_looped_runs_its_steps_itself():
    step = ActNorm(4, dtype=tf.float64)
    step.loop = step.run_looped = print  # A leaf's attributes of those names change nothing.
    chain = Chain([step])
    x = tf.random.stateless_normal([2, *SHAPE], [5, 5], dtype=tf.float64)
    np.testing.assert_allclose(chain.inverse(x, memory_saving='recompute'), chain.inverse(x))


def test_a_bare_loop_runs_both_passes_of_invert_as_loops():
    def graph_size(count):
        loop = Loop(_steps(count))
        x = tf.random.stateless_normal([2, *SHAPE], [4, 4], dtype=tf.float64)

        @tf.function
        def gradients(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                z, log_det = loop.inverse_and_log_det(x, 3, memory_saving='invert')
            return tape.gradient([z, log_det], [x, *loop.trainable_variables])

        return checks.graph_ops(gradients, x)

    assert graph_size(2) == graph_size(4)


@pytest.mark.parametrize(
    ('steps', 'error', 'message'),
    [
        (lambda: ActNorm(4), TypeError, 'list of K non-empty lists'),
        (lambda: [], TypeError, 'non-empty list of K'),
        (lambda: [['x']], TypeError, 'lists of bijectors'),
        (
            lambda: [[ActNorm(4)], [LUInvertibleConv1x1(4)]],
            ValueError,
            'Step 1 of the Loop differs',
        ),
        (lambda: [[ActNorm(4)], [ActNorm(8)]], ValueError, 'Step 1 of the Loop differs'),
        (
            lambda: [[AffineCoupling(SHAPE, flip=f, hidden_channels=8)] for f in (False, True)],
            ValueError,
            'Step 1 of the Loop differs',
        ),
        (lambda: [[ActNorm(4, min_std=s)] for s in (1e-3, 1e-2)], ValueError, 'differ only'),
        (
            lambda: [[ActNorm(4), tfb.Permute(p)] for p in ([3, 1, 0, 2], [0, 2, 3, 1])],
            ValueError,
            'permute.* has _permutation = ',
        ),
        (
            lambda: [[tfb.Scale(s)] for s in (2.0, 3.0)],
            ValueError,
            r'scale.* has _scale = .*2.0\), the steps have \[.*2.0\), .*3.0\)\]',  # np.float32
        ),
        (lambda: [[ActNorm(4)]] * 2, ValueError, 'distinct bijectors .* got one twice'),
        (
            lambda: [[AffineCoupling((4,), hidden_channels=8, seed=k)] for k in range(2)],
            ValueError,
            'cannot be stacked',
        ),
    ],
)
def test_refuses_steps_it_cannot_stack(steps, error, message):
    with pytest.raises(error, match=message):
        Loop(steps(), event_ndims=1)


@pytest.mark.parametrize(
    'step, ndims, message',
    [
        (Squeeze, 3, r"'Squeeze'\] maps \[16, 16, 16\] to \[8, 8, 64\]"),
        (lambda: tfb.Reshape([4, 4, 4], [8, 8, 1]), 3, r"'Reshape'\] maps \[8, 8, 1\] to an error"),
        (lambda: tfb.Reshape([16], [4, 4]), 2, r"'Reshape'\] maps \[16, 4, 4\] to an error"),
        (lambda: tfb.Reshape([2, 8], [4, 4]), 3, r"'Reshape'\] maps \[16, 4, 4\] to an error"),
    ],
)
def test_refuses_a_step_that_changes_the_event_shape(step, ndims, message):
    with pytest.raises(ValueError, match=r"keep the event's shape; the step \[" + message):
        Loop([[step()], [step()]], event_ndims=ndims)
    kept = Loop([[tfb.Reshape([4, 4, 1], [4, 4, 1])] for _ in range(2)])  # Its one shape kept.
    assert kept.forward_event_shape([4, 4, 1]) == [4, 4, 1]


def test_every_public_call_of_a_chain_or_loop_refuses_an_input_of_too_low_rank():
    # Their steps (ActNorm: rank 1) take it; the containers act on events of rank 3.
    x = tf.zeros([2, 4], tf.float64)
    for container in (
        Chain([ActNorm(4, dtype=tf.float64)]),
        Loop([[ActNorm(4, dtype=tf.float64)] for _ in range(2)]),
    ):
        calls = ('forward', 'inverse', 'forward_and_log_det', 'inverse_and_log_det')
        for call in (*(getattr(container, c) for c in calls), tf.function(container.inverse)):
            with pytest.raises(ValueError, match=r'expects a tensor of rank >= 3 \(batch dims'):
                call(x)
        for method in ('forward_log_det_jacobian', 'inverse_log_det_jacobian'):
            with pytest.raises(ValueError, match='rank at least 3'):  # TFP's own check.
                getattr(container, method)(x)
    # A scalar: the steps refuse it first, naming the shape (was an IndexError).
    for container in (ActNorm(2), Chain([ActNorm(2)], 1), Loop([[ActNorm(2)], [ActNorm(2)]], 1)):
        for call in (container.forward, container.inverse):
            with pytest.raises(ValueError, match=r'has 2 channels \(last axis\); got .* \[\]'):
                call(tf.zeros([]))
