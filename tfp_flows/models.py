"""Real NVP and Glow as `tfd.TransformedDistribution`s over a standard Normal latent."""

import itertools
import numbers

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.context import check_conditional_shape
from tfp_flows.bijectors.coupling import AdditiveCoupling, AffineCoupling
from tfp_flows.bijectors.invertible_conv import InvertibleConv1x1, LUInvertibleConv1x1
from tfp_flows.bijectors.multiscale import FactorOut
from tfp_flows.bijectors.preprocessing import Centre, LogitTransform
from tfp_flows.bijectors.prior import LearnedPrior
from tfp_flows.bijectors.scale import SCALES, check_scale
from tfp_flows.bijectors.squeeze import Squeeze
from tfp_flows.mixed_precision import check_dtype_policy
from tfp_flows.networks import check_dropout_rate
from tfp_flows.validation import (
    Interval,
    check_bool,
    check_float_dtype,
    check_image_event_shape,
    check_int,
    check_one_of,
    check_positive_int,
    check_sample_shape,
    check_scalar,
    check_stateless_seed,
)

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['check_flow', 'check_temperature', 'glow', 'real_nvp', 'sample', 'sample_latent']

_COUPLINGS = {'affine': AffineCoupling, 'additive': AdditiveCoupling}
_PERMUTATIONS = ('lu', 'plain', 'reverse', 'shuffle')
_PREPROCESSINGS = ('centre', 'logit')
_DTYPES = (tf.float32, tf.float64)


def _check_common(dtype, seed, alpha, preprocessing, split_prior, validate_args):
    """Checks the arguments both model builders share; returns the dtype as a `tf.DType`."""
    dtype = check_float_dtype('dtype', dtype, _DTYPES)
    check_int('seed', seed, low=0, high=2**31)
    if preprocessing is not None:
        check_one_of('preprocessing', preprocessing, _PREPROCESSINGS)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha < 0.5:
        raise ValueError(f'`alpha` must be a number in [0, 0.5); got {alpha!r}.')
    check_bool('split_prior', split_prior)
    check_bool('validate_args', validate_args)
    return dtype


def _check_divisible(event_shape, num_squeezes, model):
    factor = 2**num_squeezes
    if event_shape[0] % factor or event_shape[1] % factor:
        raise ValueError(
            f'{model} with these levels squeezes {num_squeezes} times, so height and width must '
            f'be divisible by {factor}; got event_shape {event_shape!r}.'
        )


def _standard_normal(event_shape, dtype):
    return tfd.Sample(tfd.Normal(tf.zeros([], dtype), tf.ones([], dtype)), event_shape)


def _preprocessing_step(preprocessing, event_shape, alpha, options):
    if preprocessing == 'logit':
        return LogitTransform(event_shape, alpha=alpha, **options)
    return Centre(event_shape, **options)


def _saved_permutation(permutation, name):
    """`tfb.Permute` with its permutation as a saved, non-trainable variable."""
    variable = tf.Variable(permutation, trainable=False, dtype=tf.int32, name='permutation')
    return tfb.Permute(variable, name=name)


def _factor_out(
    shape,
    inner,
    split_prior,
    log_scale_bound,
    seed,
    options,
    conditional_shape=None,
    dtype_policy=None,
):
    return FactorOut(
        shape,
        inner,
        split_prior=split_prior,
        log_scale_bound=log_scale_bound,
        seed=seed,
        conditional_shape=conditional_shape,
        dtype_policy=dtype_policy,
        **options,
    )


def _check_conditioning(conditional_shape, learn_top_prior, dropout_rate):
    """Checks the conditioning and regularisation options; returns (shape, top prior?, rate)."""
    conditional_shape = check_conditional_shape(conditional_shape)
    if not isinstance(learn_top_prior, bool):
        raise ValueError(f'`learn_top_prior` must be True or False; got {learn_top_prior!r}.')
    return conditional_shape, learn_top_prior, check_dropout_rate(dropout_rate)


