"""Memory-saving backprop through a flow: recompute activations instead of storing them.

Chosen per call with the bijector kwarg `memory_saving` of a container step (`Chain`,
`FactorOut`, `StandardizedContext`), e.g. `flow.log_prob(x, bijector_kwargs={'memory_saving':
'invert'})` inside a `GradientTape`. Both run on the one walk (`tfp_flows.bijectors.walk`):

- 'invert': invertible recompute (Gomez et al. 2017, https://arxiv.org/abs/1707.04585;
  Jacobsen et al. 2018, i-RevNet, https://arxiv.org/abs/1802.07088). The walk keeps only its
  output; backprop walks back, last step first (containers through `walk_back`), rebuilds
  each step's input from its output, reruns the step under a tape and backpropagates through
  it alone. Held at once: the walk's input and output and one step's activations, whatever
  the depth. Cost: about 4 forward passes per training step against 3 (a coupling rebuilds
  its input with the conditioner output of its rerun, `rerun_from_output`).
- 'recompute': per-step checkpointing, as openai/glow's `memory_saving_gradients`: the walk
  keeps each leaf step's input and reruns the step in backprop (`tf.recompute_grad`; a `Loop`
  does so for each of its steps in its loop). Memory
  grows with depth by a step's input (for Glow, C channels against `hidden_channels`). Cost:
  about 4 passes against 3.

Both give plain backprop's gradients: 'recompute' to rounding; 'invert' at rebuilt inputs,
which carry the rounding of inverting the later steps (the tests bound it at random
parameters by 1e-4 relative in float32, 1e-10 in float64; a flow whose steps amplify rounding,
e.g. log-scales near their bound in many steps, is better served by 'recompute'). Gradients
reach every step's variables and any floating-point tensor kwarg (`conditional_input`). A step
must be deterministic given its input and kwargs: with `training=True` and no
`dropout_seed`, the walk draws one stateless seed so each rerun applies the same masks.
"""

import tensorflow as tf

from tfp_flows import checks
from tfp_flows.bijectors import walk
from tfp_flows.bijectors.base import reduce_log_det

__all__ = ['MEMORY_SAVING_MODES', 'Backward', 'check_memory_saving', 'recomputed', 'run']

MEMORY_SAVING_MODES = ('invert', 'recompute')
_MEMORY_SAVING = checks.one_of(*MEMORY_SAVING_MODES).or_none()


def check_memory_saving(memory_saving):
    """`memory_saving` if None or one of `MEMORY_SAVING_MODES`, else `ValueError` naming it."""
    return _MEMORY_SAVING.check('memory_saving', memory_saving)


def run(container, x, inverse, kwargs):
    """`container`'s walk of `x` in direction `inverse`: (output, log-det at its minimal
    event rank), with the memory saving `kwargs['memory_saving']` asks for (None: plain)."""
    kwargs = dict(kwargs)
    memory_saving = check_memory_saving(kwargs.pop('memory_saving', None))
    if memory_saving is None:
        return walk.run(container.walk(x, inverse, kwargs))
    training = kwargs.get('training')
    if training is not None and training is not False and kwargs.get('dropout_seed') is None:
        # The backward pass reruns the steps: their dropout masks must be the forward
        # pass's, so stateful draws are replaced by one stateless seed for the walk.
        kwargs['dropout_seed'] = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
    if memory_saving == 'recompute':
        if walk.is_looped(container):
            return container.run_looped(x, inverse, kwargs, recomputed)
        return walk.drive([container.walk(x, inverse, kwargs)], _recompute)[0]
    return _invert(container, x, inverse, kwargs)


def _split_kwargs(kwargs):
    """(names, tensors, rest): the floating-point tensor kwargs, which get gradients, apart."""
    names = sorted(k for k, v in kwargs.items() if tf.is_tensor(v) and v.dtype.is_floating)
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return names, [kwargs[k] for k in names], rest


def _joined(names, tensors, rest):
    return {**rest, **dict(zip(names, tensors, strict=True))}


