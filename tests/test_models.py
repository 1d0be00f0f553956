"""Tests of tfp_flows/models.py: Glow and Real NVP as TransformedDistributions."""

import checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows import networks
from tfp_flows.bijectors import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Centre,
    FactorOut,
    InvertibleConv1x1,
    LUInvertibleConv1x1,
    SplineCoupling,
    Squeeze,
)
from tfp_flows.bijectors import LogisticMixtureCoupling as MixtureCoupling

tfb = tfp.bijectors
tfd = tfp.distributions

IMAGE = (8, 8, 1)
SMALL = dict(num_levels=2, num_steps=1, hidden_channels=8)
MODELS = {
    'glow': lambda dtype: tfp_flows.glow(IMAGE, **SMALL, dtype=dtype),
    'glow_plain': lambda dtype: tfp_flows.glow(IMAGE, **SMALL, permutation='plain', dtype=dtype),
    'glow_reverse': lambda dtype: tfp_flows.glow(
        IMAGE, **SMALL, permutation='reverse', dtype=dtype
    ),
    'glow_shuffle': lambda dtype: tfp_flows.glow(
        IMAGE, **SMALL, permutation='shuffle', dtype=dtype
    ),
    'glow_additive': lambda dtype: tfp_flows.glow(IMAGE, **SMALL, coupling='additive', dtype=dtype),
    'glow_no_split_prior': lambda dtype: tfp_flows.glow(
        IMAGE, **SMALL, split_prior=False, dtype=dtype
    ),
    'real_nvp': lambda dtype: tfp_flows.real_nvp(IMAGE, **SMALL, dtype=dtype),
    'real_nvp_split_prior': lambda dtype: tfp_flows.real_nvp(
        IMAGE, **SMALL, split_prior=True, dtype=dtype
    ),
    'real_nvp_vector': lambda dtype: tfp_flows.real_nvp(
        (2,), num_steps=4, hidden_channels=16, dtype=dtype
    ),
    'glow_spline': lambda dtype: tfp_flows.glow(IMAGE, **SMALL, coupling='spline', dtype=dtype),
    'real_nvp_spline': lambda dtype: tfp_flows.real_nvp(
        IMAGE, **SMALL, coupling='spline', spline_bins=5, spline_bound=2.0, dtype=dtype
    ),
    'real_nvp_logistic_mixture': lambda dtype: tfp_flows.real_nvp(
        IMAGE, **SMALL, coupling='logistic_mixture', mixture_components=3, dtype=dtype
    ),
    'real_nvp_residual': lambda dtype: tfp_flows.real_nvp(
        IMAGE, **SMALL, residual_blocks=2, dtype=dtype
    ),
    'glow_residual_looped': lambda dtype: tfp_flows.glow(
        IMAGE,
        num_levels=2,
        num_steps=2,
        hidden_channels=8,
        residual_blocks=1,
        loop=True,
        dtype=dtype,
    ),
}


def _random_flow(name, dtype=tf.float32, seed=0):
    return checks.randomize_variables(MODELS[name](dtype), seed=seed)


def _data_and_latent(flow, batch_shape, seed, dtype=tf.float32):
    """Data (in (0, 1) for images, any reals for vectors) and a standard Normal latent."""
    shape = [*batch_shape, *flow.event_shape]
    latent = tf.random.stateless_normal(shape, [7, seed], dtype=dtype)
    if len(flow.event_shape) == 1:
        return tf.random.stateless_normal(shape, [7, seed + 1], dtype=dtype), latent
    return tf.random.stateless_uniform(shape, [7, seed + 1], 0.02, 0.98, dtype=dtype), latent


# Each model in float32 and float64; the variants of Glow's options in float64 only.
DTYPE_CASES = [
    *(
        (name, dtype)
        for name in ('glow', 'glow_plain', 'real_nvp', 'real_nvp_vector')
        for dtype in checks.DTYPES
    ),
    *(
        (name, tf.float64)
        for name in (
            'glow_reverse',
            'glow_shuffle',
            'glow_additive',
            'glow_no_split_prior',
            'real_nvp_split_prior',
            'glow_spline',
            'real_nvp_residual',
            'glow_residual_looped',
        )
    ),
    ('real_nvp_spline', tf.float32),
    # float64: in float32 this random chain sends a latent to the logit's saturated end (a pixel
    # at 1.0556), whose rounding passes the bound (each coupling round-trips to 1e-6 in float32).
    ('real_nvp_logistic_mixture', tf.float64),
]


@pytest.mark.parametrize(('name', 'dtype'), DTYPE_CASES)
def test_log_det_matches_autodiff_both_ways(name, dtype):
    flow = _random_flow(name, dtype)
    data, latent = _data_and_latent(flow, [2], seed=0, dtype=dtype)
    bijector, ndims = flow.bijector, len(flow.event_shape)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        bijector.forward, bijector.forward_log_det_jacobian, latent, ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(
        bijector.inverse, bijector.inverse_log_det_jacobian, data, ndims, **tol
    )
    checks.assert_round_trip(bijector, latent, data, ndims, dtype)


def test_log_prob_is_the_base_density_of_the_latent_plus_the_log_det():
    flow = _random_flow('glow', tf.float64)
    data, _ = _data_and_latent(flow, [2], seed=1, dtype=tf.float64)
    latent = flow.bijector.inverse(data)
    expected = tfd.Normal(np.float64(0), 1).log_prob(latent).numpy().sum(axis=(1, 2, 3))
    expected += flow.bijector.inverse_log_det_jacobian(data, event_ndims=3)
    np.testing.assert_allclose(flow.log_prob(data), expected, rtol=1e-12)
    assert flow.event_shape == IMAGE and flow.batch_shape == []
    assert latent.shape == [2, *IMAGE]


@pytest.mark.parametrize('name', ['glow', 'real_nvp', 'real_nvp_vector'])
def test_extra_batch_dims(name):
    flow = _random_flow(name)
    data, latent = _data_and_latent(flow, [2, 3], seed=2)
    event_shape = flow.event_shape.as_list()
    log_prob = flow.log_prob(data)
    assert log_prob.shape == [2, 3]
    flat = flow.log_prob(tf.reshape(data, [6, *event_shape]))
    np.testing.assert_allclose(tf.reshape(log_prob, [6]), flat, rtol=1e-5)
    assert flow.bijector.forward(latent).shape == [2, 3, *event_shape]
    samples = tfp_flows.sample(flow, [2, 3], seed=[1, 2])
    assert samples.shape == [2, 3, *event_shape]
    assert flow.sample([2, 3], seed=[1, 2]).shape == [2, 3, *event_shape]


@pytest.mark.parametrize('name', ['glow', 'real_nvp', 'real_nvp_vector'])
def test_tf_function_with_unknown_batch_traces_once(name):
    flow = _random_flow(name)
    spec = tf.TensorSpec([None, *flow.event_shape], tf.float32)
    log_prob = tf.function(flow.log_prob, input_signature=[spec])
    data, _ = _data_and_latent(flow, [3], seed=3)
    np.testing.assert_allclose(log_prob(data), flow.log_prob(data), rtol=1e-5)
    np.testing.assert_allclose(log_prob(data[:2]), log_prob(data)[:2], rtol=1e-6)
    assert log_prob.experimental_get_tracing_count() == 1