def _top_prior(
    shape, learn_top_prior, conditional_shape, log_scale_bound, options, dtype_policy=None
):
    """The learned prior of the top latent, as a list of zero or one step."""
    if not learn_top_prior and conditional_shape is None:
        return []
    return [
        LearnedPrior(
            shape,
            learned=learn_top_prior,
            conditional_shape=conditional_shape,
            log_scale_bound=log_scale_bound,
            dtype_policy=dtype_policy,
            **options,
        )
    ]


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
    name='glow',
):
    """Glow (Kingma and Dhariwal 2018) on images in [0, 1]: a `tfd.TransformedDistribution`.

    Data x [H, W, C] in [0, 1] (dequantized) goes through the preprocessing (centred to
    x - 1/2, or the logit transform), then each of `num_levels` levels squeezes (2x2
    space-to-depth), runs `num_steps` steps of
        ActNorm -> invertible 1x1 conv (or channel permutation) -> coupling (channel mask)
    and, except the last, factors out half its channels (through a learned split prior when
    `split_prior`). That is the data -> latent direction; `forward` runs it backwards. The
    latent z has the data's shape [H, W, C]: each level's latent, placed back by the inverse
    squeezes; the base is a standard Normal on it. `log_prob(x)` is the density of x on
    [0, 1]^(H W C) in nats; with preprocessing='logit' it is -inf outside the logit's support.

    The bijector is a `tfp_flows.bijectors.Chain`, listed in TFP's order (data side first):
      Chain([preprocessing, level_1]),
      level_l = Chain([Squeeze(), step_1, ..., step_K, FactorOut(level_{l+1}), Invert(Squeeze())])
      step_k  = ActNorm, 1x1 conv, coupling (as three entries of the level's list)
    and the last level ends with `LearnedPrior(top latent)` before its `Invert(Squeeze())`
    when `learn_top_prior` or `conditional_shape` is given.

    Conditional Glow (`conditional_shape`) models p(x | c) for a context c of shape
    [*batch, *conditional_shape] (a one-hot label [10], or any features), passed as TFP's
    bijector kwarg: `flow.log_prob(x, bijector_kwargs={'conditional_input': c})`,
    `flow.sample(n, bijector_kwargs={'conditional_input': c})` (c [n, ...], or one context
    for all), `flow.bijector.forward(z, conditional_input=c)`, `tfp_flows.sample(flow, n,
    conditional_input=c)`. Every coupling network sees c (flattened, spatially broadcast and
    concatenated to its input), and c sets a term of the mean and log-scale of the top
    latent and of every split prior (Glow's `ycond`; zero at initialisation).

    Args:
      event_shape: [H, W, C]; H and W divisible by 2 ** num_levels.
      num_levels: L, the number of scales.
      num_steps: K, flow steps per level.
      hidden_channels: width of the coupling networks.
      coupling: 'affine' or 'additive'.
      permutation: 'lu' (LU-decomposed 1x1 conv), 'plain' (unconstrained 1x1 conv), or the
        fixed channel permutations 'reverse' and 'shuffle' of Glow's ablations (saved with the
        flow's variables, so a checkpoint restores the same shuffle whatever `seed` built it).
      split_prior: learn the factored-out halves' prior from the kept halves.
      log_scale_bound: soft clamp of every log-scale (couplings with scale='tanh' and the split
        priors).
      scale: the affine couplings' scale, 'tanh' (the soft clamp) or 'sigmoid' (Glow's
        sigmoid(h + 2)); see `tfp_flows.bijectors.scale`.
      preprocessing: 'centre' (Glow's x - 1/2) or 'logit' (Real NVP's logit transform).
      alpha: margin of the logit transform, in [0, 0.5).
      conditional_shape: None (an unconditional flow), or the shape of one context, e.g.
        (10,) for one-hot labels of 10 classes.
      learn_top_prior: learn a free mean and log-scale of the top latent (Glow's `learntop`;
        zero-initialised, so a fresh model is unchanged).
      dropout_rate: in [0, 1); dropout of the coupling networks' hidden units, active only
        with the bijector kwarg `training=True` (Flow++, https://arxiv.org/abs/1902.00275).
        Evaluation, sampling and export never pass it, so they are deterministic.
      seed: int in [0, 2**31); fixes the initial parameters and the 'shuffle' permutations.
      dtype: tf.float32 or tf.float64.
      dtype_policy: None, or Keras' mixed-precision policy 'mixed_bfloat16' or
        'mixed_float16' (or a `keras.mixed_precision.DTypePolicy` of one; dtype must be
        float32): the coupling and split-prior networks compute in bfloat16 / float16 and
        return float32; every variable, ActNorm, the 1x1 convs, the couplings' affine maps,
        every log-det and log-density stay float32 (`tfp_flows.mixed_precision`). It changes
        rounding only: a checkpoint restores into the model with any policy.
      validate_args: add run-time checks of the inputs (range, finiteness, invertibility).
      name: name of the distribution.

    Raises:
      ValueError: for any argument outside its domain, naming it and its value.

    Reference: Kingma and Dhariwal (2018), Glow. https://arxiv.org/abs/1807.03039
    """
    check_positive_int('num_levels', num_levels)
    check_positive_int('num_steps', num_steps)
    check_positive_int('hidden_channels', hidden_channels)
    dtype = _check_common(dtype, seed, alpha, preprocessing, split_prior, validate_args)
    event_shape = check_image_event_shape(event_shape, 'glow')
    _check_divisible(event_shape, num_levels, 'glow')
    check_one_of('coupling', coupling, tuple(_COUPLINGS))
    check_one_of('permutation', permutation, _PERMUTATIONS)
    check_one_of('scale', scale, SCALES)
    check_scale(scale, log_scale_bound)
    conditional_shape, learn_top_prior, dropout_rate = _check_conditioning(
        conditional_shape, learn_top_prior, dropout_rate
    )
    dtype_policy = check_dtype_policy(dtype_policy, dtype)
    seeds = itertools.count(seed * 100_003)
    options = dict(dtype=dtype, validate_args=validate_args)

    def mixing(channels):
        if permutation == 'lu':
            return LUInvertibleConv1x1(channels, seed=next(seeds), **options)
        if permutation == 'plain':
            return InvertibleConv1x1(channels, seed=next(seeds), **options)
        if permutation == 'reverse':
            return _saved_permutation(list(reversed(range(channels))), 'reverse')
        shuffled = tf.random.experimental.stateless_shuffle(tf.range(channels), [next(seeds), 0])
        return _saved_permutation(shuffled, 'shuffle')

    def coupling_layer(shape):
        kwargs = dict(
            hidden_channels=hidden_channels,
            seed=next(seeds),
            conditional_shape=conditional_shape,
            dropout_rate=dropout_rate,
            dtype_policy=dtype_policy,
            **options,
        )
        if coupling == 'affine':
            kwargs.update(log_scale_bound=log_scale_bound, scale=scale)
        return _COUPLINGS[coupling](shape, mask='channel', **kwargs)

    def level(shape, number):
        height, width, channels = shape
        squeezed = (height // 2, width // 2, 4 * channels)
        steps = []
        for _ in range(num_steps):
            steps += [
                ActNorm(squeezed[-1], **options),
                mixing(squeezed[-1]),
                coupling_layer(squeezed),
            ]
        if number < num_levels:
            inner = level((height // 2, width // 2, 2 * channels), number + 1)
            steps.append(
                _factor_out(
                    squeezed,
                    inner,
                    split_prior,
                    log_scale_bound,
                    next(seeds),
                    options,
                    conditional_shape,
                    dtype_policy,
                )
            )
        else:
            steps += _top_prior(
                squeezed, learn_top_prior, conditional_shape, log_scale_bound, options, dtype_policy
            )
        return Chain(
            [Squeeze(), *steps, tfb.Invert(Squeeze())],
            validate_args=validate_args,
            name=f'level_{number}',
        )

    bijector = Chain(
        [_preprocessing_step(preprocessing, event_shape, alpha, options), level(event_shape, 1)],
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
    name='real_nvp',
):
    """Real NVP (Dinh et al. 2017) as a `tfd.TransformedDistribution`.

    Images, `event_shape` [H, W, C], data in [0, 1]: the preprocessing (the logit transform by
    default), then per level `num_steps` affine couplings with alternating checkerboard masks,
    a squeeze, `num_steps` with alternating channel masks, and a factor-out of half the
    channels; the last level has `num_steps + 1` checkerboard couplings (the paper: 3 and 4).
    ActNorm follows each coupling in place of the paper's batch normalisation, and the
    couplings use Glow's conv network (`hidden_channels` wide) in place of the paper's ResNet.
    The latent has the data's shape. That is the data -> latent direction; `forward` runs it
    backwards, and the chains are listed data side first, as in TFP.

    Vectors, `event_shape` [D] (D >= 2, e.g. 2-D toy data, any real values): `num_steps`
    affine couplings alternating between the two halves of the vector, each followed by an
    ActNorm; the conditioners are MLPs with two hidden layers of `hidden_channels` units.
    `num_levels`, `preprocessing` and `alpha` do not apply (`preprocessing` must be None).

    Conditional (`conditional_shape`), as in `glow`: every coupling network sees the context
    c, and c sets a term of the mean and log-scale of the last level's latent (images) or of
    the whole latent (vectors) and of every split prior. A vector model of p(theta | x) is a
    conditional density estimator (e.g. a posterior from simulated pairs). With
    `learn_top_prior` or `conditional_shape` a `LearnedPrior` is the last step at the latent
    side (the end of the last level's chain).

    Args:
      event_shape: [H, W, C] with H, W divisible by 2 ** (num_levels - 1), or [D].
      num_levels: number of scales (images).
      num_steps: couplings per mask type and level.
      hidden_channels: width of the coupling networks.
      split_prior: learn the factored-out halves' prior (off in the paper).
      log_scale_bound: soft clamp of every log-scale.
      scale: the couplings' scale, 'tanh' or 'sigmoid' (see `glow`).
      preprocessing: None (the family's default: 'logit' for images), 'logit' or 'centre'.
      alpha: the logit transform's margin (images), in [0, 0.5).
      conditional_shape: None, or the shape of one context (see `glow`).
      learn_top_prior: learn a free mean and log-scale of the top latent (see `glow`).
      dropout_rate: in [0, 1); dropout in the coupling networks with `training=True` only.
      seed: int in [0, 2**31); fixes the initial parameters.
      dtype: tf.float32 or tf.float64.
      dtype_policy: None, 'mixed_bfloat16' or 'mixed_float16': the coupling and prior
        networks' compute precision (see `glow`).
      validate_args: add run-time checks of the inputs.
      name: name of the distribution.

    Raises:
      ValueError: for any argument outside its domain, naming it and its value.

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """
    check_positive_int('num_levels', num_levels)
    check_positive_int('num_steps', num_steps)
    check_positive_int('hidden_channels', hidden_channels)
    dtype = _check_common(dtype, seed, alpha, preprocessing, split_prior, validate_args)
    check_one_of('scale', scale, SCALES)
    check_scale(scale, log_scale_bound)
    conditional_shape, learn_top_prior, dropout_rate = _check_conditioning(
        conditional_shape, learn_top_prior, dropout_rate
    )
    dtype_policy = check_dtype_policy(dtype_policy, dtype)
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
                scale=scale,
                seed=next(seeds),
                conditional_shape=conditional_shape,
                dropout_rate=dropout_rate,
                dtype_policy=dtype_policy,
                **options,
            ),
            ActNorm(shape[-1], **options),
        ]

    try:
        rank = len(event_shape)
    except TypeError:
        rank = None
    if rank == 1:
        if preprocessing is not None:
            raise ValueError(
                'A vector real_nvp takes any real values and no preprocessing; got '
                f'preprocessing={preprocessing!r}.'
            )
        size = event_shape[0]
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 2:
            raise ValueError(
                f'A vector real_nvp needs event_shape [D], D >= 2; got {tuple(event_shape)!r}.'
            )
        event_shape = (int(size),)
        steps = []
        for i in range(num_steps):
            steps += coupling_pair(event_shape, 'channel', flip=i % 2 == 1)
        steps += _top_prior(
            event_shape, learn_top_prior, conditional_shape, log_scale_bound, options, dtype_policy
        )
        bijector = Chain(steps, event_ndims=1, validate_args=validate_args, name=f'{name}_bijector')
        return tfd.TransformedDistribution(
            _standard_normal(event_shape, dtype), bijector, name=name
        )

    event_shape = check_image_event_shape(event_shape, 'real_nvp')
    _check_divisible(event_shape, num_levels - 1, 'real_nvp')

    def level(shape, number):
        height, width, channels = shape
        steps = []
        if number == num_levels:
            for i in range(num_steps + 1):
                steps += coupling_pair(shape, 'checkerboard', flip=i % 2 == 1)
            steps += _top_prior(
                shape, learn_top_prior, conditional_shape, log_scale_bound, options, dtype_policy
            )
            return Chain(steps, validate_args=validate_args, name=f'level_{number}')
        squeezed = (height // 2, width // 2, 4 * channels)
        for i in range(num_steps):
            steps += coupling_pair(shape, 'checkerboard', flip=i % 2 == 1)
        steps.append(Squeeze())
        for i in range(num_steps):
            steps += coupling_pair(squeezed, 'channel', flip=i % 2 == 1)
        inner = level((height // 2, width // 2, 2 * channels), number + 1)
        steps.append(
            _factor_out(
                squeezed,
                inner,
                split_prior,
                log_scale_bound,
                next(seeds),
                options,
                conditional_shape,
                dtype_policy,
            )
        )
        return Chain(
            [*steps, tfb.Invert(Squeeze())], validate_args=validate_args, name=f'level_{number}'
        )

    bijector = Chain(
        [
            _preprocessing_step(preprocessing or 'logit', event_shape, alpha, options),
            level(event_shape, 1),
        ],
        validate_args=validate_args,
        name=f'{name}_bijector',
    )
    return tfd.TransformedDistribution(_standard_normal(event_shape, dtype), bijector, name=name)


_SEED = 'None, an int in [0, 2**62) or an int tensor of shape [2] (a stateless seed)'


def _stateless_seed(seed):
    """A stateless seed, int32 [2] as TFP takes it, from an int (the same samples on every
    call), an int tensor [2] (taken modulo 2**32), or None (fresh samples each call)."""
    if seed is None:
        return None
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= seed < 2**62:
            raise ValueError(f'`seed` must be {_SEED}; got {seed!r}.')
        return tf.constant([int(seed) >> 31, int(seed) & (2**31 - 1)], tf.int32)
    return tf.cast(check_stateless_seed('seed', seed, description=_SEED), tf.int32)


def check_temperature(temperature, dtype):
    """`temperature` as a scalar `dtype` tensor, checked to be finite and > 0.

    A Python number is checked now (`ValueError`); a tensor at run time, eagerly and inside
    `tf.function` alike (`InvalidArgumentError`), with the same message; a tensor that is not
    a scalar raises `ValueError` (or `InvalidArgumentError` when its rank is only known then),
    one of strings or bools `TypeError`.
    """
    dtype = check_float_dtype('dtype', dtype)
    return check_scalar('temperature', temperature, Interval(low=0, low_open=True), dtype)


def check_flow(flow):
    """Raises `TypeError` unless `flow` is a `tfd.TransformedDistribution`-like flow."""
    if not isinstance(flow, tfd.Distribution) or not isinstance(
        getattr(flow, 'bijector', None), tfb.Bijector
    ):
        raise TypeError(
            '`flow` must be a `tfd.TransformedDistribution` (as built by `tfp_flows.glow` or '
            f'`tfp_flows.real_nvp`); got {type(flow).__name__}.'
        )


def sample(flow, sample_shape=(), temperature=1.0, seed=None, conditional_input=None):
    """Samples `flow` with its base noise scaled by `temperature`.

    x = flow.bijector.forward(temperature * z),  z ~ flow.distribution. Temperature 1 is
    `flow.sample`; lower temperatures (Glow uses 0.7) trade diversity for quality. For a base
    other than a zero-mean one, scaling z is still what this does. A conditional flow samples
    p(x | c) with `conditional_input` c: `flow.bijector.forward(temperature * z,
    conditional_input=c)`. (The temperature scales the standard Normal base, so with a learned
    prior the latent is mean + exp(log_scale) * temperature * z, as in Glow.)

    Args:
      flow: a `tfd.TransformedDistribution`, e.g. from `glow` or `real_nvp`.
      sample_shape: shape of the batch of samples: an int >= 0, a list of them, or an int
        tensor of rank 0 or 1 (checked at run time).
      temperature: finite number > 0, or a scalar tensor (checked at run time).
      seed: an int in [0, 2**62) (the same samples on every call), a stateless seed (an int
        tensor [2]), or None (new samples each call).
      conditional_input: for a conditional flow, the context c [*c_batch, *conditional_shape]
        with c_batch broadcastable to `sample_shape` (one context per sample, or one for
        all: [*conditional_shape]); None for an unconditional flow.

    Returns:
      A tensor [*sample_shape, *event_shape] in the flow's dtype.

    Raises:
      TypeError: for a `flow` that is not a `tfd.TransformedDistribution`.
      ValueError: for a temperature that is not finite and > 0, a negative or non-int
        sample shape, or a bad seed; for a missing or wrongly shaped context of a
        conditional flow, or a context given to an unconditional one (naming both shapes);
        `tf.errors.InvalidArgumentError` for such a temperature or sample shape given as a
        tensor.
    """
    check_flow(flow)
    latent = sample_latent(flow, sample_shape, temperature, seed)
    if conditional_input is None:
        return flow.bijector.forward(latent)
    return flow.bijector.forward(latent, conditional_input=conditional_input)


def sample_latent(flow, sample_shape=(), temperature=1.0, seed=None):
    """temperature * z with z ~ flow.distribution: the latent `sample` decodes.

    Arguments and errors as for `sample`; returns [*sample_shape, *latent event shape].
    """
    check_flow(flow)
    sample_shape = check_sample_shape('sample_shape', sample_shape)
    temperature = check_temperature(temperature, flow.dtype)
    return flow.distribution.sample(sample_shape, seed=_stateless_seed(seed)) * temperature
