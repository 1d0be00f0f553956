"""The Keras bridge trains every variable, on one device and on two replicas alike."""

import contextlib
import inspect
import math
import os
import re
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows import dense_conv, networks
from tfp_flows.dequantization.variational import VariationalDequantizer
from tfp_flows.training import FlowTrainer, make_optimizer  # As the README shows.

tfb, tfd = tfp.bijectors, tfp.distributions

IMAGE_SHAPE = (8, 8, 1)
NUM_CLASSES = 3  # One-hot labels of the conditional Glow.
NUM_FEATURES = 2  # Context features of the conditional vector Real NVP.


def _build(family, seed=0, dtype=tf.float32, dropout_rate=0.0):
    sizes = dict(num_steps=1, hidden_channels=8, seed=seed, dtype=dtype)
    if family == 'conditional glow':
        return tfp_flows.glow(
            IMAGE_SHAPE,
            num_levels=2,
            conditional_shape=(NUM_CLASSES,),
            learn_top_prior=True,
            dropout_rate=dropout_rate,
            **sizes,
        )
    if family == 'conditional vector':
        sizes.update(num_steps=2, conditional_shape=(NUM_FEATURES,), dropout_rate=dropout_rate)
        return tfp_flows.real_nvp((2,), **sizes)
    if family == 'glow':
        return tfp_flows.glow(IMAGE_SHAPE, num_levels=2, **sizes)
    if family == 'residual looped glow':  # Loop views of the residual blocks' variables.
        sizes.update(num_steps=2, residual_blocks=1, loop=True, dropout_rate=dropout_rate)
        return tfp_flows.glow(IMAGE_SHAPE, num_levels=2, **sizes)
    if family == 'real_nvp':
        return tfp_flows.real_nvp(IMAGE_SHAPE, num_levels=2, split_prior=True, **sizes)
    coupling = {'spline vector': 'spline', 'mixture vector': 'logistic_mixture'}.get(
        family, 'affine'
    )
    return tfp_flows.real_nvp((2,), **{**sizes, 'num_steps': 2}, coupling=coupling)


def _data(family, count, seed=0):
    """A batch of `family`'s data: x, or (x, c) for the conditional families."""
    rng = np.random.default_rng(seed)
    if family == 'conditional vector':  # x depends on the context c.
        c = rng.standard_normal((count, NUM_FEATURES)).astype(np.float32)
        noise = rng.standard_normal((count, 2)) * 0.3
        return (c @ [[1.0, 0.5], [-0.5, 1.0]] + noise).astype(np.float32), c
    if family in ('vector', 'spline vector', 'mixture vector'):
        return (rng.standard_normal((count, 2)) * [1.0, 0.3] + [0.5, -1.0]).astype(np.float32)
    if family == 'conditional glow':  # Class k's pixels take levels 4k .. 4k + 4 of 17.
        labels = rng.integers(0, NUM_CLASSES, size=count)
        pixels = rng.integers(0, 5, size=(count, *IMAGE_SHAPE)) + 4 * labels[:, None, None, None]
        x = tfp_flows.uniform_dequantize(pixels, 17, seed=[seed, 1]).numpy()
        return x, np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    pixels = rng.integers(0, 5, size=(count, *IMAGE_SHAPE)) * 4  # A few levels of 17.
    return tfp_flows.uniform_dequantize(pixels, 17, seed=[seed, 1]).numpy()


def _num_bins(family):
    return None if 'vector' in family else 17


def _one_batch_dataset(x):
    return tf.data.Dataset.from_tensors(x)


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _assert_runs_equal_the_first(results, history_rtol, rtol, atol):
    """`results`: [(Keras history dict, [variable values])] of runs that must equal the
    first: every logged figure of every epoch, and every variable."""
    (first_history, first), *others = results
    assert others
    for history, values in others:
        assert history.keys() == first_history.keys()
        for key in first_history:
            np.testing.assert_allclose(history[key], first_history[key], rtol=history_rtol)
        for want, got in zip(first, values, strict=True):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _trained(family, x, seed=0, dtype=tf.float32, dropout_rate=0.0, **trainer_kwargs):
    """An initialised flow of `family` and a FlowTrainer on it (not compiled); `x` is the
    batch, or (x, c) for the conditional families."""
    flow = _build(family, seed=seed, dtype=dtype, dropout_rate=dropout_rate)
    x, c = x if isinstance(x, tuple) else (x, None)
    tfp_flows.initialize(flow, tf.cast(x, dtype), conditional_input=c)
    return flow, FlowTrainer(flow, _num_bins(family), **trainer_kwargs)


# Every family and every path at least once (a path does not depend on the family).
@pytest.mark.parametrize(
    'family, path',
    [
        ('glow', 'fit on (x,) tuples'),
        ('glow', 'ema'),
        ('residual looped glow', 'fit on (x,) tuples'),
        ('real_nvp', 'memory saving recompute'),
        ('spline vector', 'fit on (x,) tuples'),
        ('mixture vector', 'memory saving invert'),  # It rebuilds inputs by bisection.
        ('vector', 'accumulation'),
        ('conditional glow', 'accumulation'),
        ('conditional glow', 'memory saving invert'),
        ('conditional vector', 'train_on_batch'),
        ('conditional glow', 'fit with XLA, 4 steps per call'),  # One XLA loop per call.
    ],
)
def test_every_training_path_moves_every_variable_and_lowers_the_loss(family, path):
    x = _data(family, 32)
    conditional = dict(dropout_rate=0.1, dropout_seed=3) if 'conditional' in family else {}
    flow, trainer = _trained(
        family,
        x,
        clip_norm=100.0,
        accumulation_steps=4 if path == 'accumulation' else 1,
        memory_saving=path.split()[-1] if path.startswith('memory saving') else None,
        **conditional,
    )
    before = _values(flow.trainable_variables)
    xla = dict(jit_compile=True, steps_per_execution=4) if 'XLA' in path else {}
    trainer.compile(
        make_optimizer('adam', 3e-3, ema_momentum=0.9 if path == 'ema' else None), **xla
    )
    first = trainer.evaluate(_one_batch_dataset(x), verbose=0, return_dict=True)['loss']
    if path == 'train_on_batch':
        for _ in range(40):
            logs = trainer.train_on_batch(*(x if isinstance(x, tuple) else (x,)), return_dict=True)
        assert set(logs) == {'loss', trainer.metric_name, 'grad_norm'}
    else:
        batch = (x,) if path == 'fit on (x,) tuples' else x
        trainer.fit(_one_batch_dataset(batch).repeat(), steps_per_epoch=40, epochs=1, verbose=0)
    assert int(trainer.optimizer.iterations.numpy()) == 40
    last = trainer.evaluate(_one_batch_dataset(x), verbose=0, return_dict=True)['loss']
    assert last < first - 0.05
    unmoved = [
        v.name
        for b, v in zip(before, flow.trainable_variables, strict=True)
        if np.array_equal(b, v.numpy())
    ]
    assert not unmoved


