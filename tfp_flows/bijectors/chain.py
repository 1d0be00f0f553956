"""Chain: flow steps composed as `tfb.Chain` does, walked once per call."""

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import backprop
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.validation import check_bool, check_positive_int, shape_tuple

tfb = tfp.bijectors

__all__ = ['Chain']


def _is_invert(step):
    """Whether `step` is a `tfb.Invert`: for a bijector that is not a `CompositeTensor` (ours
    hold variables) `tfb.Invert(b)` makes an instance of its base class `_Invert`, so both
    names are recognised (pinned by tests/test_chain.py)."""
    return type(step).__name__ in ('Invert', '_Invert') and isinstance(
        getattr(step, 'bijector', None), tfb.Bijector
    )


def _kind(step):
    """A step's kind for the saved structure: its class, and what an `Invert` wraps."""
    if _is_invert(step):
        return f'Invert({_kind(step.bijector)})'
    return type(step).__name__


def direction(step, inverse):
    """(bijector, whether to run its inverse) once `tfb.Invert` wrappers are taken off."""
    while _is_invert(step):
        step, inverse = step.bijector, not inverse
    return step, inverse


def apply_step(step, x, inverse, event_ndims, kwargs, step_hook=None):
    """Runs one step of a flow: (output, log-det summed over `event_ndims` dims).

    Our bijectors (also inside `tfb.Invert`) run output and log-det in one pass and get the
    kwargs they take (`kwarg_names`) and `step_hook`; other TFP bijectors run their public
    methods without kwargs. `step_hook(step, x, inverse)` is called before every step that is
    not a `Chain` (a chain calls it for its own steps).
    """
    bijector, run_inverse = direction(step, inverse)
    if isinstance(bijector, FlowBijector):
        step_kwargs = {k: v for k, v in kwargs.items() if k in bijector.kwarg_names}
        if 'step_hook' in bijector.kwarg_names:
            step_kwargs['step_hook'] = step_hook
        elif step_hook is not None:
            step_hook(bijector, x, run_inverse)
        method = bijector.inverse_and_log_det if run_inverse else bijector.forward_and_log_det
        return method(x, event_ndims, **step_kwargs)
    if step_hook is not None:
        step_hook(bijector, x, run_inverse)
    if run_inverse:
        return bijector.inverse(x), bijector.inverse_log_det_jacobian(x, event_ndims=event_ndims)
    return bijector.forward(x), bijector.forward_log_det_jacobian(x, event_ndims=event_ndims)


