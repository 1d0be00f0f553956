"""Optimizers for flows: Adam and Adamax as one fused TF kernel per variable, and the recipe's.

`FusedAdam` and `FusedAdamax` compute `keras.optimizers.Adam` / `Adamax`'s arithmetic with the
same slots (a checkpoint of one restores into the other), but each variable's update is one
`tf.raw_ops` kernel instead of Keras' ~20 ops: with ~100 variables this halves the train
step's graph. Weight decay, EMA, loss scaling and `tf.distribute` are Keras' own `apply`.
"""

import keras
import tensorflow as tf

from tfp_flows import checks

__all__ = ['FusedAdam', 'FusedAdamax', 'make_optimizer']

_LEARNING_RATE = checks.Domain(
    'a finite number > 0 or a keras.optimizers.schedules.LearningRateSchedule',
    lambda value: (
        isinstance(value, keras.optimizers.schedules.LearningRateSchedule)
        or checks.POSITIVE_NUMBER.contains(value)
    ),
)


class _FusedOptimizer(keras.optimizers.Optimizer):
    """Shared part of `FusedAdam` and `FusedAdamax`. Subclasses name their two slots as
    Keras' optimizer does (`_SLOT_NAMES`), their `tf.raw_ops` kernel and the scalars it takes."""

    _SLOT_NAMES = ()
    _KERNEL = ''
    _KERNEL_SCALARS = ('lr', 'beta1', 'beta2', 'beta1_power', 'epsilon')

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        """`ValueError` naming an argument out of its domain, before Keras makes a variable."""
        _LEARNING_RATE.check('learning_rate', learning_rate)
        checks.number(0).or_none().check('weight_decay', kwargs.get('weight_decay'))
        betas = checks.FRACTION.check('beta_1', beta_1), checks.FRACTION.check('beta_2', beta_2)
        epsilon = checks.POSITIVE_NUMBER.check('epsilon', epsilon)
        super().__init__(learning_rate=learning_rate, **kwargs)
        (self.beta_1, self.beta_2), self.epsilon = betas, epsilon
        self._step_scalars = None

    def build(self, variables):
        """Makes the two slots of each variable (zeros of its shape and dtype)."""
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

    @property
    def learning_rate(self):
        """Keras' learning rate at the current step; within `apply` computed once a step (Keras'
        weight decay reads it once a variable: a schedule's graph per variable otherwise)."""
        if self._step_scalars is None:
            return super().learning_rate
        key = ('learning_rate', tf.compat.v1.get_default_graph())  # A cond's branch: its own.
        if key not in self._step_scalars:
            self._step_scalars[key] = super().learning_rate
        return self._step_scalars[key]

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        keras.optimizers.Optimizer.learning_rate.fset(self, learning_rate)

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
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
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
        """One variable's update as one fused kernel (sparse gradients made dense)."""
        index = self._slot_index.get(variable.ref())
        if index is None:
            raise ValueError(
                f'{type(self).__name__} was not built on variable {variable.name!r}: build it '
                'on the variables it updates, inside the strategy scope they were made in.'
            )
        scalars = self._scalars(variable, learning_rate)
        getattr(tf.raw_ops, self._KERNEL)(
            var=variable.handle,
            m=self.first_slots[index].value.handle,
            v=self.second_slots[index].value.handle,
            grad=tf.cast(tf.convert_to_tensor(gradient), variable.dtype),
            **{name: scalars[name] for name in self._KERNEL_SCALARS},
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
    _KERNEL = 'ResourceApplyAdam'
    _KERNEL_SCALARS = ('lr', 'beta1', 'beta2', 'beta1_power', 'beta2_power', 'epsilon')


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
    _KERNEL = 'ResourceApplyAdaMax'


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
    """The recipes' `FusedAdam` or `FusedAdamax` (`name` 'adam' or 'adamax'): linear warm-up
    from 0 over `warmup_steps` (an int >= 0) to the peak `learning_rate` (> 0), then, with
    `decay_steps` (None or an int >= 1), cosine decay to 10% of it, in optimizer steps (one
    update from N micro-batches with `accumulation_steps=N`). `weight_decay` (None or >= 0,
    decoupled as in AdamW), `beta_1`, `beta_2` (in [0, 1)) and `epsilon` (> 0) as Keras' Adam.
    `ema_momentum`: None, or m in [0, 1): keep `average = m * average + (1 - m) * variable` of
    the weights (checkpointed; `FlowTrainer.ema_weights()`). `ValueError` naming an argument
    out of its domain.
    """
    optimizer = _OPTIMIZERS[checks.one_of(*_OPTIMIZERS).check('name', name)]
    warmup_steps = checks.NON_NEGATIVE_INT.check('warmup_steps', warmup_steps)
    decay_steps = checks.POSITIVE_INT.or_none().check('decay_steps', decay_steps)
    ema_momentum = checks.FRACTION.or_none().check('ema_momentum', ema_momentum)
    if warmup_steps or decay_steps:  # Else the optimizer checks the constant learning rate.
        peak = checks.POSITIVE_NUMBER.check('learning_rate', learning_rate)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else peak,
            decay_steps=decay_steps or 1,
            alpha=0.1 if decay_steps else 1.0,
            warmup_target=peak if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    return optimizer(
        learning_rate=learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        weight_decay=weight_decay,
        use_ema=ema_momentum is not None,
        ema_momentum=0.99 if ema_momentum is None else ema_momentum,
    )
