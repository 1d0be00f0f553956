"""Real NVP and Glow as `tfd.TransformedDistribution`s, and `sample` at a temperature.

`glow` and `real_nvp` build a `tfp_flows.bijectors.Chain` of this package's steps, data side
first (TFP's order), over a standard Normal base: `log_prob(x)` is the density of x in nats,
`forward` maps latent to data, `sample` decodes base noise. Arguments both take (each checked,
used or not, before any variable, in the domain of its step: `ValueError` naming it):
  hidden_channels: width of the coupling networks (`tfp_flows.networks`).
  residual_blocks: an int >= 0, residual blocks h + ReLU(conv3x3(h)) in each image coupling's
    network after its 1x1 layer (`networks.ConvNet`); vectors refuse any but 0.
  split_prior: learn the factored-out halves' prior from the kept halves (`FactorOut`).
  log_scale_bound: soft clamp (> 0) of every log-scale: couplings with scale='tanh', the
    logistic mixture's outer scale, priors.
  coupling: 'affine', 'additive' (NICE), 'spline' (Durkan et al. 2019), 'logistic_mixture' (Flow++).
  scale: the affine couplings' 'tanh' (soft clamp) or 'sigmoid' (Glow's; `bijectors.affine`).
  spline_bins, spline_bound: the spline couplings' K bins (in [2, 1000)) on [-B, B] (B > 0).
  mixture_components: the logistic mixture couplings' M logistics (in [1, 1000)).
    Another coupling refuses these and `scale` (affine's) but at their defaults.
  alpha: margin of the logit transform, in [0, 0.5); not used by preprocessing='centre'.
  conditional_shape: None, or the shape of one context c (e.g. (10,) for one-hot labels): the
    flow models p(x | c), c given as the bijector kwarg `conditional_input` or to `sample`.
    Every coupling network sees c; c sets a term of the top and split priors (Glow's `ycond`).
  learn_top_prior: learn a free mean and log-scale of the top latent (Glow's `learntop`;
    with it or a context, a `LearnedPrior` ends the latent side).
  dropout_rate: in [0, 1); the coupling networks' dropout, with the kwarg `training=True`.
  seed: an int in [0, 2**31); fixes the initial parameters (and Glow's 'shuffle'
    permutations): step k gets the seed (seed * 100003 + k) % 2**31.
  dtype, dtype_policy (the networks' precision; a checkpoint restores under any): as for
    `AffineCoupling`.
  validate_args: add run-time checks of the inputs (range, finiteness, invertibility).
  name: the distribution's name; None leaves it to TFP (a `tfd.JointDistribution*` names the
    component after its argument).
"""

import itertools

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks, networks
from tfp_flows.bijectors import coupling as kinds
from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.affine import LOG_SCALE_BOUND, SCALE
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.context import check_conditional_shape
from tfp_flows.bijectors.invertible_conv import InvertibleConv1x1, LUInvertibleConv1x1
from tfp_flows.bijectors.logistic_mixture import LogisticMixtureCoupling
from tfp_flows.bijectors.loop import Loop
from tfp_flows.bijectors.multiscale import FactorOut
from tfp_flows.bijectors.preprocessing import ALPHA, Centre, LogitTransform
from tfp_flows.bijectors.prior import LearnedPrior
from tfp_flows.bijectors.squeeze import Squeeze
from tfp_flows.sampling import check_flow, check_temperature, sample, sample_latent

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = [
    'LOOP_FROM',
    'check_flow',
    'check_temperature',
    'glow',
    'real_nvp',
    'sample',
    'sample_latent',
]

_COUPLINGS = {k: getattr(kinds, f'{k.title()}Coupling') for k in ('affine', 'additive', 'spline')}
_COUPLINGS['logistic_mixture'] = LogisticMixtureCoupling
_OPTION_DEFAULTS = dict(scale='tanh', spline_bins=8, spline_bound=3.0, mixture_components=4)
LOOP_FROM = 8  # `glow(loop=None)` loops levels of this many steps or more.
_PREPROCESSING = checks.one_of('centre', 'logit')
_DOMAINS = {  # The builders' arguments, those passed on in their consumers' domains.
    **dict.fromkeys(('num_levels', 'num_steps'), checks.POSITIVE_INT),
    **dict.fromkeys(('learn_top_prior', 'split_prior', 'validate_args'), checks.BOOL),
    'loop': checks.BOOL.or_none(),
    'coupling': checks.COUPLINGS,
    'permutation': checks.one_of('lu', 'plain', 'reverse', 'shuffle'),
    'seed': checks.SEED,
    'log_scale_bound': LOG_SCALE_BOUND,
    'scale': SCALE,
    'alpha': ALPHA,
    'spline_bins': kinds.NUM_BINS,
    'spline_bound': kinds.BOUND,
    'mixture_components': checks.MIXTURE_COMPONENTS,
}


