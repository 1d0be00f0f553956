"""The Keras bridge: `FlowTrainer`, a `keras.Model` that trains a flow's variables with `fit`.

A Keras 3 `Model` does not see the `tf.Variable`s inside TFP bijectors, so a plain
`compile(loss=...)`/`fit` on a flow trains nothing and reports a flat loss. `FlowTrainer`
therefore differentiates with respect to `flow.trainable_variables` in its own `train_step`,
builds the optimizer on exactly those variables in `compile` (which a Keras 3 optimizer also
needs under `MirroredStrategy`), and shows them to Keras as its `trainable_weights` (where
Keras' EMA machinery looks for the model's variables). It refuses a flow with no trainable
variables.

Loss, reported under `trainer.metric_name`: 'bits_per_dim' on the discrete data for images
(`num_bins` given), 'nats_per_dim' (negative log-likelihood per dimension) for continuous
data; `fit`'s logs carry it, 'grad_norm' (the global gradient norm before clipping) and, for
validation, 'val_' + `metric_name`. Under a `tf.distribute` strategy each replica's loss is
its summed loss divided by the global batch size and the optimizer sums the gradients over
replicas, so one step equals one step on a single device with the same global batch.
Gradient-norm clipping applies to that global gradient (Keras' own `global_clipnorm` would
clip each replica's part before the sum). Floating-point batches are cast to the flow's dtype,
so a float64 flow trains on the float32 batches of `tfp_flows.data`; other dtypes raise
`TypeError`.

Variational dequantization (`dequantizer=`, a `VariationalDequantizer`): batches then carry
the discrete images k (integers in {0, ..., num_bins - 1}, e.g. `make_dataset(...,
dequantize=False)`), the trainer dequantizes them, x = (k + u) / B with u ~ q(u | k), and the
flow and q train jointly on the bound (Ho et al. 2019, Flow++, eq. 9-10,
https://arxiv.org/abs/1902.00275)

    bits/dim = (-log p(x) + log q(u | k) + D log B) / (D log 2).

q's variables join the flow's everywhere: the optimizer, clipping, accumulation, EMA.

Mixed precision: a flow built with `dtype_policy='mixed_float16'` gets dynamic loss scaling
(`keras.optimizers.LossScaleOptimizer`, wrapped around the optimizer in `compile`, as Keras'
`Model.compile(auto_scale_loss=True)` does for a model in that policy); 'mixed_bfloat16' needs
none (`tfp_flows.mixed_precision`).

Conditional flows (`tfp_flows.glow(..., conditional_shape=...)`) train on `(x, c)` batches
(`make_dataset(..., conditional=True)`): the train step computes
`flow.log_prob(x, bijector_kwargs={'conditional_input': c, 'training': True})`, so the
coupling networks' dropout is on; evaluation and `predict` pass `conditional_input` only, so
they are deterministic.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from absl import logging

from tfp_flows.bijectors.backprop import check_memory_saving
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.dequantization import below_one, bits_per_dim
from tfp_flows.mixed_precision import dtype_policy_of
from tfp_flows.validation import check_bool, check_int, check_number

tfd = tfp.distributions

__all__ = ['FlowTrainer', 'split_batch']


def split_batch(data):
    """Splits a batch as Keras hands it to a step into `(x, context)`.

    Keras passes what the dataset yields (`x`, `(x,)` or `(x, c)`), and `train_on_batch(x)` /
    `test_on_batch(x)` pass `(x, None, None)`; `keras.utils.unpack_x_y_sample_weight` reads
    them all. The second element is the context of a conditional flow (labels or features), None
    for unconditional data.

    Raises:
      ValueError: for sample weights (a flow's loss is the mean over examples).
    """
    x, context, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(
            'FlowTrainer does not take sample weights (or class weights): its loss is the '
            'mean over the examples of the batch.'
        )
    return x, context


class _EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, never counting past the epoch's steps.

    With `steps_per_execution=k`, Keras reports each call's last step as its first step plus
    k - 1, also for the epoch's last call, which may run fewer steps: 19 steps with k = 8 are
    reported as steps 8, 16 and 24 of 19. This bar counts the last call's steps as the rest of
    the epoch.
    """

    async_safe = True  # As Keras' own bar, which Keras dispatches alongside its other callbacks.

    def _within_epoch(self, batch):
        return batch if self.target is None else min(batch, self.target - 1)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._within_epoch(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._within_epoch(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._within_epoch(batch), logs)


def _check_monitors(callbacks, metric_name):
    """Refuses Keras callbacks that read the key 'loss', which `FlowTrainer` does not log.

    `TerminateOnNaN` reads only 'loss'; `EarlyStopping`, `ModelCheckpoint` and
    `ReduceLROnPlateau` monitor 'val_loss' or 'loss' unless told otherwise. With FlowTrainer's
    logs they would silently never act.
    """
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.TerminateOnNaN):
            raise ValueError(
                "keras.callbacks.TerminateOnNaN reads the log key 'loss', which FlowTrainer "
                f'reports as {metric_name!r}, so it would never stop training: use '
                f'tfp_flows.run.callbacks.StopOnNonFinite(monitor={metric_name!r}).'
            )
        monitor = getattr(callback, 'monitor', None)
        if monitor in ('loss', 'val_loss'):
            expected = metric_name if monitor == 'loss' else 'val_' + metric_name
            raise ValueError(
                f'{type(callback).__name__} monitors {monitor!r}, which FlowTrainer reports as '
                f'{expected!r}; pass monitor={expected!r}.'
            )


def _with_progbar(callbacks, verbose):
    """`callbacks` with an `_EpochProgbar` where Keras would add its own bar."""
    if verbose == 0 or isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    callbacks = list(callbacks or [])
    if not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(_EpochProgbar())
    return callbacks


class FlowTrainer(keras.Model):
    """Trains `flow` with `fit`/`evaluate`, reporting bits/dim (or nats/dim without bins).

    Usage, inside the strategy's scope:
        trainer = FlowTrainer(flow, num_bins=17, clip_norm=50.0)
        trainer.compile(optimizer=make_optimizer('adamax', 1e-3, warmup_steps=200))
        trainer.fit(train_dataset, validation_data=validation_dataset, epochs=10)
        trainer.metric_name  # 'bits_per_dim': the key of the logs, 'val_bits_per_dim' too.

    Batches are `x` or `(x,)` for an unconditional flow, `(x, c)` for a conditional one
    (`split_batch`), c of shape [batch, *conditional_shape] (`tfp_flows.conditional_shape_of`).
    A context for an unconditional flow, a missing context for a conditional one, or one of
    another shape is refused when the step is traced, naming both shapes. The train step
    passes the bijector kwarg `training=True` (dropout on, in flows that have it), with a
    stateless `dropout_seed` [2] drawn from (`dropout_seed`, optimizer step, replica,
    micro-batch) when `dropout_seed` is given, so the masks of a step are the same in every
    run (a resumed run draws an unbroken run's masks); evaluation and `predict` never pass it.

    Gradient accumulation: with `accumulation_steps=N` each replica's batch is split into N
    equal micro-batches whose gradients are computed one after another (a `tf.while_loop`,
    `parallel_iterations=1`) and summed, each micro-batch's summed loss divided by the whole
    global batch: one optimizer step on the whole batch, equal to the step without accumulation
    (to float rounding), and clipping acts on that summed global gradient. Feed batches of the
    size of the step you want (N * b for micro-batches of b; N must divide each replica's
    batch). `optimizer.iterations`, the learning-rate schedule, weight decay and EMA count
    optimizer steps, and Keras' step count is the number of batches. Keras' own optimizer option
    `gradient_accumulation_steps` does not fit: it accumulates across `train_step` calls
    under a `tf.cond` that cannot hold the optimizer's cross-replica sum under
    `MirroredStrategy` (RuntimeError: merge_call in control flow), its learning-rate schedule
    counts micro-batches, and clipping in `train_step` would act on each micro-batch.

    Variational dequantization: with `dequantizer`, x in every batch is the discrete images
    k, [batch, *event_shape] integers in {0, ..., num_bins - 1} (any integer or float dtype;
    others are refused at run time, naming them), and the loss is the one-sample bound above.
    The base noise eps of q (`dequantizer.base`) is drawn for the whole global batch from one
    stateless seed, and each replica (and micro-batch) takes its examples' rows, so a step's
    noise does not depend on the strategy or on accumulation: the train step's seed is
    (`dequantization_seed`, optimizer step), the same in a resumed run; evaluation and
    `predict` use one fixed seed for every batch (a checkpoint's figure is the same each
    time). The flow's variables come first, then the dequantizer's, in `trainable_weights`
    and in the optimizer.

    EMA weights: with an optimizer made by `make_optimizer(..., ema_momentum=m)`, pass
    `keras.callbacks.SwapEMAWeights()` to `fit` to validate on the averaged weights, and use
    `with trainer.ema_weights(): ...` to evaluate or export them later (for example after
    restoring a checkpoint, which holds the raw weights in the flow and the averages in the
    optimizer). At the end of `fit` Keras writes the averages into the flow
    (`optimizer.finalize_variable_values`), so after `fit` the flow holds the EMA weights.

    Loss scaling: each step differentiates `optimizer.scale_loss(loss)` (the loss times the
    loss scale S; S = 1 without scaling), and the optimizer divides the gradients by S. The
    reported 'grad_norm' and the clipping are those of the unscaled global gradient. With a
    `keras.optimizers.LossScaleOptimizer` (what `compile` wraps around the optimizer of a
    'mixed_float16' flow), a step whose summed gradient is not finite is skipped on every
    replica alike and S halves; after 2000 finite steps in a row S doubles (Keras' dynamic loss
    scaling, Micikevicius et al. 2018, https://arxiv.org/abs/1710.03740). Skipped steps do not
    count in 'grad_norm' or in the optimizer's steps (the schedule, EMA, weight decay).

    Args:
      flow: a `tfd.TransformedDistribution` (or any distribution with `log_prob`, an
        `event_shape` and trainable variables).
      num_bins: discrete levels per value (images: 17 for the digits, 256 for 8-bit), an int
        >= 2, to report bits/dim on the discrete data; None for continuous data (nats/dim).
      clip_norm: None, or clip the global gradient to this norm (a finite number > 0).
      accumulation_steps: micro-batches per batch (an int >= 1; 1: no accumulation).
      dropout_seed: None (dropout masks from TF's stateful random ops), or an int in
        [0, 2**63): the seed of every train step's stateless dropout masks (see above).
      memory_saving: None, 'invert' or 'recompute': the train step's backprop through the
        flow keeps no per-step activations ('invert': each step's input is rebuilt from its
        output on the way back, as in the original Glow code; 'recompute': each step is run
        again under `tf.recompute_grad`). The gradients equal the plain ones to float
        rounding; evaluation is unchanged. Needs a flow of this package
        (`tfp_flows.bijectors.backprop`).
      dequantizer: None (batches are dequantized data, or continuous data), or a
        `tfp_flows.dequantization.variational.VariationalDequantizer` of the flow's event
        shape, dtype and `num_bins`, trained with the flow (batches are discrete images).
      dequantization_seed: an int in [0, 2**63), the seed of the dequantizer's noise (see
        above); unused without a dequantizer.
      name: the Keras model's name.

    Raises:
      ValueError: naming the argument, for a number out of its domain, a flow without
        trainable variables, or a dequantizer without `num_bins` or of other data.
      TypeError: for a `flow` that is not a `tfd.Distribution`, or a `dequantizer` that is
        not a tf.Module with `noise_and_log_prob`.
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
        num_bins = check_int('num_bins', num_bins, 2, allow_none=True)
        if clip_norm is not None:
            clip_norm = check_number('clip_norm', clip_norm, low=0, low_open=True)
        accumulation_steps = check_int('accumulation_steps', accumulation_steps, 1)
        dropout_seed = check_int('dropout_seed', dropout_seed, 0, 2**63, allow_none=True)
        memory_saving = check_memory_saving(memory_saving)
        if not isinstance(flow, tfd.Distribution):
            raise TypeError(
                '`flow` must be a `tfd.Distribution` with trainable variables (e.g. from '
                f'`tfp_flows.glow`); got {type(flow).__name__}.'
            )
        if not flow.trainable_variables:
            raise ValueError(f'The flow {flow.name!r} has no trainable variables to train.')
        _check_dequantizer(dequantizer, flow, num_bins)
        dequantization_seed = check_int('dequantization_seed', dequantization_seed, 0, 2**63)
        super().__init__(name=name, **kwargs)
        self.flow = flow
        self.num_bins = num_bins
        self.clip_norm = clip_norm
        self.accumulation_steps = accumulation_steps
        self.dropout_seed = dropout_seed
        self.dequantizer = dequantizer
        self.dequantization_seed = dequantization_seed
        self.conditional_shape = conditional_shape_of(flow)
        # The bijector kwargs the flow's bijector takes (this package's steps take
        # 'training' and 'dropout_seed'; other TFP bijectors may take neither).
        self._bijector_kwargs = getattr(getattr(flow, 'bijector', None), 'kwarg_names', ())
        if memory_saving is not None and 'memory_saving' not in self._bijector_kwargs:
            raise ValueError(
                f'`memory_saving` ({memory_saving!r}) needs a flow whose bijector is a '
                '`tfp_flows.bijectors.Chain` (e.g. from `tfp_flows.glow` or '
                f'`tfp_flows.real_nvp`); got a bijector {type(flow.bijector).__name__}, which '
                'does not take the bijector kwarg `memory_saving`.'
            )
        self.memory_saving = memory_saving
        self.num_dims = int(np.prod(flow.event_shape))
        self.metric_name = 'nats_per_dim' if num_bins is None else 'bits_per_dim'
        self.loss_tracker = keras.metrics.Mean(name=self.metric_name)
        self.grad_norm_tracker = keras.metrics.Mean(name='grad_norm')
        self.built = True  # Nothing for Keras to build: the flow made its variables.

    @property
    def metrics(self):
        return [self.loss_tracker, self.grad_norm_tracker]

    @property
    def trainable_weights(self):
        """The flow's trainable variables, in `flow.trainable_variables` order, then the
        dequantizer's (if any)."""
        if not self.trainable:
            return []
        variables = list(self.flow.trainable_variables)
        if self.dequantizer is not None:
            variables += list(self.dequantizer.trainable_variables)
        return variables

    @property
    def trainable_variables(self):
        return self.trainable_weights

    def compile(self, optimizer, steps_per_execution=1, auto_scale_loss=True, **kwargs):
        """Compiles and builds `optimizer` on the flow's variables (inside the strategy scope).

        `steps_per_execution` (an int >= 1) > 1 runs that many train steps per call into
        TensorFlow (less per-step overhead for small models). Keras 3 cannot do that on several
        replicas (keras-team/keras#19246: its multi-step loop fails with "You must feed a value
        for placeholder tensor"), so there one step per call is used and a warning says so.

        With `auto_scale_loss` (a bool, Keras' option) and a flow whose networks compute in
        float16 ('mixed_float16'), `optimizer` is wrapped in `keras.optimizers.LossScaleOptimizer`
        (unless it is one): `trainer.optimizer` is then the wrapper and
        `trainer.optimizer.inner_optimizer` the given optimizer, whose variables a checkpoint
        should hold so that it restores into a run of any policy.
        """
        steps_per_execution = check_int('steps_per_execution', steps_per_execution, 1)
        check_bool('auto_scale_loss', auto_scale_loss)
        optimizer = keras.optimizers.get(optimizer)
        if (
            auto_scale_loss
            and dtype_policy_of(self.flow) == 'mixed_float16'
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if steps_per_execution > 1 and replicas > 1:
            logging.warning(
                'steps_per_execution=%d falls back to 1 on %d replicas: Keras 3 cannot run '
                'several steps per call under a multi-replica strategy (keras-team/keras#19246).',
                steps_per_execution,
                replicas,
            )
            steps_per_execution = 1
        super().compile(
            optimizer=optimizer,
            steps_per_execution=steps_per_execution,
            auto_scale_loss=auto_scale_loss,
            **kwargs,
        )
        self.optimizer.build(self.trainable_weights)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose='auto', callbacks=None, **kw):
        """Keras' `fit`, with a progress bar that never counts past the epoch's steps.

        Raises:
          ValueError: for a Keras callback that reads the log key 'loss' or 'val_loss'.
        """
        callbacks = self._callbacks(callbacks, verbose)
        return super().fit(x, y, batch_size, epochs, verbose, callbacks, **kw)

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose='auto',
        sample_weight=None,
        steps=None,
        callbacks=None,
        **kw,
    ):
        """Keras' `evaluate`, with a progress bar that never counts past the steps."""
        callbacks = self._callbacks(callbacks, verbose)
        return super().evaluate(x, y, batch_size, verbose, sample_weight, steps, callbacks, **kw)

    def predict(self, x, batch_size=None, verbose='auto', steps=None, callbacks=None):
        """Keras' `predict` (the per-example loss), with a bar that never counts past the steps."""
        callbacks = self._callbacks(callbacks, verbose)
        return super().predict(x, batch_size, verbose, steps, callbacks)

    def _callbacks(self, callbacks, verbose):
        if not isinstance(callbacks, keras.callbacks.CallbackList):
            _check_monitors(callbacks or [], self.metric_name)
        return _with_progbar(callbacks, verbose)

    def per_example_loss(
        self, x, conditional_input=None, training=False, dropout_seed=None, base_noise=None
    ):
        """bits/dim of each example (nats/dim if `num_bins` is None), shape [batch].

        Args:
          x: a batch [batch, *event_shape] of floats (cast to the flow's dtype); with a
            dequantizer, the discrete images (integers in {0, ..., num_bins - 1}).
          conditional_input: the contexts [batch, *conditional_shape] of a conditional flow.
          training: pass the bijector kwargs `training=True` (dropout on) and the trainer's
            `memory_saving`, as the train step does.
          dropout_seed: with `training`, an optional stateless seed [2] of the dropout masks.
          base_noise: with a dequantizer, its base noise eps [batch, *event_shape] (a draw of
            `dequantizer.base`); None draws it from the evaluation seed. Ignored without one.

        Raises:
          TypeError: for a batch that is not floating-point (without a dequantizer) or not
            numbers.
          ValueError: for a context given to an unconditional flow, a missing context of a
            conditional one, or a context of another shape, naming both shapes.
          tf.errors.InvalidArgumentError: with a dequantizer, at run time, for images that
            are not integers in {0, ..., num_bins - 1}.
        """
        x = tf.convert_to_tensor(x)
        if self.dequantizer is None and not x.dtype.is_floating:
            raise TypeError(
                'FlowTrainer expects batches of floating-point data (dequantized images in '
                f'[0, 1], or points); got dtype {x.dtype.name}. Dequantize integer images '
                'first, e.g. with `tfp_flows.uniform_dequantize`.'
            )
        training = check_bool('training', training)
        self._check_context(x, conditional_input)
        kwargs = {}
        if conditional_input is not None:
            kwargs['conditional_input'] = conditional_input
        if training and 'training' in self._bijector_kwargs:
            kwargs['training'] = True
            if dropout_seed is not None and 'dropout_seed' in self._bijector_kwargs:
                kwargs['dropout_seed'] = dropout_seed
        if training and self.memory_saving is not None:
            kwargs['memory_saving'] = self.memory_saving
        if self.dequantizer is None:
            log_prob = self.flow.log_prob(tf.cast(x, self.flow.dtype), bijector_kwargs=kwargs)
        else:
            if base_noise is None:
                base_noise = self._base_noise(x, self._evaluation_seed(), sliced=False)
            noise, log_q = self.dequantizer.noise_and_log_prob(base_noise, x)
            # x = (k + u) / B, kept below 1 where float rounding would reach it.
            pixels = tf.cast(x, noise.dtype)
            dequantized = tf.minimum((pixels + noise) / self.num_bins, below_one(noise.dtype))
            log_prob = self.flow.log_prob(
                tf.cast(dequantized, self.flow.dtype), bijector_kwargs=kwargs
            ) - tf.cast(log_q, self.flow.dtype)
        if self.num_bins is None:
            return -log_prob / self.num_dims
        return bits_per_dim(log_prob, self.num_dims, self.num_bins)

    def _evaluation_seed(self):
        """The fixed stateless seed [2] of evaluation's dequantization noise."""
        return tf.constant([1, self.dequantization_seed], tf.int64)

    def _train_seed(self):
        """The stateless seed [2] of this train step's dequantization noise."""
        seed = tf.constant([2, self.dequantization_seed], tf.int64)
        step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        return tf.random.experimental.stateless_fold_in(seed, step)

    def _base_noise(self, x, seed, sliced=True):
        """The dequantizer's base noise for this replica's examples `x`, or None.

        Drawn for the whole global batch from `seed` (int64 [2]); with `sliced`, this replica
        takes the rows of its examples (replicas hold consecutive parts of the global batch, in
        replica order, as `tf.distribute` splits it).
        """
        if self.dequantizer is None:
            return None
        count = tf.shape(x)[0]
        offset, total = 0, count
        context = tf.distribute.get_replica_context()
        if sliced and context is not None and context.num_replicas_in_sync > 1:
            counts = context.all_gather(tf.reshape(count, [1]), axis=0)
            offset = tf.reduce_sum(counts[: context.replica_id_in_sync_group])
            total = tf.reduce_sum(counts)
        seed = tf.cast(seed, tf.int32)  # TFP's samplers take int32 stateless seeds.
        noise = self.dequantizer.base.sample(total, seed=seed)
        return noise[offset : offset + count]

    def call(self, x, conditional_input=None):
        return self.per_example_loss(x, conditional_input)

    def _check_context(self, x, context):
        """Refuses a context that does not fit the flow, naming both shapes."""
        expected = self.conditional_shape
        if expected is None and context is not None:
            raise ValueError(
                'FlowTrainer got (x, context) batches, but the flow is unconditional (built '
                'without `conditional_shape`): feed batches of x alone, or (x,). The second '
                f'element has shape {tuple(tf.convert_to_tensor(context).shape)}.'
            )
        if expected is None:
            return
        wanted = f'[batch, {", ".join(map(str, expected))}]'
        if context is None:
            raise ValueError(
                f'FlowTrainer got batches of x alone (shape {tuple(x.shape)}), but the flow is '
                f'conditional with conditional_shape {expected}: feed (x, c) batches, c of '
                f'shape {wanted} (e.g. make_dataset(..., conditional=True)).'
            )
        shape = tf.convert_to_tensor(context).shape
        if shape.rank is not None and not (
            shape.rank == len(expected) + 1 and shape[1:].is_compatible_with(expected)
        ):
            raise ValueError(
                f'FlowTrainer got contexts of shape {tuple(shape)}, but the flow is conditional '
                f'with conditional_shape {expected}: each c must have shape {wanted}.'
            )

    def _step_dropout_seed(self, micro_batch=0):
        """The stateless dropout seed [2] of this step, replica and micro-batch, or None."""
        if self.dropout_seed is None:
            return None
        seed = tf.constant([0, self.dropout_seed], tf.int64)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        for data in (tf.convert_to_tensor(self.optimizer.iterations), replica, micro_batch):
            seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))
        return seed

    def train_step(self, data):
        x, context = split_batch(data)
        variables = self.trainable_weights
        base_noise = self._base_noise(x, self._train_seed())
        if self.accumulation_steps == 1:
            with tf.GradientTape() as tape:
                per_example = self.per_example_loss(
                    x,
                    context,
                    training=True,
                    dropout_seed=self._step_dropout_seed(),
                    base_noise=base_noise,
                )
                loss = tf.nn.compute_average_loss(per_example)
                scaled_loss = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled_loss, variables)
        else:
            gradients, per_example = self._accumulated_gradients(x, context, variables, base_noise)
        gradients, global_norm = self._clip(gradients)
        self.optimizer.apply(gradients, variables)
        self.loss_tracker.update_state(per_example)
        if self._dynamic_loss_scale:  # A skipped step's norm is not finite: left out.
            finite = tf.math.is_finite(global_norm)
            self.grad_norm_tracker.update_state(
                tf.where(finite, global_norm, tf.zeros_like(global_norm)),
                tf.cast(finite, 'float32'),
            )
        else:
            self.grad_norm_tracker.update_state(global_norm)
        return _step_logs(self.metrics)

    @property
    def _dynamic_loss_scale(self):
        return isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)

    def _accumulated_gradients(self, x, context, variables, base_noise):
        """Summed gradients of the mean loss over N micro-batches, and each example's loss.

        Micro-batch k holds examples k, k + N, k + 2N, ... of this replica's batch (a reshape,
        so its shape is static and XLA compiles the loop). Its summed loss is divided by the
        global batch (this replica's batch times the replicas), as `tf.nn.compute_average_loss`
        divides the whole batch's, so the sum is the gradient of the whole batch. The loop holds
        no cross-replica sum (`MirroredStrategy` forbids one inside control flow); the
        optimizer sums once, after it.

        Raises:
          ValueError (tracing) or `tf.errors.InvalidArgumentError` (running): if N does not
            divide this replica's batch.
        """
        x = tf.convert_to_tensor(x)
        self._check_context(x, context)  # Before the loop: one message, not a traced one.
        steps = self.accumulation_steps
        batch = tf.shape(x)[0]
        message = (
            f'FlowTrainer(accumulation_steps={steps}) splits the batch on each replica into '
            f'{steps} equal micro-batches, so that batch size must be a multiple of {steps}'
        )
        if x.shape[0] is not None and x.shape[0] % steps:
            raise ValueError(f'{message}; got a batch of {x.shape[0]}.')
        checks = []
        if x.shape[0] is None:
            checks.append(tf.debugging.assert_equal(batch % steps, 0, message=message))

        def split(tensor):  # [batch, ...] -> [batch / N, N, ...]
            with tf.control_dependencies(checks):
                return tf.reshape(tensor, tf.concat([[-1, steps], tf.shape(tensor)[1:]], axis=0))

        micro_batches = split(x)
        micro_contexts = None if context is None else split(tf.convert_to_tensor(context))
        micro_noises = None if base_noise is None else split(base_noise)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = tf.cast(batch, tf.int64) * replicas
        unconnected = set()  # Indices of variables the loss does not depend on (found tracing).

        def body(k, sums, losses):
            micro_context = None if context is None else tf.gather(micro_contexts, k, axis=1)
            micro_noise = None if base_noise is None else tf.gather(micro_noises, k, axis=1)
            with tf.GradientTape() as tape:
                per_example = self.per_example_loss(
                    tf.gather(micro_batches, k, axis=1),
                    micro_context,
                    training=True,
                    dropout_seed=self._step_dropout_seed(k),
                    base_noise=micro_noise,
                )
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                scaled_loss = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled_loss, variables)
            unconnected.update(i for i, g in enumerate(gradients) if g is None)
            gradients = [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(gradients, variables, strict=True)
            ]
            sums = [s + g for s, g in zip(sums, gradients, strict=True)]
            return k + 1, sums, losses.write(k, per_example)

        losses = tf.TensorArray(self.flow.dtype, size=steps)
        _, sums, losses = tf.while_loop(
            lambda k, sums, losses: k < steps,
            body,
            (tf.constant(0), [tf.zeros_like(v) for v in variables], losses),
            parallel_iterations=1,
        )
        gradients = [None if i in unconnected else s for i, s in enumerate(sums)]
        return gradients, losses.concat()

    def test_step(self, data):
        self.loss_tracker.update_state(self._evaluation_loss(data))
        return _step_logs([self.loss_tracker])

    def predict_step(self, data):
        return self._evaluation_loss(data)

    def _evaluation_loss(self, data):
        x, context = split_batch(data)
        base_noise = self._base_noise(x, self._evaluation_seed())
        return self.per_example_loss(x, context, base_noise=base_noise)

    def _clip(self, gradients):
        """Clips this replica's gradients so that their sum over replicas has norm <= clip_norm.

        Returns the clipped gradients and the global norm before clipping. The norm is that of
        the all-reduced (summed) gradient; `tf.clip_by_global_norm(..., use_norm=)` then scales
        each replica's part by the same factor. The gradients are those of the scaled loss
        (loss scale S, 1 without scaling): the norm reported and clipped is theirs divided by S,
        that of the loss itself. With dynamic loss scaling a sum that is not finite makes every
        replica's gradients NaN, so that every replica skips the step: `LossScaleOptimizer`
        checks for them before its sum over replicas (on the first replica's part, or each
        replica on its own), and a replica whose own part is finite would apply the sum.
        """
        present = [g for g in gradients if g is not None]
        summed = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, present)
        scaled_norm = tf.linalg.global_norm(summed)
        loss_scale = self.optimizer.scale_loss(tf.ones([], scaled_norm.dtype))
        global_norm = scaled_norm / loss_scale
        if self._dynamic_loss_scale:
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
        """Whether the compiled optimizer keeps an EMA of the weights (looking through a
        float16 `LossScaleOptimizer` to the optimizer it wraps, as Keras' SwapEMAWeights does)."""
        optimizer = getattr(self, 'optimizer', None)
        return bool(getattr(getattr(optimizer, 'inner_optimizer', optimizer), 'use_ema', False))

    @contextlib.contextmanager
    def ema_weights(self):
        """Context in which the flow holds the optimizer's EMA weights; the raw ones after it.

        Needs an optimizer with EMA (`make_optimizer(..., ema_momentum=m)`). Swaps in place
        with Keras' `SwapEMAWeights` (works under a strategy, no copy of the weights).

        Raises:
          ValueError: if the optimizer keeps no EMA.
        """
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


