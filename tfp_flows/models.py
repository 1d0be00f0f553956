"""Real NVP and Glow as `tfd.TransformedDistribution`s over a standard Normal latent."""

import itertools

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.coupling import AdditiveCoupling, AffineCoupling
from tfp_flows.bijectors.invertible_conv import InvertibleConv1x1, LUInvertibleConv1x1
from tfp_flows.bijectors.multiscale import FactorOut
from tfp_flows.bijectors.preprocessing import Centre, LogitTransform
from tfp_flows.bijectors.squeeze import Squeeze

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['glow', 'real_nvp', 'sample']

_COUPLINGS = {'affine': AffineCoupling, 'additive': AdditiveCoupling}
_PERMUTATIONS = ('lu', 'plain', 'reverse', 'shuffle')


def _check_positive_int(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f'`{name}` must be a positive int; got {value!r}.')


def _check_image_shape(event_shape, num_squeezes, model):
    event_shape = tuple(event_shape)
    if len(event_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in event_shape):
        raise ValueError(
            f'{model} on images needs `event_shape` [H, W, C] of positive ints; got '
            f'{event_shape!r}.'
        )
    factor = 2**num_squeezes
    if event_shape[0] % factor or event_shape[1] % factor:
        raise ValueError(
            f'{model} with these levels squeezes {num_squeezes} times, so height and width must '
            f'be divisible by {factor}; got event_shape {event_shape!r}.'
        )
    return event_shape


def _standard_normal(event_shape, dtype):
    return tfd.Sample(tfd.Normal(tf.zeros([], dtype), tf.ones([], dtype)), event_shape)


