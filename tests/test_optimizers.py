"""make_optimizer's optimizers: Keras' Adam/Adamax arithmetic, one fused kernel per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.optimizers import make_optimizer


def test_make_optimizer_rejects_unknown_names_and_rates():
    with pytest.raises(ValueError, match="one of .*'adam'.*got 'sgd'"):
        make_optimizer('sgd')
    with pytest.raises(ValueError, match='learning_rate must be > 0; got 0'):
        make_optimizer('adam', 0)


def test_warmup_starts_at_zero_and_reaches_the_peak():
    optimizer = make_optimizer('adamax', 1e-3, warmup_steps=10, decay_steps=100)
    schedule = optimizer._learning_rate  # The schedule itself; .learning_rate is its value.
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(110)) == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('name', ['adam', 'adamax'])
def test_fused_optimizer_steps_equal_keras_optimizer_steps(name, jit_compile):
    # make_optimizer's optimizers apply each update as one fused kernel; the arithmetic must be
    # Keras' own (warm-up and decay schedule, decoupled weight decay included).
    keras_class = {'adam': keras.optimizers.Adam, 'adamax': keras.optimizers.Adamax}[name]
    results = []
    for make in (
        lambda: make_optimizer(name, 3e-3, warmup_steps=5, decay_steps=50, weight_decay=1e-2),
        lambda: keras_class(
            learning_rate=make_optimizer(name, 3e-3, warmup_steps=5, decay_steps=50)._learning_rate,
            weight_decay=1e-2,
        ),
    ):
        variables = [tf.Variable(tf.random.stateless_normal([4, 3], [7, i])) for i in range(3)]
        optimizer = make()
        optimizer.build(variables)

        @tf.function(jit_compile=jit_compile)
        def step(k, variables=variables, optimizer=optimizer):
            optimizer.apply([tf.sin(v * k) + 0.1 * v for v in variables], variables)

        for k in range(20):
            step(tf.constant(float(k)))
        results.append(np.concatenate([v.numpy().ravel() for v in variables]))
    assert isinstance(make_optimizer(name), keras_class)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
