"""Coupling layers (Real NVP, Glow): a base that splits and conditions, and its kinds.

`_Coupling` owns what every kind shares: the mask and split, the context, the conditioner
(with its dropout and mixed precision) and the rerun of memory-saving backprop. A kind gives
the conditioner's number of parameters per changed value and their map of the changed part:
`AffineCoupling` scales and shifts it, `AdditiveCoupling` shifts it, `SplineCoupling` bends it
(and `logistic_mixture.LogisticMixtureCoupling` maps it through a mixture's CDF).
"""

import functools
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks, networks
from tfp_flows.bijectors.affine import LOG_SCALE_BOUND, SCALE, affine, log_scale
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import check_conditional_shape, context_features, context_map
from tfp_flows.bijectors.shapes import check_event_shape
from tfp_flows.mixed_precision import check_dtype_policy

__all__ = ['BOUND', 'NUM_BINS', 'AdditiveCoupling', 'AffineCoupling', 'SplineCoupling']

_MASK = checks.one_of('channel', 'checkerboard')
NUM_BINS = checks.SPLINE_BINS
BOUND = checks.POSITIVE_NUMBER
_MIN_BIN = _MIN_SLOPE = 1e-3  # The smallest bin (a fraction of [-B, B]) and slope (nflows).
_SLOPE_SHIFT = math.log(math.expm1(1.0 - _MIN_SLOPE))  # A zero output gives slope 1.
_fold_in = tf.random.experimental.stateless_fold_in