def _check_dequantizer(dequantizer, flow, num_bins):
    """Refuses a dequantizer that is not one, or one of other data than the flow's."""
    if dequantizer is None:
        return
    if not isinstance(dequantizer, tf.Module) or not callable(
        getattr(dequantizer, 'noise_and_log_prob', None)
    ):
        raise TypeError(
            '`dequantizer` must be None or a VariationalDequantizer (a tf.Module with '
            f'`noise_and_log_prob`); got {type(dequantizer).__name__}.'
        )
    if num_bins is None:
        raise ValueError(
            'A `dequantizer` dequantizes discrete images: it needs `num_bins`; got None.'
        )
    found = (dequantizer.num_bins, tuple(dequantizer.event_shape), dequantizer.dtype)
    wanted = (num_bins, tuple(flow.event_shape.as_list()), flow.dtype)
    if found != wanted:
        raise ValueError(
            'The dequantizer must match the flow and its data: (num_bins, event_shape, dtype) '
            f'= ({wanted[0]}, {wanted[1]}, {wanted[2].name}); got ({found[0]}, {found[1]}, '
            f'{found[2].name}).'
        )


def _step_logs(metrics):
    """{name: result} of `metrics`, as a step returns them to Keras.

    Keras 3 reduces step results across the workers of a multi-worker
    `MultiWorkerMirroredStrategy` with a mean along axis 0, which fails on scalars
    (tensorflow/tensorflow#72388); there each result gets that axis, of size 1. Several
    workers: more replicas in sync than this worker's devices (the strategy's
    `num_replicas_in_sync` is worker devices times workers).
    """
    logs = {m.name: m.result() for m in metrics}
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)
    ):
        logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs
