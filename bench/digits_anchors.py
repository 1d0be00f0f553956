"""The digits anchors of issue 19: what a user would pick instead of a flow, in bits/dim.

On the digits split the flows use (`tfp_flows.data.load_digits`: 1,257 / 180 / 360 train /
validation / test images of 8 x 8 = 64 pixels, levels k in {0, ..., 16}; the script checks that
these are the arrays `make_dataset('digits', ..., dequantize=False)` yields), every model is fit
on the training images only and chosen by validation; test is reported, never used to choose.

1. Per-pixel histogram (`tfp_flows.tools.baselines.histogram_baseline`, pseudo-count chosen by
   validation), for reference.
2. Linear autoregressive model, exact likelihood: for each pixel d in raster order, a multinomial
   `sklearn.linear_model.LogisticRegression` (L2, lbfgs; every fit converged in at most 230
   of its 2,000 iterations, else scikit-learn warns) of k_d given the one-hot encoding of
   k_<d (17 columns per earlier pixel; pixel 0 gets no inputs: its intercepts are the
   frequencies). One inverse regularisation C for all pixels, chosen from C_GRID by validation
   bits/dim. Levels never seen at pixel d in training get probability a / (N + a B) each (a = 1,
   Laplace's pseudo-count, N = 1,257 training images, B = 17), and the seen levels share the rest
   in the regression's proportions (a pixel with one seen level gives it all the rest): a
   normalised distribution over the 17 levels at every pixel. bits/dim = -sum_d log2 p(k_d |
   k_<d) / 64, averaged over images.
3. GaussianMixture on the logit of uniformly dequantized pixels, in the flows' units: y = (k +
   u) / 17, u ~ U[0, 1)^64, x = logit(alpha + (1 - 2 alpha) y) with alpha = 0.01 (the default
   recipe's `model.alpha`), log p(y) = log p_gmm(x) + sum log|dx/dy|, and bits/dim of the
   discrete pixels = -(log p(y) - D log 17) / (D ln 2), D = 64. This is tfp_flows'
   `dequantization.bits_per_dim` of the log-density that `bijectors.LogitTransform(alpha=0.01)`
   gives on [0, 1)^D: the script recomputes the chosen mixture's test figure through those two
   and stops if they differ by more than 1e-9. The mixture is fit (random_state 0, one
   initialisation, scikit-learn's reg_covar) on the training images dequantized with `draws`
   independent noise draws each (seed 0; a flow sees a fresh draw every epoch); components x
   covariance type x draws from GMM_GRID chosen by validation one-sample bits/dim (every fit's
   test figures are listed too, not used). Reported: one-sample
   bits/dim (one fixed noise draw per image, seed 1) and the importance-weighted estimate from S =
   32 uniform draws per image (seed 2), -(logmeanexp_s log p(y_s) - D log 17) / (D ln 2), as
   `dequantization.importance_weighted_bits_per_dim` with a uniform dequantizer.

    nice -n 15 python bench/digits_anchors.py      # bench/results/digits_anchors.{json,md}

About a minute of CPU (one BLAS thread); the test figures print as each model is done.
"""

import argparse
import itertools
import json
import math
import os
import shlex
import sys
import time

import numpy as np
import scipy.sparse
from scipy.special import logit, logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # This checkout's `tfp_flows`.
sys.path.insert(0, HERE)  # `tables`, a sibling script.

from tables import machine  # noqa: E402

from tfp_flows import data  # noqa: E402
from tfp_flows.tools.baselines import histogram_baseline  # noqa: E402

SPLITS = ('train', 'validation', 'test')
NUM_BINS, ALPHA, IW_SAMPLES = 17, 0.01, 32
PSEUDOCOUNT = 1.0  # Of the levels never seen at a pixel in training (Laplace's rule).
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
GMM_GRID = {'n_components': (1, 5, 10, 20), 'covariance_type': ('full', 'diag'), 'draws': (1, 8)}
ONE_SAMPLE_SEED, IW_SEED = 1, 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'digits_anchors'))
    return parser.parse_args(argv)


def load_splits():
    """{split: int64 [N, 64]} in raster order, checked against `make_dataset`'s arrays."""
    splits = {}
    for split in SPLITS:
        images = data.load_digits(split)
        dataset, _ = data.make_dataset('digits', split, 10_000, shuffle=False, dequantize=False)
        if not np.array_equal(np.concatenate([b.numpy() for b in dataset]), images):
            raise SystemExit(f'load_digits({split!r}) differs from make_dataset: not the split.')
        splits[split] = images.reshape(len(images), -1).astype(np.int64)
    return splits


def _summary(bits):
    return {'mean': float(np.mean(bits)), 'se': float(np.std(bits, ddof=1) / math.sqrt(len(bits)))}