def test_train_on_batch_and_test_on_batch_take_a_bare_batch():
    x = _data('glow', 8)
    flow, trainer = _trained('glow', x)
    trainer.compile(keras.optimizers.SGD(0.01))
    expected = float(tf.reduce_mean(trainer.per_example_loss(x)))
    assert trainer.test_on_batch(x) == pytest.approx([expected, expected], rel=1e-6)
    assert trainer.test_on_batch((x,), return_dict=True) == {
        'loss': pytest.approx(expected, rel=1e-6),
        'bits_per_dim': pytest.approx(expected, rel=1e-6),
    }
    before = _values(flow.trainable_variables)
    logs = trainer.train_on_batch(x, return_dict=True)
    assert logs['loss'] == pytest.approx(expected, rel=1e-6)  # Loss before the step.
    assert not np.array_equal(before[0], flow.trainable_variables[0].numpy())
    assert trainer.predict_on_batch(x) == pytest.approx(trainer.per_example_loss(x).numpy())


def test_a_context_or_sample_weights_are_refused():
    # The flow refuses a context it does not take, naming it.
    x = _data('glow', 4)
    _, trainer = _trained('glow', x)
    trainer.compile(keras.optimizers.SGD(0.01))
    labels = np.zeros([4, 10], np.float32)
    message = r'unconditional.*`conditional_input`'
    with pytest.raises(ValueError, match=message):
        trainer.fit(_one_batch_dataset((x, labels)), verbose=0)
    with pytest.raises(ValueError, match=message):
        trainer.train_on_batch(x, labels)
    with pytest.raises(ValueError, match='does not take sample weights'):
        trainer.train_on_batch(x, sample_weight=np.ones([4], np.float32))


@pytest.mark.parametrize('accumulation_steps', [1, 2])
def test_a_conditional_flow_needs_contexts_of_its_shape(accumulation_steps):
    # The flow checks the context, naming it, on every path (its own tests pin the wording).
    x, c = _data('conditional glow', 4)
    _, trainer = _trained('conditional glow', (x, c), accumulation_steps=accumulation_steps)
    trainer.compile(keras.optimizers.SGD(0.01))
    missing = r'conditional.*context'
    with pytest.raises(ValueError, match=missing):
        trainer.fit(_one_batch_dataset(x), verbose=0)
    with pytest.raises(ValueError, match=missing):
        trainer.evaluate(_one_batch_dataset(x), verbose=0)
    with pytest.raises(ValueError, match=r'`conditional_input`.*\b3\b'):
        trainer.train_on_batch(x, np.zeros([4, 10], np.float32))


def _moved(flow, seed=0):
    """Sets every variable of `flow` to random values (a fresh flow is the identity, and its
    zero last layers would hide dropout)."""
    rng = np.random.default_rng(seed)
    for v in flow.trainable_variables:
        v.assign(rng.normal(0.0, 0.1, v.shape).astype(v.dtype.as_numpy_dtype))


@pytest.mark.parametrize('family', ['conditional glow', 'conditional vector'])
def test_dropout_is_on_in_the_train_step_only(family):
    x, c = _data(family, 8)
    flow, trainer = _trained(family, (x, c), dropout_rate=0.5, dropout_seed=1)
    _moved(flow)
    trainer.compile(keras.optimizers.SGD(0.0))  # Steps that change nothing.
    name = trainer.metric_name
    evaluated = [trainer.test_on_batch(x, c, return_dict=True)[name] for _ in range(2)]
    assert evaluated[0] == evaluated[1]  # Deterministic: no dropout.
    predicted = trainer.predict(_one_batch_dataset((x, c)), verbose=0)
    np.testing.assert_allclose(np.mean(predicted), evaluated[0], rtol=1e-5)
    trained = []
    for _ in range(2):
        trainer.reset_metrics()
        trained.append(trainer.train_on_batch(x, c, return_dict=True)[name])
    # Dropout changes the loss of the train step, with new masks at each step (seeded by the
    # optimizer step).
    assert abs(trained[0] - evaluated[0]) > 1e-3
    assert trained[0] != trained[1]
    without_dropout = _build(family, dropout_rate=0.0)
    for target, source in zip(without_dropout.variables, flow.variables, strict=True):
        target.assign(source)
    plain = FlowTrainer(without_dropout, _num_bins(family))
    plain.compile(keras.optimizers.SGD(0.0))
    assert plain.train_on_batch(x, c, return_dict=True)[name] == pytest.approx(evaluated[0])


def test_xla_evaluation_and_prediction_equal_graph_mode(monkeypatch):
    # Under XLA they take products per tap (`networks.tap_products`; the 4x4 maps of the first
    # level), as the train step does; in graph mode (also 'auto' on CPU) the dense matrix.
    calls = []
    ours = dense_conv.tap_conv3x3
    monkeypatch.setattr(dense_conv, 'tap_conv3x3', lambda *a: calls.append(1) or ours(*a))
    x, c = _data('conditional glow', 8)
    flow, trainer = _trained('conditional glow', (x, c))
    _moved(flow)
    results = []
    for jit in ('auto', False, True):
        trainer.compile(keras.optimizers.SGD(0.0), jit_compile=jit)
        for run in (
            lambda: trainer.test_on_batch(x, c, return_dict=True)[trainer.metric_name],
            lambda: trainer.predict(_one_batch_dataset((x, c)), verbose=0),
        ):
            del calls[:]
            results.append(run())
            assert bool(calls) == (jit is True), (jit, len(results))
    auto, _, graph, graph_predicted, xla, xla_predicted = results
    assert auto == graph
    assert xla == pytest.approx(graph, rel=1e-5)
    np.testing.assert_allclose(xla_predicted, graph_predicted, rtol=1e-5)
    assert np.std(graph_predicted) > 1e-3  # Moved variables: not the identity's numbers.