class _Steps:
    """Builds a model's steps from its builder's arguments, checked and kept as attributes."""

    def __init__(self, arguments):
        vars(self).update(
            {k: _DOMAINS[k].check(k, v) if k in _DOMAINS else v for k, v in arguments.items()}
        )
        self.conditional_shape = check_conditional_shape(self.conditional_shape)
        for name, kind in checks.COUPLING_OPTIONS.items():
            if self.coupling != kind and (value := vars(self)[name]) != _OPTION_DEFAULTS[name]:
                got = f'{name}={value!r} with coupling={self.coupling!r}'
                raise ValueError(f'`{name}` applies to coupling={kind!r}; got {got}.')
        self.network = dict(hidden_channels=self.hidden_channels, dropout_rate=self.dropout_rate)
        self.network.update(residual_blocks=self.residual_blocks)
        networks.check_arguments(self.dtype, self.dtype_policy, **self.network)
        self.options = dict(dtype=self.dtype, validate_args=self.validate_args)
        self.conditioning = dict(
            conditional_shape=self.conditional_shape, dtype_policy=self.dtype_policy, **self.options
        )
        self._count = itertools.count()

    def next_seed(self):
        """The seed of the next step, in [0, 2**31) (seed 0 gives 0, 1, 2, ...)."""
        return (self.seed * 100_003 + next(self._count)) % 2**31

    def coupling_step(self, shape, mask='channel', flip=False):
        network = dict(seed=self.next_seed(), **self.network, **self.conditioning)
        if self.coupling == 'affine':
            network.update(log_scale_bound=self.log_scale_bound, scale=self.scale)
        elif self.coupling == 'logistic_mixture':
            network.update(
                log_scale_bound=self.log_scale_bound, mixture_components=self.mixture_components
            )
        elif self.coupling == 'spline':
            network.update(num_bins=self.spline_bins, bound=self.spline_bound)
        return _COUPLINGS[self.coupling](shape, mask=mask, flip=flip, **network)

    def mixing(self, channels):
        """Glow's channel mixing: a 1x1 conv, or a fixed permutation saved as a variable."""
        if self.permutation in ('lu', 'plain'):
            conv = LUInvertibleConv1x1 if self.permutation == 'lu' else InvertibleConv1x1
            return conv(channels, seed=self.next_seed(), **self.options)
        order = list(range(channels))[:: -1 if self.permutation == 'reverse' else 1]
        if self.permutation == 'shuffle':
            order = tf.random.experimental.stateless_shuffle(order, [self.next_seed(), 0])
        variable = tf.Variable(order, trainable=False, dtype=tf.int32, name='permutation')
        return tfb.Permute(variable, name=self.permutation)

    def factor_out(self, shape, inner):
        bound, seed = self.log_scale_bound, self.next_seed()
        return FactorOut(shape, inner, self.split_prior, None, bound, seed, **self.conditioning)

    def top_prior(self, shape):
        """The learned prior of the top latent, as a list of zero or one step."""
        if not self.learn_top_prior and self.conditional_shape is None:
            return []
        bound = self.log_scale_bound
        return [
            LearnedPrior(shape, self.learn_top_prior, log_scale_bound=bound, **self.conditioning)
        ]

    def chain(self, steps, name, event_ndims=3):
        return Chain(steps, event_ndims, validate_args=self.validate_args, name=name)

    def flow(self, steps, event_shape, event_ndims=3):
        """The distribution of the chain of `steps` over a standard Normal base."""
        bijector = self.chain(steps, f'{self.name or self.builder}_bijector', event_ndims)
        base = tfd.Sample(tfd.Normal(tf.zeros([], bijector.dtype), 1.0), event_shape)
        return tfd.TransformedDistribution(base, bijector, name=self.name)

    def act_norm(self, channels):
        return ActNorm(channels, **self.options)

    def data_side(self, event_shape, num_squeezes, preprocessing):
        """(`event_shape` checked, H and W divisible by 2 ** num_squeezes; its preprocessing)."""
        shape = checks.check_shape('event_shape', event_shape, (3,))
        factor = 2**num_squeezes
        if shape[0] % factor or shape[1] % factor:
            raise ValueError(
                f'{self.name or self.builder} with these levels squeezes {num_squeezes} times, '
                f'so height and width must be divisible by {factor}; got event_shape {shape!r}.'
            )
        if preprocessing == 'logit':
            return shape, LogitTransform(shape, alpha=self.alpha, **self.options)
        return shape, Centre(shape, **self.options)


