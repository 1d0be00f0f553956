"""Tests of tfp_flows/bijectors/chain.py, walk.py and base.py: the one walk, kwargs, saved
structure."""

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows.bijectors import (
    ActNorm,
    AffineCoupling,
    Centre,
    Chain,
    FactorOut,
    FlowBijector,
    LogitTransform,
    LUInvertibleConv1x1,
    Squeeze,
    walk,
)

tfb = tfp.bijectors
tfd = tfp.distributions


class KwargsRecorder(FlowBijector):
    """The identity on vectors, recording the kwargs it gets."""

    kwarg_names = ('conditional_input', 'training')

    def __init__(self, name='recorder'):
        self.calls = []
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, name=name)

    def _forward_and_log_det(self, x, **kwargs):
        self.calls.append(('forward', kwargs))
        return x, tf.zeros([], x.dtype)

    def _inverse_and_log_det(self, y, **kwargs):
        self.calls.append(('inverse', kwargs))
        return y, tf.zeros([], y.dtype)


def _glow_like_chain(dtype=tf.float64):
    return Chain(
        [
            Centre((4, 4, 1), dtype=dtype),
            Squeeze(),
            ActNorm(4, dtype=dtype),
            LUInvertibleConv1x1(4, dtype=dtype),
            AffineCoupling((2, 2, 4), hidden_channels=8, dtype=dtype),
            FactorOut((2, 2, 4), Chain([ActNorm(2, dtype=dtype)]), dtype=dtype),
            tfb.Invert(Squeeze()),
        ]
    )


def test_forward_applies_the_last_step_first_as_tfb_chain():
    steps = [tfb.Shift(1.0), tfb.Scale(2.0), tfb.Exp()]
    x = tf.constant([[0.1, -0.3]])
    ours, theirs = Chain(steps, event_ndims=1), tfb.Chain(steps)
    np.testing.assert_allclose(ours.forward(x), theirs.forward(x))
    np.testing.assert_allclose(ours.inverse(x + 2.0), theirs.inverse(x + 2.0))
    np.testing.assert_allclose(
        ours.forward_log_det_jacobian(x, 1), theirs.forward_log_det_jacobian(x, 1)
    )


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize('function', [False, True])
def test_one_pass_methods_match_tfp_methods_and_autodiff(dtype, function):
    chain = checks.randomize_variables(_glow_like_chain(dtype), seed=2)
    x = tf.random.stateless_uniform([2, 4, 4, 1], [1, 2], 0.05, 0.95, dtype=dtype)
    z = tf.random.stateless_normal([2, 4, 4, 1], [1, 3], dtype=dtype)
    inverse = tf.function(chain.inverse_and_log_det) if function else chain.inverse_and_log_det
    forward = tf.function(chain.forward_and_log_det) if function else chain.forward_and_log_det
    tol = checks.tolerance(dtype, log_det=True)
    latent, ildj = inverse(x, 3)
    np.testing.assert_allclose(latent, chain.inverse(x), **checks.tolerance(dtype))
    np.testing.assert_allclose(ildj, chain.inverse_log_det_jacobian(x, 3), **tol)
    data, fldj = forward(z, 3)
    np.testing.assert_allclose(data, chain.forward(z), **checks.tolerance(dtype))
    np.testing.assert_allclose(fldj, chain.forward_log_det_jacobian(z, 3), **tol)
    if not function:  # Traced, it equals TFP's methods, whose log-det is checked eagerly.
        checks.assert_log_det_matches_autodiff(
            chain.inverse, lambda y, event_ndims: inverse(y, event_ndims)[1], x, 3, **tol
        )


def test_kwargs_reach_every_step_that_takes_them():
    first, second = KwargsRecorder('first'), KwargsRecorder('second')
    chain = Chain([first, tfb.Shift(1.0), Chain([second], event_ndims=1)], event_ndims=1)
    context = tf.constant([[1.0, 2.0]])
    flow = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [2]), chain)
    flow.log_prob(tf.zeros([1, 2]), bijector_kwargs={'conditional_input': context})
    flow.sample(1, bijector_kwargs={'conditional_input': context, 'training': True})
    for recorder in (first, second):
        (direction, kwargs), *_ = recorder.calls
        assert direction == 'inverse'
        assert kwargs['conditional_input'] is context
        assert recorder.calls[-1][0] == 'forward'
        assert recorder.calls[-1][1]['training'] is True