def glow(
    event_shape,
    num_levels=3,
    num_steps=32,
    hidden_channels=512,
    coupling='affine',
    permutation='lu',
    split_prior=True,
    log_scale_bound=2.0,
    seed=0,
    dtype=tf.float32,
    validate_args=False,
    name='glow',
):
    """Glow (Kingma and Dhariwal 2018) on images in [0, 1]: a `tfd.TransformedDistribution`.

    Data x [H, W, C] in [0, 1] (dequantized), centred to x - 1/2. Each of `num_levels` levels
    squeezes (2x2 space-to-depth), runs `num_steps` steps of
        ActNorm -> invertible 1x1 conv (or channel permutation) -> coupling (channel mask),
    and, except the last, factors out half its channels (through a learned split prior when
    `split_prior`). The latent z has the data's shape [H, W, C]: each level's latent, placed
    back by the inverse squeezes; the base is a standard Normal on it.
    `log_prob(x)` is the density of x on [0, 1]^(H W C).

    Args:
      event_shape: [H, W, C]; H and W divisible by 2 ** num_levels.
      num_levels: L, the number of scales.
      num_steps: K, flow steps per level.
      hidden_channels: width of the coupling networks.
      coupling: 'affine' or 'additive'.
      permutation: 'lu' (LU-decomposed 1x1 conv), 'plain' (unconstrained 1x1 conv), or the
        fixed channel permutations 'reverse' and 'shuffle' of Glow's ablations.
      split_prior: learn the factored-out halves' prior from the kept halves.
      log_scale_bound: soft clamp of every log-scale (coupling and split prior).
      seed: Python int; fixes the initial parameters.
      dtype: tf.float32 or tf.float64.
      validate_args: add runtime checks of the inputs (range, finiteness, invertibility).
      name: name of the distribution.
    """
    _check_positive_int(num_levels=num_levels, num_steps=num_steps, hidden_channels=hidden_channels)
    event_shape = _check_image_shape(event_shape, num_levels, 'glow')
    if coupling not in _COUPLINGS:
        raise ValueError(f'`coupling` must be one of {tuple(_COUPLINGS)}; got {coupling!r}.')
    if permutation not in _PERMUTATIONS:
        raise ValueError(f'`permutation` must be one of {_PERMUTATIONS}; got {permutation!r}.')
    seeds = itertools.count(seed * 100_003)
    options = dict(dtype=dtype, validate_args=validate_args)

    def mixing(channels):
        if permutation == 'lu':
            return LUInvertibleConv1x1(channels, seed=next(seeds), **options)
        if permutation == 'plain':
            return InvertibleConv1x1(channels, seed=next(seeds), **options)
        if permutation == 'reverse':
            return tfb.Permute(list(reversed(range(channels))), validate_args=validate_args)
        shuffled = tf.random.experimental.stateless_shuffle(tf.range(channels), [next(seeds), 0])
        return tfb.Permute(shuffled, validate_args=validate_args)

    def coupling_layer(shape):
        kwargs = dict(hidden_channels=hidden_channels, seed=next(seeds), **options)
        if coupling == 'affine':
            kwargs['log_scale_bound'] = log_scale_bound
        return _COUPLINGS[coupling](shape, mask='channel', **kwargs)

    def level(shape, levels_left):
        height, width, channels = shape
        squeezed = (height // 2, width // 2, 4 * channels)
        steps = []
        for _ in range(num_steps):
            steps += [
                ActNorm(squeezed[-1], **options),
                mixing(squeezed[-1]),
                coupling_layer(squeezed),
            ]
        if levels_left > 1:
            inner = level((height // 2, width // 2, 2 * channels), levels_left - 1)
            steps.append(
                FactorOut(
                    squeezed,
                    inner,
                    split_prior=split_prior,
                    log_scale_bound=log_scale_bound,
                    seed=next(seeds),
                    **options,
                )
            )
        # Listed data -> latent: squeeze, steps, factor-out, then back to this level's shape.
        return Chain(
            [tfb.Invert(Squeeze()), *steps, Squeeze()],
            validate_args=validate_args,
            name=f'level_{num_levels - levels_left + 1}',
        )

    bijector = Chain(
        [Centre(event_shape, **options), level(event_shape, num_levels)],
        validate_args=validate_args,
        name=f'{name}_bijector',
    )
    return tfd.TransformedDistribution(_standard_normal(event_shape, dtype), bijector, name=name)


def real_nvp(
    event_shape,
    num_levels=2,
    num_steps=3,
    hidden_channels=64,
    split_prior=False,
    log_scale_bound=2.0,
    alpha=0.05,
    seed=0,
    dtype=tf.float32,
    validate_args=False,
    name='real_nvp',
):
    """Real NVP (Dinh et al. 2017) as a `tfd.TransformedDistribution`.

    Images, `event_shape` [H, W, C], data in [0, 1]: the logit transform, then per level
    `num_steps` affine couplings with alternating checkerboard masks, a squeeze, `num_steps`
    with alternating channel masks, and a factor-out of half the channels; the last level has
    `num_steps + 1` checkerboard couplings (the paper: 3 and 4). ActNorm follows each coupling
    in place of the paper's batch normalisation, and the couplings use Glow's conv network
    (`hidden_channels` wide) in place of the paper's ResNet. The latent has the data's shape.

    Vectors, `event_shape` [D] (D >= 2, e.g. 2-D toy data, any real values): `num_steps`
    affine couplings alternating between the two halves of the vector, each followed by an
    ActNorm; the conditioners are MLPs with two hidden layers of `hidden_channels` units.
    `num_levels` and `alpha` do not apply.

    Args:
      event_shape: [H, W, C] with H, W divisible by 2 ** (num_levels - 1), or [D].
      num_levels: number of scales (images).
      num_steps: couplings per mask type and level.
      hidden_channels: width of the coupling networks.
      split_prior: learn the factored-out halves' prior (off in the paper).
      log_scale_bound: soft clamp of every log-scale.
      alpha: the logit transform's margin (images).
      seed: Python int; fixes the initial parameters.
      dtype: tf.float32 or tf.float64.
      validate_args: add runtime checks of the inputs.
      name: name of the distribution.
    """
    _check_positive_int(num_levels=num_levels, num_steps=num_steps, hidden_channels=hidden_channels)
    seeds = itertools.count(seed * 100_003)
    options = dict(dtype=dtype, validate_args=validate_args)

    def coupling_pair(shape, mask, flip):
        return [
            AffineCoupling(
                shape,
                mask=mask,
                flip=flip,
                hidden_channels=hidden_channels,
                log_scale_bound=log_scale_bound,
                seed=next(seeds),
                **options,
            ),
            ActNorm(shape[-1], **options),
        ]

    event_shape = tuple(event_shape)
    if len(event_shape) == 1:
        if not isinstance(event_shape[0], int) or event_shape[0] < 2:
            raise ValueError(
                f'A vector real_nvp needs event_shape [D], D >= 2; got {event_shape!r}.'
            )
        steps = []
        for i in range(num_steps):
            steps += coupling_pair(event_shape, 'channel', flip=i % 2 == 1)
        bijector = Chain(steps, validate_args=validate_args, name=f'{name}_bijector')
        return tfd.TransformedDistribution(
            _standard_normal(event_shape, dtype), bijector, name=name
        )

    event_shape = _check_image_shape(event_shape, num_levels - 1, 'real_nvp')

    def level(shape, levels_left):
        height, width, channels = shape
        if levels_left == 1:
            steps = []
            for i in range(num_steps + 1):
                steps += coupling_pair(shape, 'checkerboard', flip=i % 2 == 1)
            return Chain(steps, validate_args=validate_args, name=f'level_{num_levels}')
        squeezed = (height // 2, width // 2, 4 * channels)
        steps = []
        for i in range(num_steps):
            steps += coupling_pair(shape, 'checkerboard', flip=i % 2 == 1)
        steps.append(tfb.Invert(Squeeze()))
        for i in range(num_steps):
            steps += coupling_pair(squeezed, 'channel', flip=i % 2 == 1)
        inner = level((height // 2, width // 2, 2 * channels), levels_left - 1)
        steps.append(
            FactorOut(
                squeezed,
                inner,
                split_prior=split_prior,
                log_scale_bound=log_scale_bound,
                seed=next(seeds),
                **options,
            )
        )
        return Chain(
            [*steps, Squeeze()],
            validate_args=validate_args,
            name=f'level_{num_levels - levels_left + 1}',
        )

    bijector = Chain(
        [LogitTransform(event_shape, alpha=alpha, **options), level(event_shape, num_levels)],
        validate_args=validate_args,
        name=f'{name}_bijector',
    )
    return tfd.TransformedDistribution(_standard_normal(event_shape, dtype), bijector, name=name)


def sample(flow, sample_shape=(), temperature=1.0, seed=None):
    """Samples `flow` with its standard Normal latent scaled by `temperature`.

    x = flow.bijector.forward(temperature * z),  z ~ flow.distribution. Temperature 1 is
    `flow.sample`; lower temperatures (Glow uses 0.7) trade diversity for quality.
    """
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ValueError(f'`temperature` must be > 0; got {temperature!r}.')
    latent = flow.distribution.sample(sample_shape, seed=seed)
    return flow.bijector.forward(latent * tf.cast(temperature, latent.dtype))
