"""Tests of examples/: the worked conditional density example matches its exact answer."""

import glob
import os
import subprocess
import sys

import numpy as np
from scripts import processes

from examples import linear_gaussian_posterior as example


def test_the_flow_learns_the_exact_linear_gaussian_posterior():
    simulator = example.LinearGaussian(seed=0)
    flow = example.make_flow(simulator, seed=0)
    losses = example.train(flow, simulator, steps=300, batch_size=256)
    assert np.mean(losses[-20:]) < losses[0] - 0.5
    result = example.compare(flow, simulator, num_test=2000, num_contexts=3, num_samples=4000)
    gap = result['exact_log_likelihood'] - result['test_log_likelihood']
    assert -0.02 < gap < 0.05, result  # E KL(p || q) in nats; 0.005 when measured.
    assert result['mean_error'] < 0.25, result  # Posterior standard deviations.
    assert result['covariance_error'] < 0.2, result


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


def test_the_example_runs_as_its_docstring_says_with_a_quiet_terminal():
    command = [sys.executable, 'examples/linear_gaussian_posterior.py', '--steps=20']
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    env['PYTHONPATH'] = str(processes.ROOT)  # The example quiets TensorFlow itself.
    result = subprocess.run(
        command, cwd=processes.ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('training loss (nats): first step ')
    assert 'Traceback' not in result.stderr
    if not glob.glob('/dev/nvidia[0-9]*'):
        assert 'cuInit' not in result.stderr, result.stderr
