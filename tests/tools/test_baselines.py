"""Tests of tfp_flows/tools/baselines.py: the per-pixel histogram baseline."""

import math

import numpy as np
import pytest

from tfp_flows import data
from tfp_flows.tools.baselines import (
    histogram_baseline,
    pixel_histogram_bits_per_dim,
    pixel_histogram_log_probs,
)


def test_histograms_match_hand_counts():
    # Pixel 0 saw levels 0, 0, 2; pixel 1 saw 1, 1, 1. With a = 1 and B = 3:
    # P_0 = (3, 1, 2) / 6 and P_1 = (1, 4, 1) / 6.
    train = np.array([[0, 1], [0, 1], [2, 1]])
    log_probs = pixel_histogram_log_probs(train, 3, pseudocount=1.0)
    np.testing.assert_allclose(np.exp(log_probs), [[3 / 6, 1 / 6, 2 / 6], [1 / 6, 4 / 6, 1 / 6]])
    bits = pixel_histogram_bits_per_dim(log_probs, np.array([[0, 1], [1, 2]]))
    expected = [-(math.log2(3 / 6) + math.log2(4 / 6)) / 2, -(math.log2(1 / 6) * 2) / 2]
    np.testing.assert_allclose(bits, expected)


def test_each_pixel_is_a_distribution_over_the_levels():
    train = np.random.default_rng(0).integers(0, 17, size=[50, 8, 8, 1])
    log_probs = pixel_histogram_log_probs(train, 17, pseudocount=0.3)
    assert log_probs.shape == (8, 8, 1, 17)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=-1), 1.0, rtol=1e-12)


def test_digits_baseline_scores_2_42_test_bits_per_dim():
    # The figure of issue 12: one smoothed 17-bin histogram per pixel, counted on the train
    # split, scores 2.42 on the test split, with the pseudo-count chosen by validation
    # (0.3: 2.4214) and with Laplace's (2.4228).
    result = histogram_baseline(
        data.load_digits('train'), data.load_digits('validation'), data.load_digits('test'), 17
    )
    assert result['pseudocount'] == 0.3
    assert result['validation_bits_per_dim'] == pytest.approx(2.42099, abs=1e-4)
    assert result['test_bits_per_dim'] == pytest.approx(2.42143, abs=1e-4)
    assert result['laplace_test_bits_per_dim'] == pytest.approx(2.42277, abs=1e-4)
    assert set(result['validation_bits_per_dim_by_pseudocount']) == {0.01, 0.03, 0.1, 0.3, 1, 3}


@pytest.mark.parametrize('pseudocount', [0, -1.0, float('inf'), float('nan'), True, '1'])
def test_rejects_bad_pseudocount(pseudocount):
    with pytest.raises(ValueError, match=r'`pseudocount` must be a finite number > 0; got'):
        pixel_histogram_log_probs(np.zeros([2, 3]), 17, pseudocount)


def test_rejects_pixels_outside_the_levels_and_mismatched_shapes():
    with pytest.raises(ValueError, match=r'`pixels` must be integers from 0 to 16; got \[17, -1\]'):
        pixel_histogram_log_probs(np.array([[0, 17], [-1, 3]]), 17)
    with pytest.raises(ValueError, match=r'`pixels` must be integers from 0 to 16; got \[0.5\]'):
        pixel_histogram_log_probs(np.array([[0.5, 1.0]]), 17)
    with pytest.raises(ValueError, match=r'must be a non-empty batch \[N, \.\.\.\] of integer'):
        pixel_histogram_log_probs(np.zeros([0, 3]), 17)
    log_probs = pixel_histogram_log_probs(np.zeros([2, 3]), 17)
    with pytest.raises(ValueError, match=r'`pixels` must have shape \[N, 3\] like the histograms'):
        pixel_histogram_bits_per_dim(log_probs, np.zeros([2, 4]))
    for pseudocounts in ((), (1.0, 0.0), 1.0):
        with pytest.raises(ValueError, match=r'`pseudocounts` must be a non-empty list of finite'):
            histogram_baseline(*[np.zeros([2, 3])] * 3, 17, pseudocounts)
