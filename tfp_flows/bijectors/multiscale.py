"""Multi-scale factor-out: half the channels leave for the latent, optionally through a prior."""

import functools

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks, networks
from tfp_flows.bijectors import walk
from tfp_flows.bijectors.affine import LOG_SCALE_BOUND, affine
from tfp_flows.bijectors.chain import Container
from tfp_flows.bijectors.context import check_conditional_shape
from tfp_flows.bijectors.prior import context_prior, prior_parameters
from tfp_flows.bijectors.shapes import check_event_shape

tfb = tfp.bijectors

__all__ = ['FactorOut']


class FactorOut(Container):
    """Sends the last C - C // 2 channels to the latent and the first C // 2 through `inner`.

    Event [H, W, C]; `inner` maps [H, W, C // 2] to itself (the deeper levels of the flow).
    Split data y = [y1, y2] and latent z = [z1, z2] on the channel axis at C // 2. With the
    learned split prior (Glow's `split2d`), (mean, raw) = NN(y1) from a zero-initialised
    conv net and log_scale = bound * tanh(raw / bound); without it mean = log_scale = 0:
      forward (latent -> data):  y1 = inner.forward(z1),  y2 = z2 * exp(log_scale) + mean
      inverse (data -> latent):  z1 = inner.inverse(y1),  z2 = (y2 - mean) * exp(-log_scale)
      log|det dy/dz| = inner's log-det at z1 + sum(log_scale)
    Over a standard Normal latent y2 gets the prior N(mean(y1), exp(log_scale(y1))^2), at
    first N(0, 1). A context c adds Linear(c) to (mean, raw) as in `LearnedPrior`, and goes on
    to `inner`.

    `event_shape` is [H, W, C] with C >= 2; `inner` a shape-preserving bijector on
    [H, W, C // 2]; `hidden_channels` (only with `split_prior`) None for Glow's zero-initialised
    3x3 conv, or the width of a `networks.ConvNet` prior (weights from `seed`); the other
    arguments as `AffineCoupling`'s. `ValueError` naming an argument outside its domain (the
    networks' too, used or not); `TypeError` for an `inner` that is not a `tfb.Bijector`.

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
        conditional_shape=None,
        dtype_policy=None,
    ):
        parameters = dict(locals())
        self._event_shape = checks.check_shape('event_shape', event_shape, (3,))
        if self._event_shape[-1] < 2:
            raise ValueError(f'`event_shape` must have C >= 2 channels; got {event_shape!r}.')
        if not isinstance(inner, tfb.Bijector):
            raise TypeError(f'`inner` must be a tfb.Bijector; got {inner!r}.')
        split_prior = checks.BOOL.check('split_prior', split_prior)
        if hidden_channels is not None and not split_prior:
            raise ValueError(
                '`hidden_channels` sizes the split prior; got hidden_channels='
                f'{hidden_channels!r} with split_prior=False.'
            )
        self._log_scale_bound = LOG_SCALE_BOUND.check('log_scale_bound', log_scale_bound)
        self._conditional_shape = check_conditional_shape(conditional_shape)
        network = {} if hidden_channels is None else {'hidden_channels': hidden_channels}
        dtype = networks.check_arguments(dtype, dtype_policy, seed, **network)['dtype']
        self._split = self._event_shape[-1] // 2
        self.inner = inner
        factored = self._event_shape[-1] - self._split
        network = networks.ZeroConv
        if hidden_channels is not None:
            network = functools.partial(
                networks.ConvNet, hidden_channels=hidden_channels, seed=seed
            )
        with tf.name_scope(name) as name:
            self.prior = None
            if split_prior:
                self.prior = network(
                    self._split, 2 * factored, dtype=dtype, dtype_policy=dtype_policy
                )
            self.context_prior = context_prior(
                self._conditional_shape, factored, dtype, dtype_policy
            )
            self._init_step(parameters, name, 3, dtype)

    def structure(self):
        return {**super().structure(), 'split_prior': self.prior is not None}

    def split(self, y):
        """Returns (kept, factored): the first C // 2 channels and the rest."""
        check_event_shape(y, self._event_shape, 'FactorOut')
        return y[..., : self._split], y[..., self._split :]

    def held_steps(self):
        return (self.inner,)

    def _factored_map(self, kept, value, inverse, conditional_input=None):
        """The factored-out half's map given the data's kept half: (output, log-det)."""
        if self.prior is None and self._conditional_shape is None:
            return value, tf.zeros([], value.dtype)
        # Without a prior network, the context's term alone, the same at every position.
        params = tf.zeros_like(kept[..., :1]) if self.prior is None else self.prior(kept)
        mean, scale = prior_parameters(self, kept, params, conditional_input, 3)
        return affine(value, mean, scale, inverse, 3)

    def walk(self, x, inverse, kwargs):
        """`inner` on the kept half, then the factored half's map given the data's kept half."""
        first, second = self.split(x)
        inner_output, log_det = yield from walk.step(self.inner, first, inverse, 3, kwargs)
        data_kept = first if inverse else inner_output
        factored, factored_log_det = self._factored_map(
            data_kept, second, inverse, kwargs.get('conditional_input')
        )
        return tf.concat([inner_output, factored], axis=-1), log_det + factored_log_det

    def walk_back(self, output, output_gradient, inverse, backward):
        """'invert' backprop (as `Chain.walk_back`): the kept half back through `inner`, the
        factored half rebuilt with the prior of the data's kept half and rerun on a tape."""
        out_kept, out_factored = self.split(output)
        context = backward.kwargs().get('conditional_input')
        grad_kept, grad_factored = self.split(output_gradient)

        def factored_part(kept):
            """(input of the factored half, gradients w.r.t. `kept` and that input)."""
            value, _ = self._factored_map(kept, out_factored, not inverse, context)
            return value, backward.gradients(
                lambda k, v: self._factored_map(k, v, inverse, context),
                [kept, value],
                grad_factored,
            )

        if inverse:  # Output: the latent; the data's kept half is the inner walk's input.
            kept, grad_kept = backward.step(self.inner, out_kept, grad_kept, True, 3)
            factored, (grad_from_prior, grad_factored) = factored_part(kept)
            return (
                tf.concat([kept, factored], axis=-1),
                tf.concat([grad_kept + grad_from_prior, grad_factored], axis=-1),
            )
        # Output: the data; its kept half feeds the prior, so that gradient goes in first.
        factored, (grad_from_prior, grad_factored) = factored_part(out_kept)
        z_kept, grad_z_kept = backward.step(
            self.inner, out_kept, grad_kept + grad_from_prior, False, 3
        )
        return tf.concat([z_kept, factored], axis=-1), tf.concat(
            [grad_z_kept, grad_factored], axis=-1
        )