def recomputed(run_step, x, params, kwargs):
    """`run_step(x, params, kwargs)` under `tf.recompute_grad`, with the floating-point
    `params` (a list of tensors) and tensor kwargs as its inputs, so they get gradients."""
    names, tensors, rest = _split_kwargs(kwargs)
    floating = [i for i, p in enumerate(params) if p.dtype.is_floating]

    def rerun(x, *inputs):
        values = list(params)
        for i, value in zip(floating, inputs[: len(floating)], strict=True):
            values[i] = value
        return run_step(x, values, _joined(names, inputs[len(floating) :], rest))

    return tf.recompute_grad(rerun)(x, *[params[i] for i in floating], *tensors)


def _recompute(visits):
    """The 'recompute' answer to a visit: a `Loop` reruns each step in its loop; go into other
    containers, run leaves under `tf.recompute_grad` (`recomputed`)."""
    (visit,) = visits
    step, x = visit.step, visit.x
    if walk.is_looped(step):
        output, log_det = step.run_looped(x, visit.inverse, visit.kwargs, recomputed)
        return [
            (output, reduce_log_det(log_det, x, step.forward_min_event_ndims, visit.event_ndims))
        ]
    if walk.is_container(step):
        return [walk.DESCEND]

    def run_step(x, _, kwargs):
        return walk.apply(visit._replace(x=x, kwargs=kwargs))

    return [recomputed(run_step, x, [], visit.kwargs)]


def _after(tensor, gradient):
    """`tensor`, computed in a graph only once `gradient` is: a data dependency, so TF does not
    rebuild and rerun steps before backprop needs them (which would hold them all at once).
    The same construction as `tf.recompute_grad`'s, which XLA also keeps; the added value is 0
    (NaN where the gradient's first entry is NaN)."""
    if tf.executing_eagerly():
        return tensor
    first = tf.reduce_max(tf.reshape(gradient, [-1])[:1])
    flag = tf.cast(first, tf.bool)
    return tensor + tf.cast(tf.where(flag == flag, 0.0, float('nan')), tensor.dtype)


def _log_det_gradient(gradient, log_det):
    """The loss's gradient w.r.t. a step's log-det, given the one w.r.t. the summed log-det:
    summed over the batch where the step's log-det is one scalar for all examples."""
    if log_det.shape.rank == 0 and gradient.shape.rank != 0:
        return tf.reduce_sum(gradient)
    return gradient