def test_dropout_masks_are_a_function_of_the_seed_and_the_step():
    x, c = _data('conditional vector', 8)
    losses = []
    for seed in (1, 1, 2):
        flow, trainer = _trained('conditional vector', (x, c), dropout_rate=0.5, dropout_seed=seed)
        _moved(flow)
        trainer.compile(keras.optimizers.SGD(0.0))
        losses.append(trainer.train_on_batch(x, c, return_dict=True)['loss'])
    assert losses[0] == losses[1] != losses[2]


@pytest.mark.parametrize('family', ['conditional glow', 'conditional vector'])
def test_dropout_steps_on_two_replicas_or_micro_batches_equal_one_device_steps(
    family, mirrored_strategy
):
    # Each example's masks are a function of (seed, step, its row in the global batch), so one
    # device, 2 micro-batches, 2 replicas and 2 replicas of 2 micro-batches take the same steps
    # (plain SGD: a mask drawn per part shows in the gradients). Every variable is moved.
    x, c = _data(family, 8, seed=3)
    one_device = tf.distribute.OneDeviceStrategy('/cpu:0')
    results = []
    for strategy in (one_device, one_device, mirrored_strategy, mirrored_strategy):
        with strategy.scope():
            flow, trainer = _trained(
                family,
                (x, c),
                seed=5,
                dropout_rate=0.5,
                dropout_seed=1,
                clip_norm=100.0,
                accumulation_steps=1 + len(results) % 2,
            )
            _moved(flow)
            trainer.compile(keras.optimizers.SGD(0.1))
        evaluated = trainer.test_on_batch(x, c, return_dict=True)['loss']
        before = _values(flow.trainable_variables)
        history = trainer.fit(_one_batch_dataset((x, c)), epochs=2, verbose=0).history
        assert abs(history['loss'][0] - evaluated) > 1e-4  # Dropout is on.
        for old, v in zip(before, flow.trainable_variables, strict=True):
            assert not np.allclose(old, v.numpy()), v.name
        results.append((history, _values(flow.variables)))
    for v in flow.trainable_variables:
        local = [r.numpy() for r in mirrored_strategy.experimental_local_results(v)]
        np.testing.assert_array_equal(local[0], local[1], err_msg=v.name)
    _assert_runs_equal_the_first(results, history_rtol=1e-5, rtol=2e-4, atol=2e-6)


def test_dropout_steps_of_two_micro_batches_equal_one_step_under_xla():
    # XLA draws other masks than TF's kernels, but the same for the micro-batches as for the
    # whole batch: the draw's shape (the batch's) is static, as XLA needs.
    x, c = _data('conditional vector', 8, seed=3)
    results = []
    for accumulation_steps in (1, 2):
        flow, trainer = _trained(
            'conditional vector',
            (x, c),
            seed=5,
            dropout_rate=0.5,
            dropout_seed=1,
            accumulation_steps=accumulation_steps,
        )
        _moved(flow)
        trainer.compile(keras.optimizers.SGD(0.1), jit_compile=True)
        history = trainer.fit(_one_batch_dataset((x, c)), epochs=2, verbose=0).history
        results.append((history, _values(flow.variables)))
    _assert_runs_equal_the_first(results, history_rtol=1e-5, rtol=2e-4, atol=2e-6)


class _UserScale(tfp_flows.bijectors.FlowBijector):
    """A user's step of vectors (x exp(s)) that would draw dropout masks from `dropout_seed`
    but takes no `dropout_rows`."""

    kwarg_names = ('training', 'dropout_seed')

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, name='user_scale')
        self.log_scale = tf.Variable(0.0)

    def _forward_and_log_det(self, x, **kwargs):
        return x * tf.exp(self.log_scale), self.log_scale * tf.cast(tf.shape(x)[-1], tf.float32)

    def _inverse_and_log_det(self, y, **kwargs):
        return y * tf.exp(-self.log_scale), -self.log_scale * tf.cast(tf.shape(y)[-1], tf.float32)


def test_a_flow_taking_no_dropout_rows_gets_a_seed_per_part_of_the_batch():
    # The train step's parts of a batch (replicas, micro-batches) would all draw the same masks
    # from one seed: such a flow gets the step's seed folded with the part's first row.
    flow = tfp.distributions.TransformedDistribution(
        tfp.distributions.Sample(tfp.distributions.Normal(0.0, 1.0), [2]), _UserScale()
    )
    trainer = FlowTrainer(flow, dropout_seed=1)
    trainer.compile(keras.optimizers.SGD(0.1))
    kwargs = [trainer._training_kwargs(rows) for rows in (None, (0, 8), (tf.constant(4), 8))]  # noqa: SLF001
    assert all(sorted(k) == ['dropout_seed', 'training'] for k in kwargs)
    whole, first, second = (k['dropout_seed'].numpy().tolist() for k in kwargs)
    assert len({tuple(whole), tuple(first), tuple(second)}) == 3


def test_trainer_refuses_a_flow_without_variables():
    import tensorflow_probability as tfp

    flow = tfp.distributions.TransformedDistribution(
        tfp.distributions.Normal(0.0, 1.0), tfp.bijectors.Exp()
    )
    with pytest.raises(ValueError, match='no trainable variables'):
        FlowTrainer(flow)


