"""Tests of tfp_flows/bijectors/coupling.py and logistic_mixture.py: the coupling kinds, masks."""

import checks
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows import networks
from tfp_flows.bijectors import (
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    LogisticMixtureCoupling,
    SplineCoupling,
)
from tfp_flows.bijectors.logistic_mixture import _logit_cdf

COUPLINGS = [AffineCoupling, AdditiveCoupling, SplineCoupling, LogisticMixtureCoupling]
# (event_shape, mask, flip): images with both masks, odd channel counts, and vectors.
CASES = [
    ((4, 4, 1), 'checkerboard', False),
    ((4, 4, 2), 'checkerboard', True),
    ((4, 4, 3), 'channel', False),
    ((4, 4, 3), 'channel', True),
    ((5,), 'channel', False),
    ((5,), 'channel', True),
]
# Inside tf.function: one case per mask and rank (the flips take the same traced path). The
# spline and the mixture, slow eagerly, whose own map is the same in every case: once per mask,
# traced once.
TRACED = [CASES[0], CASES[2], CASES[4]]
SPLINE_CASES = [CASES[1], CASES[2], CASES[4]]
KIND_CASES = [
    pytest.param(kind, *case.values, id=f'{kind.__name__}-{case.id}')
    for kind, cases, traced in [
        (AffineCoupling, CASES, TRACED),
        (AdditiveCoupling, CASES, TRACED),
        (SplineCoupling, SPLINE_CASES, SPLINE_CASES[:1]),
        (LogisticMixtureCoupling, SPLINE_CASES, SPLINE_CASES[:1]),
    ]
    for case in checks.regime_cases(cases, traced)
]
KIND_CASE_NAMES = ('coupling', 'regime', 'dtype', 'event_shape', 'mask', 'flip')


def _random_coupling(coupling, event_shape, mask, flip, dtype, seed=0, **kwargs):
    bijector = coupling(
        event_shape, mask=mask, flip=flip, hidden_channels=8, seed=seed, dtype=dtype, **kwargs
    )
    return checks.randomize_variables(bijector, seed=seed)


def _kept_mask(event_shape, mask, flip):
    """Boolean array of `event_shape`: True where the coupling passes the value through."""
    if mask == 'checkerboard':
        rows, cols = np.meshgrid(range(event_shape[0]), range(event_shape[1]), indexing='ij')
        keep = (rows + cols + int(flip)) % 2 == 0
        return np.broadcast_to(keep[..., np.newaxis], event_shape)
    channels = event_shape[-1]
    keep = np.arange(channels) >= channels // 2 if flip else np.arange(channels) < channels // 2
    return np.broadcast_to(keep, event_shape)


class RecordingConditioner(tf.Module):
    """A small conditioner network that records its sizes and every input it sees."""

    def __init__(self, input_size, output_size, image):
        super().__init__()
        self.sizes = (input_size, output_size)
        self.inputs = []
        network = networks.ConvNet if image else networks.DenseNet
        self.network = network(input_size, output_size, 8, seed=5, dtype=tf.float64)

    def __call__(self, x):
        self.inputs.append(x)
        return self.network(x)


@pytest.mark.parametrize(KIND_CASE_NAMES, KIND_CASES)
def test_log_det_matches_autodiff_both_ways(coupling, event_shape, mask, flip, dtype, regime):
    bijector = checks.in_regime(_random_coupling(coupling, event_shape, mask, flip, dtype), regime)
    x = tf.random.stateless_normal([2, *event_shape], [2, 1], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    ndims = len(event_shape)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, ndims, **tol
    )


@pytest.mark.parametrize(KIND_CASE_NAMES, KIND_CASES)
def test_round_trip(coupling, event_shape, mask, flip, dtype, regime):
    bijector = checks.in_regime(_random_coupling(coupling, event_shape, mask, flip, dtype), regime)
    x = tf.random.stateless_normal([2, *event_shape], [2, 2], dtype=dtype)
    y = tf.random.stateless_normal([2, *event_shape], [2, 3], dtype=dtype)
    checks.assert_round_trip(bijector, x, y, len(event_shape), dtype)


