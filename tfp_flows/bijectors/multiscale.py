"""Multi-scale factor-out: half the channels leave for the latent, optionally through a prior."""

import math

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import networks
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.chain import apply_step
from tfp_flows.bijectors.context import check_conditional_shape, context_features
from tfp_flows.bijectors.scale import check_scale, log_scale
from tfp_flows.bijectors.shapes import check_event_shape
from tfp_flows.mixed_precision import check_dtype_policy
from tfp_flows.validation import (
    check_bool,
    check_float_dtype,
    check_int,
    check_positive_int,
    shape_tuple,
)

tfb = tfp.bijectors

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

    Conditional (`conditional_shape` given; Glow's `ycond`): a zero-initialised linear map of
    the flattened context c (bijector kwarg `conditional_input`, [*batch, *conditional_shape])
    adds a per-channel term to (mean, raw), the same at every position:
      (mean, raw) = NN(y1) + Linear(c)      (NN(y1) = 0 without `split_prior`)
    The context also goes on to `inner`.

    References: Dinh et al. (2017), Real NVP, https://arxiv.org/abs/1605.08803; Kingma and
    Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    kwarg_names = (
        'conditional_input',
        'training',
        'dropout_seed',
        'step_hook',
        'memory_saving',
    )

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
        """Creates the factor-out.

        Args:
          event_shape: [H, W, C] with C >= 2.
          inner: a shape-preserving bijector on [H, W, C // 2] events.
          split_prior: learn mean and scale of the factored-out half given the kept half.
          hidden_channels: width of the prior's conv net; None for Glow's single zero-init
            3x3 conv from the kept half (`ConvNet` is used when a width is given).
          log_scale_bound: clamp of the prior's log-scale.
          conditional_shape: None, or the shape of one context: adds the context's term to
            the prior (see above).
          dtype_policy: None, 'mixed_bfloat16' or 'mixed_float16': the prior's networks
            compute in that Keras policy and return float32 (`tfp_flows.mixed_precision`); the
            prior's map and log-det stay float32. Not in `structure()` (rounding only).

          seed: int in [0, 2**63); fixes the initial weights of a prior with a width.

        Raises:
          ValueError: for an argument outside its domain, naming it and its value (a bad
            `event_shape`, `log_scale_bound`, `hidden_channels` or `seed`, a non-bool
            `split_prior` or `validate_args`, a non-floating `dtype`, a bad
            `conditional_shape`).
          TypeError: for an `inner` that is not a `tfb.Bijector`.
        """
        parameters = dict(locals())
        shape = shape_tuple(event_shape)
        if (
            shape is None
            or len(shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
            or shape[-1] < 2
        ):
            raise ValueError(
                '`event_shape` must be [H, W, C] of positive ints with C >= 2; got '
                f'{event_shape!r}.'
            )
        event_shape = shape
        if not isinstance(inner, tfb.Bijector):
            raise TypeError(f'`inner` must be a tfb.Bijector; got {inner!r}.')
        check_bool('split_prior', split_prior)
        if hidden_channels is not None:
            check_positive_int('hidden_channels', hidden_channels)
        check_scale('tanh', log_scale_bound)
        check_int('seed', seed, low=0, high=2**63)
        dtype = check_float_dtype('dtype', dtype)
        check_bool('validate_args', validate_args)
        self._event_shape = event_shape
        self._split = event_shape[-1] // 2
        self._log_scale_bound = log_scale_bound
        self._conditional_shape = check_conditional_shape(conditional_shape)
        policy = check_dtype_policy(dtype_policy, dtype)
        self.inner = inner
        factored = event_shape[-1] - self._split
        with tf.name_scope(name) as name:
            if not split_prior:
                self.prior = None
            elif hidden_channels is None:
                self.prior = networks.ZeroConv(
                    self._split, 2 * factored, dtype, dtype_policy=policy
                )
            else:
                self.prior = networks.ConvNet(
                    self._split,
                    2 * factored,
                    hidden_channels,
                    seed=seed,
                    dtype=dtype,
                    dtype_policy=policy,
                )
            if self._conditional_shape is None:
                self.context_prior = None
            else:
                self.context_prior = networks.ZeroDense(
                    math.prod(self._conditional_shape),
                    2 * factored,
                    dtype,
                    name='context_prior',
                    dtype_policy=policy,
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

    @property
    def conditional_shape(self):
        """The shape of one context (a tuple), or None."""
        return self._conditional_shape

    def structure(self):
        structure = {
            'class': 'FactorOut',
            'event_shape': list(self._event_shape),
            'split_prior': self.prior is not None,
            'log_scale_bound': self._log_scale_bound,
        }
        if self._conditional_shape is not None:  # Absent key: unconditional, as before.
            structure['conditional_shape'] = list(self._conditional_shape)
        return structure

    def split(self, y):
        """Returns (kept, factored): the first C // 2 channels and the rest."""
        check_event_shape(y, self._event_shape, 'FactorOut')
        return y[..., : self._split], y[..., self._split :]

    def _prior_params(self, kept, conditional_input):
        if self._conditional_shape is None:
            if self.prior is None:
                return None, None
            params = self.prior(kept)
        else:
            context = context_features(
                conditional_input, self._conditional_shape, kept, 3, f'FactorOut {self.name!r}'
            )
            params = self.context_prior(context)[..., tf.newaxis, tf.newaxis, :]
            if self.prior is not None:
                params = params + self.prior(kept)
            else:
                params = params + tf.zeros_like(kept[..., :1])
        mean, raw = tf.split(params, 2, axis=-1)
        return mean, log_scale(raw, 'tanh', self._log_scale_bound)

    def _factored_map(self, kept, value, inverse, conditional_input=None):
        """The factored-out half's map given the kept half of the data: (output, log-det).

        Forward (latent -> data) y2 = z2 * exp(log_scale) + mean, inverse its inverse, with
        (mean, log_scale) from the prior on `kept`, the data's kept half (and the context of
        a conditional factor-out).
        """
        mean, scale = self._prior_params(kept, conditional_input)
        if mean is None:
            return value, tf.zeros([], value.dtype)
        log_det = tf.reduce_sum(scale, axis=[-3, -2, -1])
        if inverse:
            return (value - mean) * tf.exp(-scale), -log_det
        return value * tf.exp(scale) + mean, log_det

    def _forward_and_log_det(self, z, step_hook=None, **kwargs):
        if step_hook is not None:
            step_hook(self, z, False)
        z_kept, z_factored = self.split(z)
        kept, log_det = apply_step(self.inner, z_kept, False, 3, kwargs, step_hook)
        factored, factored_log_det = self._factored_map(
            kept, z_factored, inverse=False, conditional_input=kwargs.get('conditional_input')
        )
        return tf.concat([kept, factored], axis=-1), log_det + factored_log_det

    def _inverse_and_log_det(self, y, step_hook=None, **kwargs):
        if step_hook is not None:
            step_hook(self, y, True)
        kept, factored = self.split(y)
        z_kept, log_det = apply_step(self.inner, kept, True, 3, kwargs, step_hook)
        z_factored, factored_log_det = self._factored_map(
            kept, factored, inverse=True, conditional_input=kwargs.get('conditional_input')
        )
        return tf.concat([z_kept, z_factored], axis=-1), log_det + factored_log_det

    def _backprop_from_output(self, output, output_gradient, inverse, backprop_state):
        """Memory-saving backprop (see `Chain._backprop_from_output`): (input, its gradient).

        The kept half goes back through `inner`; the factored half is rebuilt from the
        output with the prior of the data's kept half, and its map rerun under a tape.
        """
        out_kept, out_factored = self.split(output)
        context = backprop_state.kwargs().get('conditional_input')
        grad_kept, grad_factored = self.split(output_gradient)

        def factored_part(kept):
            """(input of the factored half, gradients w.r.t. `kept` and that input)."""
            value, _ = self._factored_map(kept, out_factored, not inverse, context)
            return value, backprop_state.gradients(
                lambda k, v: self._factored_map(k, v, inverse, context),
                [kept, value],
                grad_factored,
            )

        if inverse:  # Output: the latent; the data's kept half is the inner walk's input.
            kept, grad_kept = backprop_state.step(self.inner, out_kept, grad_kept, True, 3)
            factored, (grad_from_prior, grad_factored) = factored_part(kept)
            return (
                tf.concat([kept, factored], axis=-1),
                tf.concat([grad_kept + grad_from_prior, grad_factored], axis=-1),
            )
        # Output: the data; its kept half feeds the prior, so that gradient goes in first.
        factored, (grad_from_prior, grad_factored) = factored_part(out_kept)
        z_kept, grad_z_kept = backprop_state.step(
            self.inner, out_kept, grad_kept + grad_from_prior, False, 3
        )
        return tf.concat([z_kept, factored], axis=-1), tf.concat(
            [grad_z_kept, grad_factored], axis=-1
        )
