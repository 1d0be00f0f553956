"""Variational dequantization (Flow++): the noise u ~ q(u | k) from a flow conditioned on k.

Uniform dequantization spreads each discrete image k over its whole cell, x = (k + u) / B with
u ~ Uniform[0, 1)^D, so a flow must put a flat density on every cell, including the spikes of
exact-zero background pixels. Ho et al. (2019) instead draw u from a learned density q(u | k)
and train it jointly with the flow on the variational bound (`tfp_flows.dequantization`):

    log P(k) >= E_q[log p(x) - log q(u | k)] - D log B,   x = (k + u) / B.

The bound is tight when q(u | k) is the flow's own density restricted to the cell of k.

`VariationalDequantizer` is that q: a standard Logistic noise eps, a chain of affine couplings
conditioned on features of k, and a sigmoid onto (0, 1)^D. A Logistic eps through a sigmoid is
uniform, and the couplings start as the identity, so at initialisation q *is* uniform
dequantization and training only tightens the bound.

Training the pair: `tfp_flows.training.trainer.FlowTrainer(flow, num_bins, dequantizer=q)` trains
both with `fit` on batches of discrete images (`make_dataset(..., dequantize=False)`), with
q's variables in the optimizer, clipping, accumulation and EMA beside the flow's; a run does
so with `config.dequantizer.kind = 'variational'` (the default recipe), checkpoints both and
exports both (`tfp_flows.export.export_saved_model(flow, path, num_bins=num_bins,
dequantizer=q)`), and `tfp_flows.run.experiment.restore_flow_and_dequantizer` gives them back.
ActNorm is initialised on uniformly dequantized data: that is what q is at initialisation.
Evaluate with `tfp_flows.dequantization.dequantized_bits_per_dim` (fixed seeds), or
`importance_weighted_bits_per_dim` for the tighter figure (`config.eval.iw_samples`).

Reference: Ho et al. (2019), Flow++, Sec. 3.1. https://arxiv.org/abs/1902.00275
"""

import itertools
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import networks
from tfp_flows.bijectors import scale as scale_lib
from tfp_flows.bijectors.base import FlowBijector, _SavedStructure
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.scale import check_scale
from tfp_flows.bijectors.shapes import check_event_shape
from tfp_flows.dequantization import check_num_bins, check_pixels
from tfp_flows.validation import (
    check_image_event_shape,
    check_positive_int,
    check_stateless_seed,
)

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['VariationalDequantizer']

_DTYPES = (tf.float32, tf.float64)


def _stateless_seed(seed):
    """None, or `seed` (an int pair [2], any integer dtype) as the int32 pair TFP samples with
    (int64 values are taken modulo 2**32)."""
    seed = check_stateless_seed('seed', seed)
    return None if seed is None else tf.cast(seed, tf.int32)