BAD_ARGUMENTS = [
    ('num_bins', 1, r'`num_bins` must be None or an int >= 2; got 1\.'),
    ('num_bins', 17.0, r'`num_bins` must be None or an int >= 2; got 17\.0'),
    ('num_bins', True, r'`num_bins` must be None or an int >= 2; got True'),
    ('clip_norm', 0, r'`clip_norm` must be None or a finite number > 0; got 0\.'),
    ('clip_norm', -1.0, r'`clip_norm` must be .*; got -1\.0'),
    ('clip_norm', math.nan, r'`clip_norm` must be .*; got nan'),
    ('clip_norm', math.inf, r'`clip_norm` must be .*; got inf'),
    ('clip_norm', '50', r"`clip_norm` must be .*; got '50'"),
    ('accumulation_steps', 0, r'`accumulation_steps` must be a positive int; got 0\.'),
    ('accumulation_steps', 2.0, r'`accumulation_steps` must be a positive int; got 2\.0'),
    ('accumulation_steps', None, r'`accumulation_steps` must be a positive int; got None'),
    ('steps_per_execution', 0, r'`steps_per_execution` must be a positive int; got 0\.'),
    ('steps_per_execution', 1.5, r'`steps_per_execution` must be a positive int; got 1\.5'),
    ('steps_per_execution', True, r'`steps_per_execution` must be a positive int; got True'),
    ('dropout_seed', -1, r'`dropout_seed` must be None or an int in \[0, 2\*\*31\); got -1\.'),
    ('dropout_seed', 1.0, r'`dropout_seed` must be .*; got 1\.0'),
    ('dropout_seed', 2**31, r'`dropout_seed` must be .*; got 2147483648'),
    ('dequantization_seed', -1, r'`dequantization_seed` must be an int in \[0, 2\*\*31\); got -1'),
    ('dequantization_seed', None, r'`dequantization_seed` must be an int in .*; got None'),
]


@pytest.mark.parametrize(
    'argument, value, message', BAD_ARGUMENTS, ids=[f'{a}={v!r}' for a, v, _ in BAD_ARGUMENTS]
)
def test_each_numeric_argument_out_of_its_domain_is_refused(argument, value, message):
    flow = _build('vector')
    with pytest.raises(ValueError, match=message):
        if argument == 'steps_per_execution':
            FlowTrainer(flow).compile(keras.optimizers.SGD(0.1), **{argument: value})
        else:
            FlowTrainer(flow, **{argument: value})


def test_every_numeric_argument_is_swept():
    numeric = set(inspect.signature(FlowTrainer).parameters)
    numeric -= {'flow', 'name', 'kwargs', 'dequantizer'}  # Not numbers: see test_a_dequantizer_.
    numeric -= {'memory_saving'}  # Checked by the flow: see test_memory_saving_needs_.
    numeric |= set(inspect.signature(FlowTrainer.compile).parameters) - {'self', 'optimizer'}
    numeric -= {'kwargs'}
    assert {argument for argument, _, _ in BAD_ARGUMENTS} == numeric


@pytest.mark.parametrize('family', ['glow', 'vector'])
def test_the_loss_is_logged_as_loss_and_under_its_unit(family):
    # What a Keras user reads first: history.history['loss'], falling.
    x = _data(family, 8)
    _, trainer = _trained(family, x)
    trainer.compile(make_optimizer('adam', 1e-2))
    name = {'glow': 'bits_per_dim', 'vector': 'nats_per_dim'}[family]
    assert trainer.metric_name == name
    dataset = _one_batch_dataset(x)
    with warnings.catch_warnings():  # A dataset shuffles itself: no Keras warning about it.
        warnings.simplefilter('error')
        history = trainer.fit(dataset, validation_data=dataset, epochs=3, verbose=0).history
    assert set(history) == {'loss', name, 'grad_norm', 'val_loss', 'val_' + name}
    assert history['loss'][-1] < history['loss'][0]
    assert history['val_loss'][-1] < history['val_loss'][0]
    assert history[name] == history['loss'] and history['val_' + name] == history['val_loss']
    evaluated = trainer.evaluate(dataset, verbose=0, return_dict=True)
    assert evaluated == pytest.approx(
        {'loss': history['val_loss'][-1], name: history['val_loss'][-1]}
    )


def _nineteen_batches():
    return tf.data.Dataset.from_tensor_slices(_data('glow', 19 * 4, seed=7)).batch(4)


class _Slow(keras.callbacks.Callback):
    """Waits after each call into TF, so that the bar (which redraws at most every 0.05 s
    before the end) draws every call's count."""

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.06)

    def on_test_batch_end(self, batch, logs=None):
        time.sleep(0.06)


def test_the_progress_bar_never_counts_past_the_epoch(capsys):
    # 19 steps, 8 per call: Keras reports the last call as steps 17-24 (pinned at the end).
    batches = _nineteen_batches()
    _, trainer = _trained('glow', next(iter(batches)))
    trainer.compile(keras.optimizers.SGD(0.01), steps_per_execution=8)
    trainer.fit(batches, verbose=1, callbacks=[_Slow()])
    trainer.evaluate(batches, verbose=1, callbacks=[_Slow()])
    shown = capsys.readouterr().out
    counts = [int(count) for count in re.findall(r'(\d+)/19\b', shown)]
    assert {8, 16, 19} <= set(counts) and max(counts) == 19, shown
    assert 'loss' in shown and 'bits_per_dim' in shown, shown

    trainer.fit(batches, verbose=1, callbacks=[_Slow(), keras.callbacks.ProgbarLogger()])
    assert '24/19' in capsys.readouterr().out  # Keras' own bar: why `EpochProgbar` exists.


def test_terminate_on_nan_stops_a_diverging_fit():
    # Keras' own callback reads 'loss': the fit stops at the first batch whose loss is NaN.
    x = _data('glow', 4)
    _, trainer = _trained('glow', x)
    trainer.compile(keras.optimizers.SGD(0.01))
    batches = tf.data.Dataset.from_tensor_slices(np.stack([x, x, x * np.nan, x])).repeat()
    history = trainer.fit(
        batches,
        steps_per_epoch=4,
        epochs=5,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )
    assert int(trainer.optimizer.iterations.numpy()) == 3
    assert len(history.history['loss']) == 1 and not math.isfinite(history.history['loss'][0])


def test_early_stopping_and_reduce_lr_on_plateau_read_the_loss():
    # No epoch counts as an improvement (min_delta): the learning rate halves after each
    # epoch but the first, and the fit stops after `patience` epochs without improvement.
    x = _data('glow', 4)
    _, trainer = _trained('glow', x)
    trainer.compile(keras.optimizers.SGD(1e-3))
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor='loss', factor=0.5, patience=0, min_delta=10),
        keras.callbacks.EarlyStopping(monitor='val_loss', patience=2, min_delta=10),
    ]
    dataset = _one_batch_dataset(x)
    history = trainer.fit(
        dataset, validation_data=dataset, epochs=10, callbacks=callbacks, verbose=0
    )
    assert len(history.history['loss']) == 3 and callbacks[1].stopped_epoch == 2
    assert float(trainer.optimizer.learning_rate.numpy()) == pytest.approx(2.5e-4)