class SeedRecorder(KwargsRecorder):
    """A user's step with dropout that takes a seed but not `dropout_rows`."""

    kwarg_names = ('training', 'dropout_seed')


def test_a_step_taking_no_dropout_rows_gets_a_seed_of_its_rows():
    # Such a step cannot take its rows of the whole batch's masks: the parts of a batch
    # (replicas, micro-batches: rows (offset, total)) must still draw their own masks, not all
    # the same ones; a batch drawn whole (no rows) keeps the seed.
    recorder = SeedRecorder()
    chain = Chain([recorder], event_ndims=1)
    seed = tf.constant([3, 4], tf.int64)
    for rows in (None, (0, 4), (tf.constant(2), 4)):
        kwargs = {} if rows is None else {'dropout_rows': rows}
        chain.inverse(tf.zeros([2, 2]), training=True, dropout_seed=seed, **kwargs)
    (_, whole), (_, first), (_, second) = recorder.calls
    assert 'dropout_rows' not in first
    np.testing.assert_array_equal(whole['dropout_seed'], seed)
    assert not np.array_equal(first['dropout_seed'], second['dropout_seed'])
    with pytest.raises(ValueError, match=r'`dropout_rows` must be None or a pair'):
        chain.inverse(tf.zeros([2, 2]), training=True, dropout_seed=seed, dropout_rows=[0, 4])


def _walked(flow, x, inverse):
    """(visits, output) of the walk of `flow` that goes into every container."""
    visited = []

    def visitor(visit):
        visited.append((type(visit.step).__name__, tuple(visit.x.shape), visit.inverse))

    return visited, walk.trace(flow, x, inverse, visitor)[0]


def test_the_walk_visits_every_step_in_order_both_ways():
    chain = checks.randomize_variables(_glow_like_chain(), seed=1)
    x = tf.fill([1, 4, 4, 1], np.float64(0.5))
    visited, latent = _walked(chain, x, True)
    assert [name for name, _, _ in visited] == [
        'Chain',
        'Centre',
        'Squeeze',
        'ActNorm',
        'LUInvertibleConv1x1',
        'AffineCoupling',
        'FactorOut',
        'Chain',
        'ActNorm',
        'Squeeze',
    ]
    assert visited[8] == ('ActNorm', (1, 2, 2, 2), True)  # The factor-out's inner step.
    assert visited[-1] == ('Squeeze', (1, 2, 2, 4), False)  # Invert(Squeeze): its forward.
    np.testing.assert_allclose(latent, chain.inverse(x), rtol=1e-12)
    visited, data = _walked(chain, tf.zeros([1, 4, 4, 1], tf.float64), False)
    assert [name for name, _, _ in visited] == [
        'Chain',
        'Squeeze',
        'FactorOut',
        'Chain',
        'ActNorm',
        'AffineCoupling',
        'LUInvertibleConv1x1',
        'ActNorm',
        'Squeeze',
        'Centre',
    ]
    assert visited[1] == ('Squeeze', (1, 4, 4, 1), True)  # Invert(Squeeze).forward squeezes.
    assert visited[4] == ('ActNorm', (1, 2, 2, 2), False)
    np.testing.assert_allclose(data, chain.forward(tf.zeros([1, 4, 4, 1], tf.float64)))


def test_the_static_walk_lists_the_steps_the_walk_visits():
    chain = _glow_like_chain()
    names = [type(s).__name__ for s in walk.all_steps(chain)]
    assert names == [
        'Chain',
        'Centre',
        'Squeeze',
        'ActNorm',
        'LUInvertibleConv1x1',
        'AffineCoupling',
        'FactorOut',
        'Chain',
        'ActNorm',
        '_Invert',
        'Squeeze',
    ]


def test_the_walker_recognises_tfb_invert_of_our_steps():
    # tfb.Invert of a bijector holding variables is TFP's `_Invert`; the walker runs the
    # wrapped step's one-pass method the other way (the saved structure names it too).
    inverted = tfb.Invert(checks.randomize_variables(ActNorm(2)))
    assert Chain([inverted], event_ndims=1).structure()['steps'] == ['Invert(ActNorm)']
    x = tf.constant([[0.3, -0.7]])
    y, log_det = Chain([inverted], event_ndims=1).forward_and_log_det(x)
    np.testing.assert_allclose(y, inverted.forward(x), rtol=1e-6)
    np.testing.assert_allclose(log_det, inverted.forward_log_det_jacobian(x, 1), rtol=1e-6)