class _ContextCoupling(FlowBijector):
    """Checkerboard affine coupling on [H, W, C] whose conditioner also sees a context h.

    With keep = the pixels of (row + column + flip) even (all channels) and
    (shift, raw) = NN(concat(x * keep, h)), log_scale = bound * tanh(raw / bound), both zero
    on the kept pixels:
      forward:  y = x * exp(log_scale) + shift
      inverse:  x = (y - shift) * exp(-log_scale)
      log|det dy/dx| = sum of log_scale
    The context h [..., H, W, context_channels] comes as the bijector kwarg
    `conditional_input`, TFP's name for it.

    Reference: Dinh et al. (2017), Real NVP, https://arxiv.org/abs/1605.08803; conditioned
    couplings as in Ho et al. (2019), Flow++, https://arxiv.org/abs/1902.00275
    """

    kwarg_names = ('conditional_input',)

    def __init__(
        self,
        event_shape,
        context_channels,
        flip,
        hidden_channels,
        log_scale_bound,
        seed,
        dtype,
        name='context_coupling',
    ):
        parameters = dict(locals())
        height, width, channels = event_shape
        self._event_shape = tuple(event_shape)
        self._context_channels = context_channels
        self._flip = bool(flip)
        self._log_scale_bound = log_scale_bound
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
        keep = ((rows + cols + int(self._flip)) % 2 == 0).astype(np.float64)[..., np.newaxis]
        self._keep = tf.constant(keep, dtype)
        with tf.name_scope(name) as name:
            self.conditioner = networks.ConvNet(
                channels + context_channels,
                2 * channels,
                hidden_channels=hidden_channels,
                seed=seed,
                dtype=dtype,
            )
            super().__init__(
                forward_min_event_ndims=3, dtype=dtype, parameters=parameters, name=name
            )

    def structure(self):
        return {
            'class': type(self).__name__,
            'event_shape': list(self._event_shape),
            'context_channels': self._context_channels,
            'flip': self._flip,
            'log_scale_bound': self._log_scale_bound,
        }

    def _transform(self, x, conditional_input, inverse):
        check_event_shape(x, self._event_shape, type(self).__name__)
        if conditional_input is None:
            raise ValueError(
                f'{type(self).__name__} {self.name!r} needs `conditional_input` (the context '
                f'[..., {self._event_shape[0]}, {self._event_shape[1]}, '
                f'{self._context_channels}]); got None.'
            )
        params = self.conditioner(tf.concat([x * self._keep, conditional_input], axis=-1))
        shift, raw = tf.split(params, 2, axis=-1)
        changed = 1.0 - self._keep
        log_scale = scale_lib.log_scale(raw, 'tanh', self._log_scale_bound) * changed
        shift = shift * changed
        log_det = tf.reduce_sum(log_scale, axis=[-3, -2, -1])
        if inverse:
            return (x - shift) * tf.exp(-log_scale), -log_det
        return x * tf.exp(log_scale) + shift, log_det

    def _forward_and_log_det(self, x, conditional_input=None):
        return self._transform(x, conditional_input, inverse=False)

    def _inverse_and_log_det(self, y, conditional_input=None):
        return self._transform(y, conditional_input, inverse=True)