def test_tf_function_does_not_retrace_for_a_new_batch_of_the_same_shape():
    flow = _random_flow('glow')
    log_prob = tf.function(flow.log_prob)
    forward = tf.function(flow.bijector.forward)
    for seed in (6, 7):
        data, latent = _data_and_latent(flow, [2], seed=seed)
        log_prob(data)
        forward(latent)
    assert log_prob.experimental_get_tracing_count() == 1
    assert forward.experimental_get_tracing_count() == 1


# Each step compiles in its own module's XLA test; here a whole image and vector model.
@pytest.mark.parametrize('name', ['glow', 'real_nvp_vector'])
def test_jit_compiled_log_prob_and_sample_match_eager(name):
    flow = _random_flow(name)
    data, _ = _data_and_latent(flow, [3], seed=8)
    log_prob = tf.function(flow.log_prob, jit_compile=True)
    np.testing.assert_allclose(log_prob(data), flow.log_prob(data), rtol=1e-4, atol=1e-4)

    @tf.function(jit_compile=True)
    def sample(seed):
        samples = tfp_flows.sample(flow, 2, temperature=0.7, seed=seed)
        return samples, flow.distribution.sample(2, seed=seed)

    # XLA draws other random numbers for the seed than eager, so compare at its latent.
    samples, latent = sample(tf.constant([3, 4]))
    np.testing.assert_allclose(samples, flow.bijector.forward(0.7 * latent), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(samples, sample(tf.constant([3, 4]))[0])
    assert sample.experimental_get_tracing_count() == 1


def test_vector_density_integrates_to_one():
    flow = _random_flow('real_nvp_vector', tf.float64, seed=3)
    num_points, low, high = 400, -8.0, 8.0
    width = (high - low) / num_points
    centres = low + (np.arange(num_points) + 0.5) * width
    grid = np.stack(np.meshgrid(centres, centres, indexing='ij'), axis=-1).reshape([-1, 2])
    mass = np.exp(flow.log_prob(grid)).sum() * width**2
    np.testing.assert_allclose(mass, 1.0, atol=1e-3)
    assert not np.allclose(
        flow.log_prob(grid[:5]), tfd.MultivariateNormalDiag([0.0, 0.0]).log_prob(grid[:5])
    )


def test_deep_glow_round_trips_to_float32_precision():
    """48 steps at random parameters, small enough that the map stays well-conditioned.

    (At `scale=0.2` the random couplings compound: values grow to ~1e20 through the stack,
    and no float32 round trip survives that.)
    """
    flow = checks.randomize_variables(
        tfp_flows.glow((16, 16, 1), num_levels=3, num_steps=16, hidden_channels=8),
        seed=5,
        scale=0.03,
    )
    bijector = flow.bijector
    data, _ = _data_and_latent(flow, [2], seed=9)
    data_again = bijector.forward(tf.identity(bijector.inverse(data)))
    assert np.abs(data_again - data).max() < 5e-5
    samples = tfp_flows.sample(flow, 8, temperature=1.0, seed=[5, 6])
    assert samples.shape == [8, 16, 16, 1]
    assert np.all(np.isfinite(samples))
    latent = flow.distribution.sample(8, seed=[5, 6])
    latent_again = bijector.inverse(tf.identity(samples))
    assert (np.abs(latent_again - latent) / (1 + np.abs(latent))).max() < 5e-5


def test_steps_compose_inside_tfb_chain():
    dtype = tf.float64
    chain = tfb.Chain(
        [
            Centre((4, 4, 1), dtype=dtype),
            Squeeze(),
            AffineCoupling((2, 2, 4), hidden_channels=8, dtype=dtype),
            LUInvertibleConv1x1(4, dtype=dtype),
            AdditiveCoupling((2, 2, 4), flip=True, hidden_channels=8, dtype=dtype),
            InvertibleConv1x1(4, dtype=dtype),
            ActNorm(4, dtype=dtype),
            FactorOut((2, 2, 4), ActNorm(2, dtype=dtype), dtype=dtype),
            tfb.Invert(Squeeze()),
        ]
    )
    checks.randomize_variables(chain, seed=6)
    assert len(chain.trainable_variables) == 6 + 3 + 6 + 1 + 2 + 2 + 2
    data = tf.random.stateless_uniform([2, 4, 4, 1], [7, 20], dtype=dtype)
    latent = tf.random.stateless_normal([2, 4, 4, 1], [7, 21], dtype=dtype)
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        chain.forward, chain.forward_log_det_jacobian, latent, 3, **tol
    )
    checks.assert_log_det_matches_autodiff(
        chain.inverse, chain.inverse_log_det_jacobian, data, 3, **tol
    )
    checks.assert_round_trip(chain, latent, data, 3, dtype)


def test_flow_bijector_over_another_base():
    flow = _random_flow('glow', tf.float64)
    other = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(np.float64(0), 2.0), IMAGE), flow.bijector
    )
    data, _ = _data_and_latent(flow, [2], seed=22, dtype=tf.float64)
    latent = flow.bijector.inverse(data)
    expected = tfd.Normal(np.float64(0), 2.0).log_prob(latent).numpy().sum(axis=(1, 2, 3))
    expected += flow.bijector.inverse_log_det_jacobian(data, event_ndims=3)
    np.testing.assert_allclose(other.log_prob(data), expected, rtol=1e-12)
    assert other.sample(3, seed=[1, 2]).shape == [3, *IMAGE]


def test_flow_bijector_over_an_independent_base_with_a_batch_shape():
    flow = _random_flow('real_nvp', tf.float64)
    independent = tfd.TransformedDistribution(
        tfd.Independent(tfd.Normal(tf.zeros(IMAGE, tf.float64), 1.0), 3), flow.bijector
    )
    data, _ = _data_and_latent(flow, [2], seed=23, dtype=tf.float64)
    np.testing.assert_allclose(independent.log_prob(data), flow.log_prob(data), rtol=1e-12)

    locs = tf.reshape(tf.constant([-1.0, 0.0, 2.0], tf.float64), [3, 1, 1, 1]) + tf.zeros(
        IMAGE, tf.float64
    )
    batched = tfd.TransformedDistribution(tfd.Independent(tfd.Normal(locs, 1.0), 3), flow.bijector)
    assert batched.batch_shape == [3] and batched.event_shape == IMAGE
    log_prob = batched.log_prob(data[:, tf.newaxis])
    assert log_prob.shape == [2, 3]
    for i, loc in enumerate([-1.0, 0.0, 2.0]):
        shifted = tfd.TransformedDistribution(
            tfd.Sample(tfd.Normal(np.float64(loc), 1.0), IMAGE), flow.bijector
        )
        np.testing.assert_allclose(log_prob[:, i], shifted.log_prob(data), rtol=1e-12)
    assert batched.sample(2, seed=[1, 2]).shape == [2, 3, *IMAGE]