@pytest.mark.parametrize(('event_shape', 'mask', 'flip'), CASES)
@pytest.mark.parametrize('coupling', COUPLINGS)
def test_random_coupling_keeps_x1_and_changes_x2(coupling, event_shape, mask, flip):
    bijector = _random_coupling(coupling, event_shape, mask, flip, tf.float64)
    keep = _kept_mask(event_shape, mask, flip)
    x = tf.random.stateless_normal([2, *event_shape], [2, 4], dtype=tf.float64)
    for y in (bijector.forward(x).numpy(), bijector.inverse(x).numpy()):
        np.testing.assert_array_equal(y[:, keep], x.numpy()[:, keep])
        assert np.all(np.abs(y[:, ~keep] - x.numpy()[:, ~keep]) > 1e-6)


@pytest.mark.parametrize('batch_shape', [[], [2, 3]])
@pytest.mark.parametrize('coupling', COUPLINGS)
def test_a_checkerboard_maps_each_value_of_x2_as_its_position_alone(coupling, batch_shape):
    # x2's positions are gathered and mapped together, never x1's: each must come out as the
    # kind's map takes that one position with its own conditioner output, on an odd map (8 kept
    # and 7 changed positions), with any batch rank, and x1 exactly as it was.
    event_shape = (3, 5, 2)
    bijector = _random_coupling(coupling, event_shape, 'checkerboard', True, tf.float64)
    keep = _kept_mask(event_shape, 'checkerboard', True)[..., 0]
    x = tf.random.stateless_normal([*batch_shape, *event_shape], [2, 8], dtype=tf.float64)
    params = bijector._conditioner_params(x)  # noqa: SLF001 (the map's own input)
    for inverse, call, log_det in (
        (False, bijector.forward, bijector.forward_log_det_jacobian),
        (True, bijector.inverse, bijector.inverse_log_det_jacobian),
    ):
        expected, expected_log_det = x.numpy(), 0.0
        for i, j in zip(*np.nonzero(~keep), strict=True):
            value, part = bijector._map(  # noqa: SLF001 (the plain map of one position)
                x[..., i : i + 1, j : j + 1, :], params[..., i : i + 1, j : j + 1, :], inverse
            )
            expected[..., i, j, :], expected_log_det = value[..., 0, 0, :], expected_log_det + part
        np.testing.assert_allclose(call(x), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(call(x).numpy()[..., keep, :], x.numpy()[..., keep, :])
        np.testing.assert_allclose(log_det(x, 3), expected_log_det, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(('event_shape', 'mask', 'flip'), CASES)
@pytest.mark.parametrize('coupling', COUPLINGS)
def test_conditioner_sees_only_the_kept_part(coupling, event_shape, mask, flip):
    image = len(event_shape) == 3
    conditioners = []

    def conditioner_fn(input_size, output_size):
        conditioners.append(RecordingConditioner(input_size, output_size, image))
        return conditioners[-1]

    bijector = coupling(
        event_shape, mask=mask, flip=flip, conditioner_fn=conditioner_fn, dtype=tf.float64
    )
    (conditioner,) = conditioners
    checks.randomize_variables(bijector, seed=1)
    keep = _kept_mask(event_shape, mask, flip)
    channels = event_shape[-1]
    if mask == 'channel':
        kept = channels // 2 if not flip else channels - channels // 2
        changed = channels - kept
    else:
        kept = changed = channels
    assert conditioner.sizes == (kept, bijector.num_params * changed)

    rng = np.random.default_rng(0)
    x = rng.standard_normal([2, *event_shape])
    x_new_changed = np.where(keep, x, rng.standard_normal(x.shape))
    x_new_kept = np.where(keep, rng.standard_normal(x.shape), x)
    y, y_new_changed, y_new_kept = (
        bijector.forward(tf.constant(v)).numpy() for v in (x, x_new_changed, x_new_kept)
    )
    seen, seen_new_changed, seen_new_kept = (t.numpy() for t in conditioner.inputs)
    assert seen.shape[-1] == kept
    np.testing.assert_array_equal(seen_new_changed, seen)
    np.testing.assert_array_equal(y_new_changed[:, keep], y[:, keep])
    assert not np.allclose(seen_new_kept, seen)
    assert np.all(np.abs(y_new_kept[:, ~keep] - y[:, ~keep]) > 1e-6)


@pytest.mark.parametrize(('event_shape', 'mask', 'flip'), CASES)
@pytest.mark.parametrize('coupling', COUPLINGS[:3])  # The mixture's: its own test below.
def test_fresh_coupling_is_the_identity(coupling, event_shape, mask, flip):
    bijector = coupling(event_shape, mask=mask, flip=flip, hidden_channels=8)
    x = tf.random.stateless_normal([2, *event_shape], [2, 5])
    keep = _kept_mask(event_shape, mask, flip)
    tol = dict(rtol=0, atol=1e-6 if coupling is SplineCoupling else 0)  # The spline rounds.
    for y in (bijector.forward(x).numpy(), bijector.inverse(x).numpy()):
        np.testing.assert_array_equal(y[:, keep], x.numpy()[:, keep])
        np.testing.assert_allclose(y, x, **tol)
    ndims = len(event_shape)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(x, ndims), [0.0, 0.0], **tol)


def test_affine_log_scale_is_clamped_to_the_bound():
    bijector = AffineCoupling(
        (4, 4, 2), mask='checkerboard', hidden_channels=8, log_scale_bound=1.5
    )
    bijector.conditioner.bias_out.assign([0.0, 0.0, 1e3, -1e3])
    x = tf.random.stateless_normal([2, 4, 4, 2], [2, 6])
    fldj = bijector.forward_log_det_jacobian(x, event_ndims=3)
    np.testing.assert_allclose(fldj, [0.0, 0.0], atol=1e-4)
    bijector.conditioner.bias_out.assign([0.0, 0.0, 1e3, 1e3])
    fldj = bijector.forward_log_det_jacobian(x, event_ndims=3)
    np.testing.assert_allclose(fldj, [1.5 * 16, 1.5 * 16], rtol=1e-6)
    assert np.all(np.isfinite(bijector.inverse(1e3 * x)))


def test_additive_coupling_shifts_only():
    bijector = AdditiveCoupling((4,), hidden_channels=8)
    bijector.conditioner.bias_out.assign([1.0, -2.0])
    x = tf.constant([[0.5, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(bijector.forward(x), [[0.5, 1.0, 3.0, 1.0]])


def test_conditioner_variables_are_tracked():
    bijector = AffineCoupling((4, 4, 2), hidden_channels=8)
    conditioner = bijector.conditioner
    assert isinstance(conditioner, networks.ConvNet)
    assert {v.ref() for v in bijector.trainable_variables} == {
        v.ref() for v in conditioner.trainable_variables
    }
    assert len(bijector.trainable_variables) == 6
    assert isinstance(AffineCoupling((4,), hidden_channels=8).conditioner, networks.DenseNet)


@pytest.mark.parametrize('coupling', COUPLINGS)
def test_rejects_unknown_mask(coupling):
    with pytest.raises(
        ValueError,
        match=r"`mask` must be one of \('channel', 'checkerboard'\); "
        r"got 'diagonal'",
    ):
        coupling((4, 4, 2), mask='diagonal')


@pytest.mark.parametrize('coupling', COUPLINGS)
def test_rejects_checkerboard_on_vectors(coupling):
    with pytest.raises(ValueError, match=r"mask='checkerboard' needs an image event .*got \(4,\)"):
        coupling((4,), mask='checkerboard')


@pytest.mark.parametrize('coupling', COUPLINGS)
@pytest.mark.parametrize('event_shape', [(4, 4, 1), (1,)])
def test_rejects_channel_mask_with_one_channel(coupling, event_shape):
    with pytest.raises(
        ValueError,
        match=r"mask='channel' needs at least 2 channels .*got event "
        rf'shape {event_shape!r}'.replace('(', r'\(').replace(')', r'\)'),
    ):
        coupling(event_shape, mask='channel')


@pytest.mark.parametrize('event_shape', [(4, 4), (4, 0, 2), (4.0, 4, 2), ()])
def test_rejects_bad_event_shape(event_shape):
    with pytest.raises(ValueError, match=r'`event_shape` must be \[H, W, C\] .*; got '):
        AffineCoupling(event_shape)


@pytest.mark.parametrize('bound', [0.0, -1.0, float('inf'), float('nan'), '2', True])
def test_rejects_bad_log_scale_bound(bound):
    with pytest.raises(
        ValueError, match=rf'`log_scale_bound` must be a finite number > 0; got {bound!r}'
    ):
        AffineCoupling((4,), log_scale_bound=bound)


@pytest.mark.parametrize('scale', ['exp', None, 'Sigmoid'])
def test_rejects_unknown_scale(scale):
    with pytest.raises(ValueError, match=r"`scale` must be one of \('tanh', 'sigmoid'\); got"):
        AffineCoupling((4,), scale=scale)


@pytest.mark.parametrize(
    ('shape', 'message'),
    [
        ([2, 4, 4, 3], r'expects a tensor of shape \[\.\.\., 4, 4, 2\]; got shape \[2, 4, 4, 3\]'),
        ([2, 2, 4, 2], r'expects a tensor of shape \[\.\.\., 4, 4, 2\]; got shape \[2, 2, 4, 2\]'),
        ([4, 2], r'expects a tensor of shape \[\.\.\., 4, 4, 2\] .*got rank 2, shape \[4, 2\]'),
    ],
)
@pytest.mark.parametrize('coupling', COUPLINGS)
def test_rejects_input_of_the_wrong_shape(coupling, shape, message):
    bijector = coupling((4, 4, 2), hidden_channels=8)
    with pytest.raises(ValueError, match=f'{coupling.__name__} {message}'):
        bijector.forward(tf.zeros(shape))
    with pytest.raises(ValueError, match=f'{coupling.__name__} {message}'):
        bijector.inverse(tf.zeros(shape))


@pytest.mark.parametrize(
    ('coupling', 'event_shape', 'mask'),
    [
        *(
            (c, s, m)
            for c in COUPLINGS[:2]
            for s, m in [((4, 4, 2), 'checkerboard'), ((5,), 'channel')]
        ),
        # The curved maps: one case compiles each (the masks are the couplings' shared code).
        (SplineCoupling, (4, 4, 2), 'checkerboard'),
        (LogisticMixtureCoupling, (4, 4, 2), 'checkerboard'),
        (LogisticMixtureCoupling, (5,), 'channel'),  # As realnvp_table's couplings.
    ],
)
def test_xla_matches_eager(coupling, event_shape, mask):
    bijector = _random_coupling(coupling, event_shape, mask, True, tf.float32)
    x = tf.random.stateless_normal([2, *event_shape], [2, 9])
    y = tf.random.stateless_normal([2, *event_shape], [2, 10])
    checks.assert_xla_matches_eager(bijector, x, y, len(event_shape))


# Conditional couplings: the context c is concatenated to the conditioner's input.
CONDITIONAL_CASES = [
    ((4, 4, 2), 'checkerboard', True),
    ((4, 4, 3), 'channel', False),
    ((5,), 'channel', True),
]


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize(('event_shape', 'mask', 'flip'), CONDITIONAL_CASES)
@pytest.mark.parametrize('coupling', COUPLINGS)
def test_conditional_log_det_matches_autodiff_at_random_contexts(
    coupling, event_shape, mask, flip, dtype
):
    bijector = _random_coupling(
        coupling, event_shape, mask, flip, dtype, seed=3, conditional_shape=(2, 2)
    )
    x = tf.random.stateless_normal([2, *event_shape], [2, 7], dtype=dtype)
    context = tf.random.stateless_normal([2, 2, 2], [2, 8], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    ndims = len(event_shape)
    forward, inverse = (
        checks.with_context(f, context) for f in (bijector.forward, bijector.inverse)
    )
    fldj, ildj = (
        checks.with_context(f, context)
        for f in (bijector.forward_log_det_jacobian, bijector.inverse_log_det_jacobian)
    )
    checks.assert_log_det_matches_autodiff(forward, fldj, x, ndims, **tol)
    checks.assert_log_det_matches_autodiff(inverse, ildj, x, ndims, **tol)
    np.testing.assert_allclose(inverse(tf.identity(forward(x))), x, **checks.tolerance(dtype))
    other = bijector.forward(x, conditional_input=context[::-1])
    assert not np.allclose(other, forward(x))


@pytest.mark.parametrize(('event_shape', 'mask', 'flip'), CONDITIONAL_CASES)
def test_conditioner_sees_the_kept_part_and_the_broadcast_context(event_shape, mask, flip):
    image = len(event_shape) == 3
    conditioners = []

    def conditioner_fn(input_size, output_size):
        conditioners.append(RecordingConditioner(input_size, output_size, image))
        return conditioners[-1]

    bijector = AffineCoupling(
        event_shape,
        mask=mask,
        flip=flip,
        conditioner_fn=conditioner_fn,
        conditional_shape=(2, 2),
        dtype=tf.float64,
    )
    (conditioner,) = conditioners
    channels = event_shape[-1]
    kept = (
        channels if mask == 'checkerboard' else channels - channels // 2 if flip else channels // 2
    )
    assert conditioner.sizes[0] == kept + 4
    x = tf.random.stateless_normal([2, *event_shape], [2, 9], dtype=tf.float64)
    context = tf.random.stateless_normal([2, 2, 2], [2, 10], dtype=tf.float64)
    bijector.inverse(x, conditional_input=context)
    (seen,) = conditioner.inputs
    flat = np.reshape(context, [2, 4])
    if image:
        flat = np.broadcast_to(flat[:, None, None, :], [2, *event_shape[:2], 4])
    np.testing.assert_array_equal(seen[..., kept:], flat)
    assert bijector.structure()['conditional_shape'] == [2, 2]
    assert 'conditional_shape' not in AffineCoupling(event_shape, mask=mask).structure()


def test_a_fresh_conditional_coupling_is_the_identity_for_any_context():
    bijector = AffineCoupling((4, 4, 2), hidden_channels=8, conditional_shape=(3,))
    x = tf.random.stateless_normal([2, 4, 4, 2], [2, 11])
    context = tf.random.stateless_normal([2, 3], [2, 12])
    np.testing.assert_array_equal(bijector.forward(x, conditional_input=context), x)


@pytest.mark.parametrize('coupling', COUPLINGS)
def test_rejects_dropout_with_a_custom_conditioner(coupling):
    with pytest.raises(ValueError, match=r'`dropout_rate` applies to the default conditioner'):
        coupling((4,), conditioner_fn=lambda i, o: networks.DenseNet(i, o), dropout_rate=0.1)


# A context map of the event's height and width: K more channels at each position.
@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize(('mask', 'flip'), [('checkerboard', False), ('channel', True)])
@pytest.mark.parametrize('coupling', COUPLINGS)
def test_a_context_map_log_det_matches_autodiff(coupling, mask, flip, dtype):
    bijector = _random_coupling(
        coupling, (4, 4, 2), mask, flip, dtype, seed=4, conditional_shape=(4, 4, 3)
    )
    x = tf.random.stateless_normal([2, 4, 4, 2], [2, 13], dtype=dtype)
    context = tf.random.stateless_normal([2, 4, 4, 3], [2, 14], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    forward, inverse, fldj, ildj = (
        checks.with_context(f, context)
        for f in (
            bijector.forward,
            bijector.inverse,
            bijector.forward_log_det_jacobian,
            bijector.inverse_log_det_jacobian,
        )
    )
    checks.assert_log_det_matches_autodiff(forward, fldj, x, 3, **tol)
    checks.assert_log_det_matches_autodiff(inverse, ildj, x, 3, **tol)
    np.testing.assert_allclose(inverse(tf.identity(forward(x))), x, **checks.tolerance(dtype))
    assert not np.allclose(bijector.forward(x, conditional_input=context[::-1]), forward(x))


def test_the_conditioner_sees_a_context_map_beside_the_kept_part():
    conditioners = []

    def conditioner_fn(input_size, output_size):
        conditioners.append(RecordingConditioner(input_size, output_size, True))
        return conditioners[-1]

    bijector = AffineCoupling(
        (4, 4, 2),
        mask='checkerboard',
        conditioner_fn=conditioner_fn,
        conditional_shape=(4, 4, 3),
        dtype=tf.float64,
    )
    (conditioner,) = conditioners
    assert conditioner.sizes == (2 + 3, 2 * 2)
    x = tf.random.stateless_normal([2, 4, 4, 2], [2, 15], dtype=tf.float64)
    context = tf.random.stateless_normal([4, 4, 3], [2, 16], dtype=tf.float64)
    y = bijector.forward(x, conditional_input=context)  # One map for the whole batch.
    (seen,) = conditioner.inputs
    np.testing.assert_array_equal(seen[..., 2:], np.broadcast_to(context, [2, 4, 4, 3]))
    np.testing.assert_array_equal(
        y, bijector.forward(x, conditional_input=tf.stack([context, context]))
    )
    with pytest.raises(ValueError, match=r'takes `conditional_input` of shape \[\.\.\., 4, 4, 3\]'):
        bijector.forward(x, conditional_input=tf.zeros([2, 4, 4, 2], tf.float64))
    # A context of another height and width is flattened, as any vector context.
    flat = AffineCoupling((4, 4, 2), hidden_channels=8, conditional_shape=(2, 2, 3))
    assert flat.conditioner.input_channels == 1 + 12


@pytest.mark.parametrize('coupling', COUPLINGS)
def test_the_default_conditioner_checks_the_values_it_takes(coupling):
    with pytest.raises(ValueError, match=r'`hidden_channels` must be a positive int; got 0'):
        coupling((4, 4, 2), hidden_channels=0)
    with pytest.raises(ValueError, match=r'`seed` must be an int in \[0, 2\*\*31\); got -1'):
        coupling((4, 4, 2), seed=-1)
    with pytest.raises(ValueError, match=r'`dropout_rate` must be a number in \[0, 1\); got 1.0'):
        coupling((4,), dropout_rate=1.0)


# The spline coupling: the identity outside [-B, B], memory-saving backprop and dropout.
@pytest.mark.parametrize(
    ('event_shape', 'mask', 'dtype'),
    [((4, 4, 2), 'checkerboard', tf.float64), ((5,), 'channel', tf.float32)],
)
def test_the_spline_is_the_identity_outside_its_bound_and_smooth_across_it(
    event_shape, mask, dtype
):
    bijector = _random_coupling(
        SplineCoupling, event_shape, mask, False, dtype, seed=6, num_bins=4, bound=1.0
    )
    x = 1.5 * tf.random.stateless_normal([2, *event_shape], [2, 17], dtype=dtype)
    outside = np.abs(x.numpy()) >= 1.0
    assert outside.any() and not outside.all()
    for y in (bijector.forward(x), bijector.inverse(x)):
        np.testing.assert_array_equal(y.numpy()[outside], x.numpy()[outside])
    tol, ndims = checks.tolerance(dtype, log_det=True), len(event_shape)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, ndims, **tol
    )
    checks.assert_round_trip(bijector, x, x, ndims, dtype)
    assert np.all(np.abs(bijector.forward_log_det_jacobian(x, ndims)) > 1e-2)  # Not the identity.


@pytest.mark.parametrize(
    ('name', 'value', 'message'),
    [
        ('num_bins', 1, r'an int in \[2, 1000\)'),
        ('num_bins', 8.0, r'an int in \[2, 1000\)'),
        ('num_bins', 1000, r'an int in \[2, 1000\)'),
        ('bound', 0.0, 'a finite number > 0'),
        ('bound', float('inf'), 'a finite number > 0'),
    ],
)
def test_the_spline_refuses_bad_bins_and_bounds(name, value, message):
    with pytest.raises(ValueError, match=rf'`{name}` must be {message}; got {value!r}'):
        SplineCoupling((4,), **{name: value})
    assert SplineCoupling((4,), num_bins=3, bound=2).structure() == {
        'class': 'SplineCoupling', 'event_shape': [4], 'mask': 'channel', 'flip': False,
        'num_bins': 3, 'bound': 2.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ('kind', 'event_shape', 'mode'),
    [
        (SplineCoupling, (4, 4, 2), 'invert'),
        (SplineCoupling, (5,), 'recompute'),
        (LogisticMixtureCoupling, (4, 4, 2), 'invert'),  # It rebuilds inputs by bisection.
    ],
)
def test_memory_saving_backprop_through_curved_couplings_gives_plain_gradients(
    kind, event_shape, mode
):
    masks = ('checkerboard', 'channel') if len(event_shape) == 3 else ('channel',)
    steps = [
        kind(event_shape, mask=m, flip=f, hidden_channels=8, seed=i, dtype=tf.float64)
        for i, (m, f) in enumerate((m, f) for m in masks for f in (False, True))
    ]
    ndims = len(event_shape)
    chain = checks.randomize_variables(Chain(steps, event_ndims=ndims), seed=7)
    x = tf.random.stateless_normal([3, *event_shape], [2, 18], dtype=tf.float64)

    def gradients(memory_saving):
        kwargs = {'memory_saving': memory_saving} if memory_saving else {}
        with tf.GradientTape() as tape:
            tape.watch(x)
            z, log_det = chain.inverse_and_log_det(x, ndims, **kwargs)
            loss = tf.reduce_sum(z**2) / 2 - tf.reduce_sum(log_det)
        return tape.gradient(loss, [*chain.trainable_variables, x])

    expected = gradients(None)
    actual = gradients(mode)
    for want, got in zip(expected, actual, strict=True):
        assert np.any(want.numpy() != 0)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('event_shape', [(4, 4, 2), (5,)])
def test_spline_dropout_with_a_fixed_mask_is_a_bijection_and_off_unless_training(event_shape):
    bijector = _random_coupling(
        SplineCoupling, event_shape, 'channel', False, tf.float64, dropout_rate=0.3
    )
    x = tf.random.stateless_normal([3, *event_shape], [2, 19], dtype=tf.float64)
    ndims, seeded = len(event_shape), dict(training=True, dropout_seed=tf.constant([3, 4]))
    y, fldj = bijector.forward_and_log_det(x, ndims, **seeded)
    x_again, ildj = bijector.inverse_and_log_det(tf.identity(y), ndims, **seeded)
    np.testing.assert_allclose(x_again, x, **checks.tolerance(tf.float64))
    np.testing.assert_allclose(ildj, -fldj, **checks.tolerance(tf.float64, log_det=True))
    other = bijector.forward(x, training=True, dropout_seed=tf.constant([3, 5]))
    assert not np.allclose(other, y)
    plain = bijector.forward(x)
    np.testing.assert_array_equal(bijector.forward(x, training=False), plain)
    assert not np.allclose(plain, y)


# The logistic mixture coupling: tails, bisection's precision, options, memory saving.
@pytest.mark.parametrize('dtype', checks.DTYPES)
def test_the_logistic_mixture_is_exact_far_out_in_its_tails(dtype):
    bijector = _random_coupling(
        LogisticMixtureCoupling, (5,), 'channel', False, dtype, seed=8, mixture_components=3
    )
    x = 30 * tf.random.stateless_normal([3, 5], [2, 20], dtype=dtype)  # Logits beyond +-30.
    tol, rounding = checks.tolerance(dtype, log_det=True), checks.tolerance(dtype)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, x, 1, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, x, 1, **tol
    )
    for there, back in ((bijector.forward, bijector.inverse), (bijector.inverse, bijector.forward)):
        np.testing.assert_allclose(back(tf.identity(there(x))), x, atol=30 * rounding['atol'])
    assert np.all(np.abs(bijector.forward_log_det_jacobian(x, 1)) > 1e-2)  # Not the identity.


@pytest.mark.parametrize('dtype', checks.DTYPES)
def test_the_logistic_mixture_cdf_and_slope_are_their_plain_formulas(dtype):
    # `_logit_cdf` takes both from shared log-sum-exp parts, normalised by the tail's side; here
    # logit F and log g' straight from their definitions in float64 (|u| < ~30: exact there).
    rng = np.random.default_rng(4)
    v, (logits, means, log_scales) = 3 * rng.standard_normal(300), rng.standard_normal([3, 300, 6])
    weights = np.exp(logits) / np.sum(np.exp(logits), axis=-1, keepdims=True)
    u = (v[:, np.newaxis] - means) * np.exp(-log_scales)
    cdf, survival = (np.sum(weights / (1 + np.exp(sign * u)), axis=-1) for sign in (-1, 1))
    density = np.sum(weights * np.exp(-log_scales) / (2 + 2 * np.cosh(u)), axis=-1)
    mixture = (
        tf.nn.log_softmax(tf.constant(logits, dtype)),
        *(tf.constant(t, dtype) for t in (means, log_scales)),
    )
    logit, log_slope = _logit_cdf(tf.constant(v, dtype), *mixture, slope=True)
    tol = {'rtol': 1e-12, 'atol': 1e-12} if dtype == tf.float64 else {'rtol': 1e-5, 'atol': 1e-5}
    np.testing.assert_allclose(logit, np.log(cdf / survival), **tol)
    np.testing.assert_allclose(log_slope, np.log(density / (cdf * survival)), **tol)
    np.testing.assert_array_equal(_logit_cdf(tf.constant(v, dtype), *mixture), logit)


def test_the_logistic_mixture_cdf_and_slope_have_their_gradients_at_a_components_mean():
    # At v = mu_j exactly (u_j = 0: a fresh coupling's middle component, mean 0, at x2 = 0) the
    # gradients w.r.t. v and the mixture must be those of the log-sigmoid formulas, not lose
    # component j's share (relu's gradient is 0 at 0 on both sides of |u|).
    mixture = [tf.constant(t, tf.float64) for t in ([[0.3, -0.2]], [[0.0, 1.0]], [[0.1, -0.3]])]
    mixture[0] = tf.nn.log_softmax(mixture[0])
    v = tf.constant([0.0], tf.float64)

    def plain(v, log_weights, means, log_scales):
        u = (v[..., tf.newaxis] - means) * tf.exp(-log_scales)
        log_cdf = tf.reduce_logsumexp(log_weights + tf.math.log_sigmoid(u), axis=-1)
        log_survival = tf.reduce_logsumexp(log_weights + tf.math.log_sigmoid(-u), axis=-1)
        log_density = tf.reduce_logsumexp(
            log_weights - log_scales + tf.math.log_sigmoid(u) + tf.math.log_sigmoid(-u), axis=-1
        )
        return log_cdf - log_survival, log_density - log_cdf - log_survival

    def gradients(fn):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([v, *mixture])
            outputs = fn(v, *mixture)
        return [g for output in outputs for g in tape.gradient(output, [v, *mixture])]

    ours = gradients(lambda *args: _logit_cdf(*args, slope=True))
    for got, expected in zip(ours, gradients(plain), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def _mixture_at_its_bounds(dtype, event_shape=(4,), mask='channel', raw_scales=(50.0, -50.0)):
    """A logistic mixture coupling of two components whose log-scales are at the bound (+-7
    for the default raw values)."""
    bijector = LogisticMixtureCoupling(
        event_shape, mask=mask, hidden_channels=4, mixture_components=2, dtype=dtype
    )
    per_value = [0.0, 0.0, 0.0, 0.0, *raw_scales, 0.0, 0.0]  # logits, means, log-scales, a, b
    bias = bijector.conditioner.bias_out
    bias.assign(tf.constant(per_value * (bias.shape[0] // 8), dtype))
    return bijector


def test_the_logistic_mixture_keeps_its_scales_and_stays_finite_at_its_bounds():
    # float32 log-dets equal float64 ones far out (the -s_j term survives |u| ~ 1e12), and
    # values near float32's limit map to finite numbers or +-inf, never NaN (review).
    x2 = [[1e1, 1e3], [1e5, -1e5], [1e7, -1e9]]
    x = np.concatenate([np.ones([3, 2]), x2], axis=1)
    log_dets = {  # Both components narrow (log-scales -7 and -6): no wide one hides the term.
        dtype: _mixture_at_its_bounds(dtype, raw_scales=(-50.0, -8.6)).inverse_log_det_jacobian(
            tf.constant(x, dtype), 1
        )
        for dtype in (tf.float32, tf.float64)
    }
    np.testing.assert_allclose(log_dets[tf.float32], log_dets[tf.float64], rtol=1e-5)
    huge = tf.constant([[1.0, 1.0, 1e30, 1e36], [1.0, 1.0, -1e36, 3e38]], tf.float32)
    bijector = _mixture_at_its_bounds(tf.float32)
    for call in (bijector.forward, bijector.inverse):
        assert not np.any(np.isnan(call(huge))), call
    # Checkerboard: a huge kept value passes through with no log-det of its own.
    bijector = _mixture_at_its_bounds(tf.float32, (2, 2, 1), 'checkerboard')
    image = tf.constant([[[[1e36], [0.5]], [[0.5], [1e36]]]], tf.float32)
    for y, log_det in (
        (bijector.forward(image), bijector.forward_log_det_jacobian(image, 3)),
        (bijector.inverse(image), bijector.inverse_log_det_jacobian(image, 3)),
    ):
        assert np.all(np.isfinite(log_det)) and np.all(np.isfinite(y)), (y, log_det)


def test_a_fresh_logistic_mixture_coupling_is_flow_pp_map_of_its_spread_components():
    bijector = LogisticMixtureCoupling(
        (4,), hidden_channels=8, mixture_components=3, dtype=tf.float64
    )
    x = 3 * tf.random.stateless_normal([2, 4], [2, 21], dtype=tf.float64)
    # Flow++ eq. 8 in NumPy: pi_j = 1/3, s_j = 0, a = b = 0, mu_j = the offsets -1, 0 and 1.
    cdf = np.mean(1 / (1 + np.exp(-(x.numpy()[..., np.newaxis] - [-1.0, 0.0, 1.0]))), axis=-1)
    expected = np.concatenate([x.numpy()[:, :2], np.log(cdf / (1 - cdf))[:, 2:]], axis=1)
    np.testing.assert_allclose(bijector.inverse(x), expected, rtol=1e-12)
    np.testing.assert_allclose(bijector.forward(tf.constant(expected)), x, rtol=1e-12)


def test_the_logistic_mixture_refuses_bad_components_and_states_them():
    for value in (0, 2.0, 1000, True):
        with pytest.raises(ValueError, match=r'`mixture_components` must be an int in \[1, 1000\)'):
            LogisticMixtureCoupling((4,), mixture_components=value)
    with pytest.raises(ValueError, match=r'`log_scale_bound` must be a finite number > 0; got 0'):
        LogisticMixtureCoupling((4,), log_scale_bound=0)
    bijector = LogisticMixtureCoupling((4,), mixture_components=3)
    assert bijector.num_params == 3 * 3 + 2
    assert bijector.structure() == {
        'class': 'LogisticMixtureCoupling', 'event_shape': [4], 'mask': 'channel', 'flip': False,
        'log_scale_bound': 2.0, 'mixture_components': 3,
    }  # fmt: skip
