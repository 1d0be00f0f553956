"""The Keras bridge: `FlowTrainer`, a `keras.Model` that trains a flow's variables with `fit`.

Keras 3 does not see the `tf.Variable`s inside TFP bijectors, so `FlowTrainer` differentiates
the loss itself and shows the flow's (and dequantizer's) variables as its `trainable_weights`.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks, networks
from tfp_flows.bijectors import walk
from tfp_flows.bijectors.backprop import check_memory_saving
from tfp_flows.dequantization import bits_per_dim, check_dequantizer, dequantize_with
from tfp_flows.mixed_precision import dtype_policy_of
from tfp_flows.training.workarounds import on_replicas, step_logs, with_epoch_progbar
from tfp_flows.training.xla_steps import looped_train_function

tfd = tfp.distributions

__all__ = ['FlowTrainer', 'split_batch']


def split_batch(data):
    """`(x, context)` of a batch as Keras hands it to a step (`x`, `(x,)`, `(x, c)` or `(x, None,
    None)`); the context is None for unconditional data. `ValueError` for sample weights."""
    x, context, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(
            'FlowTrainer does not take sample weights (or class weights): its loss is the '
            'mean over the examples of the batch.'
        )
    return x, context


class FlowTrainer(keras.Model):
    """Trains `flow` with `fit`/`evaluate` (inside the strategy's scope, as the README shows).

    Logs 'loss' ('val_loss'): bits/dim with `num_bins`, else nats/dim, so `history['loss']` and
    Keras' callbacks work as for any model; the same figure as `trainer.metric_name`
    ('bits_per_dim' or 'nats_per_dim'); 'grad_norm', the global norm before clipping. Batches
    are `x`, `(x,)` or `(x, c)` for a conditional flow; floats are cast to the flow's dtype.
    On several replicas a step equals the step on one device with the global batch, and
    `accumulation_steps=N` sums the gradients of N equal micro-batches into one optimizer step,
    equal to the step on the whole batch. The train step passes the bijector kwarg
    `training=True` and, with `dropout_seed`, stateless masks that are a function of (seed,
    optimizer step, the example's row in the global batch; the kwarg `dropout_rows`): a resumed
    run, and any number of replicas or micro-batches, apply one device's masks (a step taking
    `dropout_seed` but not `dropout_rows` draws its own per part: `walk.kwargs_taken`).

    With `dequantizer=q`, batches hold discrete images k; the flow and q train jointly on the
    one-sample bound (Ho et al. 2019, Flow++, https://arxiv.org/abs/1902.00275), q's noise
    drawn from the stateless seed (`dequantization_seed`, optimizer step), or a fixed one in
    evaluation. EMA (`make_optimizer(..., ema_momentum=m)`): `keras.callbacks.SwapEMAWeights()`
    validates on the averages, `ema_weights()` holds them, the end of `fit` writes them into the
    flow. A float16 flow's optimizer becomes Keras' dynamic `LossScaleOptimizer` (Micikevicius
    et al. 2018, https://arxiv.org/abs/1710.03740): a step with a non-finite summed gradient is
    skipped on every replica; 'grad_norm' and clipping are unscaled.

    Args:
      flow: a `tfd.Distribution` with trainable variables, e.g. from `tfp_flows.glow`.
      num_bins: None (continuous data), or the discrete levels per value, an int >= 2.
      clip_norm: None, or a number > 0: clip the global gradient to this norm.
      accumulation_steps: micro-batches per batch, an int >= 1 dividing each replica's batch.
      dropout_seed, dequantization_seed: None (stateful masks) or a seed; the noise's seed.
      memory_saving: None, 'invert' or 'recompute' (`tfp_flows.bijectors.backprop`), for a
        flow whose bijector is a `tfp_flows.bijectors.Chain`.
      dequantizer: None, or a `VariationalDequantizer` of the flow's data.

    `ValueError` naming the argument for a value out of its domain, a flow without trainable
    variables or a dequantizer of other data; `TypeError` for another kind of `flow` or
    `dequantizer`.
    """

    def __init__(
        self,
        flow,
        num_bins=None,
        clip_norm=None,
        accumulation_steps=1,
        dropout_seed=None,
        memory_saving=None,
        dequantizer=None,
        dequantization_seed=0,
        name='flow_trainer',
        **kwargs,
    ):
        if not isinstance(flow, tfd.Distribution):
            raise TypeError(f'`flow` must be a tfd.Distribution; got {type(flow).__name__}.')
        # The flow's networks' policy, for Keras' `compile(auto_scale_loss=True)`.
        super().__init__(name=name, dtype=dtype_policy_of(flow) or 'float32', **kwargs)
        if not flow.trainable_variables:
            raise ValueError(f'The flow {flow.name!r} has no trainable variables to train.')
        self.flow = flow
        self.num_bins = checks.integer(2).or_none().check('num_bins', num_bins)
        self.clip_norm = checks.POSITIVE_NUMBER.or_none().check('clip_norm', clip_norm)
        self.accumulation_steps = checks.POSITIVE_INT.check(
            'accumulation_steps', accumulation_steps
        )
        self.dropout_seed = checks.SEED.or_none().check('dropout_seed', dropout_seed)
        # The bijector kwargs the flow takes (this package's steps take 'training',
        # 'dropout_seed' and, in a Chain, 'memory_saving'; other TFP bijectors none).
        self._bijector_kwargs = getattr(getattr(flow, 'bijector', None), 'kwarg_names', ())
        self.memory_saving = check_memory_saving(memory_saving)
        if memory_saving is not None and 'memory_saving' not in self._bijector_kwargs:
            raise ValueError(
                f'`memory_saving` ({memory_saving!r}) needs a flow whose bijector is a '
                f'tfp_flows.bijectors.Chain; got a {type(flow.bijector).__name__}.'
            )
        check_dequantizer(dequantizer, num_bins, tuple(flow.event_shape), flow.dtype)
        self.dequantizer = dequantizer
        self.dequantization_seed = checks.SEED.check('dequantization_seed', dequantization_seed)
        self.num_dims = int(np.prod(flow.event_shape))
        self.metric_name = 'nats_per_dim' if num_bins is None else 'bits_per_dim'
        self.loss_tracker = keras.metrics.Mean(name='loss')
        self.unit_tracker = keras.metrics.Mean(name=self.metric_name)
        self.grad_norm_tracker = keras.metrics.Mean(name='grad_norm')
        self.built = True  # Nothing for Keras to build: the flow made its variables.

    @property
    def metrics(self):
        return [self.loss_tracker, self.unit_tracker, self.grad_norm_tracker]

    @property
    def trainable_weights(self):
        """The flow's trainable variables, then the dequantizer's (if any)."""
        if not self.trainable:
            return []
        modules = [self.flow] if self.dequantizer is None else [self.flow, self.dequantizer]
        return [v for module in modules for v in module.trainable_variables]

    @property
    def trainable_variables(self):
        return self.trainable_weights

    def compile(self, optimizer, steps_per_execution=1, **kwargs):
        """Keras' `compile`, then builds the optimizer on the trained variables (in the scope).

        `steps_per_execution` (an int >= 1) falls back to 1, with a warning, on several
        replicas (keras-team/keras#19246); `jit_compile=True` there raises `ValueError`. A
        'mixed_float16' flow's optimizer becomes a `LossScaleOptimizer`, whose
        `inner_optimizer` (the given one) a checkpoint should hold.
        """
        steps_per_execution = checks.POSITIVE_INT.check('steps_per_execution', steps_per_execution)
        steps_per_execution = on_replicas(  # The model's strategy: compile may be outside it.
            self.distribute_strategy, steps_per_execution, kwargs.get('jit_compile', 'auto')
        )
        super().compile(optimizer=optimizer, steps_per_execution=steps_per_execution, **kwargs)
        self.optimizer.build(self.trainable_weights)

    def make_train_function(self, force=False):
        """Keras' train function; with `jit_compile=True` and several steps per call, those
        steps as one XLA loop (`xla_steps.looped_train_function`)."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        if self.jit_compile is True and self.steps_per_execution > 1:
            self.train_function = looped_train_function(self, self.train_function)
        return self.train_function

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose='auto', **kwargs):
        """Keras' `fit`; `shuffle` defaults to False for a `tf.data.Dataset`, which shuffles
        itself (Keras would ignore True, with a warning)."""
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault('shuffle', False)
        kwargs['callbacks'] = with_epoch_progbar(kwargs.get('callbacks'), verbose)
        return super().fit(x, y, batch_size, epochs, verbose, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, verbose='auto', **kwargs):
        kwargs['callbacks'] = with_epoch_progbar(kwargs.get('callbacks'), verbose)
        return super().evaluate(x, y, batch_size, verbose, **kwargs)

    def predict(self, x, batch_size=None, verbose='auto', **kwargs):
        kwargs['callbacks'] = with_epoch_progbar(kwargs.get('callbacks'), verbose)
        return super().predict(x, batch_size, verbose, **kwargs)

    def per_example_loss(self, x, conditional_input=None, base_noise=None):
        """Each example's loss as evaluation computes it (no dropout), shape [batch].

        `x` is a batch [batch, *event_shape] of floats (`TypeError` otherwise), or with a
        dequantizer of discrete images in {0, ..., num_bins - 1}, whose base noise
        [batch, *event_shape] is `base_noise` (None: drawn from the evaluation seed);
        `conditional_input` the contexts [batch, *conditional_shape] of a conditional flow.
        """
        if self.dequantizer is not None and base_noise is None:
            base_noise = self._base_noise(x, self._rows(x), self._noise_seed())
        return self._loss(x, conditional_input, base_noise, {})

    def _loss(self, x, context, base_noise, kwargs):
        """Each example's loss, with bijector kwargs `kwargs` (the train step's or none)."""
        x = tf.convert_to_tensor(x)
        if self.dequantizer is None and not x.dtype.is_floating:
            raise TypeError(
                'FlowTrainer expects batches of floating-point data (dequantized images in '
                f'[0, 1], or points); got dtype {x.dtype.name}. Dequantize integer images '
                'first, e.g. with `tfp_flows.uniform_dequantize`.'
            )
        if context is not None:
            kwargs = {**kwargs, 'conditional_input': context}
        log_q = 0.0
        if self.dequantizer is not None:
            noise, log_q = self.dequantizer.noise_and_log_prob(base_noise, x)
            x = dequantize_with(tf.cast(x, noise.dtype), noise, self.num_bins)
        log_prob = self.flow.log_prob(tf.cast(x, self.flow.dtype), bijector_kwargs=kwargs)
        log_prob -= tf.cast(log_q, self.flow.dtype)
        if self.num_bins is None:
            return -log_prob / self.num_dims
        return bits_per_dim(log_prob, self.num_dims, self.num_bins)

    def _noise_seed(self, step=None):
        """The dequantizer's stateless seed [2]: evaluation's, or that of train step `step`."""
        if step is None:
            return tf.constant([1, self.dequantization_seed], tf.int64)
        seed = tf.constant([2, self.dequantization_seed], tf.int64)
        return tf.random.experimental.stateless_fold_in(seed, tf.cast(step, tf.int64))

    def _rows(self, x):
        """(offset, total): this replica's examples `x` are rows [offset, offset + len(x)) of the
        global batch of `total`; None on one replica, or if nothing is drawn for the global
        batch (no dequantizer's noise, no seeded dropout masks)."""
        context = tf.distribute.get_replica_context()
        drawn = self.dequantizer is not None or self.dropout_seed is not None
        if not drawn or context is None or context.num_replicas_in_sync == 1:
            return None
        counts = context.all_gather(tf.reshape(tf.shape(x)[0], [1]), axis=0)
        return tf.reduce_sum(counts[: context.replica_id_in_sync_group]), tf.reduce_sum(counts)

    def _base_noise(self, x, rows, seed):
        """The dequantizer's base noise for the examples `x`, `rows` (`_rows`) of the global
        batch's noise drawn from `seed`, or None without a dequantizer."""
        if self.dequantizer is None:
            return None
        count = tf.shape(x)[0]
        offset, total = (0, count) if rows is None else rows
        # TFP's samplers take int32 stateless seeds.
        noise = self.dequantizer.base.sample(total, seed=tf.cast(seed, tf.int32))
        return noise if rows is None else noise[offset : offset + count]

    def _training_kwargs(self, rows):
        """The train step's bijector kwargs, as far as the flow takes them (`walk.kwargs_taken`):
        `training`, the dropout seed of this step and `rows` (offset, total: these examples'
        rows of the global batch, whose masks they take; None: all), and `memory_saving`."""
        kwargs = {'training': True, 'memory_saving': self.memory_saving}
        if self.dropout_seed is not None:
            step = tf.cast(self.optimizer.iterations, tf.int64)
            seed = tf.constant([0, self.dropout_seed], tf.int64)
            kwargs['dropout_seed'] = tf.random.experimental.stateless_fold_in(seed, step)
            kwargs['dropout_rows'] = rows
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return walk.kwargs_taken(getattr(self.flow, 'bijector', None), kwargs)

    def train_step(self, data):
        x, context = split_batch(data)
        rows = self._rows(x)
        base_noise = self._base_noise(x, rows, self._noise_seed(self.optimizer.iterations))
        # A loop body's own convolution gradients and products per tap pay under XLA only.
        with networks.tap_products() if self.jit_compile else networks.loop_gradients(False):
            if self.accumulation_steps == 1:
                gradients, per_example = self._gradients(x, context, base_noise, rows)
            else:
                gradients, per_example = self._accumulated_gradients(x, context, base_noise, rows)
        gradients, global_norm = self._clip(gradients)
        self.optimizer.apply(gradients, self.trainable_weights)
        self.loss_tracker.update_state(per_example)
        self.unit_tracker.update_state(per_example)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            finite = tf.math.is_finite(global_norm)  # A skipped step's norm is left out.
            self.grad_norm_tracker.update_state(
                tf.where(finite, global_norm, tf.zeros_like(global_norm)),
                tf.cast(finite, 'float32'),
            )
        else:
            self.grad_norm_tracker.update_state(global_norm)
        return step_logs(self.metrics)

    def _gradients(self, x, context, base_noise, rows, global_batch=None):
        """Gradients of this part's (`rows` of the global batch) share of the scaled mean loss
        (over `global_batch`, default as `tf.nn.compute_average_loss`), and each example's
        loss."""
        kwargs = self._training_kwargs(rows)
        with tf.GradientTape() as tape:
            per_example = self._loss(x, context, base_noise, kwargs)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            scaled_loss = self.optimizer.scale_loss(loss)
        return tape.gradient(scaled_loss, self.trainable_weights), per_example

    def _accumulated_gradients(self, x, context, base_noise, rows):
        """Summed gradients of the N micro-batches of consecutive rows (a reshape [N, batch / N,
        ...], static for XLA; no cross-replica sum in the loop), and each example's loss, for
        this replica's `rows` (`_rows`) of the global batch. Raises `ValueError` (tracing) or
        `InvalidArgumentError` (running) if N does not divide the batch."""
        x, steps = tf.convert_to_tensor(x), self.accumulation_steps
        message = (
            f'FlowTrainer(accumulation_steps={steps}) splits the batch on each replica into '
            f'{steps} equal micro-batches, so that batch size must be a multiple of {steps}'
        )
        if x.shape[0] is not None and x.shape[0] % steps:
            raise ValueError(f'{message}; got a batch of {x.shape[0]}.')
        batch = tf.shape(x)[0]
        known = x.shape[0] is not None  # Else checked when running.
        divides = [] if known else [tf.debugging.assert_equal(batch % steps, 0, message)]

        def split(tensor):
            with tf.control_dependencies(divides):
                tensor = tf.convert_to_tensor(tensor)
                return tf.reshape(tensor, tf.concat([[steps, -1], tf.shape(tensor)[1:]], axis=0))

        parts = [None if t is None else split(t) for t in (x, context, base_noise)]
        global_batch = tf.cast(batch, tf.int64) * tf.distribute.get_strategy().num_replicas_in_sync
        unconnected = set()  # Indices of variables the loss does not depend on (found tracing).
        offset, total = (0, batch) if rows is None else rows

        def body(k, sums, losses):
            micro = [None if part is None else tf.gather(part, k) for part in parts]
            part = (offset + k * (batch // steps), total)
            gradients, per_example = self._gradients(*micro, part, global_batch)
            unconnected.update(i for i, g in enumerate(gradients) if g is None)
            sums = [
                s if g is None else s + tf.convert_to_tensor(g)
                for s, g in zip(sums, gradients, strict=True)
            ]
            return k + 1, sums, losses.write(k, per_example)

        _, sums, losses = tf.while_loop(
            lambda k, sums, losses: k < steps,
            body,
            (
                tf.constant(0),
                [tf.zeros_like(v) for v in self.trainable_weights],
                tf.TensorArray(self.flow.dtype, size=steps),
            ),
            parallel_iterations=1,
        )
        return [None if i in unconnected else s for i, s in enumerate(sums)], losses.concat()

    def test_step(self, data):
        per_example = self._evaluated(data)
        self.loss_tracker.update_state(per_example)
        self.unit_tracker.update_state(per_example)
        return step_logs([self.loss_tracker, self.unit_tracker])

    def predict_step(self, data):
        return self._evaluated(data)

    def _evaluated(self, data):
        """Each example's loss (`per_example_loss`), under XLA with products per tap."""
        with networks.tap_products() if self.jit_compile else contextlib.nullcontext():
            return self.per_example_loss(*split_batch(data))

    def _clip(self, gradients):
        """This replica's gradients clipped so that their sum over replicas has norm at most
        `clip_norm`, and the unscaled global norm of that sum. With loss scaling, a non-finite
        sum makes every replica's gradients NaN, so every replica skips the step (each
        `LossScaleOptimizer` checks only its own part)."""
        present = [g for g in gradients if g is not None]
        summed = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, present)
        scaled_norm = tf.linalg.global_norm(summed)
        loss_scale = self.optimizer.scale_loss(tf.ones([], scaled_norm.dtype))
        global_norm = scaled_norm / loss_scale
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            poison = tf.where(tf.math.is_finite(scaled_norm), 0.0, np.nan)
            gradients = [None if g is None else g + tf.cast(poison, g.dtype) for g in gradients]
        if self.clip_norm is None:
            return gradients, global_norm
        clipped, _ = tf.clip_by_global_norm(
            gradients, self.clip_norm * loss_scale, use_norm=scaled_norm
        )
        return clipped, global_norm

    @property
    def uses_ema(self):
        """Whether the optimizer (or a `LossScaleOptimizer`'s inner one) keeps an EMA."""
        optimizer = getattr(self, 'optimizer', None)
        return bool(getattr(getattr(optimizer, 'inner_optimizer', optimizer), 'use_ema', False))

    @contextlib.contextmanager
    def ema_weights(self):
        """Context in which the flow holds the optimizer's EMA weights (Keras' `SwapEMAWeights`);
        the raw ones after it. `ValueError` if the optimizer keeps no EMA."""
        if not self.uses_ema:
            raise ValueError(
                'ema_weights() needs an optimizer that keeps an EMA of the weights, e.g. '
                f'make_optimizer(..., ema_momentum=0.999); got {self.optimizer!r}.'
            )
        swap = keras.callbacks.SwapEMAWeights()
        swap.set_model(self)
        swap.on_test_begin()
        try:
            yield
        finally:
            swap.on_test_end()