def _expected_variables(bijector):
    """Every trainable variable of a flow's bijector, found by walking its architecture."""
    if isinstance(bijector, tfb.Invert):
        return _expected_variables(bijector.bijector)
    if hasattr(bijector, 'bijectors'):
        return [v for step in bijector.bijectors for v in _expected_variables(step)]
    if isinstance(bijector, FactorOut):
        prior = [] if bijector.prior is None else _network_variables(bijector.prior)
        return _expected_variables(bijector.inner) + prior
    if isinstance(bijector, (AffineCoupling, AdditiveCoupling, SplineCoupling, MixtureCoupling)):
        return _network_variables(bijector.conditioner)
    if isinstance(bijector, ActNorm):
        return [bijector.shift, bijector.log_scale]
    if isinstance(bijector, LUInvertibleConv1x1):
        return [bijector.log_scale, bijector.lower, bijector.upper]
    if isinstance(bijector, InvertibleConv1x1):
        return [bijector.weights]
    return []


def _network_variables(network):
    if isinstance(network, networks.ConvNet):
        layers = ['in', 'hidden', *(f'block_{i}' for i in range(network.residual_blocks)), 'out']
        names = [f'{kind}_{layer}' for layer in layers for kind in ('kernel', 'bias')]
        return [getattr(network, name) for name in names]
    if isinstance(network, networks.DenseNet):
        return [*network.kernels, *network.biases, network.kernel_out, network.bias_out]
    return [network.kernel, network.bias]


@pytest.mark.parametrize(
    ('make', 'count'),
    [
        # Glow, per step: ActNorm 2 + LU conv 3 + ConvNet 6; per factor-out: zero conv 2.
        (
            lambda: tfp_flows.glow(IMAGE, num_levels=2, num_steps=2, hidden_channels=8),
            2 * 2 * 11 + 2,
        ),
        (
            lambda: tfp_flows.glow(
                IMAGE,
                num_levels=3,
                num_steps=1,
                hidden_channels=8,
                permutation='plain',
                coupling='additive',
                split_prior=False,
            ),
            3 * (2 + 1 + 6),
        ),
        (lambda: tfp_flows.glow(IMAGE, **SMALL, permutation='shuffle'), 2 * (2 + 6) + 2),
        # Real NVP: (2K + (K + 1)) couplings of 6 and as many ActNorms of 2, K = 1.
        (lambda: tfp_flows.real_nvp(IMAGE, **SMALL), 4 * 8),
        (lambda: tfp_flows.real_nvp(IMAGE, **SMALL, split_prior=True), 4 * 8 + 2),
        (lambda: tfp_flows.real_nvp((2,), num_steps=4, hidden_channels=16), 4 * 8),
        (lambda: tfp_flows.real_nvp(IMAGE, **SMALL, coupling='spline'), 4 * 8),
        (lambda: tfp_flows.real_nvp(IMAGE, **SMALL, coupling='logistic_mixture'), 4 * 8),
        # Each residual block 2 more variables per coupling.
        (lambda: tfp_flows.real_nvp(IMAGE, **SMALL, residual_blocks=2), 4 * 12),
    ],
    ids=[
        'glow',
        'glow_plain_additive',
        'glow_shuffle',
        'real_nvp',
        'real_nvp_split_prior',
        'real_nvp_vector',
        'real_nvp_spline',
        'real_nvp_logistic_mixture',
        'real_nvp_residual',
    ],
)
def test_trainable_variables_list_every_variable_of_every_step(make, count):
    flow = make()
    listed = [v.ref() for v in flow.trainable_variables]
    expected = [v.ref() for v in _expected_variables(flow.bijector)]
    assert len(expected) == count
    assert len(set(listed)) == len(listed) == count
    assert set(listed) == set(expected)
    assert {v.ref() for v in flow.bijector.trainable_variables} == set(expected)


@pytest.mark.parametrize('model', [tfp_flows.glow, tfp_flows.real_nvp])
@pytest.mark.parametrize(
    ('name', 'value'),
    [
        ('num_levels', 0),
        ('num_steps', -1),
        ('hidden_channels', 0),
        ('num_steps', 1.5),
        ('num_levels', True),
        ('residual_blocks', -1),
    ],
)
def test_rejects_bad_sizes(model, name, value):
    size = 'an int >= 0' if name == 'residual_blocks' else 'a positive int'
    with pytest.raises(ValueError, match=rf'`{name}` must be {size}; got {value!r}\.'):
        model(IMAGE, **{**SMALL, name: value})


def test_the_builders_reject_unknown_options():
    for model in (tfp_flows.glow, tfp_flows.real_nvp):
        with pytest.raises(
            ValueError,
            match=r"`coupling` must be one of \('affine', 'additive', 'spline', "
            r"'logistic_mixture'\); got 'cubic'",
        ):
            model(IMAGE, **SMALL, coupling='cubic')
    with pytest.raises(
        ValueError,
        match=r"`permutation` must be one of \('lu', 'plain', 'reverse', 'shuffle'\); got 'random'",
    ):
        tfp_flows.glow(IMAGE, **SMALL, permutation='random')


@pytest.mark.parametrize('model', [tfp_flows.glow, tfp_flows.real_nvp])
@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        (dict(coupling='additive', scale='sigmoid'), "`scale` applies to coupling='affine'"),
        (dict(coupling='spline', scale='sigmoid'), "`scale` applies to coupling='affine'"),
        (dict(spline_bins=4), "`spline_bins` applies to coupling='spline'; got spline_bins=4"),
        (dict(coupling='additive', spline_bound=2), "`spline_bound` applies to coupling='spline'"),
        (dict(mixture_components=8), "`mixture_components` applies to coupling='logistic_mixture'"),
    ],
)
def test_refuses_arguments_that_do_not_apply(model, arguments, message):
    with pytest.raises(ValueError, match=message):
        model(IMAGE, **SMALL, **arguments)


def test_the_builders_defaults_are_the_couplings():
    import inspect

    for model in (tfp_flows.glow, tfp_flows.real_nvp):
        defaults = {k: p.default for k, p in inspect.signature(model).parameters.items()}
        for coupling, names in (
            (AffineCoupling, dict(scale='scale', log_scale_bound='log_scale_bound')),
            (SplineCoupling, dict(spline_bins='num_bins', spline_bound='bound')),
            (
                MixtureCoupling,
                dict(mixture_components='mixture_components', log_scale_bound='log_scale_bound'),
            ),
        ):
            for name, theirs in names.items():
                assert defaults[name] == inspect.signature(coupling).parameters[theirs].default
    # One coupling's options, at the defaults the config also has, pass with another coupling.
    from tfp_flows.checks import COUPLING_OPTIONS
    from tfp_flows.run.schema import FIELDS

    for name, kind in COUPLING_OPTIONS.items():
        assert defaults[name] == FIELDS[f'model.{name}'].default, name
        other = 'additive' if kind == 'spline' else 'spline'
        tfp_flows.real_nvp((2,), num_steps=1, coupling=other, **{name: defaults[name]})


