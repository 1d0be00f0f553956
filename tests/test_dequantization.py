"""Tests of tfp_flows/dequantization.py: uniform dequantization and bits/dim."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.dequantization import bits_per_dim, uniform_dequantize


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
