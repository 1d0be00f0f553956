"""Baselines a flow on discrete images should beat: one smoothed histogram per pixel.

No dependencies between pixels: pixel d takes level k with probability P_d(k) = (n_d(k) + a)
/ (N + a B), n_d(k) the count of level k at pixel d over the N training images, B = `num_bins`,
a the pseudo-count (a = 1: Laplace's rule; Manning et al. 2008, Introduction to Information
Retrieval, Sec. 13.2, https://nlp.stanford.edu/IR-book/). An image's bits/dim is -sum_d log2
P_d(k_d) / D, comparable with a flow's on the same discrete data. Images are [N, *E] integers
in {0, ..., B - 1}; every function raises `ValueError` naming a bad argument, before any work.
"""

import math

import numpy as np

from tfp_flows import checks
from tfp_flows.dequantization import check_num_bins

__all__ = ['histogram_baseline', 'pixel_histogram_bits_per_dim', 'pixel_histogram_log_probs']

PSEUDOCOUNTS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def _pixels(pixels, num_bins, name):
    array = np.asarray(pixels)
    if array.ndim < 2 or array.shape[0] < 1 or array.dtype.kind not in 'iuf':
        raise ValueError(
            f'`{name}` must be a non-empty batch [N, ...] of integer pixels; got an array of '
            f'shape {array.shape} and dtype {array.dtype}.'
        )
    bad = (array != np.round(array)) | (array < 0) | (array > num_bins - 1)
    if np.any(bad):
        raise ValueError(
            f'`{name}` must be integers from 0 to {num_bins - 1}; got {array[bad][:5].tolist()}.'
        )
    return array.astype(np.int64)


def pixel_histogram_log_probs(pixels, num_bins, pseudocount=1.0):
    """log P_d(k) of the per-pixel histograms counted on training images `pixels` [N, *E]
    with pseudo-count a (1: Laplace smoothing), in nats: float64 [*E, B], each pixel's row
    summing to 1 in probability."""
    num_bins = check_num_bins(num_bins)
    checks.POSITIVE_NUMBER.check('pseudocount', pseudocount)
    return _log_probs(_pixels(pixels, num_bins, 'pixels'), num_bins, pseudocount)


def _log_probs(pixels, num_bins, pseudocount):
    """`pixel_histogram_log_probs` of checked pixels (int64)."""
    flat = pixels.reshape(len(pixels), -1)
    counts = np.zeros([flat.shape[1], num_bins])
    np.add.at(counts, (np.arange(flat.shape[1])[np.newaxis, :], flat), 1.0)
    log_probs = np.log(counts + pseudocount) - np.log(len(flat) + pseudocount * num_bins)
    return log_probs.reshape(*pixels.shape[1:], num_bins)


def pixel_histogram_bits_per_dim(log_probs, pixels):
    """Bits/dim of each image `pixels` [N, *E] under per-pixel histograms `log_probs` [*E, B]
    (from `pixel_histogram_log_probs`): -sum_d log2 P_d(k_d) / D, [N]."""
    log_probs = np.asarray(log_probs, np.float64)
    return _bits_per_dim(log_probs, _pixels(pixels, log_probs.shape[-1], 'pixels'))


def _bits_per_dim(log_probs, pixels):
    """`pixel_histogram_bits_per_dim` of checked pixels; `ValueError` for another shape."""
    if pixels.shape[1:] != log_probs.shape[:-1]:
        raise ValueError(
            f'`pixels` must have shape [N, {", ".join(map(str, log_probs.shape[:-1]))}] like '
            f'the histograms; got {pixels.shape}.'
        )
    flat = pixels.reshape(len(pixels), -1)
    table = log_probs.reshape(-1, log_probs.shape[-1])
    per_pixel = table[np.arange(flat.shape[1])[np.newaxis, :], flat]
    return -per_pixel.mean(axis=1) / math.log(2.0)


def histogram_baseline(train, validation, test, num_bins, pseudocounts=PSEUDOCOUNTS):
    """The per-pixel histogram baseline counted on `train`, its pseudo-count a (of
    `pseudocounts`) chosen by validation bits/dim. Returns a dict of mean bits/dim:
    'pseudocount' (the chosen a), 'validation_bits_per_dim', 'test_bits_per_dim',
    'laplace_test_bits_per_dim' (a = 1), 'validation_bits_per_dim_by_pseudocount' ({a: ...}).
    """
    pseudocounts = checks.TEMPERATURES.check('pseudocounts', pseudocounts)  # Finite, > 0.
    num_bins = check_num_bins(num_bins)  # Every argument checked before any work.
    train, validation, test = (
        _pixels(images, num_bins, name)
        for images, name in ((train, 'train'), (validation, 'validation'), (test, 'test'))
    )

    def score(images, pseudocount):
        log_probs = _log_probs(train, num_bins, pseudocount)
        return float(_bits_per_dim(log_probs, images).mean())

    by_pseudocount = {a: score(validation, a) for a in pseudocounts}
    best = min(by_pseudocount, key=by_pseudocount.get)
    return {
        'pseudocount': best,
        'validation_bits_per_dim': by_pseudocount[best],
        'test_bits_per_dim': score(test, best),
        'laplace_test_bits_per_dim': score(test, 1.0),
        'validation_bits_per_dim_by_pseudocount': by_pseudocount,
    }