def test_a_vector_real_nvp_says_hidden_channels():
    # A vector real_nvp's dense networks call the width `hidden_units`; the message does not.
    with pytest.raises(ValueError, match=r'`hidden_channels` must be a positive int; got 0'):
        tfp_flows.real_nvp((2,), hidden_channels=0)


def test_residual_blocks_are_refused_for_vectors_and_a_conditioner_fn():
    with pytest.raises(ValueError, match=r'`residual_blocks` applies to images; got 1\.'):
        tfp_flows.real_nvp((2,), residual_blocks=1)
    with pytest.raises(ValueError, match=r'`residual_blocks` applies to images; got 2\.'):
        AffineCoupling((4,), residual_blocks=2)
    network = lambda inputs, outputs: networks.ConvNet(inputs, outputs, 8)  # noqa: E731
    with pytest.raises(ValueError, match=r'got residual_blocks=1 with a `conditioner_fn`'):
        AffineCoupling((4, 4, 2), conditioner_fn=network, residual_blocks=1)


@pytest.mark.parametrize(
    ('model', 'event_shape', 'num_levels', 'message'),
    [
        (tfp_flows.glow, (7, 8, 1), 1, r'divisible by 2; got event_shape \(7, 8, 1\)'),
        (
            tfp_flows.glow,
            (12, 12, 1),
            3,
            r'squeezes 3 times, .*divisible by 8; got event_shape \(12, 12, 1\)',
        ),
        (
            tfp_flows.glow,
            (8, 8),
            2,
            r'`event_shape` must be \[H, W, C\] .*got \(8, 8\)',
        ),
        (tfp_flows.glow, (2,), 1, r'`event_shape` must be \[H, W, C\] .*got \(2,\)'),
        (
            tfp_flows.real_nvp,
            (6, 6, 1),
            3,
            r'squeezes 2 times, .*divisible by 4; got event_shape \(6, 6, 1\)',
        ),
        (
            tfp_flows.real_nvp,
            (8, 8),
            2,
            r'`event_shape` must be \[H, W, C\] .*got \(8, 8\)',
        ),
        (
            tfp_flows.real_nvp,
            (1,),
            2,
            r'`event_shape` must be \[D\], D >= 2; got \(1,\)',
        ),
    ],
)
def test_rejects_bad_event_shape(model, event_shape, num_levels, message):
    with pytest.raises(ValueError, match=message):
        model(event_shape, num_levels=num_levels, num_steps=1, hidden_channels=8)


@pytest.mark.parametrize('name', ['glow', 'real_nvp'])
def test_log_prob_rejects_bad_data(name):
    flow = MODELS[name](tf.float32)
    owner = 'Centre' if name == 'glow' else 'LogitTransform'
    with pytest.raises(
        ValueError, match=rf'{owner} expects .*\[\.\.\., 8, 8, 1\] .*got rank 2, shape \[8, 8\]'
    ):
        flow.log_prob(tf.zeros([8, 8]))
    with pytest.raises(
        ValueError, match=rf'{owner} expects .*\[\.\.\., 8, 8, 1\]; got shape \[2, 8, 8, 3\]'
    ):
        flow.log_prob(tf.zeros([2, 8, 8, 3]))
    with pytest.raises(
        ValueError, match=rf'{owner} expects .*\[\.\.\., 8, 8, 1\]; got shape \[2, 4, 4, 1\]'
    ):
        flow.log_prob(tf.zeros([2, 4, 4, 1]))
    with pytest.raises(TypeError, match=r'dtype float32; got `y` of dtype int32: dequantize'):
        flow.log_prob(tf.zeros([2, 8, 8, 1], tf.int32))


@pytest.mark.parametrize('temperature', [0.0, -1.0, float('inf'), float('nan')])
def test_sample_rejects_bad_temperature(temperature):
    flow = MODELS['real_nvp_vector'](tf.float32)
    message = rf'`temperature` must be a finite number > 0; got {temperature!r}\.'
    with pytest.raises(ValueError, match=message):
        tfp_flows.sample(flow, 2, temperature=temperature)
    # The same check on a tensor, eagerly and inside tf.function, shows the value.
    message = rf'`temperature` must be a finite number > 0; got\W+{temperature:g}'
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tfp_flows.sample(flow, 2, temperature=tf.constant(temperature))
    sample = tf.function(lambda t: tfp_flows.sample(flow, 2, temperature=t, seed=1))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        sample(tf.constant(temperature))


def test_sample_takes_shapes_as_ints_lists_and_int_tensors():
    flow = MODELS['real_nvp_vector'](tf.float32)
    assert tfp_flows.sample(flow, (2, 0), seed=1).shape == [2, 0, 2]
    assert tfp_flows.sample(flow, tf.TensorShape([3]), seed=1).shape == [3, 2]
    assert tfp_flows.sample(flow, tf.constant([2, 1]), seed=1).shape == [2, 1, 2]
    message = r'`sample_shape` must be an int >= 0 or a list of ints >= 0; got'
    for bad in (-1, [2, -3], 2.5, 'x', None):
        with pytest.raises(ValueError, match=message):
            tfp_flows.sample(flow, bad)
    with pytest.raises(TypeError, match=message + r' a float32 tensor'):
        tfp_flows.sample(flow, tf.constant(2.0))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message + r' \[-3\]'):
        tfp_flows.sample(flow, tf.constant([2, -3]))


def test_sample_refuses_temperatures_of_other_kinds():
    flow = MODELS['real_nvp_vector'](tf.float32)
    message = r'`temperature` must be a finite number > 0; got'
    with pytest.raises(ValueError, match=message + r" '1'"):
        tfp_flows.sample(flow, 2, temperature='1')
    with pytest.raises(ValueError, match=message + r' a tensor of shape \(2,\)'):
        tfp_flows.sample(flow, 2, temperature=tf.constant([1.0, 2.0]))
    with pytest.raises(TypeError, match=message + r' a bool tensor'):
        tfp_flows.sample(flow, 2, temperature=tf.constant(True))
    unknown_rank = tf.function(
        lambda t: tfp_flows.sample(flow, 2, temperature=t, seed=1),
        input_signature=[tf.TensorSpec(None)],
    )
    assert unknown_rank(tf.constant(0.5)).shape == [2, 2]
    with pytest.raises(tf.errors.InvalidArgumentError):
        unknown_rank(tf.constant([1.0, 2.0]))
    # XLA compiles the run-time check out, as it does every TensorFlow assertion.
    compiled = tf.function(
        lambda t: tfp_flows.sample(flow, 2, temperature=t, seed=[1, 2]), jit_compile=True
    )
    assert np.all(np.isfinite(compiled(tf.constant(0.5))))


