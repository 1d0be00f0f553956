"""The Keras bridge trains every variable, on one device and on two replicas alike."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.optimizers import make_optimizer
from tfp_flows.trainer import FlowTrainer

IMAGE_SHAPE = (8, 8, 1)


def _build(family, seed=0):
    if family == 'glow':
        return tfp_flows.glow(IMAGE_SHAPE, num_levels=2, num_steps=1, hidden_channels=8, seed=seed)
    if family == 'real_nvp':
        return tfp_flows.real_nvp(
            IMAGE_SHAPE, num_levels=2, num_steps=1, hidden_channels=8, split_prior=True, seed=seed
        )
    return tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=8, seed=seed)


def _data(family, count, seed=0):
    rng = np.random.default_rng(seed)
    if family == 'vector':
        return (rng.standard_normal((count, 2)) * [1.0, 0.3] + [0.5, -1.0]).astype(np.float32)
    pixels = rng.integers(0, 5, size=(count, *IMAGE_SHAPE)) * 4  # A few levels of 17.
    return tfp_flows.uniform_dequantize(pixels, 17, seed=[seed, 1]).numpy()


def _num_bins(family):
    return None if family == 'vector' else 17


def _one_batch_dataset(x):
    return tf.data.Dataset.from_tensors(x)


@pytest.mark.parametrize('family', ['glow', 'real_nvp', 'vector'])
def test_fit_moves_every_variable_and_lowers_the_loss(family):
    x = _data(family, 32)
    flow = _build(family)
    tfp_flows.initialize(flow, x)
    before = [v.numpy().copy() for v in flow.trainable_variables]
    trainer = FlowTrainer(flow, _num_bins(family), clip_norm=100.0)
    trainer.compile(make_optimizer('adam', 3e-3))
    first = trainer.evaluate(_one_batch_dataset(x), verbose=0)
    trainer.fit(_one_batch_dataset(x).repeat(), steps_per_epoch=40, epochs=1, verbose=0)
    last = trainer.evaluate(_one_batch_dataset(x), verbose=0)
    assert last < first - 0.05
    unmoved = [
        v.name
        for b, v in zip(before, flow.trainable_variables, strict=True)
        if np.array_equal(b, v.numpy())
    ]
    assert not unmoved


def test_trainer_refuses_a_flow_without_variables():
    import tensorflow_probability as tfp

    flow = tfp.distributions.TransformedDistribution(
        tfp.distributions.Normal(0.0, 1.0), tfp.bijectors.Exp()
    )
    with pytest.raises(ValueError, match='no trainable variables'):
        FlowTrainer(flow)


@pytest.mark.parametrize('family', ['glow', 'vector'])
def test_two_replica_step_equals_one_device_step(family, mirrored_strategy):
    assert mirrored_strategy.num_replicas_in_sync == 2
    x = _data(family, 8, seed=3)
    results = []
    for strategy in (tf.distribute.OneDeviceStrategy('/cpu:0'), mirrored_strategy):
        with strategy.scope():
            flow = _build(family, seed=5)
            tfp_flows.initialize(flow, x)
            # Plain SGD shows a sum-instead-of-mean as a factor of 2 (Adam would hide it);
            # clipping is active (the norm is ~1-10 here) and must act on the global gradient.
            trainer = FlowTrainer(flow, _num_bins(family), clip_norm=0.5)
            trainer.compile(keras.optimizers.SGD(0.5))
        trainer.fit(_one_batch_dataset(x), epochs=2, verbose=0)
        results.append([v.numpy() for v in flow.trainable_variables])
        if strategy is mirrored_strategy:
            for v in flow.variables:
                local = [r.numpy() for r in strategy.experimental_local_results(v)]
                np.testing.assert_array_equal(local[0], local[1], err_msg=v.name)
    for single, mirrored in zip(*results, strict=True):
        np.testing.assert_allclose(mirrored, single, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize('mirrored', [False, True])
def test_several_steps_per_execution_equal_one_step_per_call(mirrored, mirrored_strategy, caplog):
    # 19 batches with 8 steps per call: two full calls and a short one, as in a digits epoch.
    # On two replicas Keras 3 cannot loop (keras-team/keras#19246): one step per call, warned.
    batches = tf.data.Dataset.from_tensor_slices(_data('glow', 19 * 4, seed=7)).batch(4)
    results = []
    for strategy, steps_per_execution in (
        (tf.distribute.get_strategy(), 1),
        (mirrored_strategy if mirrored else tf.distribute.get_strategy(), 8),
    ):
        with strategy.scope():
            flow = _build('glow', seed=2)
            tfp_flows.initialize(flow, next(iter(batches)))
            trainer = FlowTrainer(flow, 17, clip_norm=10.0)
            trainer.compile(make_optimizer('adam', 3e-3), steps_per_execution=steps_per_execution)
        history = trainer.fit(batches, epochs=2, verbose=0)
        assert int(trainer.optimizer.iterations.numpy()) == 2 * 19
        results.append((history.history['loss'], [v.numpy() for v in flow.trainable_variables]))
    assert trainer.steps_per_execution == (1 if mirrored else 8)
    assert ('keras-team/keras#19246' in caplog.text) == mirrored
    (loss_1, single), (loss_8, several) = results
    np.testing.assert_allclose(loss_8, loss_1, rtol=1e-4)
    for a, b in zip(single, several, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


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
    flow = _build('glow')
    tfp_flows.initialize(flow, x)
    trainer = FlowTrainer(flow, 17, clip_norm=50.0)
    trainer.compile(make_optimizer('adam', 1e-3))
    probe = _MemoryProbe(at_batches=(100, 1100))
    trainer.fit(
        _one_batch_dataset(x).repeat(), steps_per_epoch=1101, epochs=1, verbose=0, callbacks=[probe]
    )
    # Retracing or a growing bijector cache would add far more over 1,000 steps.
    assert probe.megabytes[1100] - probe.megabytes[100] < 15
