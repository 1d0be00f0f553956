"""Tests of examples/: the worked conditional density example matches its exact answer."""

import glob
import os
import re
import subprocess
import sys

import numpy as np
from scripts import processes

from examples import linear_gaussian_posterior as example


def test_the_exact_posterior_is_bayes_rule():
    simulator = example.LinearGaussian(num_parameters=2, num_data=3, seed=1)
    theta, x = simulator.simulate(4, np.array([5, 6], np.int32))
    # p(theta | x) = p(theta) p(x | theta) / p(x), each a Gaussian density.
    a, s = simulator.matrix, simulator.noise_scale
    log_prior = -0.5 * np.sum(np.square(theta), axis=1) - np.log(2 * np.pi)
    residual = np.asarray(x, np.float64) - np.asarray(theta, np.float64) @ a.T
    log_likelihood = -0.5 * np.sum(np.square(residual), axis=1) / s**2 - 3 * np.log(
        np.sqrt(2 * np.pi) * s
    )
    evidence_cov = a @ a.T + s**2 * np.eye(3)
    x64 = np.asarray(x, np.float64)
    log_evidence = (
        -0.5 * np.einsum('ni,ij,nj->n', x64, np.linalg.inv(evidence_cov), x64)
        - 0.5 * (np.linalg.slogdet(2 * np.pi * evidence_cov)[1])
    )
    np.testing.assert_allclose(
        simulator.posterior_log_prob(theta, x), log_prior + log_likelihood - log_evidence, rtol=1e-5
    )


# What the example prints: its figures, rounded.
_PRINTED = (
    r'training loss \(nats\): first step (?P<first>\S+), last step (?P<last>\S+)\n'
    r'test log-likelihood: flow \S+ nats, exact posterior \S+ nats '
    r'\(gap = E KL\(p \|\| q\) = (?P<gap>\S+) nats\)\n'
    r'posterior mean error <= (?P<mean_error>\S+) posterior standard deviations; '
    r'covariance error <= (?P<covariance_error>\S+) of its largest entry\n'
)


def test_the_example_runs_as_its_docstring_says_and_learns_the_exact_posterior():
    # One process for both: the command as the docstring gives it (with a quiet terminal),
    # trained 300 of its 600 steps, which is enough for the flow to match the exact answer.
    command = [sys.executable, 'examples/linear_gaussian_posterior.py', '--steps=300']
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    env['PYTHONPATH'] = str(processes.ROOT)  # The example quiets TensorFlow itself.
    result = subprocess.run(
        command, cwd=processes.ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr
    if not glob.glob('/dev/nvidia[0-9]*'):
        assert 'cuInit' not in result.stderr, result.stderr
    printed = re.fullmatch(_PRINTED, result.stdout)
    assert printed, result.stdout
    values = {key: float(value) for key, value in printed.groupdict().items()}
    assert values['last'] < values['first'] - 0.5, result.stdout  # The loss fell.
    assert -0.02 < values['gap'] < 0.05, result.stdout  # E KL(p || q) in nats; 0.005 measured.
    assert values['mean_error'] < 0.25, result.stdout  # Posterior standard deviations.
    assert values['covariance_error'] < 0.2, result.stdout