def test_sample_seeds_are_ints_of_the_seed_domain_or_stateless_seeds():
    flow = checks.randomize_variables(MODELS['real_nvp_vector'](tf.float32), seed=3)
    np.testing.assert_array_equal(
        tfp_flows.sample(flow, 2, seed=5), tfp_flows.sample(flow, 2, seed=tf.constant([0, 5]))
    )
    np.testing.assert_array_equal(
        tfp_flows.sample(flow, 2, seed=[1, 2]),
        tfp_flows.sample(flow, 2, seed=tf.constant([1, 2], tf.int64)),
    )
    message = r'`seed` must be an int in \[0, 2\*\*31\); got'
    for bad in (-1, 2**31):
        with pytest.raises(ValueError, match=message):
            tfp_flows.sample(flow, 2, seed=bad)
    message = r'`seed` must be None, an int in \[0, 2\*\*31\) or an int tensor of shape \[2\]'
    with pytest.raises(ValueError, match=message):
        tfp_flows.sample(flow, 2, seed=[1, 2, 3])
    with pytest.raises(TypeError, match=r'got a float32 tensor'):
        tfp_flows.sample(flow, 2, seed=tf.constant([1.0, 2.0]))


def test_sample_with_an_int_seed_is_the_same_on_every_call():
    flow = checks.randomize_variables(MODELS['real_nvp_vector'](tf.float32), seed=3)
    first = tfp_flows.sample(flow, 4, temperature=0.7, seed=1)
    np.testing.assert_array_equal(first, tfp_flows.sample(flow, 4, temperature=0.7, seed=1))
    assert not np.allclose(first, tfp_flows.sample(flow, 4, temperature=0.7, seed=2))
    assert not np.allclose(tfp_flows.sample(flow, 4), tfp_flows.sample(flow, 4))


def _moved(flow, data, seed=0):
    """`flow` after ActNorm's init on `data` (with random contexts if conditional) and every
    variable moved at random."""
    shape = tfp_flows.conditional_shape_of(flow)
    context = None
    if shape is not None:
        context = tf.random.stateless_normal([data.shape[0], *shape], [9, seed], dtype=flow.dtype)
    tfp_flows.initialize(flow, data, conditional_input=context)
    return checks.randomize_variables(flow, seed=seed)


def test_shuffle_permutation_is_restored_from_a_checkpoint(tmp_path):
    # The handed case of issue 10: restoring into the same call with another seed used to
    # succeed, pass assert_existing_objects_matched and give -8.05 instead of -6.86.
    def build(seed):
        return tfp_flows.glow(
            event_shape=(4, 4, 2),
            num_levels=1,
            num_steps=2,
            hidden_channels=16,
            permutation='shuffle',
            seed=seed,
        )

    image = tf.random.stateless_uniform([1, 4, 4, 2], [8, 1], 0.05, 0.95)
    saved = _moved(build(0), image)
    expected = saved.log_prob(image).numpy()
    path = tf.train.Checkpoint(flow=saved).write(str(tmp_path / 'ckpt'))
    restored = build(1)
    tf.train.Checkpoint(flow=restored).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(restored.log_prob(image), expected, rtol=1e-6)
    np.testing.assert_allclose(expected, saved.log_prob(image))  # Not a cached number.


# Every argument of the model builders, by what a checkpoint does with it: 'saved' (restored
# with the variables, so the density is the saved one), 'checked' (a checkpoint of another
# value fails to load, naming it), 'shape' (another value changes variable shapes or the number
# of steps, which TF's restore and assert_existing_objects_matched report), 'none' (does not
# change a restored density).
ARGUMENTS = {
    'glow': {
        'event_shape': 'shape',
        'num_levels': 'shape',
        'num_steps': 'shape',
        'hidden_channels': 'shape',
        'coupling': 'checked',
        'permutation': 'checked',
        'split_prior': 'checked',
        'log_scale_bound': 'checked',
        'scale': 'checked',
        'spline_bins': 'checked',  # Also other variable shapes.
        'spline_bound': 'checked',
        'mixture_components': 'checked',
        'preprocessing': 'checked',
        'alpha': 'checked',
        'conditional_shape': 'checked',
        'learn_top_prior': 'checked',
        'dropout_rate': 'none',  # Active only with training=True; test_dropout_* below.
        'residual_blocks': 'checked',  # Also more variables (which TF reports one way only).
        'seed': 'saved',
        'dtype': 'checked',
        # Rounding only (the networks' compute precision; every variable stays float32):
        # tests/test_mixed_precision.py restores checkpoints across policies both ways.
        'dtype_policy': 'none',
        'validate_args': 'none',
        'name': 'none',
        'loop': 'checked',  # The level's steps one by one, or stacked in a Loop.
    },
    'real_nvp': {
        'event_shape': 'shape',
        'num_levels': 'shape',
        'num_steps': 'shape',
        'hidden_channels': 'shape',
        'coupling': 'checked',
        'split_prior': 'checked',
        'log_scale_bound': 'checked',
        'scale': 'checked',
        'spline_bins': 'checked',
        'spline_bound': 'checked',
        'mixture_components': 'checked',
        'preprocessing': 'checked',
        'alpha': 'checked',
        'conditional_shape': 'checked',
        'learn_top_prior': 'checked',
        'dropout_rate': 'none',  # Active only with training=True; test_dropout_* below.
        'residual_blocks': 'checked',  # Also more variables (which TF reports one way only).
        'seed': 'saved',
        'dtype': 'checked',
        # Rounding only (the networks' compute precision; every variable stays float32):
        # tests/test_mixed_precision.py restores checkpoints across policies both ways.
        'dtype_policy': 'none',
        'validate_args': 'none',
        'name': 'none',
    },
}
# For each argument that is 'saved' or 'checked': (base value, other value).
OTHER_VALUES = {
    'coupling': ('affine', 'additive'),
    'permutation': ('shuffle', 'lu'),  # 'shuffle' and 'reverse' share one saved variable.
    'split_prior': (True, False),
    'log_scale_bound': (2.0, 3.0),
    'scale': ('tanh', 'sigmoid'),
    'spline_bins': (8, 4),
    'spline_bound': (3.0, 2.0),
    'mixture_components': (4, 2),
    'residual_blocks': (1, 0),
    'preprocessing': ('logit', 'centre'),
    'alpha': (0.05, 0.01),
    # The same number of features, so the same variable shapes: only the saved structure
    # tells them apart.
    'conditional_shape': ((6,), (2, 3)),
    'learn_top_prior': (True, False),
    'seed': (0, 1),
    'dtype': (tf.float32, tf.float64),
    'loop': (False, True),
}


def test_every_model_argument_is_classified():
    import inspect

    for name, model in (('glow', tfp_flows.glow), ('real_nvp', tfp_flows.real_nvp)):
        assert set(inspect.signature(model).parameters) == set(ARGUMENTS[name]), name


CHECKPOINT_CASES = [
    (model, argument)
    for model, arguments in ARGUMENTS.items()
    for argument, kind in arguments.items()
    if kind in ('saved', 'checked') and not (model == 'real_nvp' and argument == 'permutation')
]


