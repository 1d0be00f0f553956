"""Tests of tfp_flows/dequantization: dequantization, bits/dim bounds and estimates."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from checks import randomize_variables

import tfp_flows
from tfp_flows.dequantization import (
    bits_per_dim,
    check_pixels,
    dequantize_with,
    dequantized_bits_per_dim,
    importance_weighted_bits_per_dim,
    importance_weighted_log_likelihood,
    uniform_dequantize,
)
from tfp_flows.dequantization.variational import VariationalDequantizer


@pytest.mark.parametrize('dtype', [tf.float32, tf.float64])
@pytest.mark.parametrize('num_bins', [2, 17, 256])
def test_uniform_dequantize_stays_in_the_cell_of_each_pixel(num_bins, dtype):
    pixels = np.random.default_rng(0).integers(0, num_bins, size=[64, 8, 8, 3])
    x = uniform_dequantize(pixels, num_bins, seed=[1, 2], dtype=dtype)
    assert x.dtype == dtype
    assert x.shape == pixels.shape
    x = x.numpy()
    assert x.min() >= 0.0 and x.max() < 1.0
    noise = x * num_bins - pixels  # u, which must lie in [0, 1).
    assert noise.min() >= -1e-4 and noise.max() <= 1.0 + 1e-4
    assert abs(noise.mean() - 0.5) < 0.02


def test_uniform_dequantize_accepts_integer_valued_floats():
    x = uniform_dequantize(tf.constant([[0.0, 3.0]]), 4, seed=[0, 0])
    np.testing.assert_array_equal(np.floor(x.numpy() * 4), [[0.0, 3.0]])


def test_uniform_dequantize_seed_is_reproducible():
    pixels = tf.zeros([1000], tf.uint8)
    first = uniform_dequantize(pixels, 256, seed=[3, 4])
    np.testing.assert_array_equal(first, uniform_dequantize(pixels, 256, seed=[3, 4]))
    assert not np.array_equal(first, uniform_dequantize(pixels, 256, seed=[3, 5]))
    assert not np.array_equal(uniform_dequantize(pixels, 256), uniform_dequantize(pixels, 256))


def test_uniform_dequantize_top_bin_stays_below_one_in_float32():
    x = uniform_dequantize(tf.fill([2_000_000], 255), 256, seed=[1, 2])
    assert float(tf.reduce_max(x)) < 1.0


@pytest.mark.parametrize('num_bins', [1, 2.0, None])
def test_uniform_dequantize_rejects_bad_num_bins(num_bins):
    with pytest.raises(ValueError, match=r'`num_bins` must be an int >= 2; got '):
        uniform_dequantize([0, 1], num_bins)


def test_uniform_dequantize_rejects_non_numbers():
    with pytest.raises(
        TypeError, match='`pixels` must be integer-valued numbers; got dtype string'
    ):
        uniform_dequantize(['a', 'b'], 256)


def test_check_pixels_refuses_values_that_are_not_pixels_naming_them():
    np.testing.assert_array_equal(check_pixels([[0, 16]], 17, tf.float64), [[0.0, 16.0]])
    with pytest.raises(ValueError, match=r'`pixels` must be integers from 0 to 16; got \[17, -1'):
        check_pixels([[0, 17, -1]], 17, tf.float32)  # Python and NumPy values: now.
    with pytest.raises(ValueError, match=r'`pixels` must have shape \[N, 2, 1\]; got'):
        check_pixels(np.zeros([3, 1, 2]), 17, tf.float32, event_shape=(2, 1))
    with pytest.raises(TypeError, match='`pixels` must be integer-valued numbers; got dtype bool'):
        check_pixels(tf.constant([True]), 17, tf.float32)
    traced = tf.function(lambda pixels: check_pixels(pixels, 17, tf.float32))
    for bad in ([0.5], [np.nan], [17], [-1]):  # Tensors: eagerly and at run time.
        for check in (lambda p: check_pixels(p, 17, tf.float32), traced):
            with pytest.raises(tf.errors.InvalidArgumentError, match='`pixels` must be integers'):
                check(tf.constant(bad, tf.float32))


def test_dequantize_with_puts_each_value_in_the_cell_of_its_pixel_below_one():
    x = dequantize_with(tf.constant([0.0, 3.0, 255.0]), tf.constant([0.5, 0.0, 1.0]), 256)
    np.testing.assert_allclose(x[:2], [0.5 / 256, 3 / 256])
    assert x[2] < 1.0  # (255 + 1) / 256 is clipped below one.


@pytest.mark.parametrize('num_bins', [2, 17, 256])
def test_bits_per_dim_of_uniform_density_is_log2_num_bins(num_bins):
    # The uniform density on [0, 1)^D has log p(x) = 0, so the discrete model is uniform over
    # num_bins^D values: exactly log2(num_bins) bits per dimension.
    bpd = bits_per_dim(tf.zeros([3]), num_dims=784, num_bins=num_bins)
    np.testing.assert_allclose(bpd, [math.log2(num_bins)] * 3, rtol=1e-6)


def test_bits_per_dim_matches_hand_computed_value():
    # (1000 + 784 * ln 256) / (784 * ln 2) = 1000 / (784 * 0.693147...) + 8 = 9.840172...
    bpd = bits_per_dim(tf.constant(-1000.0, tf.float64), num_dims=784, num_bins=256)
    assert bpd.numpy() == pytest.approx(9.840172246031841, rel=1e-12)


@pytest.mark.parametrize('num_dims', [0, -3, 784.0])
def test_bits_per_dim_rejects_bad_num_dims(num_dims):
    with pytest.raises(ValueError, match=r'`num_dims` must be a positive int; got '):
        bits_per_dim(0.0, num_dims, 256)


@pytest.mark.parametrize('num_bins', [1, 256.0])
def test_bits_per_dim_rejects_bad_num_bins(num_bins):
    with pytest.raises(ValueError, match=r'`num_bins` must be an int >= 2; got '):
        bits_per_dim(0.0, 784, num_bins)


def test_bits_per_dim_takes_numpy_integers():
    value = bits_per_dim(tf.zeros([1]), np.prod((8, 8, 1)), np.int64(17))
    np.testing.assert_allclose(value, [math.log2(17)], rtol=1e-6)


# The estimators, on a toy whose discrete likelihood is computable: 2 pixels with 4 levels.
TOY_BINS = 4
TOY_CELLS = np.array([[i, j] for i in range(TOY_BINS) for j in range(TOY_BINS)])
TOY_PIXELS = TOY_CELLS.reshape(-1, 1, 2, 1)
TOY_NODES = 64  # Gauss-Legendre nodes per axis and cell: log P(k) to ~1e-5 (48 vs 96 nodes).


@pytest.fixture(scope='module')
def toy():
    """A 2-pixel Real NVP density on (0, 1)^2 (logit, alpha = 0: all its mass is in the
    square), its exact cell masses P(k), and a variational dequantizer trained on the cells.

    P(k) = integral over the cell of k of p(x) dx, by a tensor-product Gauss-Legendre rule.
    """
    flow = tfp_flows.real_nvp(
        event_shape=(1, 2, 1),
        num_levels=1,
        num_steps=1,
        hidden_channels=8,
        preprocessing='logit',
        alpha=0.0,
        dtype=tf.float64,
    )
    tfp_flows.initialize(flow, np.random.default_rng(0).uniform(size=(64, 1, 2, 1)))
    randomize_variables(flow, seed=1, scale=0.5)
    nodes, weights = np.polynomial.legendre.leggauss(TOY_NODES)
    nodes, weights = (nodes + 1) / 2, weights / 2  # On [0, 1].
    offsets = np.stack(np.meshgrid(nodes, nodes, indexing='ij'), axis=-1)
    x = (TOY_CELLS[:, np.newaxis, np.newaxis, :] + offsets) / TOY_BINS
    log_p = flow.log_prob(x.reshape(-1, 1, 2, 1)).numpy().reshape(len(TOY_CELLS), -1)
    cell_weights = np.outer(weights, weights).ravel() / TOY_BINS**2
    exact = np.log(np.exp(log_p) @ cell_weights)
    assert np.exp(exact).sum() == pytest.approx(1.0, abs=1e-6)  # The quadrature is right.

    dequantizer = VariationalDequantizer(
        (1, 2, 1), TOY_BINS, num_steps=2, hidden_channels=8, context_channels=2, dtype=tf.float64
    )
    optimizer = keras.optimizers.Adam(1e-2)
    batch = np.tile(TOY_PIXELS, (16, 1, 1, 1))

    @tf.function
    def train_step(seed):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(dequantized_bits_per_dim(flow, dequantizer, batch, 4, seed))
        variables = dequantizer.trainable_variables  # q alone: p stays the fixed toy.
        optimizer.apply(tape.gradient(loss, variables), variables)

    for step in range(150):
        train_step(tf.constant([step, 0]))
    return flow, exact, dequantizer


@tf.function
def _toy_estimates(flow, dequantizer, num_samples, num_replicates, seed):
    """[num_replicates, 16] independent importance-weighted estimates of log P(k) per cell."""
    pixels = tf.tile(TOY_PIXELS, [num_replicates, 1, 1, 1])
    estimates = importance_weighted_log_likelihood(
        flow, dequantizer, pixels, TOY_BINS, num_samples, seed
    )
    return tf.reshape(estimates, [num_replicates, len(TOY_CELLS)])


@pytest.mark.parametrize('variational', [False, True])
def test_importance_weighted_estimate_is_a_lower_bound_that_converges_to_the_exact(
    toy, variational
):
    # Per cell k, with w = P-normalised weights p(x) B^-D / q(u | k) (mean P(k)) and v =
    # Var(w) / P(k)^2, the delta method gives for S draws
    #   log P(k) - E[IW_S] = v / (2 S) + O(1 / S^2),   sd(IW_S) = sqrt(v / S) + O(1 / S)
    # (Burda et al. 2016; one-sample bound = IW_1 <= IW_S <= exact in expectation). v is
    # measured from 16,384 one-sample draws; each E[IW_S] is a mean of R independent IW_S.
    flow, exact, dequantizer = toy
    dequantizer = dequantizer if variational else None
    one_sample = _toy_estimates(flow, dequantizer, 1, 16_384, [0, 1]).numpy()
    weights = np.exp(one_sample - exact)
    np.testing.assert_allclose(weights.mean(axis=0), 1.0, atol=0.1)  # E[w] = P(k).
    variance = weights.var(axis=0)
    gaps = {1: exact - one_sample.mean(axis=0)}
    tolerance = {1: 4 * one_sample.std(axis=0) / np.sqrt(len(one_sample))}
    for num_samples, num_replicates in ((16, 256), (256, 16), (4096, 16)):
        estimates = _toy_estimates(flow, dequantizer, num_samples, num_replicates, [1, 2])
        estimates = estimates.numpy()
        gap = exact - estimates.mean(axis=0)
        # 4 standard errors of the mean of R estimates, from the variance of the weights and
        # from the spread of the estimates, whichever is larger.
        error = np.maximum(
            np.sqrt(variance / (num_samples * num_replicates)),
            estimates.std(axis=0, ddof=1) / np.sqrt(num_replicates),
        )
        gaps[num_samples], tolerance[num_samples] = gap, 4 * error
        # The gap follows the delta method's v / (2 S): bias falling as 1 / S.
        np.testing.assert_array_less(np.abs(gap - variance / (2 * num_samples)), 4 * error)
    sizes = sorted(gaps)
    for size in sizes:
        assert np.all(gaps[size] > -tolerance[size]), (size, gaps[size])  # IW_S <= exact.
    for smaller, larger in zip(sizes[:-1], sizes[1:], strict=True):
        # E[IW_S] grows with S: bound <= IW_16 <= IW_256 <= IW_4096.
        allowed = tolerance[smaller] + tolerance[larger]
        assert np.all(gaps[smaller] - gaps[larger] > -allowed), (smaller, larger)
    root_mean_square = {size: np.sqrt(np.mean(gaps[size] ** 2)) for size in sizes}
    assert root_mean_square[1] > root_mean_square[16] > root_mean_square[256]
    assert root_mean_square[4096] < root_mean_square[16]
    # At S = 4096 the estimate is the exact log P(k) to within its Monte Carlo error (4
    # standard errors, < 0.04 nats), with a remaining bias v / (2 S) below 0.001 nats.
    assert np.all(np.abs(gaps[4096]) < tolerance[4096]) and np.all(tolerance[4096] < 0.04)
    assert np.all(variance / (2 * 4096) < 1e-3)
    if not variational:
        assert np.all(gaps[1] > 0.02)  # Uniform dequantization's bound is loose here.


def test_trained_variational_dequantizer_tightens_the_one_sample_bound(toy):
    flow, exact, dequantizer = toy
    uniform = exact - _toy_estimates(flow, None, 1, 4096, [3, 4]).numpy().mean(axis=0)
    learned = exact - _toy_estimates(flow, dequantizer, 1, 4096, [3, 4]).numpy().mean(axis=0)
    # The uniform gap, summed over cells, is ~17 nats; the learned q closes ~95 % of it.
    assert learned.sum() < 0.1 * uniform.sum(), (learned.sum(), uniform.sum())


def test_one_sample_importance_weighted_estimate_is_the_dequantized_bound():
    flow = tfp_flows.glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    randomize_variables(flow)
    pixels = np.random.default_rng(0).integers(0, 17, size=[4, 8, 8, 1])
    seed = tf.constant([3, 4])
    bound = importance_weighted_bits_per_dim(flow, None, pixels, 17, 1, seed)
    draw_seed = tf.random.experimental.stateless_fold_in(seed, 0)
    x = uniform_dequantize(pixels, 17, seed=draw_seed)
    expected = bits_per_dim(flow.log_prob(x), 64, 17)
    np.testing.assert_allclose(bound, expected, rtol=1e-6)
    np.testing.assert_allclose(
        dequantized_bits_per_dim(flow, None, pixels, 17, draw_seed), expected, rtol=1e-6
    )


@pytest.mark.parametrize('dtype', [tf.float32, tf.float64])
def test_dequantized_bound_with_a_dequantizer_adds_log_q(dtype):
    flow = tfp_flows.glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8, dtype=dtype)
    dequantizer = VariationalDequantizer((8, 8, 1), 17, num_steps=2, hidden_channels=8, dtype=dtype)
    randomize_variables(flow)
    randomize_variables(dequantizer, seed=2)
    pixels = np.random.default_rng(0).integers(0, 17, size=[4, 8, 8, 1])
    noise, log_q = dequantizer.sample_and_log_prob(pixels, seed=[1, 2])
    log_p = flow.log_prob((pixels + noise) / 17)
    expected = (-(log_p - log_q) + 64 * math.log(17)) / (64 * math.log(2))
    actual = dequantized_bits_per_dim(flow, dequantizer, pixels, 17, seed=[1, 2])
    assert actual.dtype == dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_importance_weighted_estimate_is_reproducible_in_and_out_of_tf_function():
    flow = tfp_flows.glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    randomize_variables(flow)
    pixels = np.random.default_rng(0).integers(0, 17, size=[4, 8, 8, 1])
    eager = importance_weighted_bits_per_dim(flow, None, pixels, 17, 5, 7)
    np.testing.assert_array_equal(
        eager, importance_weighted_bits_per_dim(flow, None, pixels, 17, 5, 7)
    )
    traced = tf.function(importance_weighted_bits_per_dim, reduce_retracing=True)
    np.testing.assert_allclose(traced(flow, None, pixels, 17, tf.constant(5), 7), eager, rtol=1e-5)
    assert not np.allclose(importance_weighted_bits_per_dim(flow, None, pixels, 17, 5, 8), eager)


def test_importance_weighted_estimate_rejects_bad_arguments():
    flow = tfp_flows.glow((8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    pixels = np.zeros([1, 8, 8, 1], np.int32)
    with pytest.raises(ValueError, match=r'`num_samples` must be a positive int; got 0'):
        importance_weighted_bits_per_dim(flow, None, pixels, 17, 0, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'`num_samples` must be a positive'):
        importance_weighted_bits_per_dim(flow, None, pixels, 17, tf.constant(0), 1)
    with pytest.raises(ValueError, match=r'`num_samples` must be a positive int or an int scalar'):
        importance_weighted_bits_per_dim(flow, None, pixels, 17, tf.constant(2.0), 1)
    with pytest.raises(ValueError, match=r'`seed` must be an int in \[0, 2\*\*31\); got -1'):
        importance_weighted_bits_per_dim(flow, None, pixels, 17, 1, -1)
    with pytest.raises(ValueError, match=r'`seed` must be an int or a stateless seed'):
        importance_weighted_bits_per_dim(flow, None, pixels, 17, 1, [1, 2, 3])
    for name, arguments in (('num_samples', (None, 1)), ('seed', (1, None))):
        with pytest.raises(ValueError, match=f'`{name}` must be .*; got None'):
            importance_weighted_bits_per_dim(flow, None, pixels, 17, *arguments)
    with pytest.raises(ValueError, match='`seed` must be None or an int tensor of shape'):
        uniform_dequantize([[0]], 17, seed='x')
    with pytest.raises(ValueError, match=r'`pixels` must be integers from 0 to 16; got \[17, 17'):
        importance_weighted_bits_per_dim(flow, None, pixels + 17, 17, 1, 1)
    dequantizer = VariationalDequantizer((8, 8, 1), 16, num_steps=2, hidden_channels=8)
    with pytest.raises(ValueError, match=r'must be built for the data: num_bins 17 \(got 16\)'):
        dequantized_bits_per_dim(flow, dequantizer, pixels, 17)