def test_clipping_scales_the_global_gradient_to_clip_norm():
    x = _data('glow', 8)
    flow, trainer = _trained('glow', x, clip_norm=0.05)
    trainer.compile(keras.optimizers.SGD(1.0))
    variables = flow.trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(trainer.per_example_loss(x))
    gradients = tape.gradient(loss, variables)
    norm = math.sqrt(sum(float(tf.reduce_sum(g**2)) for g in gradients))
    assert norm > 0.05  # Clipping is active.
    expected = [
        v.numpy() - g.numpy() * 0.05 / norm for v, g in zip(variables, gradients, strict=True)
    ]
    logs = trainer.train_on_batch(x, return_dict=True)
    assert logs['grad_norm'] == pytest.approx(norm, rel=1e-5)
    for v, e in zip(variables, expected, strict=True):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)


def test_accumulation_makes_one_step_of_the_whole_batch():
    # Clipping is active (the norm is ~1-10 here): it must act on the summed gradient. The
    # schedule (warm-up), weight decay and EMA must count optimizer steps, one per batch. Four
    # micro-batches: a count or a mean that two would hide (the loop is the same).
    batches = tf.data.Dataset.from_tensor_slices(_data('glow', 3 * 16, seed=4)).batch(16)
    results = []
    for accumulation_steps in (1, 4):
        flow, trainer = _trained(
            'glow',
            next(iter(batches)),
            seed=1,
            clip_norm=0.5,
            accumulation_steps=accumulation_steps,
        )
        trainer.compile(
            make_optimizer('adam', 3e-3, warmup_steps=4, weight_decay=0.1, ema_momentum=0.5)
        )
        history = trainer.fit(batches, epochs=2, verbose=0)
        assert int(trainer.optimizer.iterations.numpy()) == 6
        results.append((history.history, _values([*flow.variables, *trainer.optimizer.variables])))
    _assert_runs_equal_the_first(results, history_rtol=1e-5, rtol=1e-4, atol=1e-6)


def test_memory_saving_steps_equal_plain_steps():
    # Plain SGD with active clipping: the gradients themselves, not Adam's normalised steps.
    # The trainer passes the mode on; tests/bijectors/test_backprop.py covers each structure.
    x = _data('glow', 8, seed=7)
    results = []
    for mode in (None, 'invert', 'recompute'):
        flow, trainer = _trained(
            'glow', x, seed=2, dtype=tf.float64, clip_norm=0.5, memory_saving=mode
        )
        trainer.compile(keras.optimizers.SGD(0.5))
        history = trainer.fit(_one_batch_dataset(x), epochs=2, verbose=0).history
        results.append((history, _values(flow.variables)))
    _assert_runs_equal_the_first(results, history_rtol=1e-10, rtol=1e-9, atol=1e-12)


def test_memory_saving_needs_a_flow_of_this_package_and_a_mode():
    flow = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [2]), tfb.Shift(tf.Variable([0.0, 0.0]))
    )
    with pytest.raises(ValueError, match=r"`memory_saving` \('invert'\) needs a flow whose"):
        FlowTrainer(flow, memory_saving='invert')
    # The mode is checked when the trainer is built, with the Chain's own domain.
    with pytest.raises(ValueError, match=r"`memory_saving` must be None or one of .*'all'"):
        FlowTrainer(tfp_flows.real_nvp((2,), num_steps=1), memory_saving='all')


def test_accumulation_needs_equal_micro_batches():
    x = _data('glow', 6)
    _, trainer = _trained('glow', x, accumulation_steps=4)
    trainer.compile(keras.optimizers.SGD(0.01))
    message = r'accumulation_steps=4\) splits the batch on each replica into 4 equal micro-'
    with pytest.raises(ValueError, match=message + r'.*got a batch of 6'):
        trainer.fit(_one_batch_dataset(x), verbose=0)
    # A batch size known only when running (the last batch of a dataset without
    # drop_remainder) is checked when running.
    dataset = tf.data.Dataset.from_tensor_slices(_data('glow', 14)).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        trainer.fit(dataset, verbose=0)


SETUPS = {
    # Plain SGD shows a sum-instead-of-mean as a factor of 2 (Adam would hide it); clipping is
    # active (the norm is ~1-10 here) and must act on the global gradient.
    'sgd': dict(optimizer=lambda: keras.optimizers.SGD(0.5)),
    # 4 examples per replica in 2 micro-batches of 2, against one step on the 8 examples.
    'accumulation': dict(optimizer=lambda: keras.optimizers.SGD(0.5), accumulation_steps=2),
    # Adam and Adamax scale each step by 1 / |gradient|, so the rounding of near-zero gradients
    # (summed in another order on two replicas) shows in float32 (Keras' own Adamax alike).
    'fused adamax, weight decay, ema, float64': dict(
        optimizer=lambda: make_optimizer(
            'adamax', 1e-2, warmup_steps=1, weight_decay=0.1, ema_momentum=0.5
        ),
        dtype=tf.float64,
    ),
}