@pytest.mark.parametrize(('model', 'argument'), CHECKPOINT_CASES)
def test_a_checkpoint_restores_its_density_or_fails_naming_the_argument(model, argument, tmp_path):
    build = getattr(tfp_flows, model)
    base, other = OTHER_VALUES[argument]
    common = dict(num_levels=2, num_steps=1, hidden_channels=8)
    if model == 'glow' and argument != 'permutation':
        common['permutation'] = 'shuffle'
    if argument == 'alpha':
        common['preprocessing'] = 'logit'
    if argument in ('spline_bins', 'spline_bound'):
        common['coupling'] = 'spline'
    if argument == 'mixture_components':
        common['coupling'] = 'logistic_mixture'
    saved = build((4, 4, 2), **common, **{argument: base})
    image = tf.random.stateless_uniform([2, 4, 4, 2], [8, 2], 0.05, 0.95, dtype=saved.dtype)
    _moved(saved, image)
    path = tf.train.Checkpoint(flow=saved).write(str(tmp_path / 'ckpt'))
    restored = build((4, 4, 2), **common, **{argument: other})
    if ARGUMENTS[model][argument] == 'saved':
        tf.train.Checkpoint(flow=restored).read(path).assert_existing_objects_matched()
        np.testing.assert_allclose(restored.log_prob(image), saved.log_prob(image), rtol=1e-6)
        return
    with pytest.raises((ValueError, AssertionError, tf.errors.InvalidArgumentError)) as error:
        tf.train.Checkpoint(flow=restored).read(path).assert_existing_objects_matched()
    message = str(error.value)
    assert any(word in message for word in _names_of(argument, base, other)), message


def _names_of(argument, base, other):
    """What a failed restore may name for `argument`: the option or the steps it changes."""
    return {
        'coupling': ['AffineCoupling', 'AdditiveCoupling', 'conditioner', 'kernel_out'],
        'permutation': ['Permute', 'steps['],
        'split_prior': ['split_prior', 'prior'],
        'log_scale_bound': ['log_scale_bound'],
        'scale': ['scale'],
        'spline_bins': ['num_bins'],
        'spline_bound': ['bound'],
        'mixture_components': ['mixture_components'],
        'residual_blocks': ['residual_blocks'],
        'preprocessing': ['Centre', 'LogitTransform', 'steps[0]'],
        'alpha': ['alpha'],
        'conditional_shape': ['conditional_shape'],
        'learn_top_prior': ['LearnedPrior', 'learned'],
        'dtype': ['dtype', 'float64', 'float32'],
        'loop': ["steps[1] = 'ActNorm', but this one has 'Loop'"],
    }[argument]


SAMPLING_MODELS = {
    'real_nvp': lambda: tfp_flows.real_nvp((8, 8, 2)),
    'real_nvp_alpha_0': lambda: tfp_flows.real_nvp((8, 8, 2), alpha=0.0),
    'glow_logit': lambda: tfp_flows.glow(
        (8, 8, 2), num_levels=2, num_steps=2, hidden_channels=16, preprocessing='logit'
    ),
    'glow': lambda: tfp_flows.glow((8, 8, 2), num_levels=2, num_steps=2, hidden_channels=16),
    'glow_sigmoid': lambda: tfp_flows.glow(
        (8, 8, 2), num_levels=2, num_steps=2, hidden_channels=16, scale='sigmoid'
    ),
    'real_nvp_logistic_mixture': lambda: tfp_flows.real_nvp(  # Sampled by bisection.
        (8, 8, 2), num_steps=2, hidden_channels=16, coupling='logistic_mixture'
    ),
}


# Eagerly and traced: the log-det of `inverse` reaches log_prob by two different paths
# (caching.py); the logit's saturated sigmoid, where it matters, in both.
@pytest.mark.parametrize(
    ('name', 'function'),
    [(name, False) for name in SAMPLING_MODELS]
    + [(name, True) for name in ('real_nvp', 'real_nvp_alpha_0')],
)
def test_samples_drawn_in_float32_score_finite(name, function):
    # The handed case of issue 10 is 'real_nvp': with every variable moved by
    # N(0, 0.2 / sqrt(fan_in)), 52 of its 64 samples (seed 11) scored NaN.
    flow = checks.randomize_variables(SAMPLING_MODELS[name](), seed=0, scale=0.2)
    log_prob = tf.function(flow.log_prob) if function else flow.log_prob
    samples = flow.sample(64, seed=11)
    assert np.all(np.isfinite(log_prob(samples)))


