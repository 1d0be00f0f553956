"""Conditional density estimation with a known answer: a linear-Gaussian posterior.

    python examples/linear_gaussian_posterior.py            # ~10 s on 2 CPU cores

A simulator draws parameters theta ~ N(0, I_d) and data x | theta ~ N(A theta, S). A vector
Real NVP conditional on x (`conditional_shape=(k,)`) learns the posterior p(theta | x) from
simulated pairs (theta, x) alone, by maximum likelihood of theta given x, the way simulation-
based inference trains a neural posterior. Here the exact posterior is known,
    p(theta | x) = N(m(x), C),   C = (I + A^T S^-1 A)^-1,   m(x) = C A^T S^-1 x,
(Bishop 2006, Pattern Recognition and Machine Learning, eq. 2.116), so the flow is checked
against it: the mean and covariance of its samples given test x, and its test log-likelihood
E[log q(theta | x)] beside the exact E[log p(theta | x)] (their difference is the expected KL
divergence from the exact posterior, in nats). tests/test_examples.py runs it, smaller.
"""

import argparse

from tfp_flows.run.cli import quiet_tensorflow

quiet_tensorflow()  # Before TensorFlow is imported: no start-up lines on the terminal.

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import tfp_flows  # noqa: E402

tfd = tfp.distributions

__all__ = ['LinearGaussian', 'compare', 'make_flow', 'train']


class LinearGaussian:
    """theta ~ N(0, I_d), x | theta ~ N(A theta, noise_scale^2 I_k), A [k, d] fixed by `seed`."""

    def __init__(self, num_parameters=2, num_data=3, noise_scale=0.5, seed=0):
        rng = np.random.default_rng(seed)
        self.matrix = rng.normal(size=(num_data, num_parameters))
        self.noise_scale = noise_scale
        precision = np.eye(num_parameters) + self.matrix.T @ self.matrix / noise_scale**2
        self.posterior_covariance = np.linalg.inv(precision)
        self._gain = self.posterior_covariance @ self.matrix.T / noise_scale**2  # m(x) = G x.

    def simulate(self, num, seed):
        """(theta [num, d], x [num, k]) float32, from a stateless seed [2]."""
        theta_seed, noise_seed = tf.unstack(tf.random.split(seed, 2))
        theta = tf.random.stateless_normal([num, self.matrix.shape[1]], theta_seed)
        noise = tf.random.stateless_normal([num, self.matrix.shape[0]], noise_seed)
        x = tf.linalg.matvec(tf.constant(self.matrix, tf.float32), theta) + self.noise_scale * noise
        return theta, x

    def posterior_mean(self, x):
        """m(x) = C A^T S^-1 x for x [n, k]: [n, d]."""
        return np.asarray(x, np.float64) @ self._gain.T

    def posterior_log_prob(self, theta, x):
        """log p(theta | x) in nats, [n]."""
        exact = tfd.MultivariateNormalTriL(
            self.posterior_mean(x), np.linalg.cholesky(self.posterior_covariance)
        )
        return exact.log_prob(np.asarray(theta, np.float64)).numpy()


def make_flow(simulator, num_steps=4, hidden_units=32, seed=0):
    """A vector Real NVP on theta [d], conditional on x [k], with a learned top prior."""
    return tfp_flows.real_nvp(
        (simulator.matrix.shape[1],),
        num_steps=num_steps,
        hidden_channels=hidden_units,
        conditional_shape=(simulator.matrix.shape[0],),
        learn_top_prior=True,
        seed=seed,
    )


def train(flow, simulator, steps=600, batch_size=256, learning_rate=3e-3, seed=0):
    """Fits `flow` to p(theta | x) on fresh simulated pairs each step; returns the losses.

    The loss is -mean log q(theta | x) (nats), minimised by Adam with a cosine decay, in one
    compiled `tf.function` step. ActNorm is initialised on the first batch.
    """
    theta, x = simulator.simulate(batch_size, tf.constant([seed, 0]))
    tfp_flows.initialize(flow, theta, conditional_input=x)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.1)
    optimizer = keras.optimizers.Adam(schedule)
    variables = flow.trainable_variables

    @tf.function
    def step(step_seed):
        theta, x = simulator.simulate(batch_size, step_seed)
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(theta, bijector_kwargs={'conditional_input': x}))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    return [float(step(tf.constant([seed, i + 1]))) for i in range(steps)]


def compare(flow, simulator, num_test=2000, num_contexts=4, num_samples=4000, seed=1):
    """The flow's posterior against the exact one.

    Returns a dict:
      test_log_likelihood, exact_log_likelihood: mean log q(theta | x) and log p(theta | x)
        over `num_test` fresh pairs (nats); their difference estimates E_x KL(p || q).
      mean_error: largest |mean of q(. | x) - m(x)| over `num_contexts` test x (from
        `num_samples` samples each), in units of the posterior standard deviation.
      covariance_error: largest |covariance of q(. | x) - C| over those x, relative to the
        largest entry of C.
    """
    theta, x = simulator.simulate(num_test, tf.constant([seed, 0]))
    test = float(tf.reduce_mean(flow.log_prob(theta, bijector_kwargs={'conditional_input': x})))
    exact = float(np.mean(simulator.posterior_log_prob(theta, x)))
    std = np.sqrt(np.diag(simulator.posterior_covariance))
    mean_error = covariance_error = 0.0
    for i in range(num_contexts):
        samples = (
            tfp_flows.sample(flow, num_samples, seed=[seed, i + 1], conditional_input=x[i])
            .numpy()
            .astype(np.float64)
        )
        mean = simulator.posterior_mean(x[i : i + 1])[0]
        mean_error = max(mean_error, float(np.max(np.abs(samples.mean(axis=0) - mean) / std)))
        covariance = np.cov(samples, rowvar=False)
        scale = np.max(np.abs(simulator.posterior_covariance))
        difference = np.abs(covariance - simulator.posterior_covariance) / scale
        covariance_error = max(covariance_error, float(difference.max()))
    return dict(
        test_log_likelihood=test,
        exact_log_likelihood=exact,
        mean_error=mean_error,
        covariance_error=covariance_error,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=600, help='Training steps.')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    simulator = LinearGaussian(seed=args.seed)
    flow = make_flow(simulator, seed=args.seed)
    losses = train(flow, simulator, steps=args.steps, seed=args.seed)
    result = compare(flow, simulator, seed=args.seed + 1)
    print(f'training loss (nats): first step {losses[0]:.3f}, last step {losses[-1]:.3f}')
    print(
        f'test log-likelihood: flow {result["test_log_likelihood"]:.4f} nats, exact posterior '
        f'{result["exact_log_likelihood"]:.4f} nats (gap = E KL(p || q) = '
        f'{result["exact_log_likelihood"] - result["test_log_likelihood"]:.4f} nats)'
    )
    print(
        f'posterior mean error <= {result["mean_error"]:.3f} posterior standard deviations; '
        f'covariance error <= {result["covariance_error"]:.3f} of its largest entry'
    )


if __name__ == '__main__':
    main()