def _one_hot(pixels, d):
    """Sparse one-hot [N, 17 d] of pixels [:, :d]; one zero column for d = 0."""
    if d == 0:
        return scipy.sparse.csr_matrix((len(pixels), 1))
    rows = np.repeat(np.arange(len(pixels)), d)
    columns = (np.arange(d) * NUM_BINS + pixels[:, :d]).ravel()
    values = np.ones(len(columns))
    return scipy.sparse.csr_matrix((values, (rows, columns)), shape=(len(pixels), d * NUM_BINS))


def _pixel_log_probs(train, d, c, others):
    """log p(k_d | k_<d) [N] of each of `others` ([N, 64] images) under pixel d's smoothed
    regression fit on `train` with inverse regularisation `c`."""
    seen = np.unique(train[:, d])
    unseen_mass = PSEUDOCOUNT / (len(train) + PSEUDOCOUNT * NUM_BINS)
    rest = 1.0 - unseen_mass * (NUM_BINS - len(seen))
    model = None
    if len(seen) > 1:
        model = LogisticRegression(C=c, max_iter=2000).fit(_one_hot(train, d), train[:, d])
    results = []
    for images in others:
        table = np.full([len(images), NUM_BINS], unseen_mass)
        table[:, seen] = rest if model is None else rest * model.predict_proba(_one_hot(images, d))
        results.append(np.log(table[np.arange(len(images)), images[:, d]]))
    return results


def linear_autoregressive(splits):
    start = time.process_time()
    num_dims = splits['train'].shape[1]
    by_c = {}
    for c in C_GRID:
        totals = [np.zeros(len(splits[s])) for s in ('validation', 'test')]
        for d in range(num_dims):
            others = (splits['validation'], splits['test'])
            for total, log_p in zip(
                totals, _pixel_log_probs(splits['train'], d, c, others), strict=True
            ):
                total += log_p
        by_c[c] = [-t / (num_dims * math.log(2.0)) for t in totals]
    best = min(by_c, key=lambda c: by_c[c][0].mean())
    return {
        'C': best,
        'validation': _summary(by_c[best][0]),
        'test': _summary(by_c[best][1]),
        'validation_by_C': {str(c): float(v[0].mean()) for c, v in by_c.items()},
        'cpu_s': round(time.process_time() - start, 1),
    }


def _logit_log_density(model, y):
    """log p(y) [N] of dequantized pixels y [N, D] under `model` on x = logit(alpha + (1 -
    2 alpha) y): log p_gmm(x) + sum_d log|dx_d / dy_d|."""
    p = ALPHA + (1.0 - 2.0 * ALPHA) * y
    log_det = (math.log(1.0 - 2.0 * ALPHA) - np.log(p) - np.log1p(-p)).sum(axis=1)
    return model.score_samples(logit(p)) + log_det


def _bits(log_p, num_dims):
    return -(log_p - num_dims * math.log(NUM_BINS)) / (num_dims * math.log(2.0))


def _dequantized(pixels, rng):
    return (pixels + rng.random(pixels.shape)) / NUM_BINS


def _importance_weighted(model, pixels):
    """Bits/dim [N] from IW_SAMPLES uniform draws per image: log-mean-exp of log p(y_s)."""
    rng = np.random.default_rng(IW_SEED)
    log_p = np.stack(
        [_logit_log_density(model, _dequantized(pixels, rng)) for _ in range(IW_SAMPLES)]
    )
    return _bits(logsumexp(log_p, axis=0) - math.log(IW_SAMPLES), pixels.shape[1])


def _check_against_tfp_flows(model, pixels, bits):
    """Recomputes one-sample `bits` [N] through tfp_flows' LogitTransform and bits_per_dim."""
    import tensorflow as tf

    from tfp_flows.bijectors import LogitTransform
    from tfp_flows.dequantization import bits_per_dim

    y = _dequantized(pixels, np.random.default_rng(ONE_SAMPLE_SEED))
    logit_transform = LogitTransform((pixels.shape[1],), alpha=ALPHA, dtype=tf.float64)
    x = logit_transform.inverse(y).numpy()
    log_p = model.score_samples(x) + logit_transform.inverse_log_det_jacobian(y).numpy()
    ours = bits_per_dim(log_p, pixels.shape[1], NUM_BINS).numpy()
    if np.max(np.abs(ours - bits)) > 1e-9:
        raise SystemExit(f'Bits/dim differ from tfp_flows: {np.max(np.abs(ours - bits))}.')