@pytest.mark.parametrize('validate_args', [False, True])
@pytest.mark.parametrize('pixel', [0.0, 1.0])
def test_a_pixel_outside_the_logit_support_is_minus_inf_or_named(pixel, validate_args):
    flow = tfp_flows.real_nvp((8, 8, 2), alpha=0.0, validate_args=validate_args)
    batch = tf.random.stateless_uniform([2, 8, 8, 2], [8, 3], 0.05, 0.95).numpy()
    batch[1, 3, 4, 1] = pixel
    if not validate_args:
        log_prob = flow.log_prob(batch).numpy()
        assert np.isfinite(log_prob[0]) and log_prob[1] == -np.inf
        return
    message = (
        r'LogitTransform .* takes data in \(0.0, 1.0\) \(the open support of alpha=0.0; NaN is '
        rf'outside\); got 1 value\(s\) outside it, the first: \[{pixel:g}\]'
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        flow.log_prob(batch)


# Conditional models: every coupling, split prior and top prior sees the context.
CONDITIONAL_MODELS = {
    'glow': lambda dtype: tfp_flows.glow(
        IMAGE, **SMALL, conditional_shape=(3,), learn_top_prior=True, dtype=dtype
    ),
    'glow_no_split_prior': lambda dtype: tfp_flows.glow(
        IMAGE, **SMALL, conditional_shape=(3,), split_prior=False, dtype=dtype
    ),
    'real_nvp': lambda dtype: tfp_flows.real_nvp(
        IMAGE, **SMALL, conditional_shape=(3,), split_prior=True, dtype=dtype
    ),
    'real_nvp_vector': lambda dtype: tfp_flows.real_nvp(
        (3,),
        num_steps=3,
        hidden_channels=16,
        conditional_shape=(2, 2),
        learn_top_prior=True,
        dtype=dtype,
    ),
}


def _random_conditional_flow(name, dtype=tf.float32, seed=0):
    return checks.randomize_variables(CONDITIONAL_MODELS[name](dtype), seed=seed)


def _context(flow, batch_shape, seed, dtype=tf.float32):
    shape = tfp_flows.conditional_shape_of(flow)
    return tf.random.stateless_normal([*batch_shape, *shape], [8, seed], dtype=dtype)


# Eagerly in both dtypes; traced once (contexts in graphs: also the two-contexts test below).
CONDITIONAL_CASES = [
    *((name, dtype, False) for name in ('glow', 'real_nvp_vector') for dtype in checks.DTYPES),
    ('glow', tf.float32, True),
    ('glow_no_split_prior', tf.float64, False),
    ('real_nvp', tf.float64, False),
]


@pytest.mark.parametrize(('name', 'dtype', 'function'), CONDITIONAL_CASES)
def test_conditional_log_det_matches_autodiff_at_random_contexts(name, dtype, function):
    flow = _random_conditional_flow(name, dtype, seed=4)
    data, latent = _data_and_latent(flow, [2], seed=30, dtype=dtype)
    context = _context(flow, [2], seed=31, dtype=dtype)
    bijector, ndims = flow.bijector, len(flow.event_shape)
    methods = {
        name: checks.with_context(tf.function(method) if function else method, context)
        for name, method in [
            ('forward', bijector.forward),
            ('inverse', bijector.inverse),
            ('fldj', bijector.forward_log_det_jacobian),
            ('ildj', bijector.inverse_log_det_jacobian),
        ]
    }
    tol = checks.tolerance(dtype, log_det=True)
    checks.assert_log_det_matches_autodiff(
        methods['forward'], methods['fldj'], latent, ndims, **tol
    )
    checks.assert_log_det_matches_autodiff(methods['inverse'], methods['ildj'], data, ndims, **tol)
    values = checks.tolerance(dtype)
    forward_latent = methods['forward'](latent)
    np.testing.assert_allclose(methods['inverse'](tf.identity(forward_latent)), latent, **values)
    inverse_data = methods['inverse'](data)
    np.testing.assert_allclose(methods['forward'](tf.identity(inverse_data)), data, **values)
    np.testing.assert_allclose(
        methods['ildj'](tf.identity(forward_latent), event_ndims=ndims),
        -methods['fldj'](latent, event_ndims=ndims),
        **tol,
    )


@pytest.mark.parametrize('name', list(CONDITIONAL_MODELS))
def test_the_context_changes_the_density_through_tfps_own_methods(name):
    flow = _random_conditional_flow(name, tf.float64, seed=5)
    data, _ = _data_and_latent(flow, [3], seed=32, dtype=tf.float64)
    context = _context(flow, [3], seed=33, dtype=tf.float64)
    log_prob = flow.log_prob(data, bijector_kwargs={'conditional_input': context})
    latent, log_det = flow.bijector.inverse_and_log_det(
        data, len(flow.event_shape), conditional_input=context
    )
    np.testing.assert_allclose(log_prob, flow.distribution.log_prob(latent) + log_det, rtol=1e-12)
    other = flow.log_prob(data, bijector_kwargs={'conditional_input': context[::-1]})
    assert np.all(np.abs(other.numpy()[[0, 2]] - log_prob.numpy()[[0, 2]]) > 1e-3)
    # One context for the whole batch is the same as that context repeated.
    np.testing.assert_allclose(
        flow.log_prob(data, bijector_kwargs={'conditional_input': context[0]}),
        flow.log_prob(data, bijector_kwargs={'conditional_input': tf.stack([context[0]] * 3)}),
        rtol=1e-12,
    )


@pytest.mark.parametrize('name', ['glow', 'real_nvp_vector'])
def test_conditional_sampling_decodes_the_base_noise_given_the_context(name):
    flow = _random_conditional_flow(name, tf.float64, seed=6)
    context = _context(flow, [4], seed=34, dtype=tf.float64)
    kwargs = {'conditional_input': context}
    samples = flow.sample(4, seed=[3, 4], bijector_kwargs=kwargs)
    latent = flow.distribution.sample(4, seed=[3, 4])
    np.testing.assert_allclose(samples, flow.bijector.forward(latent, **kwargs), rtol=1e-10)
    ours = tfp_flows.sample(flow, 4, temperature=0.5, seed=7, conditional_input=context)
    np.testing.assert_array_equal(
        ours, tfp_flows.sample(flow, 4, temperature=0.5, seed=7, conditional_input=context)
    )
    decoded = flow.bijector.forward(0.5 * flow.distribution.sample(4, seed=[0, 7]), **kwargs)
    np.testing.assert_allclose(ours, decoded, rtol=1e-10)
    # One context broadcast to every sample, also over a sample shape of rank 2.
    one = tfp_flows.sample(flow, [2, 3], seed=8, conditional_input=context[1])
    same = tfp_flows.sample(
        flow,
        [2, 3],
        seed=8,
        conditional_input=tf.broadcast_to(context[1], [2, 3, *context[1].shape]),
    )
    np.testing.assert_allclose(one, same, rtol=1e-12)
    assert one.shape == [2, 3, *flow.event_shape]
    assert flow.sample(2, bijector_kwargs={'conditional_input': context[0]}).shape == [
        2,
        *flow.event_shape,
    ]


@pytest.mark.parametrize('model', ['glow', 'real_nvp'])
def test_a_fresh_conditional_or_top_prior_model_is_the_unconditional_one(model):
    build = getattr(tfp_flows, model)
    data = tf.random.stateless_uniform([2, *IMAGE], [8, 40], 0.05, 0.95)
    expected = build(IMAGE, **SMALL).log_prob(data)
    top = build(IMAGE, **SMALL, learn_top_prior=True)
    np.testing.assert_allclose(top.log_prob(data), expected, rtol=1e-6)
    conditional = build(IMAGE, **SMALL, conditional_shape=(3,), learn_top_prior=True)
    for labels in ([0, 1], [2, 2]):
        context = {'conditional_input': tf.one_hot(labels, 3)}
        np.testing.assert_allclose(
            conditional.log_prob(data, bijector_kwargs=context), expected, rtol=1e-6
        )


def test_a_missing_or_wrong_context_is_a_clear_error():
    flow = CONDITIONAL_MODELS['glow'](tf.float32)
    data = tf.random.stateless_uniform([2, *IMAGE], [8, 41], 0.05, 0.95)
    with pytest.raises(
        ValueError, match=r'is conditional \(conditional_shape=\(3,\)\) .* \[batch, 3\].* got no'
    ):
        flow.log_prob(data)
    with pytest.raises(ValueError, match=r'is conditional .* got no context'):
        tfp_flows.sample(flow, 2)
    with pytest.raises(
        ValueError, match=r'takes `conditional_input` of shape \[\.\.\., 3\] .*got shape \[2, 4\]'
    ):
        flow.log_prob(data, bijector_kwargs={'conditional_input': tf.zeros([2, 4])})
    with pytest.raises(
        ValueError, match=r'of shape \[3, 3\] has batch shape \[3\], which does not broadcast to '
    ):
        flow.log_prob(data, bijector_kwargs={'conditional_input': tf.zeros([3, 3])})
    with pytest.raises(TypeError, match=r'numeric `conditional_input`; got dtype string'):
        flow.log_prob(data, bijector_kwargs={'conditional_input': tf.constant([['a'] * 3] * 2)})
    unconditional = MODELS['glow'](tf.float32)
    with pytest.raises(
        ValueError, match=r'is unconditional .*got a `conditional_input` of shape \[2, 3\]'
    ):
        unconditional.log_prob(data, bijector_kwargs={'conditional_input': tf.zeros([2, 3])})
    with pytest.raises(ValueError, match=r'is unconditional'):
        tfp_flows.sample(unconditional, 2, conditional_input=tf.zeros([3]))


@pytest.mark.parametrize('model', [tfp_flows.glow, tfp_flows.real_nvp])
@pytest.mark.parametrize(
    ('name', 'value', 'message'),
    [
        ('conditional_shape', (), r'`conditional_shape` must be None or a non-empty shape'),
        ('conditional_shape', (3, 0), r'`conditional_shape` must be .*got \(3, 0\)'),
        ('conditional_shape', 'abc', r"`conditional_shape` must be .*got 'abc'"),
        ('learn_top_prior', 1, r'`learn_top_prior` must be True or False; got 1'),
        ('dropout_rate', 1.0, r'`dropout_rate` must be a number in \[0, 1\); got 1.0'),
        ('dropout_rate', -0.1, r'`dropout_rate` must be a number in \[0, 1\); got -0.1'),
    ],
)
def test_rejects_bad_conditioning_options(model, name, value, message):
    with pytest.raises(ValueError, match=message):
        model(IMAGE, **SMALL, **{name: value})


def test_initialize_takes_the_context_of_a_conditional_flow():
    flow = CONDITIONAL_MODELS['glow'](tf.float32)
    data = tf.random.stateless_uniform([4, *IMAGE], [8, 42], 0.05, 0.95)
    context = tf.one_hot([0, 1, 2, 0], 3)
    tfp_flows.initialize(flow, data, conditional_input=context)
    latent = flow.bijector.inverse(data, conditional_input=context)
    np.testing.assert_allclose(np.mean(latent), 0.0, atol=0.5)  # ActNorm standardised it.


# Dropout in the coupling networks: only with training=True.
DROPOUT_MODELS = {
    'glow': lambda rate: tfp_flows.glow(
        (4, 4, 2),
        num_levels=2,
        num_steps=1,
        hidden_channels=16,
        dropout_rate=rate,
        dtype=tf.float64,
    ),
    'real_nvp_vector_conditional': lambda rate: tfp_flows.real_nvp(
        (3,),
        num_steps=3,
        hidden_channels=16,
        conditional_shape=(2,),
        dropout_rate=rate,
        dtype=tf.float64,
    ),
}


def _dropout_pair(name, directory):
    """A model with dropout 0.3 at random weights, and the same weights in a rate-0 model.

    The rate-0 model reads a checkpoint of the first: dropout is no saved structure, so the
    restored density is the same, as an evaluation or export model built without it.
    """
    flow = checks.randomize_variables(DROPOUT_MODELS[name](0.3), seed=7)
    plain = DROPOUT_MODELS[name](0.0)
    checkpoint = tf.train.Checkpoint(flow=flow)
    path = checkpoint.write(str(directory / 'ckpt'))
    tf.train.Checkpoint(flow=plain).read(path).assert_existing_objects_matched()
    shape = tfp_flows.conditional_shape_of(flow)
    data = tf.random.stateless_uniform(
        [3, *flow.event_shape], [8, 50], 0.05, 0.95, dtype=tf.float64
    )
    kwargs = {}
    if shape is not None:
        kwargs['conditional_input'] = tf.random.stateless_normal(
            [3, *shape], [8, 51], dtype=tf.float64
        )
    return flow, plain, data, kwargs


@pytest.mark.parametrize('name', list(DROPOUT_MODELS))
def test_dropout_is_off_at_evaluation_and_on_when_training(name, tmp_path):
    flow, plain, data, kwargs = _dropout_pair(name, tmp_path)
    expected = plain.log_prob(data, bijector_kwargs=kwargs)
    np.testing.assert_array_equal(flow.log_prob(data, bijector_kwargs=kwargs), expected)
    np.testing.assert_array_equal(
        flow.log_prob(data, bijector_kwargs={**kwargs, 'training': False}), expected
    )
    log_prob = tf.function(flow.log_prob)
    np.testing.assert_allclose(log_prob(data, bijector_kwargs=kwargs), expected, rtol=1e-12)
    training = {**kwargs, 'training': True}
    first = flow.log_prob(data, bijector_kwargs=training)
    second = log_prob(data, bijector_kwargs=training)
    assert np.all(np.abs(first - expected) > 1e-6) and np.all(np.abs(first - second) > 1e-6)
    # The rate-0 model ignores training=True.
    np.testing.assert_array_equal(plain.log_prob(data, bijector_kwargs=training), expected)


@pytest.mark.parametrize('name', list(DROPOUT_MODELS))
def test_dropout_with_a_fixed_mask_is_an_exact_bijection(name, tmp_path):
    flow, _, data, kwargs = _dropout_pair(name, tmp_path)
    bijector, ndims = flow.bijector, len(flow.event_shape)
    seeded = {**kwargs, 'training': True, 'dropout_seed': tf.constant([3, 4])}
    latent, ildj = bijector.inverse_and_log_det(data, ndims, **seeded)
    np.testing.assert_allclose(bijector.forward(latent, **seeded), data, rtol=1e-10)
    other = bijector.inverse(data, **{**seeded, 'dropout_seed': tf.constant([3, 5])})
    assert not np.allclose(other, latent)
    # tf.GradientTape.batch_jacobian keeps the batch, so every example keeps its mask.
    flat = tf.reshape(data, [3, -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        out = tf.reshape(bijector.inverse(tf.reshape(flat, data.shape), **seeded), [3, -1])
    _, expected = tf.linalg.slogdet(tape.batch_jacobian(out, flat))
    np.testing.assert_allclose(ildj, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(latent, ndims, **seeded), -ildj, rtol=1e-9, atol=1e-9
    )


def test_two_contexts_in_one_graph_are_not_confused_and_xla_compiles():
    # TFP caches bijector results by input and kwargs inside a graph: log_prob of one x under
    # two contexts must give two densities.
    flow = _random_conditional_flow('glow', seed=8)
    data, _ = _data_and_latent(flow, [2], seed=43)
    first, second = _context(flow, [2], seed=44), _context(flow, [2], seed=45)

    def both(x, a, b):
        return (
            flow.log_prob(x, bijector_kwargs={'conditional_input': a}),
            flow.log_prob(x, bijector_kwargs={'conditional_input': b}),
        )

    for function in (tf.function(both), tf.function(both, jit_compile=True)):
        got_first, got_second = function(data, first, second)
        np.testing.assert_allclose(
            got_first, flow.log_prob(data, bijector_kwargs={'conditional_input': first}), rtol=1e-5
        )
        np.testing.assert_allclose(
            got_second,
            flow.log_prob(data, bijector_kwargs={'conditional_input': second}),
            rtol=1e-5,
        )
        assert not np.allclose(got_first, got_second)


@pytest.mark.parametrize('make', [tfp_flows.glow, tfp_flows.real_nvp])
def test_an_empty_batch_gives_empty_results(make):
    # TF's CPU conv2d returned an empty batch with the input's channel count.
    flow = make((8, 8, 1), num_levels=2, num_steps=2, hidden_channels=8)
    assert flow.log_prob(tf.zeros([0, 8, 8, 1])).shape == (0,)
    assert tfp_flows.sample(flow, 0, seed=1).shape == (0, 8, 8, 1)