class _Coupling(FlowBijector):
    """Splits the event into a kept part x1 and a changed part x2; x2 is mapped given x1.

    A kind sets `num_params` and implements `_map(x, params, inverse)` -> (output, log-det over
    the event) of x2 given the conditioner's output there: x is x2 [..., H, W, C2] or [..., C2]
    (channel mask), or x2's positions [..., P2, 1, C] (checkerboard).
    """

    num_params = None  # Conditioner outputs per value of x2.
    _constant_jacobian = False
    kwarg_names = ('conditional_input', 'training', 'dropout_seed', 'dropout_rows')

    def __init__(self, parameters):
        """Checks and keeps a kind's constructor arguments (its `locals()`)."""
        self._event_shape = checks.check_shape('event_shape', parameters['event_shape'], (1, 3))
        self._mask = _MASK.check('mask', parameters['mask'])
        self._flip = checks.BOOL.check('flip', parameters['flip'])
        self._conditional_shape = check_conditional_shape(parameters['conditional_shape'])
        arguments = 'dtype dtype_policy seed dropout_rate hidden_channels residual_blocks'.split()
        checked = networks.check_arguments(**{k: parameters[k] for k in arguments})
        dtype = checked['dtype']
        kept, changed = self._layout(dtype)
        conditioner_fn = self._conditioner_fn(parameters, dtype)
        self._seed = parameters['seed']
        with tf.name_scope(parameters['name']) as name:
            inputs, outputs = kept + self._context_size(), self.num_params * changed
            self.conditioner = conditioner_fn(inputs, outputs)
            rank = len(self._event_shape)
            self._init_step(parameters, name, rank, dtype, self._constant_jacobian)
        self._dropout_rate, self._dtype_policy = checked['dropout_rate'], checked['dtype_policy']
        self._residual_blocks = checked['residual_blocks']  # A conditioner_fn: 0, 0, None.

    def _layout(self, dtype):
        """(channels of x1, channels of x2) for the mask; `ValueError` where it does not fit."""
        shape, channels = self._event_shape, self._event_shape[-1]
        if self._mask == 'checkerboard':
            if len(shape) != 3:
                raise ValueError(
                    f"mask='checkerboard' needs an image event [H, W, C]; got {shape!r}."
                )
            keep = (np.indices(shape[:2]).sum(axis=0) + self._flip) % 2 == 0
            self._keep = tf.constant(keep[..., np.newaxis], dtype)
            self._order = np.argsort(~keep.ravel(), kind='stable')  # x1's positions, then x2's.
            self._num_kept = keep.sum()
            return channels, channels
        if channels < 2:
            raise ValueError(
                "mask='channel' needs at least 2 channels on the last axis; got event shape "
                f'{shape!r}. Squeeze the image first or use the checkerboard mask.'
            )
        self._split = channels // 2
        if self._flip:
            return channels - self._split, self._split
        return self._split, channels - self._split

    def _conditioner_fn(self, parameters, dtype):
        """`parameters['conditioner_fn']`, checked, or the default network's constructor."""
        conditioner_fn = parameters['conditioner_fn']
        if conditioner_fn is None:
            kwargs = {k: parameters[k] for k in ('seed', 'dropout_rate', 'dtype_policy')}
            kwargs.update(dtype=dtype, residual_blocks=parameters['residual_blocks'])
            width = parameters['hidden_channels']
            if len(self._event_shape) == 3:
                return functools.partial(networks.ConvNet, hidden_channels=width, **kwargs)
            if blocks := kwargs.pop('residual_blocks'):  # DenseNet names its width `hidden_units`.
                raise ValueError(f'`residual_blocks` applies to images; got {blocks!r}.')
            return functools.partial(networks.DenseNet, hidden_units=width, **kwargs)
        if not callable(conditioner_fn):
            raise ValueError(
                f'`conditioner_fn` must be None or a callable; got {conditioner_fn!r}.'
            )
        for name, used in (
            ('dropout_rate', parameters['dropout_rate']),
            ('residual_blocks', parameters['residual_blocks']),
            ('dtype_policy', check_dtype_policy(parameters['dtype_policy'], dtype)),
        ):
            if used:
                raise ValueError(
                    f'`{name}` applies to the default conditioner networks only; got '
                    f'{name}={used!r} with a `conditioner_fn`. Build your network with it instead '
                    '(it must return float32 under a mixed policy).'
                )
        return conditioner_fn

    @property
    def _spatial_context(self):
        """Whether the context is a map of the event's height and width."""
        shape, event = self._conditional_shape, self._event_shape
        return shape is not None and len(event) == len(shape) == 3 and shape[:2] == event[:2]

    def _context_size(self):
        if self._conditional_shape is None:
            return 0
        if self._spatial_context:
            return self._conditional_shape[-1]
        return math.prod(self._conditional_shape)

    mask = property(lambda self: self._mask)
    flip = property(lambda self: self._flip)
    dropout_rate = property(lambda self: self._dropout_rate)
    dtype_policy = property(lambda self: self._dtype_policy)  # The conditioner's policy, or None.

    def structure(self):
        blocks = {'residual_blocks': self._residual_blocks} if self._residual_blocks else {}
        return {**super().structure(), 'mask': self._mask, 'flip': self._flip, **blocks}

    def _transform(self, x, inverse, **kwargs):
        owner = type(self).__name__
        check_event_shape(x, self._event_shape, owner)
        if self.validate_args:
            x = tf.debugging.assert_all_finite(x, f'{owner} input has NaN or inf.')
        return self._apply(x, self._conditioner_params(x, **kwargs), inverse)

    def _halves(self, x):
        """(x1, x2) of the channel mask (one split: fewer ops to trace and run than slices)."""
        first, second = tf.split(x, [self._split, -1], axis=-1)
        return (second, first) if self._flip else (first, second)

    def _conditioner_params(
        self, x, conditional_input=None, training=False, dropout_seed=None, dropout_rows=None
    ):
        """The conditioner's output on the kept part of `x` (input or output) and the context."""
        kept = self._halves(x)[0] if self._mask == 'channel' else x * self._keep
        owner = f'{type(self).__name__} {self.name!r}'
        if self._spatial_context:
            kept = tf.concat(
                [kept, context_map(conditional_input, self._conditional_shape, x, owner)], axis=-1
            )
        elif self._conditional_shape is not None or conditional_input is not None:
            rank = len(self._event_shape)
            context = context_features(conditional_input, self._conditional_shape, x, rank, owner)
            if rank == 3:  # The same features at every position.
                context = context[..., tf.newaxis, tf.newaxis, :] + tf.zeros_like(kept[..., :1])
            kept = tf.concat([kept, context], axis=-1)
        if not self._dropout_rate:
            return self.conditioner(kept)
        if dropout_seed is not None:  # Each coupling its own masks.
            dropout_seed = _fold_in(tf.cast(dropout_seed, tf.int32), self._seed)
        return self.conditioner(kept, training, dropout_seed, dropout_rows)

    def _apply(self, x, params, inverse):
        """The map of the changed part given the conditioner's output: (output, log-det)."""
        if self._mask == 'channel':
            kept, changed = self._halves(x)
            changed, log_det = self._map(changed, params, inverse)
            parts = [changed, kept] if self._flip else [kept, changed]
            return tf.concat(parts, axis=-1), log_det

        # Checkerboard: the map runs on x2 alone, its positions gathered as an image [P2, 1, C].
        def positions(t, order):  # [..., H, W, C'] -> [..., len(order), 1, C']
            shape = tf.concat([tf.shape(t)[:-3], [len(self._order), 1, t.shape[-1]]], axis=0)
            return tf.gather(tf.reshape(t, shape), order, axis=-3)

        kept, changed = tf.split(positions(x, self._order), [self._num_kept, -1], axis=-3)
        params = positions(params, self._order[self._num_kept :])
        changed, log_det = self._map(changed, params, inverse)
        y = tf.gather(tf.concat([kept, changed], axis=-3), np.argsort(self._order), axis=-3)
        return tf.ensure_shape(tf.reshape(y, tf.shape(x)), x.shape), log_det

    def rerun_from_output(self, tape, y, inverse, **kwargs):
        """(x, y again, log-det) for 'invert' backprop (`tfp_flows.bijectors.backprop`).

        `y`, the output in direction `inverse`, is watched by `tape`. x is rebuilt from y off the
        tape and the map rerun from x on it, both with the conditioner's one output on the kept
        part (equal in x and y), as in reversible networks (Gomez et al. 2017,
        https://arxiv.org/abs/1707.04585).
        """
        check_event_shape(y, self._event_shape, type(self).__name__)
        params = self._conditioner_params(y, **kwargs)
        with tape.stop_recording():
            x, _ = self._apply(y, params, not inverse)
        tape.watch(x)
        y_again, log_det = self._apply(x, params, inverse)
        return x, y_again, log_det

    _forward_and_log_det = functools.partialmethod(_transform, inverse=False)
    _inverse_and_log_det = functools.partialmethod(_transform, inverse=True)