class VariationalDequantizer(tf.Module):
    """q(u | k): dequantization noise u in (0, 1)^D drawn given the discrete image k.

    Pixels k [N, H, W, C] (integers in {0, ..., B - 1}, B = `num_bins`); noise u of the same
    shape; D = H W C. With c(k) = k / (B - 1) - 1/2 and the context
    h(k) = concat(c(k), F(c(k))) [N, H, W, C + context_channels] (F: a conv net, Glow's
    `ConvNet`, shared by every step):

      eps ~ Logistic(0, 1)^D
      y   = g_K(... g_1(eps; h) ...; h)    affine couplings, checkerboard masks alternating
      u   = sigmoid(y)
      log q(u | k) = log Logistic(eps) - sum_k log|det dg_k| - sum log sigmoid'(y)   (nats)

    A Logistic eps through a sigmoid is Uniform(0, 1), and every coupling's last layer starts
    at zero, so at initialisation q is uniform dequantization. `distribution` is q as a
    `tfd.TransformedDistribution` over eps (pass `bijector_kwargs={'conditional_input':
    dequantizer.context(k)}`); `sample_and_log_prob` draws u and log q(u | k) in one pass;
    `log_prob(u, k)` scores given noise.

    Train it jointly with the flow: its `trainable_variables` go to the optimizer beside the
    flow's, with `tfp_flows.dequantization.dequantized_bits_per_dim` as the loss.

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
        """Builds q for images of `event_shape`.

        Args:
          event_shape: [H, W, C] of the images, positive ints.
          num_bins: B, the number of discrete levels (17 for digits, 256 for 8-bit images).
          num_steps: K, the number of couplings (>= 2 so every pixel is changed).
          hidden_channels: width of each coupling's conditioner and of the context network.
          context_channels: features F(c(k)) per pixel added to the context (0: the scaled
            pixels alone).
          log_scale_bound: soft clamp of each coupling's log-scale, a finite number > 0.
          seed: int >= 0; fixes the initial parameters.
          dtype: tf.float32 or tf.float64.
          name: name of the module.

        Raises:
          ValueError: for any argument outside its domain, naming it and its value.
        """
        event_shape = check_image_event_shape(event_shape, 'VariationalDequantizer')
        check_num_bins(num_bins)
        check_positive_int('num_steps', num_steps)
        if num_steps < 2:
            raise ValueError(
                f'`num_steps` must be >= 2, so that the alternating checkerboard couplings '
                f'change every pixel; got {num_steps!r}.'
            )
        check_positive_int('hidden_channels', hidden_channels)
        if (
            isinstance(context_channels, bool)
            or not isinstance(context_channels, int)
            or context_channels < 0
        ):
            raise ValueError(f'`context_channels` must be an int >= 0; got {context_channels!r}.')
        check_scale('tanh', log_scale_bound)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f'`seed` must be an int >= 0; got {seed!r}.')
        try:
            dtype = tf.as_dtype(dtype)
        except TypeError:
            dtype = None
        if dtype not in _DTYPES:
            raise ValueError(f'`dtype` must be tf.float32 or tf.float64; got {dtype!r}.')
        super().__init__(name=name)
        self._event_shape = event_shape
        self._num_bins = int(num_bins)
        self._num_steps = num_steps
        self._context_channels = context_channels
        self._dtype = dtype
        channels = event_shape[-1]
        seeds = itertools.count(seed * 100_003 + 7)
        with self.name_scope:
            self.context_network = (
                networks.ConvNet(
                    channels,
                    context_channels,
                    hidden_channels=hidden_channels,
                    seed=next(seeds),
                    dtype=dtype,
                    name='context_network',
                )
                if context_channels
                else None
            )
            couplings = [
                _ContextCoupling(
                    event_shape,
                    channels + context_channels,
                    flip=i % 2 == 1,
                    hidden_channels=hidden_channels,
                    log_scale_bound=log_scale_bound,
                    seed=next(seeds),
                    dtype=dtype,
                    name=f'coupling_{i}',
                )
                for i in range(num_steps)
            ]
            # TFP order: the sigmoid (noise side) first, the first coupling applied last.
            self.bijector = Chain([tfb.Sigmoid(), *reversed(couplings)], name='noise_flow')
            self.base = tfd.Sample(
                tfd.Logistic(tf.zeros([], dtype), tf.ones([], dtype)), event_shape
            )
            self.distribution = tfd.TransformedDistribution(self.base, self.bijector, name='q')
        self._saved_structure = _SavedStructure(self)

    @property
    def event_shape(self):
        """[H, W, C], a tuple of ints."""
        return self._event_shape

    @property
    def num_bins(self):
        return self._num_bins

    @property
    def dtype(self):
        return self._dtype

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
        """u ~ q(u | k) and log q(u | k), in one pass.

        Args:
          pixels: k, [N, H, W, C] integers in {0, ..., B - 1} (any integer or float dtype).
          seed: a stateless seed (int tensor [2]) or None (stateful random).

        Returns:
          (u [N, H, W, C] in (0, 1) of the dequantizer's dtype, log q(u | k) [N] in nats).
        """
        context = self.context(pixels)
        eps = self.base.sample(tf.shape(context)[0], seed=_stateless_seed(seed))
        return self._noise_and_log_prob(eps, context)

    def noise_and_log_prob(self, base_noise, pixels):
        """u and log q(u | k) from given base noise eps ~ `base` (Logistic), in one pass.

        `sample_and_log_prob` with the draw made by the caller: a trainer draws eps for the
        whole global batch from one seed and gives each replica its rows, so the noise of an
        example does not depend on how the batch is split.

        Args:
          base_noise: eps, [N, H, W, C] floats of the dequantizer's dtype (a draw of `base`).
          pixels: k, [N, H, W, C] integers in {0, ..., B - 1} (any integer or float dtype).

        Returns:
          (u [N, H, W, C] in (0, 1), log q(u | k) [N] in nats).
        """
        base_noise = tf.convert_to_tensor(base_noise, self._dtype)
        return self._noise_and_log_prob(base_noise, self.context(pixels))

    def _noise_and_log_prob(self, eps, context):
        noise, log_det = self.bijector.forward_and_log_det(
            eps, event_ndims=3, conditional_input=context
        )
        return noise, self.base.log_prob(eps) - log_det

    def log_prob(self, noise, pixels):
        """log q(u | k) [N] in nats of noise u [N, H, W, C] given pixels k [N, H, W, C].

        -inf for an image whose noise has a value outside the open interval (0, 1) (or NaN).
        """
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