def glow(
    event_shape,
    num_levels=3,
    num_steps=32,
    hidden_channels=512,
    coupling='affine',
    permutation='lu',
    split_prior=True,
    log_scale_bound=2.0,
    scale='tanh',
    preprocessing='centre',
    alpha=0.05,
    conditional_shape=None,
    learn_top_prior=False,
    dropout_rate=0.0,
    seed=0,
    dtype=tf.float32,
    dtype_policy=None,
    validate_args=False,
    name=None,
    spline_bins=8,
    spline_bound=3.0,
    loop=None,
    mixture_components=4,
    residual_blocks=0,
):
    """Glow (Kingma and Dhariwal 2018) on images in [0, 1]: a `tfd.TransformedDistribution`.

    Data x [H, W, C] in [0, 1] (dequantized) goes through the preprocessing, then each of L
    levels squeezes (2x2 space-to-depth), runs K steps of ActNorm -> invertible 1x1 conv (or
    channel permutation) -> coupling (channel mask) and, except the last, factors out half its
    channels: that is the data -> latent direction. The latent has the data's shape. The
    bijector, data side first:
      Chain([preprocessing, level_1]),
      level_l = Chain([Squeeze(), step_1, ..., step_K, FactorOut(level_{l+1}), Invert(Squeeze())])
    with each step three entries of the list, and the top prior (see the module docstring)
    before the last level's `Invert(Squeeze())`.

    Args:
      event_shape: [H, W, C]; H and W divisible by 2 ** num_levels.
      num_levels: L, the number of scales, a positive int.
      num_steps: K, flow steps per level, a positive int.
      permutation: 'lu' (LU-decomposed 1x1 conv), 'plain' (unconstrained 1x1 conv), or Glow's
        fixed 'reverse' and 'shuffle' (saved: a checkpoint restores its own shuffle).
      preprocessing: 'centre' (Glow's x - 1/2) or 'logit' (Real NVP's logit transform).
      loop: each level's K steps as one `tf.while_loop` over stacked parameters (`Loop`): the
        same map for the same seed, a graph that does not grow with K; checkpoints do not cross.
        None (the default): looped when K >= LOOP_FROM (8), where bench/README's depth table
        measured the loop as fast or faster per step and much faster to start.
      The others: see the module docstring.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """
    steps = _Steps(dict(locals(), builder='glow'))
    preprocessing = _PREPROCESSING.check('preprocessing', preprocessing)
    event_shape, first = steps.data_side(event_shape, steps.num_levels, preprocessing)
    return steps.flow([first, _glow_level(steps, event_shape, 1)], event_shape)