class Chain(FlowBijector):
    """Composes flow steps like `tfb.Chain`: `forward` applies the last step first.

    Chain([b1, b2, b3]).forward(z) = b1.forward(b2.forward(b3.forward(z))), so a flow is listed
    from the data side to the latent side, as in TFP. All steps act on events of rank
    `event_ndims` (3 for images [H, W, C], 1 for vectors); a step may change the event's
    shape but not its rank (the squeeze does). The log-det is the sum of the steps':
      log|det dy/dx| = sum_k log|det d x_k / d x_{k-1}|.

    Unlike `tfb.Chain`, each call walks the steps once, taking output and log-det of each
    step together, and a result is never stale after a variable update (see `FlowBijector`).
    Bijector kwargs (`conditional_input=`, `training=`, `dropout_seed=`, as accepted by TFP's
    `TransformedDistribution` through `bijector_kwargs`) go to every step whose `kwarg_names`
    lists them. Steps may be any TFP bijectors that keep the event rank; ours also inside
    `tfb.Invert`.

    `forward_and_log_det` and `inverse_and_log_det` take a `step_hook(step, x, inverse)`
    called before each step (nested chains and factor-outs included) with that step's input,
    which is how `tfp_flows.initialize` initialises every ActNorm in one walk.

    Memory-saving backprop: the bijector kwarg `memory_saving='invert'` keeps only the
    chain's output for backprop and rebuilds each step's input from its output on the way
    back, so the memory of a gradient does not grow with depth; 'recompute' keeps each step's
    input and reruns the step (`tfp_flows.bijectors.backprop` says what each costs). E.g.
    `flow.log_prob(x, bijector_kwargs={'memory_saving': 'invert'})` in a `GradientTape`. The
    values are the same as without it; only the gradients' memory and compute change. With a
    `step_hook` the walk is the plain one.
    """

    kwarg_names = (
        'conditional_input',
        'training',
        'dropout_seed',
        'step_hook',
        'memory_saving',
    )

    def __init__(self, steps, event_ndims=3, validate_args=False, name='chain'):
        """Creates the chain.

        Args:
          steps: list of bijectors, data side first (the last one is applied first by
            `forward`).
          event_ndims: rank of the events the steps act on.
          validate_args: passed on to TFP; each step validates its own inputs.
          name: name scope.

        Raises:
          ValueError: for an empty list, a non-positive `event_ndims`, a non-bool
            `validate_args`, or a step whose minimal event rank is larger than `event_ndims`.
          TypeError: for `steps` that is not a list, or a step that is not a `tfb.Bijector`.
        """
        parameters = dict(locals())
        if isinstance(steps, tfb.Bijector) or shape_tuple(steps) is None:
            raise TypeError(f'`steps` must be a list of bijectors; got {steps!r}.')
        steps = list(steps)
        if not steps:
            raise ValueError('`steps` must list at least one bijector; got an empty list.')
        check_positive_int('event_ndims', event_ndims)
        check_bool('validate_args', validate_args)
        for i, step in enumerate(steps):
            if not isinstance(step, tfb.Bijector):
                raise TypeError(f'Step {i} of the chain is not a tfb.Bijector; got {step!r}.')
            if step.forward_min_event_ndims > event_ndims:
                raise ValueError(
                    f'Step {i} ({step.name!r}) acts on events of rank '
                    f'{step.forward_min_event_ndims}; the chain has event_ndims={event_ndims}.'
                )
        dtypes = {s.dtype for s in steps if s.dtype is not None}
        if len(dtypes) > 1:
            raise TypeError(
                f'The steps of a chain must share one dtype; got {sorted(d.name for d in dtypes)}.'
            )
        self.bijectors = steps
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=event_ndims,
                dtype=dtypes.pop() if dtypes else None,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    def structure(self):
        return {'class': 'Chain', 'steps': [_kind(s) for s in self.bijectors]}

    def _walk(self, x, inverse, step_hook=None, memory_saving=None, **kwargs):
        memory_saving = backprop.check_memory_saving(memory_saving)
        if memory_saving == 'invert' and step_hook is None:
            return backprop.invertible_walk(self, x, inverse, kwargs)
        event_ndims = self.forward_min_event_ndims
        log_det = tf.zeros([], x.dtype)
        for step in self.bijectors if inverse else reversed(self.bijectors):
            if memory_saving == 'recompute' and step_hook is None:
                if hasattr(direction(step, inverse)[0], '_backprop_from_output'):
                    # A chain or factor-out: its own walk reruns its steps one by one.
                    step_kwargs = {**kwargs, 'memory_saving': memory_saving}
                    x, step_log_det = apply_step(step, x, inverse, event_ndims, step_kwargs)
                else:
                    x, step_log_det = backprop.recompute_step(step, x, inverse, event_ndims, kwargs)
            else:
                x, step_log_det = apply_step(step, x, inverse, event_ndims, kwargs, step_hook)
            log_det += step_log_det
        return x, log_det

    def _forward_and_log_det(self, x, **kwargs):
        return self._walk(x, inverse=False, **kwargs)

    def _inverse_and_log_det(self, y, **kwargs):
        return self._walk(y, inverse=True, **kwargs)

    def _backprop_from_output(self, output, output_gradient, inverse, backprop_state):
        """Memory-saving backprop through the steps, last to first: (input, its gradient).

        `output` is what the walk in direction `inverse` returned, `output_gradient` the loss's
        gradient w.r.t. it; `backprop_state` is the `tfp_flows.bijectors.backprop.Backprop`
        that rebuilds each step's input and collects the gradients of variables and kwargs.
        """
        event_ndims = self.forward_min_event_ndims
        for step in reversed(self.bijectors) if inverse else self.bijectors:
            output, output_gradient = backprop_state.step(
                step, output, output_gradient, inverse, event_ndims
            )
        return output, output_gradient

    def _forward_event_shape(self, input_shape):
        for step in reversed(self.bijectors):
            input_shape = step.forward_event_shape(input_shape)
        return input_shape

    def _inverse_event_shape(self, output_shape):
        for step in self.bijectors:
            output_shape = step.inverse_event_shape(output_shape)
        return output_shape

    def _forward_event_shape_tensor(self, input_shape):
        for step in reversed(self.bijectors):
            input_shape = step.forward_event_shape_tensor(input_shape)
        return input_shape

    def _inverse_event_shape_tensor(self, output_shape):
        for step in self.bijectors:
            output_shape = step.inverse_event_shape_tensor(output_shape)
        return output_shape
