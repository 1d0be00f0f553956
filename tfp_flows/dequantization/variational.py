"""Variational dequantization (Flow++): the noise u ~ q(u | k) from a flow conditioned on k.

Uniform noise makes a flow put a flat density on every cell; a learned q(u | k), trained with
the flow on the bound of `tfp_flows.dequantization` (`FlowTrainer(flow, num_bins,
dequantizer=q)`; a run's `config.dequantizer.kind = 'variational'`), is tight when it is the
flow's own density on the cell of k.
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks, networks
from tfp_flows.bijectors.affine import LOG_SCALE_BOUND
from tfp_flows.bijectors.base import SavedStructure
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.coupling import AffineCoupling
from tfp_flows.dequantization import check_num_bins, check_pixels

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['VariationalDequantizer']


class VariationalDequantizer(tf.Module):
    """q(u | k): dequantization noise u in (0, 1)^D drawn given the discrete image k.

    Pixels k [N, H, W, C] (integers in {0, ..., B - 1}, B = `num_bins`); noise u of the same
    shape; D = H W C. With c(k) = k / (B - 1) - 1/2 and the context
    h(k) = concat(c(k), F(c(k))) [N, H, W, C + context_channels] (F: a conv net, Glow's
    `ConvNet`, shared by every step):

      eps ~ Logistic(0, 1)^D
      y   = g_K(... g_1(eps; h) ...; h)    `AffineCoupling`s with checkerboard masks
                                           alternating, each given the context map h
      u   = sigmoid(y)
      log q(u | k) = log Logistic(eps) - sum_k log|det dg_k| - sum log sigmoid'(y)   (nats)

    A Logistic eps through a sigmoid is Uniform(0, 1) and every coupling starts as the
    identity, so q starts as uniform dequantization. `distribution` is q over eps (pass
    `bijector_kwargs={'conditional_input': dequantizer.context(k)}`). `num_steps` K is an int
    >= 2 (so every pixel is changed); `hidden_channels` the width of every network,
    `context_channels` an int >= 0 (0: the scaled pixels alone); `log_scale_bound`, `seed` and
    `dtype` as `AffineCoupling`'s. `ValueError` naming any argument outside its domain.

    Reference: Ho et al. (2019), Flow++, Sec. 3.1. https://arxiv.org/abs/1902.00275
    """

    def __init__(
        self,
        event_shape,
        num_bins,
        num_steps=4,
        hidden_channels=32,
        context_channels=8,
        log_scale_bound=2.0,
        seed=0,
        dtype=tf.float32,
        name='variational_dequantizer',
    ):
        self._event_shape = checks.check_shape('event_shape', event_shape, (3,))
        self._num_bins = check_num_bins(num_bins)
        self._num_steps = checks.integer(2).check('num_steps', num_steps)
        self._context_channels = checks.NON_NEGATIVE_INT.check('context_channels', context_channels)
        LOG_SCALE_BOUND.check('log_scale_bound', log_scale_bound)
        network = networks.check_arguments(dtype, seed=seed, hidden_channels=hidden_channels)
        seed, self._dtype = network['seed'], network['dtype']
        super().__init__(name=name)
        height, width, channels = self._event_shape
        context_shape = (height, width, channels + self._context_channels)
        seeds = ((seed * 100_003 + 7 + i) % 2**31 for i in range(num_steps + 1))
        with self.name_scope:
            self.context_network = None
            if self._context_channels:
                self.context_network = networks.ConvNet(
                    channels,
                    self._context_channels,
                    hidden_channels=hidden_channels,
                    seed=next(seeds),
                    dtype=self._dtype,
                    name='context_network',
                )
            couplings = [
                AffineCoupling(
                    self._event_shape,
                    mask='checkerboard',
                    flip=i % 2 == 1,
                    hidden_channels=hidden_channels,
                    log_scale_bound=log_scale_bound,
                    seed=next(seeds),
                    dtype=self._dtype,
                    name=f'coupling_{i}',
                    conditional_shape=context_shape,
                )
                for i in range(num_steps)
            ]
            # TFP order: the sigmoid (noise side) first, the first coupling applied last.
            self.bijector = Chain([tfb.Sigmoid(), *reversed(couplings)], name='noise_flow')
            zero, one = tf.zeros([], self._dtype), tf.ones([], self._dtype)
            self.base = tfd.Sample(tfd.Logistic(zero, one), self._event_shape)
            self.distribution = tfd.TransformedDistribution(self.base, self.bijector, name='q')
        self._saved_structure = SavedStructure(self)

    event_shape = property(lambda self: self._event_shape, doc='[H, W, C], a tuple of ints.')
    num_bins = property(lambda self: self._num_bins)
    dtype = property(lambda self: self._dtype)

    def structure(self):
        """The choices that define q besides its variables (saved and checked on restore)."""
        return {
            'class': type(self).__name__,
            'event_shape': list(self._event_shape),
            'num_bins': self._num_bins,
            'num_steps': self._num_steps,
            'context_channels': self._context_channels,
        }

    def context(self, pixels):
        """h(k) [N, H, W, C + context_channels] from pixels [N, H, W, C] (checked as in
        `tfp_flows.dequantization.check_pixels`)."""
        pixels = check_pixels(pixels, self._num_bins, self._dtype, self._event_shape)
        scaled = pixels / (self._num_bins - 1) - 0.5
        if self.context_network is None:
            return scaled
        return tf.concat([scaled, self.context_network(scaled)], axis=-1)

    def sample_and_log_prob(self, pixels, seed=None):
        """(u [N, H, W, C] in (0, 1), log q(u | k) [N] in nats), u ~ q(u | k), in one pass, for
        pixels k [N, H, W, C] in {0, ..., B - 1}; `seed`: a stateless seed [2] or None."""
        context = self.context(pixels)
        seed = networks.check_stateless_seed('seed', seed)
        eps = self.base.sample(tf.shape(context)[0], seed=seed)
        return self._noise_and_log_prob(eps, context)

    def noise_and_log_prob(self, base_noise, pixels):
        """`sample_and_log_prob` from the caller's draw eps [N, H, W, C] of `base` (e.g. one
        global batch's, each replica taking its rows)."""
        base_noise = tf.convert_to_tensor(base_noise, self._dtype)
        return self._noise_and_log_prob(base_noise, self.context(pixels))

    def _noise_and_log_prob(self, eps, context):
        noise, log_det = self.bijector.forward_and_log_det(
            eps, event_ndims=3, conditional_input=context
        )
        return noise, self.base.log_prob(eps) - log_det

    def log_prob(self, noise, pixels):
        """log q(u | k) [N] in nats of noise u [N, H, W, C] given pixels k [N, H, W, C]; -inf
        for an image whose noise has a value outside the open interval (0, 1) (or NaN)."""
        noise = tf.convert_to_tensor(noise, self._dtype)
        inside = tf.reduce_all((noise > 0) & (noise < 1), axis=[-3, -2, -1])
        safe = tf.where(inside[:, tf.newaxis, tf.newaxis, tf.newaxis], noise, 0.5)
        eps, log_det = self.bijector.inverse_and_log_det(
            safe, event_ndims=3, conditional_input=self.context(pixels)
        )
        return tf.where(inside, self.base.log_prob(eps) + log_det, -np.inf)

    def __repr__(self):
        return (
            f'VariationalDequantizer(event_shape={self._event_shape}, num_bins={self._num_bins}, '
            f'num_steps={self._num_steps}, context_channels={self._context_channels}, '
            f'parameters={sum(math.prod(v.shape) for v in self.trainable_variables)})'
        )
