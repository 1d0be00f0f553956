"""The fused optimizers compute Keras' Adam/Adamax, keep its slots, and check their arguments."""

import collections
import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.training.optimizers import FusedAdam, FusedAdamax, make_optimizer

KERAS_CLASS = {'adam': keras.optimizers.Adam, 'adamax': keras.optimizers.Adamax}
FUSED_CLASS = {'adam': FusedAdam, 'adamax': FusedAdamax}


def _variables(dtype, count=3):
    return [
        tf.Variable(tf.random.stateless_normal([4, 3], [7, i], dtype=dtype)) for i in range(count)
    ]


def _run(optimizer, variables, num_steps, jit_compile=False):
    """`num_steps` steps of `optimizer` with gradients that depend on the variables and step."""
    optimizer.build(variables)

    @tf.function(jit_compile=jit_compile)
    def step(k):
        optimizer.apply([tf.sin(v * k) + 0.1 * v for v in variables], variables)

    for k in range(num_steps):
        step(tf.constant(k, variables[0].dtype))
    return np.concatenate([v.numpy().ravel() for v in variables])


def _schedule():
    """make_optimizer's schedule: warm-up over 5 steps to 3e-3, then cosine decay over 50."""
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=50, alpha=0.1, warmup_target=3e-3, warmup_steps=5
    )


@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('weight_decay', [None, 1e-2])
@pytest.mark.parametrize('dtype', [tf.float32, tf.float64])
@pytest.mark.parametrize('name', ['adam', 'adamax'])
def test_fused_steps_equal_keras_steps(name, dtype, weight_decay, jit_compile):
    fused = make_optimizer(name, 3e-3, warmup_steps=5, decay_steps=50, weight_decay=weight_decay)
    reference = KERAS_CLASS[name](learning_rate=_schedule(), weight_decay=weight_decay)
    actual = _run(fused, _variables(dtype), 20, jit_compile)
    expected = _run(reference, _variables(dtype), 20, jit_compile)
    # Keras rounds its bias correction's betas through float32 (`ops.cast` of a Python float),
    # also for float64 variables, so float64 agrees only to float32-like precision here; the
    # float64 arithmetic itself is exact (next test).
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', ['adam', 'adamax'])
def test_fused_steps_follow_the_docstring_formulas_exactly_in_float64(name):
    beta_1, beta_2, epsilon, lr = 0.8, 0.95, 1e-3, 2**-7  # lr: Keras keeps it in float32.
    variables = _variables(tf.float64)
    x = np.concatenate([v.numpy().ravel() for v in variables])
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(1, 11):
        g = np.sin(x * (t - 1)) + 0.1 * x
        m += (g - m) * (1 - beta_1)
        if name == 'adam':
            v += (g * g - v) * (1 - beta_2)
            x = x - lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(v) + epsilon)
        else:
            v = np.maximum(beta_2 * v, np.abs(g))
            x = x - lr / (1 - beta_1**t) * m / (v + epsilon)
    optimizer = FUSED_CLASS[name](lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    np.testing.assert_allclose(_run(optimizer, variables, 10), x, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize('name', ['adam', 'adamax'])
def test_one_fused_kernel_per_variable_and_one_set_of_scalars_per_step(name):
    variables = _variables(tf.float32, count=5)
    optimizer = make_optimizer(name, 1e-3, warmup_steps=10, weight_decay=0.1)
    optimizer.build(variables)
    graph = (
        tf.function(lambda g: optimizer.apply(g, variables))
        .get_concrete_function([tf.zeros_like(v) for v in variables])
        .graph
    )
    ops = collections.Counter(op.type for op in graph.get_operations())
    kernel = {'adam': 'ResourceApplyAdam', 'adamax': 'ResourceApplyAdaMax'}[name]
    assert ops[kernel] == len(variables)
    assert ops['Pow'] == {'adam': 2, 'adamax': 2}[name]  # beta powers, once for all variables.
    # The schedule's warm-up cond, once for all variables (Keras' weight decay reads the
    # learning rate once a variable).
    assert ops['StatelessIf'] + ops['If'] == 1


def test_checkpoints_are_interchangeable_with_keras_optimizers(tmp_path):
    # Same slots in the same order as Keras' Adamax (EMA averages included): a run written by
    # either restores into the other.
    for source_class, target_class in (
        (keras.optimizers.Adamax, FusedAdamax),
        (FusedAdamax, keras.optimizers.Adamax),
    ):
        source = source_class(1e-3, use_ema=True)
        _run(source, _variables(tf.float32, count=2), 3)
        path = tf.train.Checkpoint(optimizer=source).write(str(tmp_path / source_class.__name__))
        target = target_class(1e-3, use_ema=True)
        target.build(_variables(tf.float32, count=2))
        tf.train.Checkpoint(optimizer=target).read(path).assert_consumed()
        for restored, saved in zip(target.variables, source.variables, strict=True):
            np.testing.assert_array_equal(restored.numpy(), saved.numpy())


@pytest.mark.parametrize('name', ['adam', 'adamax'])
def test_config_round_trips(name):
    optimizer = make_optimizer(
        name, 2e-3, warmup_steps=3, decay_steps=7, weight_decay=0.1, beta_1=0.8, ema_momentum=0.9
    )
    config = optimizer.get_config()
    assert (config['beta_1'], config['beta_2'], config['epsilon']) == (0.8, 0.999, 1e-7)
    assert (config['use_ema'], config['ema_momentum'], config['weight_decay']) == (True, 0.9, 0.1)
    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(rebuilt) is FUSED_CLASS[name]
    assert rebuilt.get_config() == {**config, 'name': rebuilt.name}


def test_make_optimizer_passes_every_argument_on():
    optimizer = make_optimizer(
        'adam', 2e-3, beta_1=0.5, beta_2=0.75, epsilon=1e-4, weight_decay=0.0, ema_momentum=0.0
    )
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.5, 0.75, 1e-4)
    assert (optimizer.weight_decay, optimizer.use_ema, optimizer.ema_momentum) == (0.0, True, 0.0)
    assert float(optimizer.learning_rate) == pytest.approx(2e-3)
    assert not make_optimizer('adamax').use_ema
    # NumPy scalars are numbers too.
    assert make_optimizer('adam', np.float32(1e-3), warmup_steps=np.int64(2)).built is False


def test_warmup_starts_at_zero_and_decays_to_a_tenth():
    optimizer = make_optimizer('adamax', 1e-3, warmup_steps=10, decay_steps=100)
    for step, rate in ((0, 0.0), (5, 5e-4), (10, 1e-3), (110, 1e-4)):
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(rate, rel=1e-3, abs=1e-9)


BAD_ARGUMENTS = [
    ('name', 'sgd', r"`name` must be one of \('adam', 'adamax'\); got 'sgd'"),
    ('learning_rate', 0, r'`learning_rate` must be a finite number > 0.*; got 0\.'),
    ('learning_rate', -1e-3, r'`learning_rate` must be a finite number > 0.*; got -0\.001'),
    ('learning_rate', math.nan, r'`learning_rate` must be a finite number > 0.*; got nan'),
    ('learning_rate', math.inf, r'`learning_rate` must be a finite number > 0.*; got inf'),
    ('learning_rate', '1e-3', r"`learning_rate` must be a finite number > 0.*; got '1e-3'"),
    ('learning_rate', True, r'`learning_rate` must be a finite number > 0.*; got True'),
    ('warmup_steps', -1, r'`warmup_steps` must be an int >= 0; got -1\.'),
    ('warmup_steps', 2.5, r'`warmup_steps` must be an int >= 0; got 2\.5'),
    ('warmup_steps', True, r'`warmup_steps` must be an int >= 0; got True'),
    ('decay_steps', 0, r'`decay_steps` must be None or a positive int; got 0\.'),
    ('decay_steps', 10.0, r'`decay_steps` must be None or a positive int; got 10\.0'),
    ('weight_decay', -0.5, r'`weight_decay` must be None or a finite number >= 0; got -0\.5'),
    ('weight_decay', math.inf, r'`weight_decay` must be None or a finite number >= 0; got inf'),
    ('weight_decay', math.nan, r'`weight_decay` must be None or a finite number >= 0; got nan'),
    ('beta_1', 1.0, r'`beta_1` must be a number in \[0, 1\); got 1\.0'),
    ('beta_1', -0.1, r'`beta_1` must be a number in \[0, 1\); got -0\.1'),
    ('beta_1', math.nan, r'`beta_1` must be a number in \[0, 1\); got nan'),
    ('beta_2', 1.5, r'`beta_2` must be a number in \[0, 1\); got 1\.5'),
    ('beta_2', None, r'`beta_2` must be a number in \[0, 1\); got None'),
    ('epsilon', 0.0, r'`epsilon` must be a finite number > 0; got 0\.0'),
    ('epsilon', -1e-7, r'`epsilon` must be a finite number > 0; got -1e-07'),
    ('epsilon', math.inf, r'`epsilon` must be a finite number > 0; got inf'),
    ('ema_momentum', 1.0, r'`ema_momentum` must be None or a number in \[0, 1\); got 1\.0'),
    ('ema_momentum', -0.5, r'`ema_momentum` must be None or a number in \[0, 1\); got -0\.5'),
    ('ema_momentum', math.nan, r'`ema_momentum` must be None or a number in \[0, 1\); got nan'),
]


@pytest.mark.parametrize(
    'argument, value, message', BAD_ARGUMENTS, ids=[f'{a}={v!r}' for a, v, _ in BAD_ARGUMENTS]
)
def test_make_optimizer_refuses_each_argument_out_of_its_domain(argument, value, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(**{argument: value})


@pytest.mark.parametrize('value', [0, math.nan, '1e-3'])
def test_a_schedules_peak_learning_rate_is_checked_too(value):
    with pytest.raises(ValueError, match=r'`learning_rate` must be a finite number > 0; got'):
        make_optimizer(learning_rate=value, warmup_steps=5)


def test_every_numeric_argument_of_make_optimizer_is_swept():
    checked = {argument for argument, _, _ in BAD_ARGUMENTS}
    assert checked == set(inspect.signature(make_optimizer).parameters)


@pytest.mark.parametrize('argument', ['beta_1', 'beta_2', 'epsilon', 'weight_decay'])
def test_the_optimizer_classes_check_their_own_arguments(argument):
    with pytest.raises(ValueError, match=f'`{argument}` must be (None or )?a (finite )?number'):
        FusedAdam(**{argument: math.nan})


def test_an_update_of_a_variable_the_optimizer_was_not_built_on_is_refused():
    optimizer = FusedAdam()
    optimizer.build(_variables(tf.float32, count=1))
    stranger = tf.Variable(tf.zeros([2]), name='stranger')
    with pytest.raises(ValueError, match="FusedAdam was not built on variable 'stranger:0'"):
        optimizer.update_step(tf.ones([2]), stranger, 1e-3)
