"""Multi-scale factor-out: half the channels leave for the latent, optionally through a prior."""

import tensorflow as tf
from tensorflow_probability.python.bijectors import chain as tfp_chain

from tfp_flows import networks
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.shapes import check_event_shape

__all__ = ['FactorOut']


class FactorOut(FlowBijector):
    """Sends the last C - C // 2 channels to the latent and the first C // 2 through `inner`.

    Event [H, W, C]; `inner` maps [H, W, C // 2] to itself (the deeper levels of the flow).
    Split data y = [y1, y2] and latent z = [z1, z2] on the channel axis at C // 2. With the
    learned split prior (Glow's `split2d`), (mean, raw) = NN(y1) from a zero-initialised
    conv net and log_scale = bound * tanh(raw / bound); without it mean = log_scale = 0:
      forward (latent -> data):  y1 = inner.forward(z1),  y2 = z2 * exp(log_scale) + mean
      inverse (data -> latent):  z1 = inner.inverse(y1),  z2 = (y2 - mean) * exp(-log_scale)
      log|det dy/dz| = inner's log-det at z1 + sum(log_scale)
    Over a standard Normal latent this gives y2 the prior N(mean(y1), exp(log_scale(y1))^2), so
    the whole multi-scale model stays one `TransformedDistribution` with exact `log_prob` and
    `sample`. A fresh prior is N(0, 1): the model starts near the identity.

    References: Dinh et al. (2017), Real NVP, https://arxiv.org/abs/1605.08803; Kingma and
    Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        event_shape,
        inner,
        split_prior=True,
        hidden_channels=None,
        log_scale_bound=2.0,
        seed=0,
        dtype=tf.float32,
        validate_args=False,
        name='factor_out',
    ):
        """Creates the factor-out.

        Args:
          event_shape: [H, W, C] with C >= 2.
          inner: a shape-preserving bijector on [H, W, C // 2] events.
          split_prior: learn mean and scale of the factored-out half given the kept half.
          hidden_channels: width of the prior's conv net; None for Glow's single zero-init
            3x3 conv from the kept half (`ConvNet` is used when a width is given).
          log_scale_bound: clamp of the prior's log-scale.
        """
        parameters = dict(locals())
        event_shape = tuple(event_shape)
        if len(event_shape) != 3 or event_shape[-1] < 2:
            raise ValueError(f'`event_shape` must be [H, W, C] with C >= 2; got {event_shape!r}.')
        self._event_shape = event_shape
        self._split = event_shape[-1] // 2
        self._log_scale_bound = log_scale_bound
        self.inner = inner
        factored = event_shape[-1] - self._split
        with tf.name_scope(name) as name:
            if not split_prior:
                self.prior = None
            elif hidden_channels is None:
                self.prior = networks.ZeroConv(self._split, 2 * factored, dtype)
            else:
                self.prior = networks.ConvNet(
                    self._split, 2 * factored, hidden_channels, seed=seed, dtype=dtype
                )
            super().__init__(
                forward_min_event_ndims=3,
                dtype=dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def event_shape(self):
        return self._event_shape

    def split(self, y):
        """Returns (kept, factored): the first C // 2 channels and the rest."""
        check_event_shape(y, self._event_shape, 'FactorOut')
        return y[..., : self._split], y[..., self._split :]

    def _prior_params(self, kept):
        if self.prior is None:
            return None, None
        mean, raw = tf.split(self.prior(kept), 2, axis=-1)
        bound = tf.cast(self._log_scale_bound, kept.dtype)
        return mean, bound * tf.tanh(raw / bound)

    def factored_inverse(self, kept, factored):
        """z2 and its log-det log|det dz2/dy2| given the kept data half y1 and y2."""
        mean, log_scale = self._prior_params(kept)
        if mean is None:
            return factored, tf.zeros([], factored.dtype)
        z = (factored - mean) * tf.exp(-log_scale)
        return z, -tf.reduce_sum(log_scale, axis=[-3, -2, -1])

    def _forward_and_log_det(self, z):
        z_kept, z_factored = self.split(z)
        kept, log_det = _forward_and_log_det(self.inner, z_kept)
        mean, log_scale = self._prior_params(kept)
        if mean is None:
            return tf.concat([kept, z_factored], axis=-1), log_det
        factored = z_factored * tf.exp(log_scale) + mean
        log_det += tf.reduce_sum(log_scale, axis=[-3, -2, -1])
        return tf.concat([kept, factored], axis=-1), log_det

    def _inverse_and_log_det(self, y):
        kept, factored = self.split(y)
        z_factored, log_det = self.factored_inverse(kept, factored)
        z_kept, inner_log_det = _inverse_and_log_det(self.inner, kept)
        return tf.concat([z_kept, z_factored], axis=-1), log_det + inner_log_det


# Eagerly nothing is cached (see `GraphOnlyCache`), so `inner.forward(z)` followed by
# `inner.forward_log_det_jacobian(z)` would run the inner flow twice, and each nested
# FactorOut twice again: 2^levels passes. Walking the chain runs each step once per call (a
# leaf step's public output and log-det are two passes eagerly, one inside `tf.function`).


def _forward_and_log_det(bijector, x):
    """(y, log|det dy/dx|) of a shape-preserving `bijector` on [H, W, C] events."""
    if isinstance(bijector, FactorOut):
        return bijector._forward_and_log_det(x)
    if isinstance(bijector, tfp_chain._Chain):  # noqa: SLF001 (`tfb.Chain` of non-CT bijectors)
        log_det = tf.zeros([], x.dtype)
        for step in reversed(bijector.bijectors):  # A Chain's forward runs its list back to front.
            x, step_log_det = _forward_and_log_det(step, x)
            log_det += step_log_det
        return x, log_det
    return bijector.forward(x), bijector.forward_log_det_jacobian(x, event_ndims=3)


def _inverse_and_log_det(bijector, y):
    """(x, log|det dx/dy|) of a shape-preserving `bijector` on [H, W, C] events."""
    if isinstance(bijector, FactorOut):
        return bijector._inverse_and_log_det(y)
    if isinstance(bijector, tfp_chain._Chain):  # noqa: SLF001
        log_det = tf.zeros([], y.dtype)
        for step in bijector.bijectors:
            y, step_log_det = _inverse_and_log_det(step, y)
            log_det += step_log_det
        return y, log_det
    return bijector.inverse(y), bijector.inverse_log_det_jacobian(y, event_ndims=3)
