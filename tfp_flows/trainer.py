"""The Keras bridge: `FlowTrainer`, a `keras.Model` that trains a flow's variables with `fit`.

A Keras 3 `Model` does not see the `tf.Variable`s inside TFP bijectors, so a plain
`compile(loss=...)`/`fit` on a flow trains nothing and reports a flat loss. `FlowTrainer`
therefore takes the variables from `flow.trainable_variables` in its own `train_step`, and
`FlowTrainer.compile` builds the optimizer on exactly those variables (which a Keras 3
optimizer also needs under `MirroredStrategy`). It refuses a flow with no trainable variables.

Loss: bits/dim on the discrete data for images (`num_bins` given), negative log-likelihood
in nats per dimension for continuous data. Under a `tf.distribute` strategy the per-replica
loss is the replica's summed loss divided by the global batch size, and the optimizer sums
gradients over replicas, so one step equals one step on a single device with the same global
batch. Gradient-norm clipping is applied to that global gradient (Keras' own `global_clipnorm`
would clip each replica's part before the sum). Floating-point batches are cast to the flow's
dtype, so a float64 flow trains on the float32 batches of `tfp_flows.data`; other dtypes
raise `TypeError`.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfp_flows.dequantization import bits_per_dim

__all__ = ['FlowTrainer']


class FlowTrainer(keras.Model):
    """Trains `flow` with `fit`/`evaluate`; `loss` is bits/dim (or nats/dim without bins).

    Usage, inside the strategy's scope:
        trainer = FlowTrainer(flow, num_bins=17, clip_norm=50.0)
        trainer.compile(optimizer=make_optimizer('adamax', 1e-3, warmup_steps=200))
        trainer.fit(train_dataset, validation_data=validation_dataset, epochs=10)
    """

    def __init__(self, flow, num_bins=None, clip_norm=None, name='flow_trainer', **kwargs):
        super().__init__(name=name, **kwargs)
        if not flow.trainable_variables:
            raise ValueError(f'The flow {flow.name!r} has no trainable variables to train.')
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f'clip_norm must be > 0 or None; got {clip_norm!r}.')
        self.flow = flow
        self.num_bins = num_bins
        self.clip_norm = clip_norm
        self.num_dims = int(np.prod(flow.event_shape))
        self.loss_tracker = keras.metrics.Mean(name='loss')
        self.grad_norm_tracker = keras.metrics.Mean(name='grad_norm')
        self.built = True  # Nothing for Keras to build: the flow made its variables.

    @property
    def metrics(self):
        return [self.loss_tracker, self.grad_norm_tracker]

    def compile(self, optimizer, steps_per_execution=1, **kwargs):
        """Compiles and builds `optimizer` on the flow's variables (inside the strategy scope).

        `steps_per_execution` > 1 runs that many train steps per call into TensorFlow (less
        per-step overhead for small models). Keras 3 cannot do that on several replicas
        (keras-team/keras#19246: its multi-step loop fails with "You must feed a value for
        placeholder tensor"), so there one step per call is used and a warning says so.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if steps_per_execution > 1 and replicas > 1:
            logging.warning(
                'steps_per_execution=%d falls back to 1 on %d replicas: Keras 3 cannot run '
                'several steps per call under a multi-replica strategy (keras-team/keras#19246).',
                steps_per_execution,
                replicas,
            )
            steps_per_execution = 1
        super().compile(optimizer=optimizer, steps_per_execution=steps_per_execution, **kwargs)
        self.optimizer.build(self.flow.trainable_variables)

    def per_example_loss(self, x):
        """bits/dim of each example (nats/dim if `num_bins` is None), shape [batch]."""
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            raise TypeError(
                'FlowTrainer expects batches of floating-point data (dequantized images in '
                f'[0, 1], or points); got dtype {x.dtype.name}. Dequantize integer images '
                'first, e.g. with `tfp_flows.uniform_dequantize`.'
            )
        log_prob = self.flow.log_prob(tf.cast(x, self.flow.dtype))
        if self.num_bins is None:
            return -log_prob / self.num_dims
        return bits_per_dim(log_prob, self.num_dims, self.num_bins)

    def call(self, x):
        return self.per_example_loss(x)

    def train_step(self, data):
        variables = self.flow.trainable_variables
        with tf.GradientTape() as tape:
            per_example = self.per_example_loss(data)
            loss = tf.nn.compute_average_loss(per_example)
        gradients = tape.gradient(loss, variables)
        gradients, global_norm = self._clip(gradients)
        self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(per_example)
        self.grad_norm_tracker.update_state(global_norm)
        return _step_logs(self.metrics)

    def test_step(self, data):
        self.loss_tracker.update_state(self.per_example_loss(data))
        return _step_logs([self.loss_tracker])

    def _clip(self, gradients):
        """Scales each replica's gradients so the summed gradient has norm <= clip_norm."""
        summed = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, gradients
        )
        global_norm = tf.linalg.global_norm(summed)
        if self.clip_norm is None:
            return gradients, global_norm
        scale = tf.minimum(self.clip_norm / tf.maximum(global_norm, math.ulp(1.0)), 1.0)
        return [g * tf.cast(scale, g.dtype) for g in gradients], global_norm


def _step_logs(metrics):
    """{name: result} of `metrics`, as a step returns them to Keras.

    Keras 3 reduces step results across the workers of a multi-worker
    `MultiWorkerMirroredStrategy` with a mean along axis 0, which fails on scalars
    (tensorflow/tensorflow#72388); there each result gets that axis, of size 1.
    """
    logs = {m.name: m.result() for m in metrics}
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()  # noqa: SLF001 (the test Keras makes)
    ):
        logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs
