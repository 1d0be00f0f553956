"""Affine and additive coupling layers (Real NVP, Glow) with checkerboard and channel masks."""

import functools
import math

import numpy as np
import tensorflow as tf

from tfp_flows import networks
from tfp_flows.bijectors import scale as scale_lib
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import check_conditional_shape, context_features
from tfp_flows.bijectors.scale import check_scale
from tfp_flows.bijectors.shapes import check_event_shape
from tfp_flows.mixed_precision import check_dtype_policy
from tfp_flows.validation import (
    check_bool,
    check_callable,
    check_float_dtype,
    check_int,
    check_positive_int,
    shape_tuple,
)

__all__ = ['AdditiveCoupling', 'AffineCoupling']

_MASKS = ('channel', 'checkerboard')


class _Coupling(FlowBijector):
    """Splits the event into a kept part x1 and a changed part x2; x2 is mapped given x1.

    Masks, for an event [H, W, C] (image) or [C] (vector):
      'channel':      x1 = the first C // 2 channels, x2 = the rest (`flip=True` swaps them);
                      for vectors these are the two halves of the vector.
      'checkerboard': x1 = the pixels with (row + column + flip) even, all channels; the
                      conditioner sees the image with x2 set to zero (images only).
    The conditioner sees only x1: it is built by `conditioner_fn(input_size, output_size)`
    with input_size = the channels of x1, output_size = `num_params` per channel of x2.

    Conditional couplings (`conditional_shape` given) model p(x | c): the conditioner sees
    x1 and the context c (bijector kwarg `conditional_input`, [*batch, *conditional_shape]),
    flattened to K = prod(conditional_shape) features and concatenated to x1's channels
    (spatially broadcast for images), so input_size = channels of x1 + K. The map stays a
    coupling in x for each c, with the same log-det formula.

    `dropout_rate` > 0 drops hidden units of the default conditioner when the bijector kwarg
    `training=True` is passed (never otherwise). A stateless `dropout_seed` [2] kwarg fixes
    the masks: each coupling folds its own `seed` into it, so two passes with one seed use the
    same masks, and the coupling is an exact bijection with that mask (Flow++, Ho et al. 2019,
    https://arxiv.org/abs/1902.00275, used dropout in its coupling networks).

    `dtype_policy` ('mixed_bfloat16', 'mixed_float16' or None) runs the default conditioner in
    that Keras mixed-precision policy (`tfp_flows.mixed_precision`); its output is cast to
    float32, so the map, its inverse and the log-det are computed in float32 from it. It changes
    rounding only and is not in `structure()`: checkpoints restore across policies.
    """

    num_params = None  # Conditioner outputs per changed value.
    kwarg_names = ('conditional_input', 'training', 'dropout_seed')

    def __init__(
        self,
        *,
        event_shape,
        mask,
        flip,
        conditioner_fn,
        hidden_channels,
        seed,
        dtype,
        validate_args,
        parameters,
        name,
        conditional_shape=None,
        dropout_rate=0.0,
        dtype_policy=None,
    ):
        shape = shape_tuple(event_shape)
        if (
            shape is None
            or len(shape) not in (1, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise ValueError(
                '`event_shape` must be [H, W, C] for images or [C] for vectors, with positive '
                f'ints; got {event_shape!r}.'
            )
        event_shape = shape
        if mask not in _MASKS:
            raise ValueError(f'`mask` must be one of {_MASKS}; got {mask!r}.')
        check_bool('flip', flip)
        check_callable('conditioner_fn', conditioner_fn, allow_none=True)
        check_positive_int('hidden_channels', hidden_channels)
        check_int('seed', seed, low=0, high=2**63)
        dtype = check_float_dtype('dtype', dtype)
        check_bool('validate_args', validate_args)
        if mask == 'checkerboard' and len(event_shape) != 3:
            raise ValueError(
                f"mask='checkerboard' needs an image event [H, W, C]; got {event_shape!r}."
            )
        channels = event_shape[-1]
        if mask == 'channel' and channels < 2:
            raise ValueError(
                "mask='channel' needs at least 2 channels on the last axis; got event shape "
                f'{event_shape!r}. Squeeze the image first or use the checkerboard mask.'
            )
        self._conditional_shape = check_conditional_shape(conditional_shape)
        self._dropout_rate = networks.check_dropout_rate(dropout_rate)
        if conditioner_fn is not None and self._dropout_rate:
            raise ValueError(
                '`dropout_rate` applies to the default conditioner networks only; got '
                f'dropout_rate={dropout_rate!r} with a `conditioner_fn`. Build the dropout into '
                'your network instead.'
            )
        self._dtype_policy = check_dtype_policy(dtype_policy, dtype)
        if conditioner_fn is not None and self._dtype_policy is not None:
            raise ValueError(
                '`dtype_policy` applies to the default conditioner networks only; got '
                f'dtype_policy={self._dtype_policy!r} with a `conditioner_fn`. Build your network '
                'in that policy instead (it must return float32).'
            )
        self._seed = seed
        self._event_shape = event_shape
        self._mask = mask
        self._flip = bool(flip)
        if mask == 'channel':
            split = channels // 2
            kept, changed = (channels - split, split) if self._flip else (split, channels - split)
            self._split = split
        else:
            kept = changed = channels
            rows, cols = np.meshgrid(
                np.arange(event_shape[0]), np.arange(event_shape[1]), indexing='ij'
            )
            keep = ((rows + cols + int(self._flip)) % 2 == 0).astype(np.float64)
            self._keep = tf.constant(keep[..., np.newaxis], dtype)
        if conditioner_fn is None:
            network = networks.ConvNet if len(event_shape) == 3 else networks.DenseNet
            size_arg = 'hidden_channels' if len(event_shape) == 3 else 'hidden_units'
            conditioner_fn = functools.partial(
                network,
                **{size_arg: hidden_channels},
                seed=seed,
                dtype=dtype,
                dropout_rate=self._dropout_rate,
                dtype_policy=self._dtype_policy,
            )
        context_size = 0 if conditional_shape is None else math.prod(self._conditional_shape)
        with tf.name_scope(name) as name:
            self.conditioner = conditioner_fn(kept + context_size, self.num_params * changed)
            super().__init__(
                forward_min_event_ndims=len(event_shape),
                is_constant_jacobian=self.num_params == 1,
                dtype=dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def event_shape(self):
        return self._event_shape

    @property
    def mask(self):
        return self._mask

    @property
    def flip(self):
        return self._flip

    @property
    def conditional_shape(self):
        """The shape of one context (a tuple), or None for an unconditional coupling."""
        return self._conditional_shape

    @property
    def dropout_rate(self):
        return self._dropout_rate

    @property
    def dtype_policy(self):
        """The default conditioner's mixed policy ('mixed_bfloat16', 'mixed_float16'), or None."""
        return self._dtype_policy

    def structure(self):
        structure = {
            'class': type(self).__name__,
            'event_shape': list(self._event_shape),
            'mask': self._mask,
            'flip': self._flip,
        }
        if self._conditional_shape is not None:  # Absent key: unconditional, as before.
            structure['conditional_shape'] = list(self._conditional_shape)
        return structure

    def _reduce_event(self, values):
        return tf.reduce_sum(values, axis=list(range(-len(self._event_shape), 0)))

    def _transform(self, x, inverse, conditional_input=None, training=False, dropout_seed=None):
        owner = type(self).__name__
        check_event_shape(x, self._event_shape, owner)
        if self.validate_args:
            x = tf.debugging.assert_all_finite(x, f'{owner} input has NaN or inf.')
        params = self._conditioner_params(x, conditional_input, training, dropout_seed)
        return self._apply(x, params, inverse)

    def _conditioner_params(self, x, conditional_input=None, training=False, dropout_seed=None):
        """The conditioner's output on the kept part of `x` (input or output: the same) and,
        for a conditional coupling, the context."""
        training = networks.check_training(training)
        context = context_features(
            conditional_input,
            self._conditional_shape,
            x,
            len(self._event_shape),
            f'{type(self).__name__} {self.name!r}',
        )
        if self._mask == 'channel':
            first, second = x[..., : self._split], x[..., self._split :]
            kept = second if self._flip else first
        else:
            kept = x * self._keep
        return self._conditioner(kept, context, training, dropout_seed)

    def _conditioner(self, kept, context, training, dropout_seed):
        """The conditioner on x1 and the context features [*batch, K] (None if unconditional)."""
        if context is not None:
            if len(self._event_shape) == 3:  # The same features at every position.
                context = context[..., tf.newaxis, tf.newaxis, :] + tf.zeros_like(kept[..., :1])
            kept = tf.concat([kept, context], axis=-1)
        if not self._dropout_rate:
            return self.conditioner(kept)
        if dropout_seed is not None:
            dropout_seed = tf.random.experimental.stateless_fold_in(
                tf.cast(dropout_seed, tf.int32), self._seed % 2**31
            )
        return self.conditioner(kept, training=training, seed=dropout_seed)

    def _apply(self, x, params, inverse):
        """The map of the changed part given the conditioner's output: (output, log-det)."""
        if self._mask == 'channel':
            first, second = x[..., : self._split], x[..., self._split :]
            kept, changed = (second, first) if self._flip else (first, second)
            changed, log_det = self._map(changed, params, inverse)
            parts = [changed, kept] if self._flip else [kept, changed]
            return tf.concat(parts, axis=-1), log_det
        return self._map(x, params, inverse, changed_mask=1.0 - self._keep)

    def _rerun_from_output(self, tape, y, inverse, **kwargs):
        """For memory-saving backprop (`tfp_flows.bijectors.backprop`): (x, y again, log-det).

        `y` is the output of the map in direction `inverse`, watched by `tape`; `kwargs` are the
        step's bijector kwargs (the context). The input x is rebuilt from y off the tape, with
        the conditioner's output on y's kept part (equal to x's), and the map is rerun from x
        on the tape with that same output: one conditioner call for both, as in reversible
        networks (Gomez et al. 2017, https://arxiv.org/abs/1707.04585). The gradient w.r.t. x
        is the sum of the tape's gradients w.r.t. x (the map) and y (the conditioner, through
        the kept part). With dropout, a `dropout_seed` must be passed so the rerun draws the
        same masks.
        """
        check_event_shape(y, self._event_shape, type(self).__name__)
        params = self._conditioner_params(y, **kwargs)
        with tape.stop_recording():
            x, _ = self._apply(y, params, not inverse)
        tape.watch(x)
        y_again, log_det = self._apply(x, params, inverse)
        return x, y_again, log_det

    def _forward_and_log_det(self, x, **kwargs):
        return self._transform(x, inverse=False, **kwargs)

    def _inverse_and_log_det(self, y, **kwargs):
        return self._transform(y, inverse=True, **kwargs)


class AffineCoupling(_Coupling):
    """Affine coupling: the changed part x2 is scaled and shifted given the kept part x1.

    Event [H, W, C] or [C], split by `mask` (see below). With (shift, raw) = NN(x1) and the
    scale bounded by a soft clamp, log_scale = bound * tanh(raw / bound) in (-bound, bound):
      forward (latent -> data):  y1 = x1,  y2 = x2 * exp(log_scale) + shift
      inverse (data -> latent):  x1 = y1,  x2 = (y2 - shift) * exp(-log_scale)
      log|det dy/dx| = sum of log_scale over x2
    The bound keeps one bad batch from overflowing the inverse; the zero-initialised last
    layer of the conditioner makes a fresh layer the identity. With scale='sigmoid' the
    log-scale is Glow's -log sigmoid(raw + 2) instead (`tfp_flows.bijectors.scale`).

    Args:
      event_shape: [H, W, C] (conv conditioner) or [C] (dense conditioner).
      mask: 'channel' or 'checkerboard' (images only); `flip` swaps kept and changed parts.
      conditioner_fn: builds the network, `conditioner_fn(input_size, output_size)` returning a
        callable on [..., H, W, input_size] (or [..., input_size]); default: Glow's `ConvNet`
        for images, `DenseNet` for vectors, with `hidden_channels` units.
      log_scale_bound: the clamp of the log-scale (scale='tanh').
      scale: 'tanh' (the soft clamp) or 'sigmoid' (Glow's: the inverse multiplies by
        sigmoid(raw + 2)).
      hidden_channels: width of the default conditioner, a positive int.
      seed: int in [0, 2**63); fixes the default conditioner's initial weights.
      conditional_shape: None, or the shape of one context c (e.g. (10,) for one-hot labels):
        the conditioner then sees c too (see `_Coupling`); every call needs the bijector kwarg
        `conditional_input` [*batch, *conditional_shape].
      dropout_rate: in [0, 1); dropout of the default conditioner's hidden units, active only
        with the bijector kwarg `training=True` (optionally `dropout_seed` [2]).
      dtype_policy: None, 'mixed_bfloat16' or 'mixed_float16' (or a Keras `DTypePolicy` of
        one): the default conditioner computes in its compute dtype (dtype must be float32).

    Raises (at construction):
      ValueError: for an argument outside its domain, naming it and its value (also a
        non-bool `flip` or `validate_args`, a `conditioner_fn` that is not callable, a
        non-floating `dtype`, a `dtype_policy` given with a `conditioner_fn`).

    References: Dinh et al. (2017), Real NVP, https://arxiv.org/abs/1605.08803; Kingma and
    Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    num_params = 2

    def __init__(
        self,
        event_shape,
        mask='channel',
        flip=False,
        conditioner_fn=None,
        hidden_channels=512,
        log_scale_bound=2.0,
        scale='tanh',
        seed=0,
        dtype=tf.float32,
        validate_args=False,
        name='affine_coupling',
        conditional_shape=None,
        dropout_rate=0.0,
        dtype_policy=None,
    ):
        parameters = dict(locals())
        check_scale(scale, log_scale_bound)
        self._log_scale_bound = log_scale_bound
        self._scale = scale
        super().__init__(
            event_shape=event_shape,
            mask=mask,
            flip=flip,
            conditioner_fn=conditioner_fn,
            hidden_channels=hidden_channels,
            seed=seed,
            dtype=dtype,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
            conditional_shape=conditional_shape,
            dropout_rate=dropout_rate,
            dtype_policy=dtype_policy,
        )

    def structure(self):
        return {
            **super().structure(),
            'scale': self._scale,
            'log_scale_bound': self._log_scale_bound,
        }

    def _map(self, x, params, inverse, changed_mask=None):
        shift, raw = tf.split(params, 2, axis=-1)
        log_scale = scale_lib.log_scale(raw, self._scale, self._log_scale_bound)
        if changed_mask is not None:
            shift, log_scale = shift * changed_mask, log_scale * changed_mask
        if inverse:
            return (x - shift) * tf.exp(-log_scale), -self._reduce_event(log_scale)
        return x * tf.exp(log_scale) + shift, self._reduce_event(log_scale)


class AdditiveCoupling(_Coupling):
    """Additive coupling (NICE): the changed part x2 is shifted given the kept part x1.

    Event [H, W, C] or [C], split by `mask` as in `AffineCoupling`. With shift = NN(x1):
      forward (latent -> data):  y1 = x1,  y2 = x2 + shift
      inverse (data -> latent):  x1 = y1,  x2 = y2 - shift
      log|det dy/dx| = 0  (volume preserving)
    `conditional_shape`, `dropout_rate` and `dtype_policy` as in `AffineCoupling`.

    Arguments and errors as for `AffineCoupling` (without `log_scale_bound` and `scale`).

    References: Dinh et al. (2015), NICE, https://arxiv.org/abs/1410.8516; Kingma and
    Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    num_params = 1

    def __init__(
        self,
        event_shape,
        mask='channel',
        flip=False,
        conditioner_fn=None,
        hidden_channels=512,
        seed=0,
        dtype=tf.float32,
        validate_args=False,
        name='additive_coupling',
        conditional_shape=None,
        dropout_rate=0.0,
        dtype_policy=None,
    ):
        parameters = dict(locals())
        super().__init__(
            event_shape=event_shape,
            mask=mask,
            flip=flip,
            conditioner_fn=conditioner_fn,
            hidden_channels=hidden_channels,
            seed=seed,
            dtype=dtype,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
            conditional_shape=conditional_shape,
            dropout_rate=dropout_rate,
            dtype_policy=dtype_policy,
        )

    def _map(self, x, params, inverse, changed_mask=None):
        if changed_mask is not None:
            params = params * changed_mask
        zero = tf.zeros([], x.dtype)
        return (x - params, zero) if inverse else (x + params, zero)
