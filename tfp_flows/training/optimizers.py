"""Optimizers for flows: Adam and Adamax as one fused TF kernel per variable, and the recipe's.

`FusedAdam` and `FusedAdamax` are Keras 3 optimizers written on Keras' documented extension
points (subclass `keras.optimizers.Optimizer`; slots made in `build` with
`add_optimizer_variables`; `update_step`; `get_config`). Their arithmetic is
`keras.optimizers.Adam` / `Adamax`'s (to float rounding), and so are their slots, in the same
order: a checkpoint of one restores into the other. Each variable's update is one TF kernel
(`tf.raw_ops.ResourceApplyAdam` / `ResourceApplyAdaMax`) instead of Keras' ~20 ops, and the
step's scalars (learning rate, beta powers) are computed once per step and device, not once per
variable: with ~100 variables this halves the train step's graph, so it traces faster and
every step pays less per-op overhead. Everything else (weight decay, EMA, loss scaling,
gradient accumulation, `tf.distribute`) is Keras' own `apply`.

`make_optimizer` builds the recipes' optimizer: warm-up then cosine decay, decoupled weight
decay and an optional exponential moving average (EMA, Polyak averaging) of the weights.
"""

import keras
import tensorflow as tf

from tfp_flows.validation import Interval, check_int, check_number

__all__ = ['FusedAdam', 'FusedAdamax', 'make_optimizer']


class _FusedOptimizer(keras.optimizers.Optimizer):
    """Shared part of `FusedAdam` and `FusedAdamax`: slots, per-step scalars, config.

    Subclasses name their two slots (`_SLOT_NAMES`, as Keras' optimizer names them, so slot
    variables and checkpoints match Keras') and apply one variable's update in
    `_apply_fused(variable, first_slot, second_slot, gradient, scalars)`.
    """

    _SLOT_NAMES = ()

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        """Checks each argument by name before Keras makes any variable; see the subclass.

        Raises:
          ValueError: a `learning_rate` that is neither a finite number > 0 nor a Keras
            learning-rate schedule, `beta_1`/`beta_2` outside [0, 1), `epsilon` not > 0, a
            `weight_decay` below 0.
        """
        schedule = keras.optimizers.schedules.LearningRateSchedule
        if not isinstance(learning_rate, schedule) and not Interval(low=0, low_open=True).contains(
            learning_rate
        ):
            raise ValueError(
                '`learning_rate` must be a finite number > 0 or a '
                f'keras.optimizers.schedules.LearningRateSchedule; got {learning_rate!r}.'
            )
        if kwargs.get('weight_decay') is not None:
            check_number('weight_decay', kwargs['weight_decay'], low=0)
        beta_1 = check_number('beta_1', beta_1, 0, 1, high_open=True)
        beta_2 = check_number('beta_2', beta_2, 0, 1, high_open=True)
        epsilon = check_number('epsilon', epsilon, low=0, low_open=True)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._step_scalars = None

    def build(self, variables):
        """Makes the two slots of each variable (zeros, shape and dtype of the variable)."""
        if self.built:
            return
        super().build(variables)
        self.first_slots, self.second_slots = self.add_optimizer_variables(
            variables, list(self._SLOT_NAMES)
        )
        # `update_step` receives each variable as the strategy hands it over: a Keras Variable
        # as its `tf.Variable`, a distributed variable as its copy on one device.
        strategy = tf.distribute.get_strategy()
        self._slot_index = {}
        for index, variable in enumerate(variables):
            if isinstance(variable, keras.Variable):
                variable = variable.value
            for local in (variable, *strategy.experimental_local_results(variable)):
                self._slot_index[local.ref()] = index

    def apply(self, grads, trainable_variables=None):
        """Keras' `apply`; the step's scalars are shared by its `update_step`s, then dropped."""
        self._step_scalars = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_scalars = None

    def _scalars(self, variable, learning_rate):
        """The step's scalars in `variable`'s dtype, computed once per step and device."""
        key = (variable.dtype, variable.device)
        if self._step_scalars is not None and key in self._step_scalars:
            return self._step_scalars[key]
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        # tf.constant, not tf.cast: a Python float goes through float32 in tf.cast, which would
        # round the betas of a float64 variable (Keras' own Adam rounds its bias correction so).
        beta_1 = tf.constant(self.beta_1, dtype)
        beta_2 = tf.constant(self.beta_2, dtype)
        scalars = dict(
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            epsilon=tf.constant(self.epsilon, dtype),
        )
        if self._step_scalars is not None:
            self._step_scalars[key] = scalars
        return scalars

    def update_step(self, gradient, variable, learning_rate):
        """Applies one variable's update as one fused kernel (sparse gradients made dense)."""
        index = self._slot_index.get(variable.ref())
        if index is None:
            raise ValueError(
                f'{type(self).__name__} was not built on variable {variable.name!r}: build it '
                'on the variables it updates, inside the strategy scope they were made in.'
            )
        gradient = tf.cast(tf.convert_to_tensor(gradient), variable.dtype)
        self._apply_fused(
            variable,
            self.first_slots[index],
            self.second_slots[index],
            gradient,
            self._scalars(variable, learning_rate),
        )

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package='tfp_flows')
class FusedAdam(_FusedOptimizer):
    """Adam (Kingma and Ba, 2014) as `keras.optimizers.Adam` computes it, one kernel a variable.

    With g the gradient, t the step (from 1), lr the learning rate:
      m <- m + (g - m) * (1 - beta_1)
      v <- v + (g^2 - v) * (1 - beta_2)
      variable <- variable - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)
    Slots 'momentum' (m) and 'velocity' (v), as Keras' Adam; no AMSGrad.
    Reference: https://arxiv.org/abs/1412.6980
    """

    _SLOT_NAMES = ('momentum', 'velocity')

    def _apply_fused(self, variable, first_slot, second_slot, gradient, scalars):
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=first_slot.value.handle,
            v=second_slot.value.handle,
            beta1_power=scalars['beta1_power'],
            beta2_power=scalars['beta2_power'],
            lr=scalars['lr'],
            beta1=scalars['beta1'],
            beta2=scalars['beta2'],
            epsilon=scalars['epsilon'],
            grad=gradient,
        )