def _glow_level(steps, shape, number):
    """Level `number` of Glow on [H, W, C] = `shape`, with the levels after it inside."""
    height, width, channels = shape
    squeezed = (height // 2, width // 2, 4 * channels)
    flow_steps = [
        [steps.act_norm(4 * channels), steps.mixing(4 * channels), steps.coupling_step(squeezed)]
        for _ in range(steps.num_steps)
    ]
    layer = [s for step in flow_steps for s in step]
    if steps.loop or (steps.loop is None and steps.num_steps >= LOOP_FROM):
        layer = [Loop(flow_steps, validate_args=steps.validate_args, name=f'steps_{number}')]
    if number < steps.num_levels:
        inner = _glow_level(steps, (height // 2, width // 2, 2 * channels), number + 1)
        layer.append(steps.factor_out(squeezed, inner))
    else:
        layer += steps.top_prior(squeezed)
    return steps.chain([Squeeze(), *layer, tfb.Invert(Squeeze())], f'level_{number}')


def real_nvp(
    event_shape,
    num_levels=2,
    num_steps=3,
    hidden_channels=64,
    split_prior=False,
    log_scale_bound=2.0,
    scale='tanh',
    preprocessing=None,
    alpha=0.05,
    conditional_shape=None,
    learn_top_prior=False,
    dropout_rate=0.0,
    seed=0,
    dtype=tf.float32,
    dtype_policy=None,
    validate_args=False,
    name=None,
    coupling='affine',
    spline_bins=8,
    spline_bound=3.0,
    mixture_components=4,
    residual_blocks=0,
):
    """Real NVP (Dinh et al. 2017) as a `tfd.TransformedDistribution`.

    Images, `event_shape` [H, W, C], data in [0, 1]: the preprocessing, then per level
    `num_steps` couplings with alternating checkerboard masks, a squeeze, `num_steps`
    with alternating channel masks, and a factor-out of half the channels; the last level has
    `num_steps + 1` checkerboard couplings (the paper: 3 and 4). ActNorm after each coupling
    replaces the paper's batch norm, Glow's conv network its ResNet. The latent has the data's
    shape.

    Vectors, `event_shape` [D] (D >= 2, any reals, e.g. p(theta | x)): `num_steps`
    couplings alternating halves, each followed by an ActNorm, with MLP conditioners of two
    hidden layers of `hidden_channels` units; `num_levels` and `alpha` are not used, and
    `preprocessing` must be None.

    Args:
      event_shape: [H, W, C] with H, W divisible by 2 ** (num_levels - 1), or [D].
      num_levels: number of scales (images), a positive int.
      num_steps: couplings per mask type and level, a positive int.
      preprocessing: None (the family's default: 'logit' for images), 'logit' or 'centre'.
      The others: see the module docstring (`split_prior` is off in the paper).

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """
    steps = _Steps(dict(locals(), builder='real_nvp'))
    preprocessing = _PREPROCESSING.or_none().check('preprocessing', preprocessing)
    if np.shape(event_shape) == (1,):  # A vector [D].
        return _vector_real_nvp(steps, event_shape, preprocessing)
    num_squeezes = steps.num_levels - 1
    event_shape, first = steps.data_side(event_shape, num_squeezes, preprocessing or 'logit')
    return steps.flow([first, _real_nvp_level(steps, event_shape, 1)], event_shape)


def _coupling_pairs(steps, shape, mask, count):
    """`count` couplings with `mask`, alternating flip, each followed by an ActNorm."""
    layer = []
    for i in range(count):
        layer += [steps.coupling_step(shape, mask, flip=i % 2 == 1), steps.act_norm(shape[-1])]
    return layer


def _real_nvp_level(steps, shape, number):
    """Level `number` of Real NVP on [H, W, C] = `shape`, with the levels after it inside."""
    if number == steps.num_levels:
        layer = _coupling_pairs(steps, shape, 'checkerboard', steps.num_steps + 1)
        return steps.chain(layer + steps.top_prior(shape), f'level_{number}')
    height, width, channels = shape
    squeezed = (height // 2, width // 2, 4 * channels)
    layer = _coupling_pairs(steps, shape, 'checkerboard', steps.num_steps)
    layer.append(Squeeze())
    layer += _coupling_pairs(steps, squeezed, 'channel', steps.num_steps)
    inner = _real_nvp_level(steps, (height // 2, width // 2, 2 * channels), number + 1)
    layer.append(steps.factor_out(squeezed, inner))
    return steps.chain([*layer, tfb.Invert(Squeeze())], f'level_{number}')


def _vector_real_nvp(steps, event_shape, preprocessing):
    if preprocessing is not None:
        raise ValueError(
            'A vector real_nvp takes any real values and no preprocessing; got '
            f'preprocessing={preprocessing!r}.'
        )
    if not checks.integer(2).contains(event_shape[0]):
        raise ValueError(f'`event_shape` must be [D], D >= 2; got {tuple(event_shape)!r}.')
    if steps.residual_blocks:
        raise ValueError(f'`residual_blocks` applies to images; got {steps.residual_blocks!r}.')
    event_shape = (int(event_shape[0]),)
    layer = _coupling_pairs(steps, event_shape, 'channel', steps.num_steps)
    return steps.flow(layer + steps.top_prior(event_shape), event_shape, event_ndims=1)