def test_event_shapes_follow_the_squeezes():
    chain = _glow_like_chain()
    assert chain.inverse_event_shape([4, 4, 1]) == [4, 4, 1]
    level = Chain([Squeeze(), ActNorm(4)])
    assert level.inverse_event_shape([4, 4, 1]) == [2, 2, 4]
    assert level.forward_event_shape([2, 2, 4]) == [4, 4, 1]
    np.testing.assert_array_equal(level.inverse_event_shape_tensor([4, 4, 1]), [2, 2, 4])


@pytest.mark.parametrize(
    ('steps', 'kwargs', 'error', 'message'),
    [
        ([], {}, ValueError, r'`steps` must list at least one bijector; got an empty list'),
        ([ActNorm(2)], {'event_ndims': 0}, ValueError, r'`event_ndims` must be a positive int'),
        ([ActNorm(2), 'relu'], {}, TypeError, r'Step 1 of the chain is not a tfb.Bijector'),
        (
            [Squeeze()],
            {'event_ndims': 1},
            ValueError,
            r"Step 0 \('squeeze'\) acts on events of rank 3; the chain has event_ndims=1",
        ),
        (
            [ActNorm(2), ActNorm(2, dtype=tf.float64)],
            {},
            TypeError,
            r"share one dtype; got \['float32', 'float64'\]",
        ),
    ],
)
def test_rejects_bad_steps(steps, kwargs, error, message):
    with pytest.raises(error, match=message):
        Chain(steps, **kwargs)


def _write(flow, path):
    return tf.train.Checkpoint(flow=flow).write(str(path))


def test_reading_a_checkpoint_of_another_structure_names_the_choice(tmp_path):
    saved = Chain([LogitTransform((4,), alpha=0.05), ActNorm(4)], event_ndims=1)
    path = _write(saved, tmp_path / 'ckpt')
    other_alpha = Chain([LogitTransform((4,), alpha=0.01), ActNorm(4)], event_ndims=1)
    with pytest.raises(ValueError, match=r"LogitTransform 'logit' with alpha = 0.05, but this one"):
        tf.train.Checkpoint(flow=other_alpha).read(path)
    other_steps = Chain([Centre((4,)), ActNorm(4)], event_ndims=1)
    with pytest.raises(
        ValueError, match=r"from a Chain 'chain' with steps\[0\] = 'LogitTransform', but this"
    ):
        tf.train.Checkpoint(flow=other_steps).read(path)
    same = Chain([LogitTransform((4,), alpha=0.05), ActNorm(4)], event_ndims=1)
    tf.train.Checkpoint(flow=same).read(path).assert_existing_objects_matched()


def test_initialize_walks_the_flow_once_and_sets_every_act_norm():
    flow = tfp_flows.glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8)
    data = tf.random.stateless_uniform([16, 8, 8, 1], [3, 3])
    assert tfp_flows.initialize(flow, data.numpy().astype(np.float64)) is None
    act_norms = [m for m in flow.bijector.submodules if isinstance(m, ActNorm)]
    assert len(act_norms) == 2
    assert all(bool(a.initialized.numpy()) for a in act_norms)


def test_a_constant_log_det_is_scaled_without_shape_ops_when_shapes_are_static():
    # Static shapes make the count of positions a Python number: fewer ops to trace and run.
    from tfp_flows.bijectors.base import reduce_log_det

    def scaled(x):
        return reduce_log_det(tf.constant(0.5), x, 1, 3)

    static = tf.function(scaled).get_concrete_function(tf.TensorSpec([2, 4, 4, 3]))
    assert not {'Shape', 'Rank', 'Prod'} & {op.type for op in static.graph.get_operations()}
    dynamic = tf.function(scaled).get_concrete_function(tf.TensorSpec([None, None, None, 3]))
    x = tf.zeros([2, 4, 4, 3])
    assert float(static(x)) == float(dynamic(x)) == 8.0