@pytest.mark.parametrize(
    'family, setup',
    [
        ('vector', 'sgd'),
        ('glow', 'accumulation'),
        ('vector', 'fused adamax, weight decay, ema, float64'),  # The optimizer, any flow.
    ],
)
def test_two_replica_step_equals_one_device_step(family, setup, mirrored_strategy):
    assert mirrored_strategy.num_replicas_in_sync == 2
    x = _data(family, 8, seed=3)
    results = []
    for strategy in (tf.distribute.OneDeviceStrategy('/cpu:0'), mirrored_strategy):
        accumulation_steps = SETUPS[setup].get('accumulation_steps', 1)
        with strategy.scope():
            flow, trainer = _trained(
                family,
                x,
                seed=5,
                dtype=SETUPS[setup].get('dtype', tf.float32),
                clip_norm=0.5,
                accumulation_steps=accumulation_steps if strategy is mirrored_strategy else 1,
            )
            trainer.compile(SETUPS[setup]['optimizer']())
        trainer.fit(_one_batch_dataset(x), epochs=2, verbose=0)
        variables = [*flow.variables, *trainer.optimizer.variables]
        results.append(_values(variables))
        if trainer.optimizer.use_ema:  # The swap works on every replica (outside the scope).
            for v in flow.trainable_variables:
                v.assign_add(tf.ones_like(v))
            with trainer.ema_weights():
                results[-1] += _values(flow.trainable_variables)
            results[-1] += _values(flow.trainable_variables)
        if strategy is mirrored_strategy:
            for v in variables:
                v = v.value if isinstance(v, keras.Variable) else v  # The optimizer's.
                local = [r.numpy() for r in strategy.experimental_local_results(v)]
                assert len(local) == 2, v.name
                np.testing.assert_array_equal(local[0], local[1], err_msg=v.name)
    for single, mirrored in zip(*results, strict=True):
        np.testing.assert_allclose(mirrored, single, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize('jit_compile', [False, True])
def test_several_steps_per_execution_equal_one_step_per_call(jit_compile):
    # 19 batches with 8 steps per call: two full calls and a short one, as in a digits epoch;
    # with XLA the 8 steps of a call are one XLA loop (`xla_steps`), and a dataset's short
    # last batch (3 of 4 examples) trains on its own.
    batches = _nineteen_batches()
    if jit_compile:
        batches = tf.data.Dataset.from_tensor_slices(_data('glow', 19 * 4 - 1, seed=7)).batch(4)
    results = []
    for steps_per_execution in (1, 8):
        flow, trainer = _trained('glow', next(iter(batches)), seed=2, clip_norm=10.0)
        trainer.compile(
            make_optimizer('adam', 3e-3),
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
        )
        history = trainer.fit(batches, epochs=2, verbose=0)
        assert int(trainer.optimizer.iterations.numpy()) == 2 * 19
        results.append((history.history['loss'], _values(flow.trainable_variables)))
    assert trainer.steps_per_execution == 8
    looped = trainer.train_function.__module__ == 'tfp_flows.training.xla_steps'
    assert looped == jit_compile
    logs = trainer.train_on_batch(next(iter(batches)), return_dict=True)  # Keras' own path.
    assert int(trainer.optimizer.iterations.numpy()) == 2 * 19 + 1
    assert np.isfinite(logs['loss'])
    (loss_1, single), (loss_8, several) = results
    np.testing.assert_allclose(loss_8, loss_1, rtol=1e-4)
    for a, b in zip(single, several, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize('compile_in_scope', [True, False])
def test_several_steps_per_execution_fall_back_to_one_on_two_replicas(
    mirrored_strategy, caplog, compile_in_scope
):
    # Keras 3 cannot loop there (keras-team/keras#19246): one step per call, warned. A fit on
    # two replicas with one step per call is test_two_replica_step_equals_one_device_step's.
    # The trainer's strategy counts, also when `compile` runs outside its scope.
    x = _data('glow', 8)
    with mirrored_strategy.scope():
        _, trainer = _trained('glow', x)
    with mirrored_strategy.scope() if compile_in_scope else contextlib.nullcontext():
        trainer.compile(keras.optimizers.SGD(0.01), steps_per_execution=8)
    assert trainer.steps_per_execution == 1
    assert 'keras-team/keras#19246' in caplog.text


@pytest.mark.parametrize(
    'jit_compile, compile_in_scope',
    [(True, True), (np.True_, True), (False, True), ('auto', True), (True, False)],
)
def test_xla_is_refused_on_two_replicas_before_training(
    mirrored_strategy, jit_compile, compile_in_scope
):
    # Keras turns XLA off under a strategy itself ('auto'); True failed inside `fit`, after
    # tracing ("Trying to access resource ... replica_1 ... from ... CPU:0"). The trainer's
    # strategy counts, also when `compile` runs outside its scope.
    x = _data('glow', 8)
    with mirrored_strategy.scope():
        _, trainer = _trained('glow', x)
    with mirrored_strategy.scope() if compile_in_scope else contextlib.nullcontext():
        if isinstance(jit_compile, str) or not jit_compile:
            trainer.compile(keras.optimizers.SGD(0.01), jit_compile=jit_compile)
            return
        with pytest.raises(ValueError, match=r'jit_compile=True .* 2 replicas') as raised:
            trainer.compile(keras.optimizers.SGD(0.01), jit_compile=jit_compile)
    assert 'jit_compile=False' in str(raised.value) and 'strategy=one_device' in str(raised.value)


class _Recorder(keras.callbacks.Callback):
    """The flow's weights after each training step, during validation and after it."""

    def __init__(self, variables):
        super().__init__()
        self.variables = variables
        self.after_step, self.in_validation, self.after_validation = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.after_step.append(_values(self.variables))

    def on_test_batch_end(self, batch, logs=None):
        self.in_validation.append(_values(self.variables))

    def on_epoch_end(self, epoch, logs=None):
        self.after_validation.append(_values(self.variables))


def _ema(steps, momentum):
    """Keras' EMA by hand: the first step's weights, then m * average + (1 - m) * weights."""
    average = steps[0]
    for weights in steps[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights, strict=True)]
    return average


def _assert_all_close(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_ema_weights_are_validated_on_checkpointed_and_swapped_back(tmp_path):
    x = _data('glow', 8)
    flow, trainer = _trained('glow', x)
    optimizer = make_optimizer('adam', 1e-2, ema_momentum=0.8)
    trainer.compile(optimizer)
    variables = flow.trainable_variables
    # Keras' EMA machinery (finalize_variable_values) takes the model's trainable_weights.
    assert [v.ref() for v in trainer.trainable_weights] == [v.ref() for v in variables]
    recorder = _Recorder(variables)
    checkpoint = tf.train.Checkpoint(flow=flow, optimizer=optimizer)

    class Save(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            checkpoint.write(str(tmp_path / 'ckpt'))

    history = trainer.fit(
        _one_batch_dataset(x).repeat(),
        steps_per_epoch=5,
        epochs=2,
        validation_data=_one_batch_dataset(x),
        callbacks=[keras.callbacks.SwapEMAWeights(), recorder, Save()],
        verbose=0,
    )
    raw = recorder.after_step
    for epoch in (0, 1):
        ema = _ema(raw[: 5 * (epoch + 1)], 0.8)
        _assert_all_close(recorder.in_validation[epoch], ema)  # Validated on the EMA weights,
        _assert_all_close(recorder.after_validation[epoch], raw[5 * epoch + 4])  # then raw.
    # At the end of fit Keras writes the EMA weights into the flow, so validation's figure is
    # the flow's loss now.
    _assert_all_close(_values(variables), _ema(raw, 0.8))
    val = float(tf.reduce_mean(trainer.per_example_loss(x)))
    assert history.history['val_loss'][-1] == pytest.approx(val, rel=1e-5)

    # The checkpoint holds both: the raw weights in the flow, the EMA in the optimizer.
    checkpoint.read(str(tmp_path / 'ckpt')).assert_consumed()
    _assert_all_close(_values(variables), raw[-1])
    with trainer.ema_weights():
        _assert_all_close(_values(variables), _ema(raw, 0.8))
        evaluated = trainer.evaluate(_one_batch_dataset(x), verbose=0, return_dict=True)
        assert evaluated['loss'] == pytest.approx(val, rel=1e-5)
    _assert_all_close(_values(variables), raw[-1])


def test_ema_weights_need_an_optimizer_with_ema():
    x = _data('glow', 4)
    _, trainer = _trained('glow', x)
    trainer.compile(make_optimizer('adam'))
    with pytest.raises(ValueError, match=r'needs an optimizer that keeps an EMA.*ema_momentum'):
        with trainer.ema_weights():
            pass


def _resident_megabytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


class _MemoryProbe(keras.callbacks.Callback):
    """Resident memory at the end of chosen training batches."""

    def __init__(self, at_batches):
        super().__init__()
        self.at_batches, self.megabytes = at_batches, {}

    def on_train_batch_end(self, batch, logs=None):
        if batch in self.at_batches:
            self.megabytes[batch] = _resident_megabytes()


def test_memory_stays_flat_over_a_long_run():
    x = _data('glow', 16)
    _, trainer = _trained('glow', x, clip_norm=50.0)
    trainer.compile(make_optimizer('adam', 1e-3))
    probe = _MemoryProbe(at_batches=(100, 1100))
    trainer.fit(
        _one_batch_dataset(x).repeat(), steps_per_epoch=1101, epochs=1, verbose=0, callbacks=[probe]
    )
    # Retracing or a growing bijector cache would add far more over 1,000 steps.
    assert probe.megabytes[1100] - probe.megabytes[100] < 15


def _pixels(count, seed=0):
    """Discrete 8x8 images of a few levels of 17, as float32 (what make_dataset(...,
    dequantize=False) gives)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 5, size=(count, *IMAGE_SHAPE)) * 4).astype(np.float32)


def _with_dequantizer(pixels, seed=0, dtype=tf.float32, **trainer_kwargs):
    """A Real NVP, a small VariationalDequantizer and a FlowTrainer training both (ActNorm
    initialised on uniformly dequantized `pixels`, which is q at initialisation)."""
    flow = _build('real_nvp', seed=seed, dtype=dtype)
    dequantizer = VariationalDequantizer(
        IMAGE_SHAPE, 17, num_steps=2, hidden_channels=4, context_channels=2, seed=seed, dtype=dtype
    )
    tfp_flows.initialize(flow, tfp_flows.uniform_dequantize(pixels, 17, seed=[0, 1], dtype=dtype))
    trainer = FlowTrainer(flow, 17, dequantizer=dequantizer, **trainer_kwargs)
    return flow, dequantizer, trainer


def test_the_xla_loop_with_a_dequantizer_equals_one_step_per_call(monkeypatch):
    # The loop's train step takes the loop body's convolution gradients (`xla_steps`): XLA:CPU
    # left TF's conv gradients in a loop body uncanonicalized, 7-10x slower. Both of a
    # dequantizer's and a flow's (8x8 maps: convolutions, not dense products) train.
    pixels = _pixels(32)
    batches = tf.data.Dataset.from_tensor_slices(pixels).batch(8)
    calls = []
    ours = dense_conv.conv3x3_same
    monkeypatch.setattr(networks, 'conv3x3_same', lambda *a: calls.append(1) or ours(*a))
    results = []
    for steps_per_execution in (1, 4):
        flow, dequantizer, trainer = _with_dequantizer(pixels, seed=3, clip_norm=100.0)
        variables = [*flow.trainable_variables, *dequantizer.trainable_variables]
        before = _values(variables)
        trainer.compile(
            make_optimizer('adam', 3e-3),
            jit_compile=True,
            steps_per_execution=steps_per_execution,
        )
        del calls[:]
        history = trainer.fit(batches, epochs=3, verbose=0)
        looped = trainer.train_function.__module__ == 'tfp_flows.training.xla_steps'
        assert looped == (steps_per_execution > 1) == bool(calls)
        assert int(trainer.optimizer.iterations.numpy()) == 12
        assert history.history['loss'][-1] < history.history['loss'][0] - 0.05  # It learns.
        after = _values(variables)
        assert not [
            v.name for v, b, a in zip(variables, before, after, strict=True) if np.array_equal(b, a)
        ]
        results.append((history.history['loss'], after))
    (loss_1, single), (loss_4, looped) = results
    np.testing.assert_allclose(loss_4, loss_1, rtol=1e-4)
    for a, b in zip(single, looped, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


def test_the_xla_loop_takes_its_gradients_on_a_one_replica_mirrored_strategy(monkeypatch):
    # `--config.train.strategy=mirrored` on one logical CPU. A MirroredStrategy runs each
    # replica's step in a thread of its own, which does not see the caller's context
    # variables: the loop body's gradients (`networks.loop_gradients`) are entered in it.
    pixels = _pixels(16)
    calls = []
    ours = dense_conv.conv3x3_same
    monkeypatch.setattr(networks, 'conv3x3_same', lambda *a: calls.append(1) or ours(*a))
    with tf.distribute.MirroredStrategy(['/cpu:0']).scope():
        _, _, trainer = _with_dequantizer(pixels, seed=3)
        trainer.compile(make_optimizer('adam', 3e-3), jit_compile=True, steps_per_execution=2)
    trainer.fit(tf.data.Dataset.from_tensor_slices(pixels).batch(8), epochs=1, verbose=0)
    assert trainer.train_function.__module__ == 'tfp_flows.training.xla_steps'
    assert int(trainer.optimizer.iterations.numpy()) == 2
    assert calls  # 8x8 maps: convolutions, not dense products.


@pytest.mark.parametrize('path', ['fit', 'accumulation, ema'])
def test_variational_dequantization_trains_flow_and_dequantizer_jointly(path):
    pixels = _pixels(32)
    every = path != 'fit'
    flow, dequantizer, trainer = _with_dequantizer(
        pixels, clip_norm=100.0, accumulation_steps=4 if every else 1
    )
    variables = [*flow.trainable_variables, *dequantizer.trainable_variables]
    assert [v.ref() for v in trainer.trainable_weights] == [v.ref() for v in variables]
    before = _values(variables)
    trainer.compile(make_optimizer('adam', 3e-3, ema_momentum=0.9 if every else None))
    assert len(trainer.optimizer.variables) > 2 * len(variables)  # Slots for q's too.
    first = trainer.evaluate(_one_batch_dataset(pixels), verbose=0, return_dict=True)['loss']
    # A fixed evaluation seed: the same figure every time, and the same as predict's.
    assert (
        trainer.evaluate(_one_batch_dataset(pixels), verbose=0, return_dict=True)['loss'] == first
    )
    predicted = trainer.predict(_one_batch_dataset(pixels), verbose=0)
    assert float(np.mean(predicted)) == pytest.approx(first, rel=1e-6)
    callbacks = [keras.callbacks.SwapEMAWeights()] if every else []
    trainer.fit(
        _one_batch_dataset(pixels).repeat(),
        steps_per_epoch=40,
        epochs=1,
        verbose=0,
        callbacks=callbacks,
    )
    last = trainer.evaluate(_one_batch_dataset(pixels), verbose=0, return_dict=True)['loss']
    assert last < first - 0.05
    unmoved = [
        v.name for b, v in zip(before, variables, strict=True) if np.array_equal(b, v.numpy())
    ]
    assert not unmoved


def test_the_dequantized_loss_is_the_flow_and_dequantizer_bound():
    pixels = _pixels(4)
    flow, dequantizer, trainer = _with_dequantizer(pixels)
    eps = dequantizer.base.sample(4, seed=tf.constant([3, 4]))
    noise, log_q = dequantizer.noise_and_log_prob(eps, pixels)
    log_p = flow.log_prob((pixels + noise) / 17)
    expected = tfp_flows.bits_per_dim(log_p - log_q, 64, 17)
    np.testing.assert_allclose(
        trainer.per_example_loss(pixels, base_noise=eps), expected, rtol=1e-6
    )


def test_the_train_step_noise_is_a_function_of_the_seed_and_the_step():
    pixels = _pixels(8)
    results = []
    for seed in (0, 0, 1):
        _, _, trainer = _with_dequantizer(pixels, dequantization_seed=seed)
        trainer.compile(keras.optimizers.SGD(0.0))  # Weights stay: only the noise changes.
        history = trainer.fit(_one_batch_dataset(pixels).repeat(), steps_per_epoch=2, verbose=0)
        results.append(history.history['loss'][0])
    assert results[0] == results[1] != results[2]


def test_accumulation_with_a_dequantizer_makes_one_step_of_the_whole_batch():
    batches = tf.data.Dataset.from_tensor_slices(_pixels(32, seed=4)).batch(16)
    results = []
    for accumulation_steps in (1, 2):
        flow, dequantizer, trainer = _with_dequantizer(
            _pixels(16, seed=4), seed=1, clip_norm=0.5, accumulation_steps=accumulation_steps
        )
        trainer.compile(make_optimizer('adam', 3e-3, warmup_steps=2, ema_momentum=0.5))
        history = trainer.fit(batches, epochs=1, verbose=0)
        results.append((history.history, _values([*trainer.trainable_weights])))
    _assert_runs_equal_the_first(results, history_rtol=1e-5, rtol=1e-4, atol=1e-6)


def test_two_replica_step_with_a_dequantizer_equals_one_device_step(mirrored_strategy):
    pixels = _pixels(8, seed=3)
    results = []
    one_device = tf.distribute.OneDeviceStrategy('/cpu:0')
    # Two replicas of 2 micro-batches each: a sum instead of a mean over replicas or
    # micro-batches, or noise drawn per replica, shows against one device.
    for strategy, accumulation_steps in ((one_device, 1), (mirrored_strategy, 2)):
        with strategy.scope():
            _, _, trainer = _with_dequantizer(
                pixels, seed=5, clip_norm=0.5, accumulation_steps=accumulation_steps
            )
            trainer.compile(keras.optimizers.SGD(0.5))
        history = trainer.fit(
            _one_batch_dataset(pixels),
            epochs=2,
            validation_data=_one_batch_dataset(pixels),
            verbose=0,
        )
        results.append((history.history, _values(trainer.trainable_weights)))
    _assert_runs_equal_the_first(results, history_rtol=1e-5, rtol=2e-4, atol=2e-6)


def test_a_dequantizer_of_other_data_is_refused():
    flow = _build('real_nvp')
    other = VariationalDequantizer((8, 8, 1), 256, num_steps=2, hidden_channels=4)
    with pytest.raises(ValueError, match=r'built for the data: num_bins 17 \(got 256\)'):
        FlowTrainer(flow, 17, dequantizer=other)
    with pytest.raises(ValueError, match=r'A `dequantizer` needs `num_bins`'):
        FlowTrainer(flow, dequantizer=other)
    with pytest.raises(TypeError, match='`dequantizer` must be None or a VariationalDeq'):
        FlowTrainer(flow, 17, dequantizer='variational')
    smaller = VariationalDequantizer((4, 4, 1), 17, num_steps=2, hidden_channels=4)
    with pytest.raises(ValueError, match=r'built for the data: event_shape \(8, 8, 1\)'):
        FlowTrainer(flow, 17, dequantizer=smaller)
    # The dequantizer checks the values of the images it is given.
    _, _, trainer = _with_dequantizer(_pixels(2))
    with pytest.raises(tf.errors.InvalidArgumentError, match='`pixels` must be integers from 0'):
        trainer.per_example_loss(_pixels(2) + 0.5)
