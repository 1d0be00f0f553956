"""Steps that hold steps (`Container`), and `Chain`: flow steps composed as `tfb.Chain` does."""

import functools

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks
from tfp_flows.bijectors import backprop, walk
from tfp_flows.bijectors.base import FlowBijector

tfb = tfp.bijectors

__all__ = ['Chain', 'Container']


class Container(FlowBijector):
    """A step that holds steps and walks data through them (`tfp_flows.bijectors.walk`), with
    the memory saving the bijector kwarg `memory_saving` asks for (`backprop.run`)."""

    kwarg_names = ('conditional_input', 'training', 'dropout_seed', 'dropout_rows', 'memory_saving')

    def held_steps(self):
        raise NotImplementedError

    def walk(self, x, inverse, kwargs):
        raise NotImplementedError

    def _forward_and_log_det(self, x, **kwargs):
        return self._checked(x, self._run(x, False, kwargs))

    def _inverse_and_log_det(self, y, **kwargs):
        return self._checked(y, self._run(y, True, kwargs))

    def _run(self, x, inverse, kwargs):
        return backprop.run(self, x, inverse, kwargs)

    def _checked(self, x, result):
        """`result`, unless `x` has a lower static rank than the events (`ValueError`, as the
        steps' own checks; checked after the run, so a step that names the shape refuses first)."""
        rank = self.forward_min_event_ndims
        if x.shape.rank is not None and x.shape.rank < rank:
            raise ValueError(
                f'{type(self).__name__} {self.name!r} expects a tensor of rank >= {rank} (batch '
                f'dims, then an event of rank {rank}); got shape {x.shape.as_list()}.'
            )
        return result


def _kind(step):
    """A step's kind for the saved structure: its class, and what an `Invert` wraps."""
    if walk.is_invert(step):
        return f'Invert({_kind(step.bijector)})'
    return type(step).__name__


def _checked_steps(steps, event_ndims):
    """`steps` as a list of bijectors that act on events of rank `event_ndims` and share
    one dtype; `TypeError` or `ValueError` naming the first that does not."""
    if isinstance(steps, tfb.Bijector | str) or not hasattr(steps, '__iter__'):
        raise TypeError(f'`steps` must be a list of bijectors; got {steps!r}.')
    steps = list(steps)
    if not steps:
        raise ValueError('`steps` must list at least one bijector; got an empty list.')
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
    return steps, dtypes.pop() if dtypes else None


class Chain(Container):
    """Composes flow steps like `tfb.Chain`: `forward` applies the last step first.

    Chain([b1, b2, b3]).forward(z) = b1.forward(b2.forward(b3.forward(z))), so a flow is listed
    from the data side to the latent side, as in TFP. All steps act on events of rank
    `event_ndims` (3 for images [H, W, C], 1 for vectors); a step may change the event's
    shape but not its rank (the squeeze does). The log-det is the sum of the steps':
      log|det dy/dx| = sum_k log|det d x_k / d x_{k-1}|.

    Unlike `tfb.Chain`, each call walks the steps once, taking output and log-det of each
    step together. Steps may be any TFP bijectors that keep the event rank; ours also inside
    `tfb.Invert`. Bijector kwargs go to every step whose `kwarg_names` lists them (one taking
    `dropout_seed` but not `dropout_rows`: the seed folded with the rows, `walk.kwargs_taken`);
    `memory_saving` ('invert' or 'recompute') is the chain's own (`tfp_flows.bijectors.backprop`).
    A call refuses (`ValueError`) a tensor of lower rank than `event_ndims`.
    """

    def __init__(self, steps, event_ndims=3, validate_args=False, name='chain'):
        """The chain of `steps` (bijectors, data side first) on events of rank `event_ndims`.

        `ValueError` for an empty list, a bad `event_ndims` or `validate_args`, or a step of a
        larger minimal event rank; `TypeError` for a non-list, a non-bijector step, or mixed
        dtypes.
        """
        parameters = dict(locals())
        event_ndims = checks.POSITIVE_INT.check('event_ndims', event_ndims)
        self.bijectors, dtype = _checked_steps(steps, event_ndims)
        with tf.name_scope(name) as name:
            self._init_step(parameters, name, event_ndims, dtype)

    def structure(self):
        return {'class': 'Chain', 'steps': [_kind(s) for s in self.bijectors]}

    def held_steps(self):
        return tuple(self.bijectors)

    def walk(self, x, inverse, kwargs):
        """The steps in turn, the last first for `forward`."""
        event_ndims = self.forward_min_event_ndims
        log_det = tf.zeros([], x.dtype)
        for step in self.bijectors if inverse else reversed(self.bijectors):
            x, step_log_det = yield from walk.step(step, x, inverse, event_ndims, kwargs)
            log_det += step_log_det
        return x, log_det

    def walk_back(self, output, output_gradient, inverse, backward):
        """'invert' backprop through the steps in reverse (`backprop.Backward`): (input, its
        gradient) from the walk's `output` and the loss's gradient w.r.t. it."""
        event_ndims = self.forward_min_event_ndims
        for step in reversed(self.bijectors) if inverse else self.bijectors:
            output, output_gradient = backward.step(
                step, output, output_gradient, inverse, event_ndims
            )
        return output, output_gradient

    def _forward_event_shape(self, shape):
        return functools.reduce(lambda s, b: b.forward_event_shape(s), self.bijectors[::-1], shape)

    def _inverse_event_shape(self, shape):
        return functools.reduce(lambda s, b: b.inverse_event_shape(s), self.bijectors, shape)

    def _forward_event_shape_tensor(self, shape):
        steps = self.bijectors[::-1]
        return functools.reduce(lambda s, b: b.forward_event_shape_tensor(s), steps, shape)

    def _inverse_event_shape_tensor(self, shape):
        return functools.reduce(lambda s, b: b.inverse_event_shape_tensor(s), self.bijectors, shape)