@keras.saving.register_keras_serializable(package='tfp_flows')
class FusedAdamax(_FusedOptimizer):
    """Adamax (Kingma and Ba, 2014, Sec. 7) as `keras.optimizers.Adamax`, one kernel a variable.

    With g the gradient, t the step (from 1), lr the learning rate:
      m <- m + (g - m) * (1 - beta_1)
      u <- max(beta_2 * u, |g|)
      variable <- variable - lr / (1 - beta_1^t) * m / (u + epsilon)
    Slots 'momentum' (m) and 'norm' (u), as Keras' Adamax.
    Reference: https://arxiv.org/abs/1412.6980
    """

    _SLOT_NAMES = ('momentum', 'norm')

    def _apply_fused(self, variable, first_slot, second_slot, gradient, scalars):
        tf.raw_ops.ResourceApplyAdaMax(
            var=variable.handle,
            m=first_slot.value.handle,
            v=second_slot.value.handle,
            beta1_power=scalars['beta1_power'],
            lr=scalars['lr'],
            beta1=scalars['beta1'],
            beta2=scalars['beta2'],
            epsilon=scalars['epsilon'],
            grad=gradient,
        )


_OPTIMIZERS = {'adam': FusedAdam, 'adamax': FusedAdamax}


def make_optimizer(
    name='adamax',
    learning_rate=1e-3,
    warmup_steps=0,
    decay_steps=None,
    weight_decay=None,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    ema_momentum=None,
):
    """The recipes' optimizer: linear warm-up, then cosine decay to 10% (if `decay_steps`).

    Args:
      name: 'adam' or 'adamax' (Glow's best bits/dim came with Adamax).
      learning_rate: peak learning rate (> 0), reached after `warmup_steps`.
      warmup_steps: optimizer steps of linear warm-up from 0 (an int >= 0).
      decay_steps: optimizer steps of cosine decay after the warm-up (an int >= 1), down to
        10% of the peak; None keeps the peak rate.
      weight_decay: decoupled weight decay as in AdamW (>= 0; each step subtracts
        `variable * weight_decay * learning_rate`), or None.
      beta_1: decay rate of the gradient's moving average, in [0, 1).
      beta_2: decay rate of the squared gradient's moving average (Adam) or of the
        infinity norm (Adamax), in [0, 1).
      epsilon: added to the denominator (> 0), Keras' "epsilon hat".
      ema_momentum: None, or keep an exponential moving average (EMA, Polyak averaging) of the
        weights with this momentum in [0, 1): after each step
        `average = ema_momentum * average + (1 - ema_momentum) * variable` (the first step
        copies the variable). The averages are optimizer variables, so a checkpoint of the
        optimizer holds them beside the raw weights. Evaluate on them with
        `keras.callbacks.SwapEMAWeights` in `fit` or `FlowTrainer.ema_weights()`; at the end
        of `fit` Keras writes them into the flow (`finalize_variable_values`).

    Steps are optimizer steps (`optimizer.iterations`): with gradient accumulation
    (`FlowTrainer(accumulation_steps=N)`) one step is one update from N micro-batches.

    Returns:
      A `FusedAdam` or `FusedAdamax`: Keras' Adam/Adamax arithmetic, slots and checkpoints,
      each variable updated by one fused kernel.

    Raises:
      ValueError: naming the argument, for an unknown `name` or a number out of its domain.
    """
    if name not in _OPTIMIZERS:
        raise ValueError(f'`name` must be one of {tuple(_OPTIMIZERS)}; got {name!r}.')
    learning_rate = check_number('learning_rate', learning_rate, low=0, low_open=True)
    warmup_steps = check_int('warmup_steps', warmup_steps, 0)
    if decay_steps is not None:
        decay_steps = check_int('decay_steps', decay_steps, 1)
    if weight_decay is not None:
        weight_decay = check_number('weight_decay', weight_decay, low=0)
    if ema_momentum is not None:
        ema_momentum = check_number('ema_momentum', ema_momentum, 0, 1, high_open=True)
    schedule = learning_rate
    if warmup_steps or decay_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=decay_steps or 1,
            alpha=0.1 if decay_steps else 1.0,
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    return _OPTIMIZERS[name](
        learning_rate=schedule,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        weight_decay=weight_decay,
        use_ema=ema_momentum is not None,
        ema_momentum=0.99 if ema_momentum is None else ema_momentum,
    )