def gaussian_mixture(splits):
    start = time.process_time()
    num_dims = splits['train'].shape[1]

    def one_sample(model, split):
        y = _dequantized(splits[split], np.random.default_rng(ONE_SAMPLE_SEED))
        return _bits(_logit_log_density(model, y), num_dims)

    fits = []
    for k, kind, draws in itertools.product(*GMM_GRID.values()):
        train = np.tile(splits['train'], (draws, 1))
        y = _dequantized(train, np.random.default_rng(0))
        x = logit(ALPHA + (1.0 - 2.0 * ALPHA) * y)
        model = GaussianMixture(k, covariance_type=kind, random_state=0).fit(x)
        choice = {'n_components': k, 'covariance_type': kind, 'draws': draws}
        fits.append((float(one_sample(model, 'validation').mean()), choice, model))
    _, choice, model = min(fits, key=lambda f: f[0])
    test = one_sample(model, 'test')
    _check_against_tfp_flows(model, splits['test'], test)
    return {
        'choice': choice,
        'validation': _summary(one_sample(model, 'validation')),
        'test': _summary(test),
        'validation_iw': _summary(_importance_weighted(model, splits['validation'])),
        'test_iw': _summary(_importance_weighted(model, splits['test'])),
        'by_choice': [
            {
                **c,
                'validation': v,
                'test': float(one_sample(m, 'test').mean()),
                'test_iw': float(_importance_weighted(m, splits['test']).mean()),
            }
            for v, c, m in fits
        ],
        'cpu_s': round(time.process_time() - start, 1),
    }


def _figure(summary):
    return f'{summary["mean"]:.3f} +- {summary["se"]:.3f}'


def write_outputs(out, results, host):
    with open(out + '.json', 'w') as f:
        json.dump({'machine': host, **results}, f, indent=1)
    histogram, linear, mixture = results['histogram'], results['linear'], results['mixture']
    choice = mixture['choice']
    lines = [
        f'Digits anchors (issue 19): bits/dim on the digits split of `tfp_flows.data` (1,257 / '
        f'180 / 360 train / validation / test, 17 levels), on {host["cpus"]} cores of an '
        f'{host["cpu"]}, {host["date_utc"][:10]} (load average {host["loadavg"][0]} at the end: '
        f'the machine was shared). `+-` is the standard error over the images. Made by `nice -n '
        f'15 python {shlex.join(sys.argv)}` (its docstring gives the protocol). Chosen by '
        'validation; test not used to choose.',
        '',
        '| model | chosen by validation | validation | test | validation IW (32) | test IW (32) '
        '| CPU s |',
        '|---|---|---|---|---|---|---|',
        f'| per-pixel histogram | pseudo-count {histogram["pseudocount"]} | '
        f'{histogram["validation_bits_per_dim"]:.3f} | {histogram["test_bits_per_dim"]:.3f} '
        '| | | |',
        f'| linear autoregressive (one-hot k_<d, exact) | C {linear["C"]} (of {len(C_GRID)}) | '
        f'{_figure(linear["validation"])} | {_figure(linear["test"])} | | | {linear["cpu_s"]} |',
        f'| GaussianMixture on logit (alpha {ALPHA}) | {choice["n_components"]} '
        f'{choice["covariance_type"]}, {choice["draws"]} train draw(s) (of '
        f'{len(mixture["by_choice"])}) | {_figure(mixture["validation"])} | '
        f'{_figure(mixture["test"])} | {_figure(mixture["validation_iw"])} | '
        f'{_figure(mixture["test_iw"])} | {mixture["cpu_s"]} |',
        '',
        'Linear autoregressive, validation bits/dim by C: '
        + ', '.join(f'{c}: {v:.3f}' for c, v in linear['validation_by_C'].items())
        + '.',
        '',
        'GaussianMixture, one-sample bits/dim by components, covariance and training noise '
        'draws per image (validation chooses; test and test IW (32) shown, not used):',
        '',
        '| components | covariance | draws | validation | test | test IW (32) |',
        '|---|---|---|---|---|---|',
        *(
            f'| {r["n_components"]} | {r["covariance_type"]} | {r["draws"]} | '
            f'{r["validation"]:.3f} | {r["test"]:.3f} | {r["test_iw"]:.3f} |'
            for r in mixture['by_choice']
        ),
    ]
    with open(out + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main(argv=None):
    args = parse_args(argv)
    threadpool_limits(1)  # One BLAS thread: many threads on a shared machine spin, not work.
    splits = load_splits()
    results = {'histogram': histogram_baseline(*(splits[s] for s in SPLITS), num_bins=NUM_BINS)}
    for name, measure in (('linear', linear_autoregressive), ('mixture', gaussian_mixture)):
        results[name] = measure(splits)
        print(name, json.dumps(results[name]['test']), flush=True)
    write_outputs(args.out, results, machine())


if __name__ == '__main__':
    main()