class AffineCoupling(_Coupling):
    """Affine coupling: the changed part x2 is scaled and shifted given the kept part x1.

    Event [H, W, C] or [C], split by `mask`:
      'channel':      x1 = the first C // 2 channels, x2 = the rest (`flip=True` swaps them);
                      for vectors, the two halves of the vector.
      'checkerboard': x1 = the pixels with (row + column + flip) even, all channels; the
                      conditioner sees the image with x2 set to zero (images only).
    With (shift, raw) = NN(x1) and log_scale = bound * tanh(raw / bound) in (-bound, bound)
    (scale='sigmoid': Glow's -log sigmoid(raw + 2); `tfp_flows.bijectors.affine`):
      forward (latent -> data):  y1 = x1,  y2 = x2 * exp(log_scale) + shift
      inverse (data -> latent):  x1 = y1,  x2 = (y2 - shift) * exp(-log_scale)
      log|det dy/dx| = sum of log_scale over x2
    The conditioner's last layer starts at zero: a fresh coupling is the identity. A context c
    (kwarg `conditional_input`, [*batch, *conditional_shape]) joins x1's channels: a map
    [H, W, K] of the image's height and width as K channels at each position, else its K =
    prod(conditional_shape) values at every position (`tfp_flows.bijectors.context`).

    Args:
      event_shape: [H, W, C] (conv conditioner) or [C] (dense conditioner).
      mask: 'channel' or 'checkerboard'; `flip` swaps kept and changed parts.
      conditioner_fn: `conditioner_fn(input_size, output_size)` builds the network on
        [..., H, W, input_size] (or [..., input_size]), input_size = the channels of x1 plus K,
        output_size = 2 per channel of x2; default: `ConvNet` for images, `DenseNet` for
        vectors, `hidden_channels` wide, the ConvNet with `residual_blocks` (an int >= 0).
      log_scale_bound: the clamp of the log-scale (scale='tanh'), a finite number > 0.
      scale: 'tanh' (the soft clamp) or 'sigmoid' (Glow's).
      seed: an int in [0, 2**31), the default conditioner's initial weights and dropout masks.
      dtype, validate_args (True: check at run time that inputs are finite), name: as ActNorm.
      conditional_shape: None, or the shape of one context c ((10,) for one-hot labels,
        [H, W, K] for a map); every call then needs `conditional_input`.
      dropout_rate: in [0, 1), of the default conditioner's hidden units, only with the kwarg
        `training=True`; a stateless `dropout_seed` [2] kwarg fixes the masks, and so the
        bijection (Flow++, Ho et al. 2019, https://arxiv.org/abs/1902.00275); a kwarg
        `dropout_rows` (offset, total) takes rows [offset, offset + n) of the masks of a batch
        of `total` (so the parts of a batch apply the whole's, `networks.ConvNet.__call__`).
      dtype_policy: the default conditioner's precision (`tfp_flows.mixed_precision`); neither
        it nor dropout is in `structure()`.

    `ValueError` at construction naming an argument outside its domain (those passed on to
    the default conditioner too), or `dropout_rate` or `dtype_policy` with a `conditioner_fn`.

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
        residual_blocks=0,
    ):
        parameters = dict(locals())
        self._scale = SCALE.check('scale', scale)
        self._log_scale_bound = LOG_SCALE_BOUND.check('log_scale_bound', log_scale_bound)
        super().__init__(parameters)

    def structure(self):
        return {**super().structure(), 'scale': self._scale}

    def _map(self, x, params, inverse):
        shift, raw = tf.split(params, 2, axis=-1)
        scale = log_scale(raw, self._scale, self._log_scale_bound)
        return affine(x, shift, scale, inverse, len(self._event_shape))


class AdditiveCoupling(_Coupling):
    """Additive coupling (NICE): the changed part x2 is shifted given the kept part x1.

    Event [H, W, C] or [C], split by `mask` as in `AffineCoupling`. With shift = NN(x1):
      forward (latent -> data):  y1 = x1,  y2 = x2 + shift
      inverse (data -> latent):  x1 = y1,  x2 = y2 - shift
      log|det dy/dx| = 0  (volume preserving)
    Arguments (output_size: 1 per channel of x2), context and errors as `AffineCoupling`'s.

    References: Dinh et al. (2015), NICE, https://arxiv.org/abs/1410.8516; Kingma and
    Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039
    """

    num_params = 1
    _constant_jacobian = True

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
        residual_blocks=0,
    ):
        super().__init__(dict(locals()))

    def _map(self, x, params, inverse):
        zero = tf.zeros([], x.dtype)
        return (x - params, zero) if inverse else (x + params, zero)


class SplineCoupling(_Coupling):
    """Rational-quadratic spline coupling: each value of the changed part x2 goes through its
    own monotone spline on [-B, B] given the kept part x1 (the identity outside).

    Event [H, W, C] or [C], split by `mask` as in `AffineCoupling`. Per value of x2, NN(x1)
    gives K raw widths w, K raw heights h and K - 1 raw interior knot slopes d (3K - 1):
      bin widths = 2B (m + (1 - K m) softmax(w)),  bin heights the same of h,  m = 1e-3
      knot slopes = 1e-3 + softplus(d + log(expm1(1 - 1e-3)))  (1 at d = 0; 1 at -B and B)
      forward (latent -> data):  y1 = x1,  y2 = spline(x2)  (TFP's `RationalQuadraticSpline`)
      inverse (data -> latent):  x1 = y1,  x2 = spline^-1(y2)  (the root of a quadratic)
      log|det dy/dx| = sum over x2 of log spline'(x2)  (0 outside [-B, B])
    A fresh conditioner outputs zero: equal bins and unit slopes, the identity (to rounding).
    Arguments (output_size: 3K - 1 per channel of x2, channel c's w, h, d from output
    c (3K - 1) on), context and errors as `AffineCoupling`'s, without `scale` and
    `log_scale_bound`, with `num_bins` K (an int in [2, 1000)) and `bound` B (a number > 0),
    both in `structure()`: a checkpoint refuses another spline.

    Reference: Durkan et al. (2019), Neural Spline Flows, https://arxiv.org/abs/1906.04032
    """

    def __init__(
        self,
        event_shape,
        mask='channel',
        flip=False,
        conditioner_fn=None,
        hidden_channels=512,
        num_bins=8,
        bound=3.0,
        seed=0,
        dtype=tf.float32,
        validate_args=False,
        name='spline_coupling',
        conditional_shape=None,
        dropout_rate=0.0,
        dtype_policy=None,
        residual_blocks=0,
    ):
        self._num_bins = NUM_BINS.check('num_bins', num_bins)
        self._bound = BOUND.check('bound', bound)
        self.num_params = 3 * self._num_bins - 1
        super().__init__(dict(locals()))

    def structure(self):
        return {**super().structure(), 'num_bins': self._num_bins, 'bound': self._bound}

    def _spline(self, params, channels):
        """TFP's spline of each value from the conditioner's output [..., channels * (3K - 1)]."""
        bins, dtype = self._num_bins, params.dtype
        shape = tf.concat([tf.shape(params)[:-1], [channels, self.num_params]], axis=0)
        widths, heights, slopes = tf.split(tf.reshape(params, shape), [bins, bins, -1], axis=-1)
        size = tf.constant(2 * self._bound * (1 - bins * _MIN_BIN), dtype)
        smallest = tf.constant(2 * self._bound * _MIN_BIN, dtype)
        return tfp.bijectors.RationalQuadraticSpline(
            bin_widths=tf.nn.softmax(widths) * size + smallest,
            bin_heights=tf.nn.softmax(heights) * size + smallest,
            knot_slopes=tf.nn.softplus(slopes + tf.constant(_SLOPE_SHIFT, dtype)) + _MIN_SLOPE,
            range_min=tf.constant(-self._bound, dtype),
        )

    def _map(self, x, params, inverse):
        spline = self._spline(params, x.shape[-1])
        y = spline.inverse(x) if inverse else spline.forward(x)
        # log|d spline^-1 / dy| at y = x is -log spline'(spline^-1(x)).
        log_det = spline.forward_log_det_jacobian(y if inverse else x, event_ndims=0)
        # TFP's spline loses a static dimension of size 1 when the batch size is unknown.
        y, log_det = tf.ensure_shape(y, x.shape), tf.ensure_shape(log_det, x.shape)
        log_det = -log_det if inverse else log_det
        return y, tf.reduce_sum(log_det, axis=list(range(-len(self._event_shape), 0)))