class Backward:
    """One 'invert' backprop: collects the gradients of variables and tensor kwargs.

    A container's `walk_back(output, output_gradient, inverse, backward)` calls `step` for
    the steps it holds and `gradients` for its own computations, and returns (its input, the
    gradient w.r.t. it).
    """

    def __init__(self, log_det_gradient, names, tensors, rest):
        self._log_det_gradient = log_det_gradient
        self._names, self._tensors, self._rest = names, list(tensors), rest
        self.kwarg_gradients = [tf.zeros_like(t) for t in self._tensors]
        self.variable_gradients = {}

    def kwargs(self):
        """The walk's bijector kwargs."""
        return _joined(self._names, self._tensors, self._rest)

    def nested(self, tensors):
        """A `Backward` for a part of this walk (a `Loop`'s step) that also collects the
        gradients w.r.t. `tensors` (after the kwargs' in its `kwarg_gradients`), which the
        part's steps read instead of variables; `add` hands the kwargs' over."""
        names = [*self._names, *(f' {i}' for i in range(len(tensors)))]  # Not kwargs' names.
        return Backward(self._log_det_gradient, names, [*self._tensors, *tensors], self._rest)

    def add(self, variable_gradients, kwarg_gradients=()):
        """Adds gradients w.r.t. variables ({variable.ref(): gradient}) and the kwargs."""
        for key, gradient in variable_gradients.items():
            total = self.variable_gradients.get(key)
            self.variable_gradients[key] = gradient if total is None else total + gradient
        for i, gradient in enumerate(kwarg_gradients):
            self.kwarg_gradients[i] += gradient

    def step(self, step, output, output_gradient, inverse, event_ndims):
        """(input, gradient w.r.t. input) of `step` run in direction `inverse`, from its
        output and the loss's gradient w.r.t. that output."""
        bijector, inverse = walk.direction(step, inverse)
        if callable(getattr(bijector, 'walk_back', None)):
            return bijector.walk_back(output, output_gradient, inverse, self)
        output = _after(output, output_gradient)
        kwargs = self.kwargs()
        if callable(getattr(bijector, 'rerun_from_output', None)):
            step_kwargs = walk.kwargs_taken(bijector, kwargs)

            def rerun(tape):
                tape.watch(output)
                x, y, log_det = bijector.rerun_from_output(tape, output, inverse, **step_kwargs)
                min_ndims = bijector.forward_min_event_ndims  # A coupling's, both ways.
                return [x, output], (y, reduce_log_det(log_det, x, min_ndims, event_ndims))
        else:

            def rerun(tape):
                # New tensors in and out: TFP's own bijectors memoise results by input tensor,
                # and a memoised result would be off the tape.
                with tape.stop_recording():
                    visit = walk.Visit(
                        bijector, tf.identity(output), not inverse, event_ndims, kwargs
                    )
                    x = tf.identity(walk.apply(visit)[0])
                tape.watch(x)
                return [x], walk.apply(walk.Visit(bijector, x, inverse, event_ndims, kwargs))

        sources, gradients = self._run(rerun, output_gradient)
        return sources[0], tf.add_n(gradients) if len(gradients) > 1 else gradients[0]

    def gradients(self, fn, inputs, output_gradient):
        """Gradients w.r.t. `inputs` of `fn(*inputs) -> (output, log_det)` (a step's own part,
        e.g. a factor-out's prior), given the loss's gradient w.r.t. `output`."""

        def rerun(tape):
            tape.watch(inputs)
            return list(inputs), fn(*inputs)

        return self._run(rerun, output_gradient)[1]

    def _run(self, rerun, output_gradient):
        """Runs `rerun(tape) -> (sources, (output, log_det))` under a tape; returns sources and
        the gradients w.r.t. them, adding those w.r.t. variables and kwargs to the totals."""
        with tf.GradientTape() as tape:
            tape.watch(self._tensors)
            sources, (output, log_det) = rerun(tape)
        variables = tape.watched_variables()
        gradients = tape.gradient(
            [output, log_det],
            [*sources, *self._tensors, *variables],
            output_gradients=[output_gradient, _log_det_gradient(self._log_det_gradient, log_det)],
        )
        count = len(sources)
        for i, gradient in enumerate(gradients[count : count + len(self._tensors)]):
            if gradient is not None:
                self.kwarg_gradients[i] += gradient
        found = zip(variables, gradients[count + len(self._tensors) :], strict=True)
        self.add({v.ref(): g for v, g in found if g is not None})
        found = [
            tf.zeros_like(s) if g is None else g
            for s, g in zip(sources, gradients[:count], strict=True)
        ]
        return sources, found


def _invert(container, x, inverse, kwargs):
    """`container`'s walk with 'invert' memory saving: (output, log-det).

    The walk runs under `tf.recompute_grad`, used here only because it runs its function
    without recording on any tape (the public way to do that without the tape's handle); its
    own gradient is never used, since the `tf.custom_gradient` around it answers first.
    """
    names, tensors, rest = _split_kwargs(kwargs)

    def plain_walk(x, *tensors):
        kwargs = _joined(names, tensors, rest)
        if walk.is_looped(container):
            return container.run_looped(x, inverse, kwargs)
        return walk.run(container.walk(x, inverse, kwargs))

    @tf.custom_gradient
    def walked(x, *tensors):
        output, log_det = tf.recompute_grad(plain_walk)(x, *tensors)

        def gradient(output_gradient, log_det_gradient, variables=None):
            # None where the loss does not use that output (in a graph).
            if output_gradient is None:
                output_gradient = tf.zeros_like(output)
            if log_det_gradient is None:
                log_det_gradient = tf.zeros_like(log_det)
            backward = Backward(log_det_gradient, names, tensors, rest)
            _, x_gradient = container.walk_back(output, output_gradient, inverse, backward)
            variable_gradients = [backward.variable_gradients.get(v.ref()) for v in variables or []]
            return [x_gradient, *backward.kwarg_gradients], variable_gradients

        return (output, log_det), gradient

    return walked(x, *tensors)
