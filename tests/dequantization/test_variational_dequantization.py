"""Tests of tfp_flows/dequantization/variational.py: the learned noise density q(u | k)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from checks import DTYPES, assert_log_det_matches_autodiff, randomize_variables, tolerance

import tfp_flows
from tfp_flows import data
from tfp_flows.bijectors import AffineCoupling, Chain
from tfp_flows.dequantization import dequantized_bits_per_dim
from tfp_flows.dequantization.variational import VariationalDequantizer

EVENT_SHAPE = (4, 4, 2)
NUM_BINS = 17


def _pixels(num_images, event_shape=EVENT_SHAPE, seed=0):
    return np.random.default_rng(seed).integers(0, NUM_BINS, size=[num_images, *event_shape])


def _random_dequantizer(dtype=tf.float32, event_shape=EVENT_SHAPE, scale=0.5, **kwargs):
    options = dict(num_steps=3, hidden_channels=8, context_channels=3)
    options.update(kwargs)
    dequantizer = VariationalDequantizer(event_shape, NUM_BINS, dtype=dtype, **options)
    return randomize_variables(dequantizer, seed=1, scale=scale)


@pytest.mark.parametrize('dtype', DTYPES)
def test_fresh_dequantizer_is_uniform_dequantization(dtype):
    # Logistic noise through a sigmoid is uniform and the couplings start as the identity.
    dequantizer = VariationalDequantizer(EVENT_SHAPE, NUM_BINS, dtype=dtype)
    noise, log_q = dequantizer.sample_and_log_prob(_pixels(512), seed=[1, 2])
    assert noise.dtype == dtype and noise.shape == (512, *EVENT_SHAPE)
    assert log_q.dtype == dtype and log_q.shape == (512,)
    np.testing.assert_allclose(log_q, 0.0, atol=1e-4)
    noise = noise.numpy()
    assert noise.min() > 0.0 and noise.max() < 1.0
    # Uniform: mean 1/2 and variance 1/12, to ~5 standard errors of 16,384 draws.
    assert abs(noise.mean() - 0.5) < 0.012 and abs(noise.var() - 1 / 12) < 0.005


def _context_map(dequantizer, context, size, inverse):
    """The noise flow as a function of its input alone, for a batch copied `size` times per
    example (see checks.batch_jacobian)."""
    method = dequantizer.bijector.inverse if inverse else dequantizer.bijector.forward

    def fn(x):
        repeated = tf.repeat(context, x.shape[0] // context.shape[0], axis=0)
        return method(x, conditional_input=repeated)

    def log_det_fn(x, event_ndims):
        method = dequantizer.bijector.inverse_and_log_det
        if not inverse:
            method = dequantizer.bijector.forward_and_log_det
        return method(x, event_ndims, conditional_input=context)[1]

    return fn, log_det_fn


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('inverse', [False, True])
def test_log_det_matches_autodiff_at_random_parameters(dtype, inverse):
    dequantizer = _random_dequantizer(dtype)
    context = dequantizer.context(_pixels(2))
    if inverse:
        x, _ = dequantizer.sample_and_log_prob(_pixels(2), seed=[3, 4])
    else:
        x = dequantizer.base.sample(2, seed=[3, 4])
    fn, log_det_fn = _context_map(dequantizer, context, np.prod(EVENT_SHAPE), inverse)
    assert_log_det_matches_autodiff(fn, log_det_fn, x, 3, **tolerance(dtype, log_det=True))


@pytest.mark.parametrize('dtype', DTYPES)
def test_random_dequantizer_is_not_uniform_and_depends_on_the_pixels(dtype):
    dequantizer = _random_dequantizer(dtype)
    pixels = _pixels(4)
    noise, log_q = dequantizer.sample_and_log_prob(pixels, seed=[1, 2])
    assert np.all(np.abs(log_q) > 0.1)
    other, _ = dequantizer.sample_and_log_prob(pixels[::-1], seed=[1, 2])
    assert not np.allclose(noise[::-1], other)  # Same base noise, other pixels: other u.


@pytest.mark.parametrize('dtype', DTYPES)
def test_sample_and_log_prob_matches_log_prob_of_the_noise(dtype):
    dequantizer = _random_dequantizer(dtype, scale=0.2)
    pixels = _pixels(8)
    noise, log_q = dequantizer.sample_and_log_prob(pixels, seed=[5, 6])
    values = tolerance(dtype, log_det=True)
    # In float32 the logit of a u within ~1e-3 of 0 or 1 loses digits (a sample that the
    # random couplings pushed into a saturated sigmoid): those images are left out there.
    margin = 1e-3 if dtype == tf.float32 else 0.0
    clear = np.all((noise > margin) & (noise < 1 - margin), axis=(1, 2, 3))
    assert clear.sum() >= 6
    fresh = tf.constant(noise.numpy())  # TFP's Sigmoid would answer `noise` from its cache.
    np.testing.assert_allclose(
        dequantizer.log_prob(fresh, pixels).numpy()[clear], log_q.numpy()[clear], **values
    )
    context = {'conditional_input': dequantizer.context(pixels)}
    by_tfp = dequantizer.distribution.log_prob(tf.constant(fresh), bijector_kwargs=context)
    np.testing.assert_allclose(by_tfp.numpy()[clear], log_q.numpy()[clear], **values)
    traced = tf.function(dequantizer.sample_and_log_prob)(tf.constant(pixels), seed=[5, 6])
    np.testing.assert_allclose(traced[0], noise, **tolerance(dtype))
    np.testing.assert_allclose(traced[1], log_q, **values)


def test_q_is_a_normalised_density_on_the_unit_square():
    # The integral of q(u | k) over (0, 1)^2, taken in logit space y = logit(u), where the
    # integrand q(sigmoid(y)) sigmoid'(y1) sigmoid'(y2) is continuous with exponential tails:
    # a sum on a grid of step 0.1 is within ~1e-6 of it (1.4e-7 at step 0.05, measured).
    dequantizer = _random_dequantizer(tf.float64, event_shape=(1, 2, 1), num_steps=2)
    grid = np.linspace(-30.0, 30.0, 601)
    y = np.stack(np.meshgrid(grid, grid, indexing='ij'), axis=-1).reshape(-1, 1, 2, 1)
    noise = 1.0 / (1.0 + np.exp(-y))
    log_jacobian = np.sum(np.log(noise) + np.log1p(-noise), axis=(1, 2, 3))
    step = grid[1] - grid[0]
    for pixels in ([0, 0], [3, 16], [16, 7]):
        batch = np.broadcast_to(np.reshape(pixels, [1, 1, 2, 1]), noise.shape)
        log_q = dequantizer.log_prob(noise, batch).numpy()
        assert np.ptp(log_q) > 1.0  # Not uniform.
        mass = np.sum(np.exp(log_q + log_jacobian)) * step**2
        assert mass == pytest.approx(1.0, abs=1e-5), pixels


@pytest.mark.parametrize('dtype', DTYPES)
def test_log_prob_outside_the_open_unit_cube_is_minus_infinity(dtype):
    dequantizer = _random_dequantizer(dtype)
    noise, _ = dequantizer.sample_and_log_prob(_pixels(4), seed=[1, 2])
    noise = noise.numpy()
    noise[0, 0, 0, 0], noise[1, 1, 1, 1], noise[2, 0, 1, 0] = 0.0, 1.0, np.nan
    log_q = dequantizer.log_prob(noise, _pixels(4)).numpy()
    assert np.all(log_q[:3] == -np.inf) and np.isfinite(log_q[3])


def test_seed_makes_draws_reproducible():
    dequantizer = _random_dequantizer()
    pixels = _pixels(4)
    first = dequantizer.sample_and_log_prob(pixels, seed=[1, 2])
    again = dequantizer.sample_and_log_prob(pixels, seed=tf.constant([1, 2], tf.int64))
    other = dequantizer.sample_and_log_prob(pixels, seed=[1, 3])
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[0], other[0])
    with pytest.raises(
        ValueError, match=r'`seed` must be None or an int tensor of shape \[2\] .*\[1, 2, 3\]'
    ):
        dequantizer.sample_and_log_prob(pixels, seed=[1, 2, 3])


def test_joint_training_on_digits_lowers_the_bound_and_moves_every_variable():
    # The trainer's recipe: the flow's and the dequantizer's variables in one list, the mean
    # of `dequantized_bits_per_dim` as the loss, fresh noise each step.
    pixels = data.load_digits('train')[:256]
    flow = tfp_flows.glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=16)
    dequantizer = VariationalDequantizer(
        (8, 8, 1), 17, num_steps=2, hidden_channels=8, context_channels=2
    )
    tfp_flows.initialize(flow, tfp_flows.uniform_dequantize(pixels, 17, seed=[0, 0]))
    variables = flow.trainable_variables + dequantizer.trainable_variables
    assert len(dequantizer.trainable_variables) == 6 + 2 * 6  # Context net, 2 couplings.
    before = [v.numpy().copy() for v in variables]
    optimizer = keras.optimizers.Adam(3e-3)
    optimizer.build(variables)
    batches = tf.data.Dataset.from_tensor_slices(pixels).batch(64, drop_remainder=True)

    @tf.function
    def train_step(batch, seed):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(dequantized_bits_per_dim(flow, dequantizer, batch, 17, seed))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    @tf.function
    def evaluate():
        return tf.reduce_mean(dequantized_bits_per_dim(flow, dequantizer, pixels, 17, [9, 9]))

    start = float(evaluate())
    for epoch in range(4):
        for step, batch in enumerate(batches):
            train_step(batch, tf.constant([epoch, step]))
    end = float(evaluate())
    assert end < start - 0.3, (start, end)
    unmoved = [v.name for v, b in zip(variables, before, strict=True) if np.allclose(v, b)]
    assert not unmoved
    noise, log_q = dequantizer.sample_and_log_prob(pixels[:8], seed=[1, 1])
    assert np.all(np.abs(log_q) > 1e-3)  # No longer uniform.


def test_checkpoint_restores_q_and_refuses_other_num_bins(tmp_path):
    dequantizer = _random_dequantizer()
    pixels = _pixels(4)
    expected = dequantizer.sample_and_log_prob(pixels, seed=[1, 2])
    path = tf.train.Checkpoint(dequantizer=dequantizer).write(str(tmp_path / 'ckpt'))
    same = VariationalDequantizer(
        EVENT_SHAPE, NUM_BINS, num_steps=3, hidden_channels=8, context_channels=3, seed=5
    )
    tf.train.Checkpoint(dequantizer=same).read(path).assert_existing_objects_matched()
    restored = same.sample_and_log_prob(pixels, seed=[1, 2])
    np.testing.assert_array_equal(restored[0], expected[0])
    np.testing.assert_array_equal(restored[1], expected[1])
    other = VariationalDequantizer(
        EVENT_SHAPE, 16, num_steps=3, hidden_channels=8, context_channels=3
    )
    with pytest.raises(ValueError, match=r'num_bins = 17, but this one has 16'):
        tf.train.Checkpoint(dequantizer=other).read(path)


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(event_shape=(8, 8)), r'`event_shape` must be \[H, W, C\] of positive ints'),
        (dict(num_bins=1), r'`num_bins` must be an int >= 2; got 1'),
        (dict(num_steps=1), r'`num_steps` must be an int >= 2; got 1'),
        (dict(num_steps=0), r'`num_steps` must be an int >= 2; got 0'),
        (dict(hidden_channels=0), r'`hidden_channels` must be a positive int; got 0'),
        (dict(context_channels=-1), r'`context_channels` must be an int >= 0; got -1'),
        (dict(context_channels=2.0), r'`context_channels` must be an int >= 0; got 2.0'),
        (dict(log_scale_bound=0.0), r'`log_scale_bound` must be a finite number > 0; got 0.0'),
        (dict(seed=-1), r'`seed` must be an int in \[0, 2\*\*31\); got -1'),
        (dict(seed=2**31), r'`seed` must be an int in \[0, 2\*\*31\); got 2147483648'),
        (dict(dtype=tf.float16), r'`dtype` must be tf.float32 or tf.float64'),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    arguments = dict(event_shape=EVENT_SHAPE, num_bins=NUM_BINS)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        VariationalDequantizer(**arguments)


def test_without_context_features_the_scaled_pixels_are_the_context():
    dequantizer = _random_dequantizer(context_channels=0)
    pixels = _pixels(2)
    np.testing.assert_allclose(dequantizer.context(pixels), pixels / 16 - 0.5, rtol=1e-6)
    _, log_q = dequantizer.sample_and_log_prob(pixels, seed=[1, 2])
    np.testing.assert_allclose(dequantizer.log_prob(_, pixels), log_q, rtol=1e-4, atol=1e-4)


def test_rejects_pixels_outside_the_levels_or_of_another_shape():
    dequantizer = _random_dequantizer()
    bad = _pixels(2)
    bad[0, 0, 0, 0] = 17
    with pytest.raises(ValueError, match=r'`pixels` must be integers from 0 to 16; got \[17\]'):
        dequantizer.sample_and_log_prob(bad, seed=[1, 2])
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r'`pixels` must be integers from 0 to 16; got \[17'
    ):
        dequantizer.sample_and_log_prob(tf.constant(bad), seed=[1, 2])
    with pytest.raises(ValueError, match=r'`pixels` must have shape \[N, 4, 4, 2\]; got'):
        dequantizer.sample_and_log_prob(_pixels(2, (4, 4, 1)), seed=[1, 2])


def test_noise_flow_without_the_context_fails_naming_it():
    dequantizer = _random_dequantizer()
    with pytest.raises(ValueError, match=r'is conditional .*\[batch, 4, 4, 5\].*got no context'):
        dequantizer.bijector.forward(tf.zeros([1, *EVENT_SHAPE]))


def test_a_checkpoint_from_before_the_shared_coupling_restores(tmp_path, monkeypatch):
    # Before 0.2 q's couplings were a class of their own, `_ContextCoupling`, with the same
    # variables and map: its checkpoints name it in their saved structure.
    dequantizer = _random_dequantizer(context_channels=3)
    pixels = _pixels(4)
    expected = dequantizer.sample_and_log_prob(pixels, seed=[1, 2])

    def old_coupling(self):
        return {
            'class': '_ContextCoupling',
            'event_shape': list(self.event_shape),
            'context_channels': self.conditional_shape[-1],
            'flip': self.flip,
            'log_scale_bound': 2.0,
        }

    def old_chain(self):
        return {'class': 'Chain', 'steps': ['Sigmoid'] + ['_ContextCoupling'] * 3}

    monkeypatch.setattr(AffineCoupling, 'structure', old_coupling)
    monkeypatch.setattr(Chain, 'structure', old_chain)
    path = tf.train.Checkpoint(dequantizer=dequantizer).write(str(tmp_path / 'ckpt'))
    monkeypatch.undo()
    same = VariationalDequantizer(
        EVENT_SHAPE, NUM_BINS, num_steps=3, hidden_channels=8, context_channels=3, seed=5
    )
    tf.train.Checkpoint(dequantizer=same).read(path).assert_existing_objects_matched()
    restored = same.sample_and_log_prob(pixels, seed=[1, 2])
    np.testing.assert_array_equal(restored[0], expected[0])
    np.testing.assert_array_equal(restored[1], expected[1])
    other = VariationalDequantizer(
        EVENT_SHAPE,
        NUM_BINS,
        num_steps=3,
        hidden_channels=8,
        context_channels=3,
        log_scale_bound=3.0,
    )
    with pytest.raises(ValueError, match=r'log_scale_bound = 2.0, but this one has 3.0'):
        tf.train.Checkpoint(dequantizer=other).read(path)


def test_the_couplings_are_affine_couplings_given_the_context_map():
    dequantizer = _random_dequantizer(context_channels=3)
    couplings = dequantizer.bijector.bijectors[1:]
    assert all(isinstance(c, AffineCoupling) for c in couplings)
    assert [c.flip for c in couplings] == [False, True, False][::-1]
    assert {c.mask for c in couplings} == {'checkerboard'}
    assert {c.conditional_shape for c in couplings} == {(4, 4, 2 + 3)}
    # The map's context channels sit beside the kept pixels at every position.
    assert couplings[0].conditioner.input_channels == 2 + 2 + 3
